"""Changes a person makes in the console: register or edit an AED, declare it ready.

Each change re-records the AED's readiness in the same step, so the fleet page shows its effect
at once instead of after the ingest's next sweep.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from fleet.db import session_scope
from fleet.errors import FleetError
from fleet.ingest.readiness import ReadinessRecorder
from fleet.models import Aed, AedCreate
from fleet.registry import import_registry, record_declaration
from fleet.registry_file import ParsedFile
from fleet.settings import Settings


class AedNotSaved(FleetError):
    """The AED could not be stored (e.g. its cabinet holds another AED)."""


def aed_exists(engine: Engine, aed_id: str) -> bool:
    with Session(engine) as session:
        return session.get(Aed, aed_id) is not None


def save_aed(engine: Engine, record: AedCreate, settings: Settings, now: datetime,
             by: str) -> None:
    """Create or update one AED with every field of `record` (empty fields clear them)."""
    report = import_registry(engine, ParsedFile(format="console", records=[(1, record)]))
    if report.rejections:
        raise AedNotSaved("; ".join(r.reason for r in report.rejections))
    refresh_readiness(engine, settings, [record.id], now, f"edited in the console by {by}")


def declare_ready(engine: Engine, settings: Settings, aed_id: str, by: str, declared_at: datetime,
                  now: datetime, note: str | None = None) -> None:
    """Record a manager's 'ready for deployment' declaration and its effect on readiness."""
    record_declaration(engine, aed_id, by, declared_at, now, note=note)
    refresh_readiness(engine, settings, [aed_id], now, f"declared ready by {by}")


def refresh_readiness(engine: Engine, settings: Settings, aed_ids: list[str], now: datetime,
                      cause: str) -> None:
    with session_scope(engine) as session:
        ReadinessRecorder(session, settings, now).refresh(aed_ids, cause)
