"""Fleet health for the console: counts, the AEDs that need action first, expiry timeline.

Read from the readiness the ingest records (`AedReadiness`), so a page over 25,000 AEDs is a
few indexed queries. An AED without a recorded state is shown as `unknown`, never as ready.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from fleet.i18n import N_
from fleet.ingest.readiness import SWEEP
from fleet.models import (
    Aed,
    AedReadiness,
    Cabinet,
    DeviceEvent,
    Manager,
    Municipality,
    ReadinessDeclaration,
    ReadinessTransition,
    SweepMark,
    TelemetryState,
)
from fleet.readiness import describe_reason
from fleet.registry import iso_time
from fleet.settings import Settings

UNKNOWN = "unknown"
"""No readiness recorded yet: shown apart from ready, and treated as not deployable."""
STATES = ("not_ready", "unverified", UNKNOWN, "ready")
STATE_WORDS = {"ready": N_("Ready"), "unverified": N_("Unverified"),
               "not_ready": N_("Not ready"), UNKNOWN: N_("Not evaluated yet")}
"""Each state in English words; pages translate them (`fleet.i18n`)."""


@dataclass(frozen=True)
class FleetScope:
    """Which AEDs a view covers: one manager's, one municipality's, one region's, or (all
    None) all."""

    manager_id: int | None = None
    municipality_id: int | None = None
    region: str | None = None

    def apply(self, query: Any) -> Any:
        if self.region is not None:
            query = query.where(col(Aed.region) == self.region)
        if self.manager_id is not None:
            query = query.where(col(Aed.manager_id) == self.manager_id)
        if self.municipality_id is not None:
            query = query.where(col(Aed.municipality_id) == self.municipality_id)
        return query


@dataclass(frozen=True)
class FleetRow:
    """One AED in the fleet list."""

    id: str
    name: str | None
    address: str | None
    municipality: str | None
    state: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    since: datetime | None
    pads_expiry: date | None
    battery_expiry: date | None
    lat: float
    lon: float

    @property
    def state_words(self) -> str:
        return STATE_WORDS[self.state]

    @property
    def explanations(self) -> list[str]:
        return [describe_reason(code) for code in self.reasons + self.warnings]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "address": self.address,
                "municipality": self.municipality, "state": self.state,
                "reasons": list(self.reasons), "warnings": list(self.warnings),
                "since": iso_time(self.since), "pads_expiry": iso_time(self.pads_expiry),
                "battery_expiry": iso_time(self.battery_expiry), "lat": self.lat, "lon": self.lon}


def recorded_states(session: Session, now: datetime,
                    settings: Settings) -> tuple[datetime | None, bool]:
    """When the ingest's sweep last re-evaluated every AED (None: never), and whether the
    recorded states still count: while the sweep keeps running (three missed sweeps: no)."""
    found = session.execute(sa_select(col(SweepMark.at)).where(
        col(SweepMark.name) == SWEEP)).scalar_one_or_none()
    checked_at = None if found is None or found.year <= 1970 else found
    limit = timedelta(seconds=max(3 * settings.ingest.sweep_interval_s, 300))
    return checked_at, checked_at is not None and now - checked_at <= limit


def _state(trusted: bool) -> Any:
    """The state to show: `unknown` when none is recorded, and for `ready` when the sweep that
    keeps it current has stopped (a pad may have expired since)."""
    recorded = col(AedReadiness.state)
    if trusted:
        return func.coalesce(recorded, UNKNOWN)
    return case((recorded == "ready", UNKNOWN), else_=func.coalesce(recorded, UNKNOWN))


def state_counts(session: Session, scope: FleetScope, trusted: bool = True) -> dict[str, int]:
    """AEDs per readiness state (most urgent first), `unknown` for those not evaluated."""
    state = _state(trusted)
    query = scope.apply(sa_select(state, func.count()).select_from(Aed)
                        .outerjoin(AedReadiness, col(AedReadiness.aed_id) == Aed.id)
                        .group_by(state))
    found = {state: count for state, count in session.execute(query)}
    return {name: int(found.get(name, 0)) for name in STATES}


def state_counts_by_region(session: Session, trusted: bool = True
                           ) -> dict[str | None, dict[str, int]]:
    """AEDs per region (None: outside every region) and readiness state, in one query."""
    state = _state(trusted)
    found: dict[str | None, dict[str, int]] = {}
    for region, name, count in session.execute(
            sa_select(col(Aed.region), state, func.count()).select_from(Aed)
            .outerjoin(AedReadiness, col(AedReadiness.aed_id) == Aed.id)
            .group_by(col(Aed.region), state)):
        found.setdefault(region, dict.fromkeys(STATES, 0))[name] = int(count)
    return found


def _pads() -> Any:
    return func.coalesce(TelemetryState.pads_expiry, Aed.pads_expiry)


def _battery() -> Any:
    return func.coalesce(TelemetryState.battery_expiry, Aed.battery_expiry)


def _rows_query(scope: FleetScope, trusted: bool) -> Any:
    pads, battery = _pads(), _battery()
    soonest = case((pads.is_(None), battery), (battery.is_(None), pads),
                   (pads < battery, pads), else_=battery)
    state, warnings = _state(trusted), col(AedReadiness.warnings)
    rank = case((state == "not_ready", 0), (state == "unverified", 1), (state == UNKNOWN, 2),
                (warnings != "", 3), else_=4)
    return scope.apply(
        sa_select(col(Aed.id), col(Aed.name), col(Aed.address), col(Municipality.name),
                  state, col(AedReadiness.reasons),
                  col(AedReadiness.warnings), col(AedReadiness.since), pads, battery,
                  col(Aed.lat), col(Aed.lon))
        .select_from(Aed)
        .outerjoin(AedReadiness, col(AedReadiness.aed_id) == Aed.id)
        .outerjoin(Municipality, col(Municipality.id) == Aed.municipality_id)
        .outerjoin(Cabinet, col(Cabinet.aed_id) == Aed.id)
        .outerjoin(TelemetryState, col(TelemetryState.device_id) == Cabinet.device_id)
        .order_by(rank, soonest.is_(None), soonest, col(Aed.id)))


def _row(values: Any) -> FleetRow:
    (aed_id, name, address, municipality, state, reasons, warnings, since, pads, battery,
     lat, lon) = values
    return FleetRow(aed_id, name, address, municipality, state or UNKNOWN,
                    tuple((reasons or "").split()), tuple((warnings or "").split()), since,
                    pads, battery, lat, lon)


def fleet_rows(session: Session, scope: FleetScope, *, state: str | None = None,
               limit: int = 50, offset: int = 0, trusted: bool = True) -> list[FleetRow]:
    """AEDs in the order they need action: not ready, unverified, not evaluated, warnings,
    ready; within each, the soonest pads or battery expiry first."""
    query = _rows_query(scope, trusted)
    if state is not None:
        query = query.where(_state(trusted) == state)
    return [_row(values) for values in session.execute(query.limit(limit).offset(offset))]


def map_points(session: Session, scope: FleetScope,
               trusted: bool = True) -> list[tuple[str, float, float, str]]:
    """(id, lat, lon, state) of every AED in scope: the map's points."""
    query = scope.apply(
        sa_select(col(Aed.id), col(Aed.lat), col(Aed.lon), _state(trusted))
        .select_from(Aed).outerjoin(AedReadiness, col(AedReadiness.aed_id) == Aed.id))
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


