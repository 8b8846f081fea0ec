"""Changes a person makes in the console: register or edit an AED, declare it ready.

Each change re-records the AED's readiness in the same step, so the fleet page shows its effect
at once instead of after the ingest's next sweep.
"""

from __future__ import annotations

from datetime import datetime

import shapely
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fleet.db import session_scope
from fleet.errors import FleetError
from fleet.ingest.readiness import ReadinessRecorder
from fleet.models import Aed, AedCreate, Cabinet, Municipality
from fleet.registry import import_registry, record_declaration
from fleet.registry_file import ParsedFile
from fleet.settings import Settings


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
             *, new: bool = False) -> None:
    """Create (`new`: only if the id is free) or update one AED with every field of `record`:
    an empty cabinet field unlinks the cabinet; the municipality follows the position."""
    with Session(engine) as session:
        before = session.get(Aed, record.id)
        moved_from = None if before is None else (before.lat, before.lon)
    if new:
        try:
            with session_scope(engine) as session:
                session.add(Aed(id=record.id, lat=record.lat, lon=record.lon, created_at=now,
                                updated_at=now, out_of_service=True))
        except IntegrityError:
            raise AedNotSaved("an AED with this id is already registered", "id") from None
    try:
        report = import_registry(engine, ParsedFile(format="console", records=[(1, record)]))
        if report.rejections:
            raise AedNotSaved("; ".join(r.reason for r in report.rejections))
    except BaseException:
        if new:  # the id was held for this record alone: free it again
            with session_scope(engine) as session:
                session.execute(delete(Aed).where(col(Aed.id) == record.id))
        raise
    with session_scope(engine) as session:
        if record.device_id is None:
            session.execute(update(Cabinet).where(col(Cabinet.aed_id) == record.id)
                            .values(aed_id=None))
        aed = session.get(Aed, record.id)
        assert aed is not None
        if moved_from is not None and moved_from != (aed.lat, aed.lon):
            _leave_municipality_if_outside(session, aed)
    refresh_readiness(engine, settings, [record.id], now, f"edited in the console by {by}")


def _leave_municipality_if_outside(session: Session, aed: Aed) -> None:
    """The import keeps the old municipality when no boundary holds a new position: an AED
    moved out of its municipality's boundary leaves it (one without a boundary is kept)."""
    municipality = session.get(Municipality, aed.municipality_id) \
        if aed.municipality_id else None
    if municipality is not None and municipality.boundary_geojson and not shapely.from_geojson(
            municipality.boundary_geojson).covers(shapely.Point(aed.lon, aed.lat)):
        aed.municipality_id = None


def declare_ready(engine: Engine, settings: Settings, aed_id: str, by: str, declared_at: datetime,
                  now: datetime, note: str | None = None) -> None:
    """Record a manager's 'ready for deployment' declaration and its effect on readiness."""
    record_declaration(engine, aed_id, by, declared_at, now, note=note)
    refresh_readiness(engine, settings, [aed_id], now, f"declared ready by {by}")


def refresh_readiness(engine: Engine, settings: Settings, aed_ids: list[str], now: datetime,
                      cause: str) -> None:
    with session_scope(engine) as session:
        ReadinessRecorder(session, settings, now).refresh(aed_ids, cause)
