"""The responder registry: registration with its checks, bulk import, profile confirmation."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.errors import NotFound, RegistrationError
from alarm_core.models import Responder, ResponderCreate
from alarm_core.policy import COMPETENCES, DispatchPolicy
from alarm_core.responders import (
    Channel,
    Training,
    certificate_valid_until,
    registration_problems,
)
from fleet.accounts import Account, AccountError, Role, add_account
from fleet.db import session_scope
from fleet.models import Region, utcnow
from fleet.region_store import assign_responder_regions
from fleet.regions import LANGUAGES

CSV_COLUMNS = ("id", "name", "email", "phone", "date_of_birth", "certificate_date", "training",
               "channel", "available", "quiet_from", "quiet_until", "home_lat", "home_lon",
               "work_lat", "work_lon", "competences", "language", "region")
REQUIRED = ("id", "name", "date_of_birth")
CHUNK = 2_000
TRUE = {"1", "true", "yes", "y", "ja"}
FALSE = {"0", "false", "no", "n", "nee"}


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    """CSV strings as typed values; empty cells are absent."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name is None or value is None:
            continue
        value = value.strip()
        if value == "":
            continue
        if name == "available":
            lowered = value.lower()
            if lowered not in TRUE | FALSE:
                raise ValueError(f"available must be yes or no, not {value!r}")
            values[name] = lowered in TRUE
        elif name in ("quiet_from", "quiet_until"):
            try:
                values[name] = time.fromisoformat(value).replace(second=0, microsecond=0)
            except ValueError as exc:
                raise ValueError(f"{name} must be HH:MM, not {value!r}") from exc
        else:
            values[name] = value
    return values


def validate_responder(raw: dict[str, Any], today: date, policy: DispatchPolicy,
                       known_regions: frozenset[str] | None = None) -> ResponderCreate:
    """A registration as a checked record; raises `RegistrationError` with every problem.

    `known_regions`: the stored regions a registration may name (None: not checked)."""
    try:
        record = ResponderCreate.model_validate(raw)
    except ValidationError as exc:
        raise RegistrationError([
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]) from exc
    problems = registration_problems(record.date_of_birth, record.certificate_date, today,
                                     policy)
    if record.training not in {t.value for t in Training}:
        problems.append("training must be medical or non_medical")
    if record.channel not in {c.value for c in Channel}:
        problems.append("channel must be app or sms")
    if record.channel == Channel.SMS and not record.phone:
        problems.append("SMS responders need a phone number")
    if (record.home_lat is None) != (record.home_lon is None) \
            or (record.work_lat is None) != (record.work_lon is None):
        problems.append("a location needs both lat and lon")
    if record.home_lat is None and record.work_lat is None:
        problems.append("a home or work location is required")
    if (record.quiet_from is None) != (record.quiet_until is None):
        problems.append("quiet_from and quiet_until go together")
    unknown = sorted(set(filter(None, record.competences.split(","))) - set(COMPETENCES))
    if unknown:
        problems.append(f"unknown competence(s) {', '.join(unknown)}; known: "
                        f"{', '.join(COMPETENCES)} (comma-separated)")
    if record.language is not None and record.language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}")
    if record.region is not None and known_regions is not None \
            and record.region not in known_regions:
        problems.append(f"no region {record.region}"
                        + (f"; known: {', '.join(sorted(known_regions))}"
                           if known_regions else ": none is loaded"))
    if problems:
        raise RegistrationError(problems)
    return record


def register_responder(engine: Any, raw: dict[str, Any], now: datetime,
                       policy: DispatchPolicy) -> Responder:
    """Store one new or changed registration."""
    record = validate_responder(raw, now.date(), policy, region_codes(engine))
    with session_scope(engine) as session:
        responder = _upsert(session, record, now)
        session.flush()
        assign_responder_regions(session, [record.id])
        session.refresh(responder)
        return responder


def region_codes(engine: Any) -> frozenset[str]:
    """The codes of the stored regions."""
    with Session(engine) as session:
        return frozenset(session.execute(sa_select(col(Region.code))).scalars())


