"""Regions in the database: saved from region files, read back as a `RegionMap`."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.policy import DispatchPolicy
from fleet import audit
from fleet.models import Aed
from fleet.models import Region as RegionRow
from fleet.readiness import ReadinessPolicy
from fleet.regions import RegionMap, RegionSpec, check_overlaps, everywhere
from fleet.settings import Settings

_cache_lock = threading.Lock()
_cache: dict[tuple[int, str], tuple[Settings, tuple[Any, ...], RegionMap]] = {}
"""(id of the settings, database) -> the settings themselves (held, so that their id is not
reused), the region table's signature, the map."""


def spec_of(row: RegionRow) -> RegionSpec:
    return RegionSpec(code=row.code, name=row.name, timezone=row.timezone, country=row.country,
                      languages=tuple(row.languages.split(",")), area_geojson=row.area_geojson,
                      dispatch=json.loads(row.dispatch), readiness=json.loads(row.readiness))


def save_region(session: Session, spec: RegionSpec, settings: Settings, now: datetime,
                actor: str) -> bool:
    """Add or replace a region (audited); refused when its area overlaps another's.

    Returns whether anything changed."""
    others = [spec_of(row).region(settings.dispatch, settings.readiness)
              for row in session.execute(sa_select(RegionRow).where(
                  col(RegionRow.code) != spec.code)).scalars()]
    check_overlaps([*others, spec.region(settings.dispatch, settings.readiness)])
    values = {"name": spec.name, "timezone": spec.timezone, "country": spec.country,
              "languages": ",".join(spec.languages), "area_geojson": spec.area_geojson,
              "dispatch": json.dumps(spec.dispatch, sort_keys=True),
              "readiness": json.dumps(spec.readiness, sort_keys=True)}
    row = session.get(RegionRow, spec.code)
    if row is None:
        session.add(RegionRow(code=spec.code, updated_at=now, **values))
        changes: dict[str, Any] = {k: v for k, v in values.items() if k != "area_geojson"}
    else:
        old = {k: getattr(row, k) for k in values}
        changes = {k: [old[k], v] for k, v in values.items()
                   if old[k] != v and k != "area_geojson"}
        if old["area_geojson"] != values["area_geojson"]:
            changes["area"] = "changed"
        if not changes:
            return False
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
    audit.record(session, now, actor, audit.AuditAction.REGION_SAVED, spec.code, changes)
    return True


def region_rows(session: Session) -> list[RegionRow]:
    return list(session.execute(sa_select(RegionRow).order_by(col(RegionRow.code))).scalars())


def region_map(session: Session, settings: Settings) -> RegionMap:
    """The served regions with their rules over `settings`; one region covering everywhere
    (the settings' own rules) where none is stored. Cached until a region changes."""
    # Everything but the areas themselves (large): a few rows, read on each refresh.
    signature = tuple(tuple(row) for row in session.execute(sa_select(
        col(RegionRow.code), col(RegionRow.name), col(RegionRow.timezone),
        col(RegionRow.country), col(RegionRow.languages), col(RegionRow.dispatch),
        col(RegionRow.readiness), col(RegionRow.updated_at),
        func.length(RegionRow.area_geojson)).order_by(col(RegionRow.code))))
    key = (id(settings), str(session.get_bind().engine.url))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] is settings and cached[1] == signature:
            return cached[2]
    regions = [spec_of(row).region(settings.dispatch, settings.readiness)
               for row in region_rows(session)]
    found = RegionMap(regions) if regions else RegionMap([everywhere(
        settings.dispatch, settings.readiness, settings.timezone, settings.country)])
    with _cache_lock:
        _cache[key] = (settings, signature, found)
    return found


_areas: dict[str, tuple[tuple[Any, ...], RegionMap | None]] = {}


def area_map(session: Session) -> RegionMap | None:
    """The stored regions for where places lie (their rules left at the defaults), or None
    when no region is stored. Cached until a region changes."""
    signature = tuple(tuple(row) for row in session.execute(sa_select(
        col(RegionRow.code), col(RegionRow.updated_at),
        func.length(RegionRow.area_geojson)).order_by(col(RegionRow.code))))
    key = str(session.get_bind().engine.url)
    with _cache_lock:
        cached = _areas.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
    rows = region_rows(session)
    found = RegionMap([spec_of(row).region(DispatchPolicy(), ReadinessPolicy())
                       for row in rows]) if rows else None
    with _cache_lock:
        _areas[key] = (signature, found)
    return found


def assign_aed_regions(session: Session, aed_ids: list[str] | None = None) -> int:
    """Record the region each AED (all, or these) stands in; returns how many changed."""
    regions = area_map(session)
    query = sa_select(col(Aed.id), col(Aed.lat), col(Aed.lon), col(Aed.region))
    if aed_ids is not None:
        query = query.where(col(Aed.id).in_(aed_ids))
    rows = session.execute(query).all()
    if not rows:
        return 0
    codes = [None] * len(rows) if regions is None else regions.codes_at(
        np.array([r.lat for r in rows]), np.array([r.lon for r in rows]))
    changed = [{"aed_id": r.id, "code": code}
               for r, code in zip(rows, codes, strict=True) if r.region != code]
    if changed:
        table = Aed.__table__  # type: ignore[attr-defined]
        session.execute(table.update().where(table.c.id == bindparam("aed_id"))
                        .values(region=bindparam("code")), changed)
    return len(changed)


def _place(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    return None if lat is None or lon is None else (lat, lon)


def home_regions(rows: list[Any], regions: RegionMap) -> list[str | None]:
    """Each responder's region: the one named in their row, else the one their home (else
    their work address) lies in (rows with `region`, `home_lat/lon`, `work_lat/lon`)."""
    found: list[str | None] = [row.region for row in rows]
    places = {i: place for i, row in enumerate(rows) if row.region is None
              and (place := _place(row.home_lat, row.home_lon)
                   or _place(row.work_lat, row.work_lon)) is not None}
    if places:
        codes = regions.codes_at(np.array([p[0] for p in places.values()]),
                                 np.array([p[1] for p in places.values()]))
        for i, code in zip(places, codes, strict=True):
            found[i] = code
    return found


def assign_responder_regions(session: Session, responder_ids: list[str] | None = None) -> int:
    """Give responders (all, or these) who name no region the one their home, else their
    work address lies in; a region a responder chose is kept. Returns how many were given
    one."""
    from alarm_core.models import Responder

    regions = area_map(session)
    if regions is None:
        return 0
    query = sa_select(col(Responder.id), col(Responder.region), col(Responder.home_lat),
                      col(Responder.home_lon), col(Responder.work_lat),
                      col(Responder.work_lon)).where(col(Responder.region).is_(None))
    if responder_ids is not None:
        query = query.where(col(Responder.id).in_(responder_ids))
    rows = list(session.execute(query))
    if not rows:
        return 0
    codes = home_regions(rows, regions)
    found = [{"rid": row.id, "code": code} for row, code in zip(rows, codes, strict=True)
             if code is not None]
    if found:
        table = Responder.__table__  # type: ignore[attr-defined]
        session.execute(table.update().where(table.c.id == bindparam("rid"))
                        .values(region=bindparam("code")), found)
    return len(found)
