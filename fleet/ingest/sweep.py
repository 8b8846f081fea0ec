"""The periodic sweep: readiness changes that time alone brings, and retention of ingest data.

A cabinet that falls silent sends nothing, and a lost network may even swallow its MQTT will;
only re-evaluating every AED on a clock turns it `unverified` (`telemetry_stale`). The same pass
catches pads, batteries and declarations running out, and doors left open past their grace time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlmodel import col

from fleet.db import session_scope
from fleet.ingest.readiness import ReadinessRecorder, mark_sweep
from fleet.models import AppliedMessage
from fleet.retention import purge_dead_letters
from fleet.settings import Settings


@dataclass(frozen=True)
class SweepReport:
    transitions: int
    notices: int
    ledger_pruned: int
    dead_letters_pruned: int


def sweep(engine: Engine, settings: Settings, now: datetime) -> SweepReport:
    """Re-evaluate every AED at `now`, record changes, prune old ledger rows and dead letters."""
    with session_scope(engine) as session:
        recorder = ReadinessRecorder(session, settings, now)
        recorder.refresh(None, cause="sweep")
        mark_sweep(session, now)
    config = settings.ingest
    with session_scope(engine) as session:
        ledger = session.execute(delete(AppliedMessage).where(
            col(AppliedMessage.applied_at) < now - timedelta(days=config.ledger_retention_days)))
    letters = purge_dead_letters(engine, settings, now)  # [retention] dead_letter_days
    return SweepReport(recorder.transitions, recorder.notices,
                       ledger.rowcount, letters)  # type: ignore[attr-defined]