@dataclass(frozen=True)
class ExpiryMonth:
    month: date
    pads: int
    battery: int


def expiry_timeline(session: Session, scope: FleetScope, today: date,
                    months: int = 12) -> list[ExpiryMonth]:
    """Pads and batteries running out per calendar month, from this month on (overdue ones
    counted in this month)."""
    first = today.replace(day=1)
    buckets = [first + relativedelta(months=n) for n in range(months)]
    counts: dict[str, Counter[date]] = {}
    for kind, expr in (("pads", _pads()), ("battery", _battery())):
        query = scope.apply(
            sa_select(expr, func.count()).select_from(Aed)
            .outerjoin(Cabinet, col(Cabinet.aed_id) == Aed.id)
            .outerjoin(TelemetryState, col(TelemetryState.device_id) == Cabinet.device_id)
            .where(expr.is_not(None), expr < first + relativedelta(months=months)).group_by(expr))
        counter: Counter[date] = Counter()
        for day, count in session.execute(query):
            counter[max(first, day.replace(day=1))] += int(count)
        counts[kind] = counter
    return [ExpiryMonth(month, counts["pads"][month], counts["battery"][month])
            for month in buckets]


def transitions(session: Session, aed_id: str, limit: int = 50) -> list[ReadinessTransition]:
    return list(session.execute(
        sa_select(ReadinessTransition).where(col(ReadinessTransition.aed_id) == aed_id)
        .order_by(col(ReadinessTransition.at).desc(), col(ReadinessTransition.id).desc())
        .limit(limit)).scalars())


def device_events(session: Session, device_id: str | None,
                  limit: int = 50) -> list[DeviceEvent]:
    if device_id is None:
        return []
    return list(session.execute(
        sa_select(DeviceEvent).where(col(DeviceEvent.device_id) == device_id)
        .order_by(col(DeviceEvent.ts).desc(), col(DeviceEvent.seq).desc())
        .limit(limit)).scalars())


def declarations(session: Session, aed_id: str, limit: int = 20) -> list[ReadinessDeclaration]:
    return list(session.execute(
        sa_select(ReadinessDeclaration).where(col(ReadinessDeclaration.aed_id) == aed_id)
        .order_by(col(ReadinessDeclaration.declared_at).desc()).limit(limit)).scalars())


def manager_names(session: Session) -> list[str]:
    return list(session.execute(sa_select(col(Manager.name)).order_by(col(Manager.name)))
                .scalars())


def municipality_boundaries(session: Session, name: str | None = None) -> list[Any]:
    """(name, boundary GeoJSON) of the municipalities that have one (or of one)."""
    query = sa_select(col(Municipality.name), col(Municipality.boundary_geojson)).where(
        col(Municipality.boundary_geojson).is_not(None))
    if name:
        query = query.where(col(Municipality.name) == name)
    return list(session.execute(query))
