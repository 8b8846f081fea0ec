"""Registry services: import AEDs, record declarations, and report readiness from the database."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from fleet import audit
from fleet.access import ACCESS_REASONS, Accessibility, accessible_at
from fleet.db import session_scope
from fleet.errors import InvalidDeclarationError, UnknownAedError
from fleet.models import (
    Aed,
    AedCreate,
    Cabinet,
    Manager,
    Municipality,
    ReadinessDeclaration,
    TelemetryState,
)
from fleet.municipalities import Boundary, MunicipalityLocator
from fleet.readiness import (
    AedFacts,
    CabinetReading,
    Declaration,
    Readiness,
    ReadinessState,
    declaration_valid_until,
    describe_reason,
    evaluate_readiness,
)
from fleet.region_store import assign_aed_regions, region_map
from fleet.regions import Region
from fleet.registry_file import ParsedFile, RowRejection
from fleet.settings import Settings

CHUNK = 500


@dataclass
class ImportReport:
    format: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    municipalities_assigned: int = 0
    without_hours: int = 0
    rejections: list[RowRejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format, "rows": self.rows, "imported": self.imported,
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": len(self.rejections),
            "municipalities_assigned": self.municipalities_assigned,
            "without_opening_hours": self.without_hours,
            "rejections": [{"line": r.line, "id": r.aed_id, "reason": r.reason}
                           for r in sorted(self.rejections, key=lambda r: r.line)],
            "notes": self.notes,
        }


def load_municipalities(engine: Engine, boundaries: Iterable[Boundary]) -> int:
    """Insert or update municipality boundaries by name; returns how many were stored."""
    count = 0
    with session_scope(engine) as session:
        existing = {m.name: m for m in session.exec(select(Municipality))}
        for boundary in boundaries:
            row = existing.get(boundary.name) or Municipality(name=boundary.name)
            row.population = boundary.population
            row.boundary_geojson = boundary.geometry_geojson
            session.add(row)
            count += 1
    return count


def municipality_locator(session: Session) -> MunicipalityLocator | None:
    rows = session.exec(select(Municipality.name, Municipality.boundary_geojson)
                        .where(col(Municipality.boundary_geojson).is_not(None))).all()
    return MunicipalityLocator([(n, g) for n, g in rows if g]) if rows else None


def import_registry(engine: Engine, parsed: ParsedFile, progress: Any = None, *,
                    actor: str = audit.SYSTEM, name: str | None = None) -> ImportReport:
    """Store the parsed records in one transaction: new ids inserted, known ids updated.

    Only the fields a file provides are written, so an OpenStreetMap re-import never wipes a
    manager's pads expiry. A row whose cabinet belongs to another AED is rejected; if the
    transaction fails, nothing of the file is kept. The audit log gets one entry for the
    import (`name`: the file's), with its counts.
    """
    with session_scope(engine) as session:
        report = store_records(session, parsed, progress)
        audit.record(session, datetime.now(UTC), actor, audit.AuditAction.AEDS_IMPORTED,
                     name or parsed.format,
                     {key: report.to_json()[key]
                      for key in ("rows", "created", "updated", "unchanged", "rejected")})
    return report


def store_records(session: Session, parsed: ParsedFile, progress: Any = None) -> ImportReport:
    """`import_registry` inside the caller's transaction, without its audit entry."""
    report = ImportReport(format=parsed.format, rows=parsed.rows,
                          rejections=list(parsed.rejections), notes=list(parsed.notes))
    locator = municipality_locator(session)
    municipalities = {m.name: m for m in session.exec(select(Municipality))}
    managers = {m.name: m for m in session.exec(select(Manager))}
    records = parsed.records
    for start in range(0, len(records), CHUNK):
        chunk = records[start:start + CHUNK]
        ids = [record.id for _, record in chunk]
        existing = {a.id: a for a in session.exec(select(Aed).where(col(Aed.id).in_(ids)))}
        devices = [r.device_id for _, r in chunk if r.device_id]
        cabinets = {c.device_id: c for c in session.exec(
            select(Cabinet).where(col(Cabinet.device_id).in_(devices)
                                  | col(Cabinet.aed_id).in_(ids)))}
        held = {c.aed_id: c for c in cabinets.values() if c.aed_id}
        places = [_municipality_of(record, locator) for _, record in chunk]
        report.municipalities_assigned += sum(
            1 for (_, record), place in zip(chunk, places, strict=True)
            if place and not record.municipality)
        _add_missing(session, municipalities, Municipality, places)
        _add_missing(session, managers, Manager, [r.manager for _, r in chunk])
        for (line, record), place in zip(chunk, places, strict=True):
            _store_record(session, line, record, existing, cabinets, held,
                          municipalities.get(place) if place else None,
                          managers.get(record.manager) if record.manager else None, report)
        session.flush()
        assign_aed_regions(session, ids)
        if progress is not None:
            progress.update(len(chunk))
    return report


def _municipality_of(record: AedCreate, locator: MunicipalityLocator | None) -> str | None:
    if record.municipality:
        return record.municipality
    return locator.locate(record.lat, record.lon) if locator is not None else None


def _add_missing(session: Session, known: dict[str, Any], model: type[Any],
                 names: Iterable[str | None]) -> None:
    """Create the named municipalities or managers not stored yet, with one flush."""
    missing = {name for name in names if name and name not in known}
    for name in sorted(missing):
        known[name] = model(name=name)
        session.add(known[name])
    if missing:
        session.flush()


def _store_record(session: Session, line: int, record: AedCreate, existing: dict[str, Aed],
                  cabinets: dict[str, Cabinet], held: dict[str, Cabinet],
                  municipality: Municipality | None,
                  manager: Manager | None, report: ImportReport) -> None:
    device_id = record.device_id
    cabinet = cabinets.get(device_id) if device_id else None
    if cabinet is not None and cabinet.aed_id not in (None, record.id):
        report.rejections.append(RowRejection(
            line, f"cabinet {device_id} already holds AED {cabinet.aed_id}", record.id))
        return

    values = record.model_dump(exclude_unset=True,
                               exclude={"id", "municipality", "manager", "device_id"})
    if municipality is not None:
        values["municipality_id"] = municipality.id
    if manager is not None:
        values["manager_id"] = manager.id

    aed = existing.get(record.id)
    if aed is None:
        aed = Aed(id=record.id, **values)
        session.add(aed)
        existing[record.id] = aed
        report.created += 1
    else:
        changed = {k: v for k, v in values.items() if getattr(aed, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(aed, key, value)
            aed.updated_at = datetime.now(UTC)
            report.updated += 1
        else:
            report.unchanged += 1
    if not aed.opening_hours:
        report.without_hours += 1

    if device_id and (cabinet is None or cabinet.aed_id is None):
        previous = held.get(record.id)
        if previous is not None:
            # The AED moved to another cabinet: the old one no longer holds it.
            previous.aed_id = None
            session.flush()
        if cabinet is None:
            cabinet = Cabinet(device_id=device_id, aed_id=record.id)
            session.add(cabinet)
            cabinets[device_id] = cabinet
        else:
            cabinet.aed_id = record.id
        held[record.id] = cabinet


def record_declaration(engine: Engine, aed_id: str, declared_by: str, declared_at: datetime,
                       now: datetime, note: str | None = None, *,
                       actor: str = audit.SYSTEM) -> ReadinessDeclaration:
    """Store a manager's 'ready for deployment' declaration for an AED, and its audit entry."""
    with session_scope(engine) as session:
        return add_declaration(session, aed_id, declared_by, declared_at, now, note,
                               actor=actor)


def add_declaration(session: Session, aed_id: str, declared_by: str, declared_at: datetime,
                    now: datetime, note: str | None = None, *,
                    actor: str = audit.SYSTEM) -> ReadinessDeclaration:
    """`record_declaration` inside the caller's transaction."""
    if declared_at > now + timedelta(minutes=5):
        raise InvalidDeclarationError(
            f"declaration time {iso_time(declared_at)} lies in the future: "
            "declare what was checked")
    if not declared_by.strip():
        raise InvalidDeclarationError("a declaration needs the name of who declares")
    if session.get(Aed, aed_id) is None:
        raise UnknownAedError(f"no AED with id {aed_id}")
    declaration = ReadinessDeclaration(aed_id=aed_id, declared_at=declared_at,
                                       declared_by=declared_by, note=note, recorded_at=now)
    session.add(declaration)
    audit.record(session, now, actor, audit.AuditAction.AED_READINESS_DECLARED, aed_id,
                 audit.changed_fields({}, {"declared_by": declared_by,
                                           "declared_at": declared_at, "note": note}))
    return declaration


@dataclass(frozen=True)
class AedStatus:
    """An AED with its readiness and accessibility at one moment: what the CLI and API show."""

    aed: Aed
    municipality: str | None
    manager: str | None
    device_id: str | None
    telemetry: TelemetryState | None
    declaration: ReadinessDeclaration | None
    readiness: Readiness
    access: Accessibility
    declaration_valid_until: datetime | None

    def to_json(self) -> dict[str, Any]:
        aed = self.aed
        tel = self.telemetry
        return {
            "id": aed.id,
            "name": aed.name,
            "lat": aed.lat,
            "lon": aed.lon,
            "address": aed.address,
            "municipality": self.municipality,
            "manager": self.manager,
            "device_id": self.device_id,
            "indoor": aed.indoor,
            "location_hint": aed.location_hint,
            "access": aed.access,
            "opening_hours": aed.opening_hours,
            "readiness": {
                "state": self.readiness.state.value,
                "reasons": list(self.readiness.reasons),
                "warnings": list(self.readiness.warnings),
            },
            "accessible_now": self.access.accessible,
            "accessibility": self.access.reason,
            "pads_expiry": iso_time(tel.pads_expiry if tel and tel.pads_expiry
                                    else aed.pads_expiry),
            "battery_expiry": iso_time(tel.battery_expiry if tel and tel.battery_expiry
                                       else aed.battery_expiry),
            "declaration": None if self.declaration is None else {
                "declared_at": iso_time(self.declaration.declared_at),
                "declared_by": self.declaration.declared_by,
                "valid_until": iso_time(self.declaration_valid_until),
            },
            "telemetry": None if tel is None else {
                "seq": tel.seq, "ts": iso_time(tel.ts), "online": tel.online,
                "battery_pct": tel.battery_pct, "self_test": tel.self_test,
                "door_open": tel.door_open, "aed_present": tel.aed_present,
                "temperature_c": tel.temperature_c, "power": tel.power,
                "source_fault": tel.source_fault,
            },
        }

    def explain(self) -> list[str]:
        """Each reason and warning in words, and the accessibility."""
        lines = [f"{code}: {describe_reason(code)}" for code in self.readiness.reasons]
        lines += [f"warning {code}: {describe_reason(code)}" for code in self.readiness.warnings]
        lines.append(f"access now: {ACCESS_REASONS[self.access.reason]}")
        return lines


def iso_time(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def reading_from_state(state: Any) -> CabinetReading:
    """A stored cabinet state (a TelemetryState or a row of its table) as readiness input."""
    # A cabinet whose clock runs ahead must not look fresher than when its report arrived.
    return CabinetReading(
        reported_at=min(state.ts, state.received_at), online=state.online,
        battery_pct=state.battery_pct,
        battery_expiry=state.battery_expiry, pads_expiry=state.pads_expiry,
        self_test=state.self_test,
        # A self-test dated after the report arrived would never fall overdue.
        self_test_at=(min(state.self_test_ts, state.received_at) if state.self_test_ts else None),
        door_open=state.door_open,
        door_open_since=state.door_open_since, aed_present=state.aed_present,
        temperature_c=state.temperature_c, power=state.power, source_fault=state.source_fault)


def _status_query(aed_ids: list[str] | None = None, municipality: str | None = None) -> Any:
    """AEDs with their municipality, manager, cabinet, telemetry and latest declaration."""
    latest = (select(ReadinessDeclaration.aed_id,
                     func.max(ReadinessDeclaration.declared_at).label("declared_at"))
              .group_by(col(ReadinessDeclaration.aed_id)))
    if aed_ids is not None:
        latest = latest.where(col(ReadinessDeclaration.aed_id).in_(aed_ids))
    newest = latest.subquery()
    query = (
        sa_select(Aed, col(Municipality.name), col(Manager.name), col(Cabinet.device_id),
                  TelemetryState, ReadinessDeclaration)
        .outerjoin(Municipality, col(Aed.municipality_id) == Municipality.id)
        .outerjoin(Manager, col(Aed.manager_id) == Manager.id)
        .outerjoin(Cabinet, col(Cabinet.aed_id) == Aed.id)
        .outerjoin(TelemetryState, col(TelemetryState.device_id) == Cabinet.device_id)
        .outerjoin(newest, newest.c.aed_id == Aed.id)
        .outerjoin(ReadinessDeclaration,
                   (col(ReadinessDeclaration.aed_id) == Aed.id)
                   & (col(ReadinessDeclaration.declared_at) == newest.c.declared_at))
        .order_by(col(Aed.id))
    )
    if aed_ids is not None:
        query = query.where(col(Aed.id).in_(aed_ids))
    if municipality is not None:
        query = query.where(func.lower(Municipality.name) == municipality.lower())
    return query


def aed_statuses(session: Session, settings: Settings, now: datetime, *,
                 aed_ids: list[str] | None = None, municipality: str | None = None,
                 state: ReadinessState | None = None) -> list[AedStatus]:
    """Readiness and accessibility of AEDs in one pass: one query, then the pure rules."""
    statuses: dict[str, AedStatus] = {}
    regions = region_map(session, settings)
    for aed, muni, manager, device_id, telemetry, declaration in session.execute(
            _status_query(aed_ids, municipality)):
        if aed.id in statuses:  # two declarations with the same timestamp
            continue
        status = evaluate_status(aed, muni, manager, device_id, telemetry, declaration,
                                 settings, now, regions.region_at(aed.lat, aed.lon))
        if state is None or status.readiness.state is state:
            statuses[aed.id] = status
    return list(statuses.values())


def readiness_of(session: Session, settings: Settings, now: datetime,
                 aed_ids: list[str] | None = None) -> dict[str, tuple[Aed, Readiness]]:
    """Readiness alone (no accessibility) of the given AEDs, or of all: what the ingest records.

    Three plain queries (AEDs with their cabinet, the cabinets' state, the latest declarations)
    rather than one join: the planners of SQLite and PostgreSQL both serve these by index.
    Cabinet state is read as rows, never from the session's identity map, so that state written
    earlier in the same transaction is what counts.
    """
    regions = region_map(session, settings)
    found: dict[str, tuple[Aed, Readiness]] = {}
    chunks = ([None] if aed_ids is None
              else [aed_ids[i:i + CHUNK] for i in range(0, len(aed_ids), CHUNK)])
    state_table = TelemetryState.__table__  # type: ignore[attr-defined]
    for chunk in chunks:
        aeds = sa_select(Aed, col(Cabinet.device_id)).outerjoin(
            Cabinet, col(Cabinet.aed_id) == Aed.id)
        declared = (sa_select(col(ReadinessDeclaration.aed_id),
                              func.max(ReadinessDeclaration.declared_at))
                    .group_by(col(ReadinessDeclaration.aed_id)))
        if chunk is not None:
            aeds = aeds.where(col(Aed.id).in_(chunk))
            declared = declared.where(col(ReadinessDeclaration.aed_id).in_(chunk))
        rows = session.execute(aeds).all()
        devices = [device for _aed, device in rows if device is not None]
        states = {}
        for start in range(0, len(devices), CHUNK):
            states.update({row.device_id: row for row in session.execute(
                sa_select(state_table).where(
                    state_table.c.device_id.in_(devices[start:start + CHUNK])))})
        latest = {aed_id: at for aed_id, at in session.execute(declared)}
        codes = regions.codes_at(np.array([aed.lat for aed, _d in rows]),
                                 np.array([aed.lon for aed, _d in rows]))
        for (aed, device), code in zip(rows, codes, strict=True):
            # Each AED by the thresholds of the region it stands in (the settings' own
            # outside every region), on that region's calendar.
            region = regions.get(code)
            rules = settings.readiness if region is None else region.readiness
            zone = settings.timezone if region is None else region.timezone
            found[aed.id] = (aed, evaluate_readiness(
                *readiness_inputs(aed, device, states.get(device), latest.get(aed.id)),
                now.astimezone(ZoneInfo(zone)), rules))
    return found


def readiness_inputs(aed: Aed, device_id: str | None, telemetry: Any,
                     declared_at: datetime | None,
                     ) -> tuple[AedFacts, CabinetReading | None, Declaration | None]:
    """The stored rows of an AED as the plain inputs of `evaluate_readiness`."""
    return (
        AedFacts(has_cabinet=device_id is not None, out_of_service=aed.out_of_service,
                 in_use=aed.in_use_incident is not None, pads_expiry=aed.pads_expiry,
                 battery_expiry=aed.battery_expiry),
        reading_from_state(telemetry) if telemetry is not None else None,
        Declaration(declared_at) if declared_at is not None else None)


def evaluate_status(aed: Aed, municipality: str | None, manager: str | None,
                    device_id: str | None, telemetry: TelemetryState | None,
                    declaration: ReadinessDeclaration | None, settings: Settings,
                    now: datetime, region: Region | None = None) -> AedStatus:
    """Readiness and accessibility of one AED by the rules and calendar of its `region`
    (the settings' own outside every region)."""
    policy = settings.readiness if region is None else region.readiness
    zone = settings.timezone if region is None else region.timezone
    country = settings.country if region is None else region.country
    # Expiry dates are local calendar dates: "today" is today where the AED is.
    local_now = now.astimezone(ZoneInfo(zone))
    readiness = evaluate_readiness(
        *readiness_inputs(aed, device_id, telemetry,
                          declaration.declared_at if declaration is not None else None),
        local_now, policy)
    access = accessible_at(aed.access, aed.opening_hours, now, zone, country)
    return AedStatus(
        aed=aed, municipality=municipality, manager=manager, device_id=device_id,
        telemetry=telemetry, declaration=declaration, readiness=readiness, access=access,
        declaration_valid_until=(declaration_valid_until(declaration.declared_at, policy)
                                 if declaration is not None else None))


def aed_status(session: Session, settings: Settings, aed_id: str, now: datetime) -> AedStatus:
    found = aed_statuses(session, settings, now, aed_ids=[aed_id])
    if not found:
        raise UnknownAedError(f"no AED with id {aed_id}")
    return found[0]


@dataclass(frozen=True)
class FleetSummary:
    total: int
    by_state: dict[str, int]
    reasons: dict[str, int]
    warnings: dict[str, int]
    accessible_now: int

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_state": self.by_state, "reasons": self.reasons,
                "warnings": self.warnings, "accessible_now": self.accessible_now}


def summarize(statuses: list[AedStatus]) -> FleetSummary:
    """Counts by state, by reason and by warning, most frequent first."""
    by_state = Counter(s.readiness.state.value for s in statuses)
    reasons = Counter(code for s in statuses for code in s.readiness.reasons)
    warnings = Counter(code for s in statuses for code in s.readiness.warnings)
    return FleetSummary(
        total=len(statuses),
        by_state={state.value: by_state.get(state.value, 0) for state in ReadinessState},
        reasons=dict(reasons.most_common()),
        warnings=dict(warnings.most_common()),
        accessible_now=sum(s.access.accessible for s in statuses))


def dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)