def register_with_account(engine: Any, raw: dict[str, Any], username: str, password: str,
                          now: datetime, policy: DispatchPolicy) -> Account:
    """A citizen's own registration: the responder and its console account in one
    transaction (either both are stored or neither). Unlike an import of an existing list, a
    new registration needs a certificate that is valid today."""
    record = validate_responder(raw, now.date(), policy, region_codes(engine))
    if record.certificate_date is None \
            or certificate_valid_until(record.certificate_date, policy) < now.date():
        raise RegistrationError(["a CPR certificate of the last "
                                 f"{policy.certificate_valid_months} months is required"])
    with session_scope(engine) as session:
        _upsert(session, record, now)
        session.flush()
        assign_responder_regions(session, [record.id])
        try:
            # The citizen registering is the one who makes the account.
            return add_account(session, username, password, Role.RESPONDER, now,
                               responder_id=record.id, actor=username.strip())
        except AccountError as exc:
            raise RegistrationError([str(exc)]) from exc


PLACES = ("home_lat", "home_lon", "work_lat", "work_lon")


def _moved(stored: Any, values: dict[str, Any]) -> bool:
    """Whether a registration that names no region gives a home or work address other than
    the stored one: the region found from the old address no longer holds (a region the
    responder names is kept)."""
    return "region" not in values and any(
        name in values and values[name] != getattr(stored, name) for name in PLACES)


def _upsert(session: Session, record: ResponderCreate, now: datetime) -> Responder:
    values = record.model_dump(exclude_unset=True)
    responder = session.get(Responder, record.id)
    if responder is not None and _moved(responder, values):
        values["region"] = None  # found again from the new address
    if responder is None:
        responder = Responder(**values, created_at=now, updated_at=now)
    else:
        for name, value in values.items():
            setattr(responder, name, value)
        responder.updated_at = now
    session.add(responder)
    return responder


@dataclass
class ResponderImport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected]}


Rows = list[tuple[int, dict[str, Any]]]


def read_responder_csv(path: Path) -> tuple[Rows, list[tuple[int, str]]]:
    """Rows of a responder CSV with their line numbers, and the rows that could not be read."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise RegistrationError([f"{path.name}: missing columns {', '.join(missing)}"])
    rows, bad = [], []
    for raw in reader:
        line = reader.line_num
        try:
            rows.append((line, _clean(raw)))
        except ValueError as exc:
            bad.append((line, str(exc)))
    return rows, bad


def import_responders(engine: Any, path: Path, now: datetime, policy: DispatchPolicy,
                      progress: Any = None) -> ResponderImport:
    """Import a responder CSV: good rows are stored (re-imports update), bad rows reported."""
    rows, bad = read_responder_csv(path)
    report = ResponderImport(rows=len(rows) + len(bad), rejected=list(bad))
    today = now.date()
    regions = region_codes(engine)
    seen: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        records = []
        for line, raw in chunk:
            try:
                record = validate_responder(raw, today, policy, regions)
            except RegistrationError as exc:
                report.rejected.append((line, "; ".join(exc.problems)))
                continue
            if record.id in seen:
                report.rejected.append((line, f"id {record.id} appears twice in the file"))
                continue
            seen.add(record.id)
            records.append(record)
        with session_scope(engine) as session:
            places = {row.id: row for row in session.execute(sa_select(
                col(Responder.id), *(col(getattr(Responder, name)) for name in PLACES)).where(
                col(Responder.id).in_([r.id for r in records])))}
            known = set(places)
            stamp = utcnow()  # per chunk: a running alarm core's refresh sees each one
            new = [{**r.model_dump(), "created_at": now, "updated_at": stamp,
                    "active": True, "ignored_in_row": 0}
                   for r in records if r.id not in known]
            if new:
                session.execute(insert(Responder), new)
            # A re-import changes what the file says; an absent or empty cell keeps the stored
            # value (a file without quiet hours must not wipe everyone's quiet hours).
            for record in (r for r in records if r.id in known):
                values = record.model_dump(exclude_unset=True)
                if _moved(places[record.id], values):
                    values["region"] = None  # found again from the new address below
                session.execute(update(Responder).where(col(Responder.id) == record.id)
                                .values(**values, updated_at=stamp))
            assign_responder_regions(session, [r.id for r in records])
        report.created += len(new)
        report.updated += len(records) - len(new)
        if progress is not None:
            progress.update(len(chunk))
    report.rejected.sort()
    return report


def confirm_profile(engine: Any, responder_id: str, now: datetime) -> Responder:
    """The responder confirms they still want alarms: active again, the count reset."""
    with session_scope(engine) as session:
        responder = session.get(Responder, responder_id)
        if responder is None:
            raise NotFound("unknown_responder", f"no responder {responder_id}")
        responder.active, responder.inactive_since, responder.ignored_in_row = True, None, 0
        responder.updated_at = now
        session.add(responder)
        return responder
