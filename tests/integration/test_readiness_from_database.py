"""Readiness read from the database: cabinet state, declarations, filters and stored times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import Session

from fleet.db import session_scope
from fleet.models import Aed, ReadinessDeclaration, TelemetryState
from fleet.readiness import ReadinessState
from fleet.registry import (
    AedStatus,
    aed_status,
    aed_statuses,
    import_registry,
    record_declaration,
    summarize,
)
from fleet.registry_file import parse_csv
from fleet.settings import Settings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

FLEET_CSV = """id,lat,lon,municipality,opening_hours,device_id
NL-R1,52.0907,5.1214,Utrecht,24/7,cab-r1
NL-R2,52.0800,5.1300,Utrecht,24/7,cab-r2
NL-R3,52.1561,5.3878,Amersfoort,24/7,cab-r3
NL-R4,52.3700,4.8900,,24/7,cab-r4
"""


@pytest.fixture
def fleet(engine: Engine) -> Engine:
    """Four AEDs with cabinets (three placed in a municipality), registered by an import."""
    report = import_registry(engine, parse_csv(FLEET_CSV))
    assert report.created == 4
    return engine


def report_healthy_state(engine: Engine, device_id: str, **changes: object) -> None:
    """Store the cabinet's latest state: all well a few minutes ago, except `changes`."""
    values: dict[str, object] = {
        "device_id": device_id, "seq": 41, "ts": NOW - timedelta(minutes=5), "online": True,
        "battery_pct": 87, "pads_expiry": TODAY + timedelta(days=400), "self_test": "pass",
        "self_test_ts": NOW - timedelta(days=1), "door_open": False, "aed_present": True,
        "temperature_c": 12.5, "heater_on": False, "power": "mains",
    }
    values.update(changes)
    with session_scope(engine) as session:
        session.add(TelemetryState(**values))  # type: ignore[arg-type]


def declare(engine: Engine, aed_id: str, days_ago: int) -> None:
    record_declaration(engine, aed_id, "J. Jansen", NOW - timedelta(days=days_ago), NOW)


def status_of(engine: Engine, settings: Settings, aed_id: str) -> AedStatus:
    with Session(engine) as session:
        return aed_status(session, settings, aed_id, NOW)


def ids(statuses: list[AedStatus]) -> list[str]:
    return [s.aed.id for s in statuses]


def test_aed_with_healthy_cabinet_and_recent_declaration_is_ready(
        fleet: Engine, settings: Settings) -> None:
    report_healthy_state(fleet, "cab-r1")
    declare(fleet, "NL-R1", days_ago=30)

    status = status_of(fleet, settings, "NL-R1")

    assert status.readiness.state is ReadinessState.READY
    assert (status.readiness.reasons, status.readiness.warnings) == ((), ())
    assert status.device_id == "cab-r1"
    assert status.municipality == "Utrecht"
    assert status.access.accessible


def test_aed_whose_cabinet_reports_expired_pads_is_not_ready_for_pads_expired(
        fleet: Engine, settings: Settings) -> None:
    report_healthy_state(fleet, "cab-r1", pads_expiry=TODAY - timedelta(days=1))
    declare(fleet, "NL-R1", days_ago=30)

    status = status_of(fleet, settings, "NL-R1")

    assert status.readiness.state is ReadinessState.NOT_READY
    assert status.readiness.reasons == ("pads_expired",)
    assert status.to_json()["pads_expiry"] == (TODAY - timedelta(days=1)).isoformat()


def test_aed_never_declared_ready_is_not_ready_for_declaration_missing(
        fleet: Engine, settings: Settings) -> None:
    report_healthy_state(fleet, "cab-r1")

    status = status_of(fleet, settings, "NL-R1")

    assert status.readiness.state is ReadinessState.NOT_READY
    assert status.readiness.reasons == ("declaration_missing",)
    assert status.declaration is None


def test_latest_of_several_declarations_counts_whatever_order_they_were_recorded_in(
        fleet: Engine, settings: Settings) -> None:
    report_healthy_state(fleet, "cab-r1")
    declare(fleet, "NL-R1", days_ago=20)
    declare(fleet, "NL-R1", days_ago=400)  # recorded later, but checked long ago
    declare(fleet, "NL-R1", days_ago=500)

    status = status_of(fleet, settings, "NL-R1")

    assert status.readiness.state is ReadinessState.READY
    assert status.declaration is not None
    assert status.declaration.declared_at == NOW - timedelta(days=20)
    with Session(fleet) as session:
        assert len(aed_statuses(session, settings, NOW)) == 4  # one per AED, not per declaration


