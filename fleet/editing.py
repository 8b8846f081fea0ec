"""Changes a person makes in the console: register or edit an AED, declare it ready.

Each change re-records the AED's readiness and writes its audit entry in the same transaction,
so the fleet page shows its effect at once instead of after the ingest's next sweep, and no
change is ever stored without its entry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fleet import audit
from fleet.db import session_scope
from fleet.errors import FleetError
from fleet.ingest.readiness import ReadinessRecorder
from fleet.models import Aed, AedBase, AedCreate, Cabinet, Manager, Municipality
from fleet.registry import add_declaration, store_records
from fleet.registry_file import ParsedFile
from fleet.settings import Settings

SECRET_FIELDS = ("cabinet_code",)
"""The cabinet's access code is shown as changed, never its value."""


class AedNotSaved(FleetError):
    """The AED could not be stored (e.g. its cabinet holds another AED)."""

    def __init__(self, message: str, field: str = "device_id") -> None:
        super().__init__(message)
        self.field = field


def cabinet_of(engine: Engine, aed_id: str) -> str | None:
    """The connected cabinet an AED hangs in."""
    with Session(engine) as session:
        return session.exec(select(Cabinet.device_id).where(Cabinet.aed_id == aed_id)).first()


def cabinet_holder(engine: Engine, device_id: str) -> tuple[bool, str | None]:
    """Whether a cabinet is known, and the AED it holds."""
    with Session(engine) as session:
        cabinet = session.get(Cabinet, device_id)
        return cabinet is not None, None if cabinet is None else cabinet.aed_id


def save_aed(engine: Engine, record: AedCreate, settings: Settings, now: datetime, by: str,
             *, new: bool = False, version: str | None = None, version_key: str = "",
             region: str | None = None) -> None:
    """Create (`new`: only if the id is free) or update one AED with every field of `record`:
    an empty cabinet field unlinks the cabinet; the municipality follows the position.

    `region`: the one region the editor works in; refused when the AED would stand elsewhere.

    `version` (from `aed_version` with the same `version_key` when the form was opened):
    refused when the AED has been changed since, so that two people editing one AED never
    overwrite each other unseen. The change, its audit entry (by `by`) and the AED's new
    readiness are one transaction."""
    try:
        with session_scope(engine) as session:
            # Locked (PostgreSQL) until the commit: a second editor waits, then sees this one's
            # change. SQLite lets one writer at a time in anyway.
            before = session.get(Aed, record.id, with_for_update=True)
            if new and before is not None:
                raise AedNotSaved("an AED with this id is already registered", "id")
            old = audited_fields(session, before) if before is not None else {}
            if version is not None and before is not None and \
                    not hmac.compare_digest(_version(old, version_key), version):
                raise AedNotSaved("someone else changed this AED after you opened the form; "
                                  "reload it to see their change and make yours again", "form")
            report = store_records(session, ParsedFile(format="console", records=[(1, record)]))
            if report.rejections:
                raise AedNotSaved("; ".join(r.reason for r in report.rejections))
            if record.device_id is None:
                session.execute(update(Cabinet).where(col(Cabinet.aed_id) == record.id)
                                .values(aed_id=None))
            aed = session.get(Aed, record.id)
            assert aed is not None
            session.refresh(aed, ["region"])  # set by the store, past the session's copy
            if region is not None and aed.region != region:
                raise AedNotSaved(f"this place lies outside your region {region}", "lat")
            if before is not None and (old["lat"], old["lon"]) != (aed.lat, aed.lon):
                _leave_municipality_if_outside(session, aed)
            session.flush()
            changes = audit.changed_fields(old, audited_fields(session, aed),
                                           secret=SECRET_FIELDS)
            if before is None or changes:
                audit.record(session, now, by, audit.AuditAction.AED_CREATED if before is None
                             else audit.AuditAction.AED_EDITED, record.id, changes)
            ReadinessRecorder(session, settings, now).refresh(
                [record.id], f"edited in the console by {by}")
    except IntegrityError:
        if new:  # registered by someone else at the same moment
            raise AedNotSaved("an AED with this id is already registered", "id") from None
        raise


def aed_version(engine: Engine, aed_id: str, key: str) -> str | None:
    """A short fingerprint of what an editor sees of the AED (None: no such AED), keyed with
    the server's secret: it goes to the browser, and the AED's access code is part of it."""
    with Session(engine) as session:
        aed = session.get(Aed, aed_id)
        return None if aed is None else _version(audited_fields(session, aed), key)


def _version(fields: dict[str, Any], key: str) -> str:
    document = json.dumps(fields, sort_keys=True, default=str)
    return hmac.new(key.encode(), document.encode(), hashlib.sha256).hexdigest()[:24]


def audited_fields(session: Session, aed: Aed) -> dict[str, Any]:
    """What the audit log compares of an AED: its registered fields, municipality, manager
    and cabinet."""
    values = aed.model_dump(include=set(AedBase.model_fields))
    municipality = session.get(Municipality, aed.municipality_id) if aed.municipality_id \
        else None
    manager = session.get(Manager, aed.manager_id) if aed.manager_id else None
    values.update(municipality=municipality.name if municipality else None,
                  manager=manager.name if manager else None,
                  device_id=session.exec(select(Cabinet.device_id)
                                         .where(Cabinet.aed_id == aed.id)).first())
    return values


def _leave_municipality_if_outside(session: Session, aed: Aed) -> None:
    """The import keeps the old municipality when no boundary holds a new position: an AED
    moved out of its municipality's boundary leaves it (one without a boundary is kept)."""
    municipality = session.get(Municipality, aed.municipality_id) \
        if aed.municipality_id else None
    if municipality is not None and municipality.boundary_geojson and not shapely.from_geojson(
            municipality.boundary_geojson).covers(shapely.Point(aed.lon, aed.lat)):
        aed.municipality_id = None


def declare_ready(engine: Engine, settings: Settings, aed_id: str, by: str, declared_at: datetime,
                  now: datetime, note: str | None = None, *, actor: str | None = None) -> None:
    """Record a manager's 'ready for deployment' declaration, its audit entry (by `actor`,
    default the declarant) and its effect on readiness, in one transaction."""
    with session_scope(engine) as session:
        add_declaration(session, aed_id, by, declared_at, now, note, actor=actor or by)
        ReadinessRecorder(session, settings, now).refresh([aed_id], f"declared ready by {by}")



def refresh_readiness(engine: Engine, settings: Settings, aed_ids: list[str], now: datetime,
                      cause: str) -> None:
    with session_scope(engine) as session:
        ReadinessRecorder(session, settings, now).refresh(aed_ids, cause)
