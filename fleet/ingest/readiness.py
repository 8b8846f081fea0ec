"""Record readiness changes: the current state per AED, each transition, and the notices due.

Several ingest workers may evaluate the same AED at once (a report and a sweep); the current row
is changed with a compare-and-set, so each change is recorded once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col

from fleet.ingest.notices import notices_for_change
from fleet.models import Aed, AedReadiness, ReadinessTransition, SweepMark
from fleet.notifications import enqueue_notice
from fleet.readiness import Readiness
from fleet.registry import readiness_of
from fleet.settings import Settings

CHUNK = 2_000


class ReadinessRecorder:
    """Re-evaluates AEDs inside the caller's transaction and records what changed."""

    def __init__(self, session: Session, settings: Settings, now: datetime) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.transitions = 0
        self.notices = 0
        self._new_rows: list[dict[str, Any]] = []
        self._transition_rows: list[dict[str, Any]] = []

    def refresh(self, aed_ids: list[str] | None, cause: str) -> None:
        """Re-evaluate the given AEDs (None: all) and record each change."""
        if aed_ids is not None and not aed_ids:
            return
        found = readiness_of(self.session, self.settings, self.now, aed_ids)
        ids = sorted(found)  # one lock order for every writer: no deadlock between them
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            table = AedReadiness.__table__  # type: ignore[attr-defined]
            current = {row.aed_id: row for row in self.session.execute(
                sa_select(table).where(table.c.aed_id.in_(chunk)))}
            for aed_id in chunk:
                aed, readiness = found[aed_id]
                self._record(aed, readiness, current.get(aed_id), cause)
        # Core inserts, many rows per statement: a first sweep records a whole fleet at once.
        connection = self.session.connection()
        if self._new_rows:
            connection.execute(AedReadiness.__table__.insert(),  # type: ignore[attr-defined]
                               self._new_rows)
        if self._transition_rows:
            connection.execute(ReadinessTransition.__table__.insert(),  # type: ignore[attr-defined]
                               self._transition_rows)
        self._new_rows, self._transition_rows = [], []

    def _record(self, aed: Aed, readiness: Readiness, row: Any,
                cause: str) -> None:
        state = readiness.state.value
        reasons = " ".join(readiness.reasons)
        warnings = " ".join(readiness.warnings)
        if row is None:
            self._new_rows.append({
                "aed_id": aed.id, "state": state, "reasons": reasons, "warnings": warnings,
                "since": self.now, "evaluated_at": self.now})
            self._transition(aed.id, None, state, reasons, readiness.reasons, cause)
            return
        if (row.state, row.reasons, row.warnings) == (state, reasons, warnings):
            return
        result = self.session.execute(
            update(AedReadiness)
            .where(col(AedReadiness.aed_id) == aed.id, col(AedReadiness.state) == row.state,
                   col(AedReadiness.reasons) == row.reasons,
                   col(AedReadiness.warnings) == row.warnings)
            .values(state=state, reasons=reasons, warnings=warnings, evaluated_at=self.now,
                    since=self.now if state != row.state else row.since))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return  # another worker recorded this change first
        before_reasons = frozenset(row.reasons.split())
        if (row.state, row.reasons) != (state, reasons):
            added = tuple(code for code in readiness.reasons if code not in before_reasons)
            self._transition(aed.id, row.state, state, reasons, added, cause)
        for kind, detail in notices_for_change(row.state, before_reasons,
                                               frozenset(row.warnings.split()), readiness):
            self._notify(aed, kind, detail)

    def _transition(self, aed_id: str, before: str | None, after: str, reasons: str,
                    added: tuple[str, ...], cause: str) -> None:
        self._transition_rows.append({
            "aed_id": aed_id, "at": self.now, "from_state": before, "to_state": after,
            "reasons": reasons, "added": " ".join(added), "cause": cause[:100]})
        self.transitions += 1

    def _notify(self, aed: Aed, kind: str, detail: str) -> None:
        if enqueue_notice(self.session, aed=aed, kind=kind, detail=detail, now=self.now,
                          settings=self.settings) is not None:
            self.notices += 1

    def door_opened(self, aed_id: str, at: datetime) -> None:
        """A cabinet door opened: a notice unless the AED was sent to an incident."""
        aed = self.session.get(Aed, aed_id)
        if aed is not None and aed.in_use_incident is None:
            local = at.astimezone(ZoneInfo(self.settings.timezone))
            self._notify(aed, "door_opened", f"the cabinet reported its door opened at "
                                             f"{local:%Y-%m-%d %H:%M} {local.tzname()}")


SWEEP = "readiness_sweep"


def mark_sweep(session: Session, now: datetime) -> None:
    """Record that every AED's readiness was re-evaluated at `now` (readers trust the recorded
    states only while these marks keep coming)."""
    updated = session.execute(update(SweepMark).where(col(SweepMark.name) == SWEEP,
                                                      col(SweepMark.at) <= now)
                              .values(at=now))
    if updated.rowcount == 0 and session.get(SweepMark, SWEEP) is None:  # type: ignore[attr-defined]
        session.add(SweepMark(name=SWEEP, at=now))