def test_only_an_old_declaration_leaves_the_aed_not_ready_for_declaration_expired(
        fleet: Engine, settings: Settings) -> None:
    report_healthy_state(fleet, "cab-r1")
    declare(fleet, "NL-R1", days_ago=400)

    status = status_of(fleet, settings, "NL-R1")

    assert status.readiness.reasons == ("declaration_expired",)


@pytest.fixture
def mixed_fleet(fleet: Engine) -> Engine:
    """NL-R1 Utrecht ready, NL-R2 Utrecht undeclared, NL-R3 Amersfoort ready, NL-R4 nowhere."""
    for device_id in ("cab-r1", "cab-r2", "cab-r3", "cab-r4"):
        report_healthy_state(fleet, device_id)
    for aed_id in ("NL-R1", "NL-R3", "NL-R4"):
        declare(fleet, aed_id, days_ago=10)
    return fleet


@pytest.mark.parametrize(("state", "municipality", "expected"), [
    (None, None, ["NL-R1", "NL-R2", "NL-R3", "NL-R4"]),
    (ReadinessState.READY, None, ["NL-R1", "NL-R3", "NL-R4"]),
    (ReadinessState.NOT_READY, None, ["NL-R2"]),
    (ReadinessState.UNVERIFIED, None, []),
    (None, "Utrecht", ["NL-R1", "NL-R2"]),
    (None, "uTRECHT", ["NL-R1", "NL-R2"]),
    (None, "AMERSFOORT", ["NL-R3"]),
    (None, "Zeist", []),
    (ReadinessState.READY, "utrecht", ["NL-R1"]),
])
def test_statuses_filter_by_state_and_by_municipality_ignoring_case(
        mixed_fleet: Engine, settings: Settings, state: ReadinessState | None,
        municipality: str | None, expected: list[str]) -> None:
    with Session(mixed_fleet) as session:
        found = aed_statuses(session, settings, NOW, state=state, municipality=municipality)

    assert ids(found) == expected


def test_fleet_summary_counts_states_and_reasons_from_the_database(
        mixed_fleet: Engine, settings: Settings) -> None:
    with Session(mixed_fleet) as session:
        summary = summarize(aed_statuses(session, settings, NOW))

    assert summary.total == 4
    assert summary.by_state == {"ready": 3, "unverified": 0, "not_ready": 1}
    assert summary.reasons == {"declaration_missing": 1}
    assert summary.accessible_now == 4


def test_stored_times_come_back_aware_in_utc_and_equal_to_what_was_stored(
        fleet: Engine) -> None:
    amsterdam = ZoneInfo("Europe/Amsterdam")
    declared_at = datetime(2026, 3, 29, 3, 30, 15, 123456, tzinfo=amsterdam)  # just after DST
    reported_at = datetime(2026, 1, 15, 8, 0, 0, 5, tzinfo=amsterdam)  # winter time, +01:00
    record_declaration(fleet, "NL-R1", "J. Jansen", declared_at, NOW)
    report_healthy_state(fleet, "cab-r1", ts=reported_at, pads_expiry=date(2027, 5, 1))

    with Session(fleet) as session:
        declaration = session.get(ReadinessDeclaration, 1)
        state = session.get(TelemetryState, "cab-r1")
        aed = session.get(Aed, "NL-R1")
        assert declaration is not None and state is not None and aed is not None
        stored = [declaration.declared_at, declaration.recorded_at, state.ts, state.received_at,
                  aed.created_at, aed.updated_at]

    assert all(moment.utcoffset() == timedelta(0) for moment in stored)
    assert declaration.declared_at == declared_at
    assert declaration.declared_at.hour == 1  # 03:30 CEST is 01:30 UTC
    assert state.ts == reported_at
    assert (state.ts.hour, state.ts.microsecond) == (7, 5)
    assert state.pads_expiry == date(2027, 5, 1)


def test_a_naive_time_is_refused_before_it_reaches_the_database(fleet: Engine) -> None:
    with Session(fleet) as session:
        session.add(ReadinessDeclaration(aed_id="NL-R1", declared_at=datetime(2026, 11, 27, 12),
                                         declared_by="J. Jansen"))
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()
