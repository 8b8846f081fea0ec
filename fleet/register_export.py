"""The anonymised export of incidents for the national resuscitation register.

One row per incident called in between two dates: a pseudonymous incident number (random,
kept in `incident_summary`, neither the internal id nor the 112 reference), the call's date and
hour, its PC4 area and municipality, and the figures of `alarm_core.anonymise.RegisterRecord`.
No names, phone numbers, addresses, coordinates or responder ids, and no free text.

An incident whose personal data the retention job has removed is exported from the summary
it stored then; a recent one is summarised from its rows as they are now.
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from alarm_core.anonymise import RegisterRecord, register_record
from alarm_core.models import (
    AftercareTask,
    Incident,
    IncidentAed,
    IncidentResponder,
    IncidentSummary,
    Questionnaire,
)
from fleet.population import Pc4Place, pc4_locator
from fleet.settings import Settings

CHUNK = 500
COLUMNS = ("incident_number", "call_date", "call_hour", "pc4", "municipality",
           *RegisterRecord.__dataclass_fields__)


@dataclass(frozen=True)
class RegisterRow:
    number: str
    called_at: datetime
    pc4: str | None
    municipality: str | None
    record: RegisterRecord

    def to_csv(self, tz: ZoneInfo) -> dict[str, Any]:
        """The CSV row: the call's local date and hour only, yes/no for flags."""
        local = self.called_at.astimezone(tz)
        figures = {key: ("yes" if value else "no") if isinstance(value, bool) else value
                   for key, value in self.record.to_json().items()}
        return {"incident_number": self.number, "call_date": local.date().isoformat(),
                "call_hour": local.hour, "pc4": self.pc4 or "",
                "municipality": self.municipality or "", **figures}


def new_number() -> str:
    """A register number: 12 random hexadecimal digits."""
    return secrets.token_hex(6).upper()


def ensure_summaries(session: Session, incident_ids: list[str]) -> None:
    """Give each incident its summary row (with a register number) if it has none yet; safe
    when another node does the same at once."""
    if not incident_ids:
        return
    have = set(session.execute(sa_select(col(IncidentSummary.incident_id)).where(
        col(IncidentSummary.incident_id).in_(incident_ids))).scalars())
    rows = [{"incident_id": i, "number": new_number()} for i in incident_ids if i not in have]
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(IncidentSummary).on_conflict_do_nothing(), rows)


def live_record(session: Session, incident: Incident) -> RegisterRecord:
    """The register's figures of an incident from its rows as they are now."""
    alerts = session.execute(sa_select(IncidentResponder).where(
        col(IncidentResponder.incident_id) == incident.id)).scalars().all()
    links = session.execute(sa_select(IncidentAed).where(
        col(IncidentAed.incident_id) == incident.id)).scalars().all()
    questionnaires = session.execute(sa_select(Questionnaire).where(
        col(Questionnaire.incident_id) == incident.id)).scalars().all()
    aftercare = session.execute(sa_select(func.count()).select_from(AftercareTask).where(
        col(AftercareTask.incident_id) == incident.id)).scalar_one()
    return register_record(incident, alerts, links, questionnaires, int(aftercare))


def place_of(incident: Incident) -> Pc4Place | None:
    """The PC4 area of an incident's (still exact) place."""
    return pc4_locator().locate(incident.lat, incident.lon)


def register_rows(engine: Engine, settings: Settings, since: date,
                  until: date) -> Iterator[RegisterRow]:
    """Every incident called in from the start of `since` to the end of `until` (local
    dates), oldest first, read in chunks."""
    tz = ZoneInfo(settings.timezone)
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz)
    after: tuple[datetime, str] | None = None
    while True:
        with Session(engine) as session:
            query = (sa_select(Incident).where(col(Incident.called_at) >= start,
                                               col(Incident.called_at) < end)
                     .order_by(col(Incident.called_at), col(Incident.id)).limit(CHUNK))
            if after is not None:
                query = query.where(
                    (col(Incident.called_at) > after[0])
                    | ((col(Incident.called_at) == after[0]) & (col(Incident.id) > after[1])))
            incidents = list(session.execute(query).scalars())
            if not incidents:
                return
            ids = [incident.id for incident in incidents]
            ensure_summaries(session, ids)
            session.commit()
            summaries = {s.incident_id: s for s in session.execute(
                sa_select(IncidentSummary).where(col(IncidentSummary.incident_id).in_(ids))
            ).scalars()}
            rows = [_row(session, incident, summaries[incident.id]) for incident in incidents]
            after = (incidents[-1].called_at, incidents[-1].id)
        yield from rows
        if len(rows) < CHUNK:
            return


def _row(session: Session, incident: Incident, summary: IncidentSummary) -> RegisterRow:
    if summary.coarsened_at is not None and summary.record is not None:
        return RegisterRow(summary.number, incident.called_at, summary.pc4,
                           summary.municipality,
                           RegisterRecord.from_json(json.loads(summary.record)))
    place = place_of(incident)
    return RegisterRow(summary.number, incident.called_at,
                       place.postcode if place else None, place.municipality if place else None,
                       live_record(session, incident))


def write_csv(rows: Iterator[RegisterRow], handle: IO[str], tz: ZoneInfo) -> int:
    """Write the rows as CSV with a header; returns how many."""
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row.to_csv(tz))
        count += 1
    return count
