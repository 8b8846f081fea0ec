"""Readiness rules: every reason and warning from one change to a ready AED, edges, properties."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.readiness import (
    REASONS,
    WARNINGS,
    AedFacts,
    CabinetReading,
    Declaration,
    Readiness,
    ReadinessPolicy,
    ReadinessState,
    Severity,
    evaluate_readiness,
    state_for,
)

READY = ReadinessState.READY
UNVERIFIED = ReadinessState.UNVERIFIED
NOT_READY = ReadinessState.NOT_READY

POLICY = ReadinessPolicy()
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
ONE_SECOND = timedelta(seconds=1)

# A known-ready baseline: a cabinet AED with fresh, complete telemetry and a recent declaration.
AED = AedFacts(has_cabinet=True, pads_expiry=date(2027, 6, 1), battery_expiry=date(2029, 1, 1))
READING = CabinetReading(
    reported_at=NOW - timedelta(minutes=5),
    online=True,
    battery_pct=90,
    battery_expiry=date(2029, 1, 1),
    pads_expiry=date(2027, 6, 1),
    self_test="pass",
    self_test_at=NOW - timedelta(days=1),
    door_open=False,
    door_open_since=None,
    aed_present=True,
    temperature_c=20.0,
    power="mains",
    source_fault=None,
)
DECLARATION = Declaration(declared_at=NOW - timedelta(days=30))


def evaluate(
    aed: AedFacts = AED,
    reading: CabinetReading | None = READING,
    declaration: Declaration | None = DECLARATION,
    now: datetime = NOW,
    policy: ReadinessPolicy = POLICY,
) -> Readiness:
    return evaluate_readiness(aed, reading, declaration, now, policy)


def healthy_reading_at(now: datetime, **changes: Any) -> CabinetReading:
    """The baseline reading, with its times moved to `now`."""
    moved = replace(READING, reported_at=now - timedelta(minutes=5),
                    self_test_at=now - timedelta(days=1))
    return replace(moved, **changes)


def test_the_baseline_aed_is_ready_without_reasons_or_warnings() -> None:
    assert evaluate() == Readiness(READY, (), ())


@dataclass(frozen=True)
class Case:
    """One minimal change to the baseline and what it must lead to."""

    name: str
    state: ReadinessState
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    aed: AedFacts = AED
    reading: CabinetReading | None = READING
    declaration: Declaration | None = DECLARATION


CASES = [
    # Blocking reasons.
    Case("out of service", NOT_READY, ("out_of_service",), aed=replace(AED, out_of_service=True)),
    Case("in use", NOT_READY, ("in_use",), aed=replace(AED, in_use=True)),
    Case("aed absent", NOT_READY, ("aed_absent",), reading=replace(READING, aed_present=False)),
    Case("door open past grace", NOT_READY, ("door_open",),
         reading=replace(READING, door_open=True, door_open_since=NOW - timedelta(minutes=10))),
    Case("self-test failed", NOT_READY, ("self_test_failed",),
         reading=replace(READING, self_test="fail")),
    Case("cabinet reports expired pads", NOT_READY, ("pads_expired",),
         reading=replace(READING, pads_expiry=TODAY - timedelta(days=1))),
    Case("registry has expired pads and the cabinet reports none", NOT_READY, ("pads_expired",),
         aed=replace(AED, pads_expiry=TODAY - timedelta(days=1)),
         reading=replace(READING, pads_expiry=None)),
    Case("cabinet reports expired battery", NOT_READY, ("battery_expired",),
         reading=replace(READING, battery_expiry=TODAY - timedelta(days=1))),
    Case("registry has expired battery and the cabinet reports none", NOT_READY,
         ("battery_expired",),
         aed=replace(AED, battery_expiry=TODAY - timedelta(days=1)),
         reading=replace(READING, battery_expiry=None)),
    Case("battery low", NOT_READY, ("battery_low",), reading=replace(READING, battery_pct=19)),
    Case("battery empty", NOT_READY, ("battery_low",), reading=replace(READING, battery_pct=0)),
    Case("cabinet too cold", NOT_READY, ("temperature_out_of_range",),
         reading=replace(READING, temperature_c=-0.5)),
    Case("cabinet too hot", NOT_READY, ("temperature_out_of_range",),
         reading=replace(READING, temperature_c=50.5)),
    Case("never declared", NOT_READY, ("declaration_missing",), declaration=None),
    Case("declaration 13 months old", NOT_READY, ("declaration_expired",),
         declaration=Declaration(NOW - relativedelta(months=13))),
    # Doubt reasons.
    Case("no cabinet agent", UNVERIFIED, ("no_cabinet_agent",),
         aed=replace(AED, has_cabinet=False), reading=None),
    Case("cabinet never reported", UNVERIFIED, ("telemetry_missing",), reading=None),
    Case("telemetry stale", UNVERIFIED, ("telemetry_stale",),
         reading=replace(READING, reported_at=NOW - timedelta(minutes=36))),
    Case("cabinet agent offline", UNVERIFIED, ("telemetry_stale",),
         reading=replace(READING, online=False)),
    Case("source fault", UNVERIFIED, ("source_fault",),
         reading=replace(READING, source_fault="modbus: no response from unit 1")),
    Case("battery charge unknown", UNVERIFIED, ("cabinet_reading_incomplete",),
         reading=replace(READING, battery_pct=None)),
    Case("door state unknown", UNVERIFIED, ("cabinet_reading_incomplete",),
         reading=replace(READING, door_open=None)),
    Case("aed presence unknown", UNVERIFIED, ("cabinet_reading_incomplete",),
         reading=replace(READING, aed_present=None)),
    Case("last passed self-test too old", UNVERIFIED, ("self_test_overdue",),
         reading=replace(READING, self_test_at=NOW - timedelta(days=8))),
    Case("self-test result unknown", UNVERIFIED, ("self_test_overdue",),
         reading=replace(READING, self_test=None)),
    Case("self-test still running", UNVERIFIED, ("self_test_overdue",),
         reading=replace(READING, self_test="running")),
    Case("pads expiry unknown anywhere", UNVERIFIED, ("pads_expiry_unknown",),
         aed=replace(AED, pads_expiry=None), reading=replace(READING, pads_expiry=None)),
    # Warnings: the state stays ready.
    Case("pads expire within the warning period", READY, warnings=("pads_expiring_soon",),
         reading=replace(READING, pads_expiry=TODAY + timedelta(days=30))),
    Case("battery expires within the warning period", READY,
         warnings=("battery_expiring_soon",),
         reading=replace(READING, battery_expiry=TODAY + timedelta(days=10))),
    Case("declaration runs out within the warning period", READY,
         warnings=("declaration_expiring_soon",),
         declaration=Declaration(NOW - relativedelta(months=12) + timedelta(days=10))),
    Case("door opened a minute ago", READY, warnings=("door_opened_recently",),
         reading=replace(READING, door_open=True, door_open_since=NOW - timedelta(minutes=1))),
    Case("cabinet on backup battery", READY, warnings=("on_battery_power",),
         reading=replace(READING, power="battery")),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_one_change_to_a_ready_aed_gives_exactly_its_reason_or_warning(case: Case) -> None:
    result = evaluate(case.aed, case.reading, case.declaration)
    assert result == Readiness(case.state, case.reasons, case.warnings)


def test_the_table_produces_every_reason_code_and_every_warning() -> None:
    assert {code for case in CASES for code in case.reasons} == set(REASONS)
    assert {code for case in CASES for code in case.warnings} == set(WARNINGS)


def test_blocking_reasons_win_over_doubt_and_are_reported_most_urgent_first() -> None:
    result = evaluate(
        aed=replace(AED, in_use=True),
        reading=replace(READING, reported_at=NOW - timedelta(hours=2), aed_present=False,
                        pads_expiry=TODAY - timedelta(days=3)),
    )
    assert result.state is NOT_READY
    assert result.reasons == ("in_use", "aed_absent", "pads_expired", "telemetry_stale")


EDGES = [
    # (name, aed, reading, declaration, now, expected)
    ("pads expiring today are still usable",
     AED, replace(READING, pads_expiry=TODAY), DECLARATION, NOW,
     Readiness(READY, (), ("pads_expiring_soon",))),
    ("pads that expired yesterday are not",
     AED, replace(READING, pads_expiry=TODAY - timedelta(days=1)), DECLARATION, NOW,
     Readiness(NOT_READY, ("pads_expired",))),
    ("pads expiring one day after the warning period give no warning",
     AED, replace(READING, pads_expiry=TODAY + timedelta(days=31)), DECLARATION, NOW,
     Readiness(READY)),
    ("battery exactly at the threshold is not low",
     AED, replace(READING, battery_pct=POLICY.battery_low_pct), DECLARATION, NOW,
     Readiness(READY)),
    ("battery one percent below the threshold is low",
     AED, replace(READING, battery_pct=POLICY.battery_low_pct - 1), DECLARATION, NOW,
     Readiness(NOT_READY, ("battery_low",))),
    ("temperature exactly at the lower limit is in range",
     AED, replace(READING, temperature_c=POLICY.temperature_min_c), DECLARATION, NOW,
     Readiness(READY)),
    ("temperature exactly at the upper limit is in range",
     AED, replace(READING, temperature_c=POLICY.temperature_max_c), DECLARATION, NOW,
     Readiness(READY)),
    ("unknown temperature is no reason",
     AED, replace(READING, temperature_c=None), DECLARATION, NOW,
     Readiness(READY)),
    ("door open exactly the grace period is still within it",
     AED, replace(READING, door_open=True, door_open_since=NOW - timedelta(minutes=5)),
     DECLARATION, NOW, Readiness(READY, (), ("door_opened_recently",))),
    ("door open one second past the grace period is open",
     AED, replace(READING, door_open=True,
                  door_open_since=NOW - timedelta(minutes=5) - ONE_SECOND),
     DECLARATION, NOW, Readiness(NOT_READY, ("door_open",))),
    ("door open since an unknown time counts from a report six minutes old",
     AED, replace(READING, door_open=True, door_open_since=None,
                  reported_at=NOW - timedelta(minutes=6)),
     DECLARATION, NOW, Readiness(NOT_READY, ("door_open",))),
    ("door open since an unknown time counts from a report four minutes old",
     AED, replace(READING, door_open=True, door_open_since=None,
                  reported_at=NOW - timedelta(minutes=4)),
     DECLARATION, NOW, Readiness(READY, (), ("door_opened_recently",))),
    ("telemetry exactly at the staleness limit is fresh",
     AED, replace(READING, reported_at=NOW - timedelta(minutes=35)), DECLARATION, NOW,
     Readiness(READY)),
    ("telemetry one second past the staleness limit is stale",
     AED, replace(READING, reported_at=NOW - timedelta(minutes=35) - ONE_SECOND),
     DECLARATION, NOW, Readiness(UNVERIFIED, ("telemetry_stale",))),
    ("fresh telemetry from an agent reporting offline is stale",
     AED, replace(READING, online=False), DECLARATION, NOW,
     Readiness(UNVERIFIED, ("telemetry_stale",))),
    ("telemetry without an online flag is not stale",
     AED, replace(READING, online=None), DECLARATION, NOW,
     Readiness(READY)),
    ("a pass exactly seven days old is not overdue",
     AED, replace(READING, self_test_at=NOW - timedelta(days=7)), DECLARATION, NOW,
     Readiness(READY)),
    ("a pass without a time counts from the report",
     AED, replace(READING, self_test_at=None), DECLARATION, NOW,
     Readiness(READY)),
    ("a declaration exactly twelve calendar months old has expired",
     AED, READING, Declaration(NOW - relativedelta(months=12)), NOW,
     Readiness(NOT_READY, ("declaration_expired",))),
    ("a declaration one second short of twelve calendar months is valid",
     AED, READING, Declaration(NOW - relativedelta(months=12) + ONE_SECOND), NOW,
     Readiness(READY, (), ("declaration_expiring_soon",))),
    ("a declaration on a leap day is valid until a second before 28 February",
     AED, healthy_reading_at(datetime(2025, 2, 28, 9, 59, 59, tzinfo=UTC)),
     Declaration(datetime(2024, 2, 29, 10, 0, tzinfo=UTC)),
     datetime(2025, 2, 28, 9, 59, 59, tzinfo=UTC),
     Readiness(READY, (), ("declaration_expiring_soon",))),
    ("a declaration on a leap day expires on 28 February of the next year",
     AED, healthy_reading_at(datetime(2025, 2, 28, 10, 0, tzinfo=UTC)),
     Declaration(datetime(2024, 2, 29, 10, 0, tzinfo=UTC)),
     datetime(2025, 2, 28, 10, 0, tzinfo=UTC),
     Readiness(NOT_READY, ("declaration_expired",))),
    ("an aed without cabinet, freshly declared and with known pads, is only unverified",
     replace(AED, has_cabinet=False), None, DECLARATION, NOW,
     Readiness(UNVERIFIED, ("no_cabinet_agent",))),
    ("an aed without cabinet uses the registry's pads expiry",
     replace(AED, has_cabinet=False, pads_expiry=TODAY - timedelta(days=1)), None,
     DECLARATION, NOW, Readiness(NOT_READY, ("pads_expired", "no_cabinet_agent"))),
    ("the cabinet's pads expiry overrides an expired one in the registry",
     replace(AED, pads_expiry=TODAY - timedelta(days=100)),
     replace(READING, pads_expiry=TODAY + timedelta(days=400)), DECLARATION, NOW,
     Readiness(READY)),
    ("the cabinet's expired pads override a valid expiry in the registry",
     replace(AED, pads_expiry=TODAY + timedelta(days=400)),
     replace(READING, pads_expiry=TODAY - timedelta(days=1)), DECLARATION, NOW,
     Readiness(NOT_READY, ("pads_expired",))),
    ("the cabinet's pads expiry makes an unknown registry expiry known",
     replace(AED, pads_expiry=None), READING, DECLARATION, NOW, Readiness(READY)),
    ("the cabinet's battery expiry overrides the registry's",
     replace(AED, battery_expiry=TODAY - timedelta(days=1)),
     replace(READING, battery_expiry=TODAY + timedelta(days=400)), DECLARATION, NOW,
     Readiness(READY)),
]


@pytest.mark.parametrize(
    ("aed", "reading", "declaration", "now", "expected"),
    [edge[1:] for edge in EDGES],
    ids=[edge[0] for edge in EDGES],
)
def test_readiness_at_the_edges_of_each_rule(
    aed: AedFacts,
    reading: CabinetReading | None,
    declaration: Declaration | None,
    now: datetime,
    expected: Readiness,
) -> None:
    assert evaluate(aed, reading, declaration, now) == expected


def test_policy_thresholds_are_taken_from_the_policy() -> None:
    strict = ReadinessPolicy(battery_low_pct=95, telemetry_stale_after_minutes=2,
                             door_open_grace_minutes=0, declaration_valid_months=1)
    result = evaluate(
        reading=replace(READING, door_open=True, door_open_since=NOW - ONE_SECOND),
        declaration=Declaration(NOW - timedelta(days=45)),
        policy=strict,
    )
    assert result == Readiness(
        NOT_READY, ("door_open", "battery_low", "declaration_expired", "telemetry_stale"))


# --- Properties over arbitrary inputs --------------------------------------------------------

MINUTE = timedelta(minutes=1)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))
dates = st.dates(min_value=date(2019, 1, 1), max_value=date(2037, 12, 31))
policies = st.builds(
    ReadinessPolicy,
    battery_low_pct=st.integers(0, 100),
    expiry_warning_days=st.integers(0, 90),
    self_test_max_age_days=st.integers(1, 31),
    door_open_grace_minutes=st.integers(0, 30),
    temperature_min_c=st.floats(-20, 10),
    temperature_max_c=st.floats(30, 60),
    telemetry_stale_after_minutes=st.integers(1, 180),
    declaration_valid_months=st.integers(1, 24),
)
aeds = st.builds(
    AedFacts,
    has_cabinet=st.booleans(),
    out_of_service=st.booleans(),
    in_use=st.booleans(),
    pads_expiry=st.none() | dates,
    battery_expiry=st.none() | dates,
)


def before(now: datetime, most: timedelta) -> st.SearchStrategy[datetime]:
    """A moment up to `most` before `now`, or a little after it (a cabinet clock running fast)."""
    return st.timedeltas(min_value=-10 * MINUTE, max_value=most).map(lambda ago: now - ago)


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[AedFacts, CabinetReading | None, Declaration | None, datetime, ReadinessPolicy]:
    now = draw(moments)
    reading = draw(st.none() | st.builds(
        CabinetReading,
        reported_at=before(now, timedelta(hours=6)),
        online=st.none() | st.booleans(),
        battery_pct=st.none() | st.integers(0, 100),
        battery_expiry=st.none() | dates,
        pads_expiry=st.none() | dates,
        self_test=st.sampled_from([None, "pass", "fail", "running", "unknown"]),
        self_test_at=st.none() | before(now, timedelta(days=30)),
        door_open=st.none() | st.booleans(),
        door_open_since=st.none() | before(now, timedelta(hours=1)),
        aed_present=st.none() | st.booleans(),
        temperature_c=st.none() | st.floats(-40, 90),
        power=st.sampled_from([None, "mains", "battery"]),
        source_fault=st.none() | st.sampled_from(["", "modbus timeout", "serial: no reply"]),
    ))
    declaration = draw(st.none() | st.builds(Declaration, before(now, timedelta(days=800))))
    return draw(aeds), reading, declaration, now, draw(policies)


Situation = tuple[AedFacts, CabinetReading | None, Declaration | None, datetime, ReadinessPolicy]


@settings(max_examples=150, deadline=None)
@given(situations())
def test_an_aed_with_any_blocking_reason_is_never_ready(situation: Situation) -> None:
    result = evaluate_readiness(*situation)
    if any(REASONS[code][0] is Severity.BLOCKING for code in result.reasons):
        assert result.state is NOT_READY


@settings(max_examples=150, deadline=None)
@given(situations())
def test_an_aed_with_stale_telemetry_is_never_ready(situation: Situation) -> None:
    aed, reading, _, now, policy = situation
    result = evaluate_readiness(*situation)
    stale_after = timedelta(minutes=policy.telemetry_stale_after_minutes)
    if aed.has_cabinet and reading is not None and (
            reading.online is False or now - reading.reported_at > stale_after):
        assert "telemetry_stale" in result.reasons
        assert result.state is not READY


@settings(max_examples=150, deadline=None)
@given(situations())
def test_an_aed_without_cabinet_is_never_ready(situation: Situation) -> None:
    aed, *_ = situation
    result = evaluate_readiness(*situation)
    if not aed.has_cabinet:
        assert "no_cabinet_agent" in result.reasons
        assert result.state is not READY


@settings(max_examples=150, deadline=None)
@given(situations())
def test_the_state_is_the_state_of_the_reasons(situation: Situation) -> None:
    result = evaluate_readiness(*situation)
    assert result.state is state_for(set(result.reasons))
    assert result.is_ready == (result.reasons == ())


@settings(max_examples=150, deadline=None)
@given(situations())
def test_reasons_and_warnings_are_known_unique_and_most_urgent_first(
        situation: Situation) -> None:
    result = evaluate_readiness(*situation)
    order = list(REASONS)
    warning_order = list(WARNINGS)
    assert set(result.reasons) <= set(REASONS)
    assert set(result.warnings) <= set(WARNINGS)
    assert list(result.reasons) == sorted(set(result.reasons), key=order.index)
    assert list(result.warnings) == sorted(set(result.warnings), key=warning_order.index)


@settings(max_examples=100, deadline=None)
@given(situations())
def test_readiness_depends_on_nothing_but_its_inputs(situation: Situation) -> None:
    assert evaluate_readiness(*situation) == evaluate_readiness(*situation)

