"""Fill the in-memory pools from the database, and keep them current with small refreshes."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.models import Responder
from alarm_core.policy import DispatchPolicy
from alarm_core.pools import AedEntry, ResponderEntry
from alarm_core.responders import ResponderFacts, Whereabouts, position_at
from fleet.access import accessible_at
from fleet.models import Aed, AedReadiness, ReadinessDeclaration, TelemetryState
from fleet.region_store import home_regions, region_map
from fleet.regions import Region
from fleet.registry import readiness_of
from fleet.settings import Settings

logger = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def _at_work(work_hours: str, tz_name: str, country: str | None, minute: datetime) -> bool:
    return accessible_at("public", work_hours, minute, tz_name, country).accessible


def at_work(settings: Settings, now: datetime, region: Region | None = None) -> bool:
    """Whether `now` is inside the work hours (responders with a work address are there), on
    the clock and calendar of `region` (None: the settings')."""
    minute = now.replace(second=0, microsecond=0)
    zone, country = (settings.timezone, settings.country) if region is None else \
        (region.timezone, region.country)
    return _at_work(settings.dispatch.work_hours, zone, country, minute)


RESPONDER_COLUMNS = [col(Responder.id), col(Responder.date_of_birth),
                     col(Responder.certificate_date), col(Responder.available),
                     col(Responder.active), col(Responder.busy_incident),
                     col(Responder.quiet_from), col(Responder.quiet_until),
                     col(Responder.training), col(Responder.channel),
                     col(Responder.home_lat), col(Responder.home_lon),
                     col(Responder.work_lat), col(Responder.work_lon),
                     col(Responder.last_lat), col(Responder.last_lon),
                     col(Responder.last_location_at), col(Responder.competences),
                     col(Responder.region)]


def pair(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    return None if lat is None or lon is None else (lat, lon)


def responder_entry(row: Any, now: datetime, work: bool, policy: DispatchPolicy,
                    region: str | None = None) -> ResponderEntry:
    """A responder row as the pool holds it, placed where they are likely to be at `now`;
    `region`: theirs when the row names none."""
    places = Whereabouts(app=pair(row.last_lat, row.last_lon), app_at=row.last_location_at,
                         home=pair(row.home_lat, row.home_lon),
                         work=pair(row.work_lat, row.work_lon))
    position, _source = position_at(places, now, work, policy)
    return entry_at(row, position, region)


def competences_of(value: str | None) -> frozenset[str]:
    return frozenset(part for part in (value or "").split(",") if part)


def entry_at(row: Any, position: tuple[float, float] | None,
             region: str | None = None) -> ResponderEntry:
    """A responder row as the pool holds it, placed at `position`."""
    return ResponderEntry(
        id=row.id, lat=None if position is None else position[0],
        lon=None if position is None else position[1], date_of_birth=row.date_of_birth,
        certificate_date=row.certificate_date, available=row.available, active=row.active,
        busy=row.busy_incident is not None, quiet_from=row.quiet_from,
        quiet_until=row.quiet_until, medical=row.training == "medical", app=row.channel == "app",
        competences=competences_of(row.competences), region=row.region or region)


def responder_facts(row: Any) -> ResponderFacts:
    return ResponderFacts(date_of_birth=row.date_of_birth, certificate_date=row.certificate_date,
                          available=row.available, quiet_from=row.quiet_from,
                          quiet_until=row.quiet_until, active=row.active,
                          busy=row.busy_incident is not None)


def responder_entries(session: Session, settings: Settings, now: datetime,
                      since: datetime | None = None, reposition: bool = False,
                      ) -> list[ResponderEntry]:
    """Responders as pool entries: all (`since` None), or those changed since `since`, and
    with `reposition` everyone whose likely place may have moved (work hours, app location)."""
    query = sa_select(*RESPONDER_COLUMNS)
    if since is not None and not reposition:
        query = query.where(col(Responder.updated_at) >= since)
    elif since is not None:
        query = query.where(or_(col(Responder.updated_at) >= since,
                                col(Responder.work_lat).is_not(None),
                                col(Responder.last_location_at).is_not(None)))
    rows = list(session.execute(query))
    regions = region_map(session, settings)
    homes = home_regions(rows, regions)
    work = {code: at_work(settings, now, regions.get(code)) for code in set(homes)}
    return [responder_entry(row, now, work[home], settings.dispatch, home)
            for row, home in zip(rows, homes, strict=True)]


def aed_entry(aed: Aed, readiness: str, region: str | None = None) -> AedEntry:
    return AedEntry(id=aed.id, lat=aed.lat, lon=aed.lon, readiness=readiness,
                    in_use=aed.in_use_incident is not None, public=aed.access == "public",
                    opening_hours=aed.opening_hours, access_code=aed.cabinet_code,
                    location_hint=aed.location_hint, address=aed.address, region=region)


def aed_entries(session: Session, settings: Settings, now: datetime,
                aed_ids: list[str] | None = None) -> list[AedEntry]:
    """AEDs (all, or these) with their readiness evaluated now, not read from the last
    recorded state: a pool never trusts a state older than its own evaluation."""
    found = list(readiness_of(session, settings, now, aed_ids).values())
    codes = region_map(session, settings).codes_at(
        np.array([aed.lat for aed, _r in found]), np.array([aed.lon for aed, _r in found]))
    return [aed_entry(aed, readiness.state.value, code)
            for (aed, readiness), code in zip(found, codes, strict=True)]


def changed_aed_ids(session: Session, since: datetime) -> list[str]:
    """AEDs whose registry entry, cabinet state, declaration or recorded readiness changed."""
    from fleet.models import Cabinet

    ids: set[str] = set()
    ids.update(session.execute(sa_select(col(Aed.id)).where(col(Aed.updated_at) >= since))
               .scalars())
    ids.update(session.execute(
        sa_select(col(Cabinet.aed_id)).join(TelemetryState,
                                            col(TelemetryState.device_id) == Cabinet.device_id)
        .where(col(TelemetryState.received_at) >= since)).scalars())
    ids.update(session.execute(sa_select(col(ReadinessDeclaration.aed_id))
                               .where(col(ReadinessDeclaration.recorded_at) >= since)).scalars())
    ids.update(session.execute(sa_select(col(AedReadiness.aed_id))
                               .where(col(AedReadiness.since) >= since)).scalars())
    ids.discard(None)  # type: ignore[arg-type]
    return sorted(ids)


def local(settings: Settings, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(settings.timezone))
