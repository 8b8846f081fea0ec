"""Which events a change between two controller readings means: a table of transitions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agents.changes import TemperatureLimits, transition_events
from device_agents.payloads import EVENT_TYPES
from device_agents.reading import ControllerReading

LIMITS = TemperatureLimits(low_c=0.0, high_c=50.0)
# A cabinet at rest: door shut, AED in, passed its self-test, on mains, 12 °C.
REST = ControllerReading(
    battery_pct=90, door_open=False, aed_present=True, temperature_c=12.0, self_test="pass",
    heater_on=False, power="mains")


def at_rest(**changes: object) -> ControllerReading:
    return replace(REST, **changes)


def types(previous: ControllerReading | None, current: ControllerReading) -> list[str]:
    return [event_type for event_type, _ in transition_events(previous, current, LIMITS)]


TRANSITIONS: list[tuple[str, ControllerReading, ControllerReading, list[str]]] = [
    ("nothing changes", REST, REST, []),
    ("battery and heater changes are telemetry only", REST,
     at_rest(battery_pct=40, heater_on=True), []),
    ("door opens", REST, at_rest(door_open=True), ["door_opened"]),
    ("door closes", at_rest(door_open=True), REST, ["door_closed"]),
    ("door stays open", at_rest(door_open=True), at_rest(door_open=True), []),
    ("AED removed", at_rest(door_open=True), at_rest(door_open=True, aed_present=False),
     ["aed_removed"]),
    ("AED returned", at_rest(aed_present=False), REST, ["aed_returned"]),
    ("door opens and AED taken in one reading", REST, at_rest(door_open=True, aed_present=False),
     ["door_opened", "aed_removed"]),
    ("AED returned and door closed in one reading", at_rest(door_open=True, aed_present=False),
     REST, ["door_closed", "aed_returned"]),
    ("self-test fails", REST, at_rest(self_test="fail"), ["self_test_failed"]),
    ("self-test fails from unknown", at_rest(self_test="unknown"), at_rest(self_test="fail"),
     ["self_test_failed"]),
    ("self-test stays failed", at_rest(self_test="fail"), at_rest(self_test="fail"), []),
    ("self-test passes again", at_rest(self_test="fail"), REST, []),
    ("power lost", REST, at_rest(power="battery"), ["power_lost"]),
    ("power restored", at_rest(power="battery"), REST, ["power_restored"]),
    ("power stays on battery", at_rest(power="battery"), at_rest(power="battery"), []),
    ("too cold", REST, at_rest(temperature_c=-0.1), ["temperature_alarm"]),
    ("too hot", REST, at_rest(temperature_c=50.1), ["temperature_alarm"]),
    ("at the low limit", REST, at_rest(temperature_c=0.0), []),
    ("at the high limit", REST, at_rest(temperature_c=50.0), []),
    ("stays too cold", at_rest(temperature_c=-5.0), at_rest(temperature_c=-8.0), []),
    ("back in range", at_rest(temperature_c=-5.0), REST, []),
    ("temperature unknown", REST, at_rest(temperature_c=None), []),
    ("door unknown", at_rest(door_open=True), at_rest(door_open=None), []),
    ("everything at once", REST,
     at_rest(door_open=True, aed_present=False, self_test="fail", power="battery",
             temperature_c=60.0),
     ["door_opened", "aed_removed", "self_test_failed", "power_lost", "temperature_alarm"]),
]


@pytest.mark.parametrize(("previous", "current", "expected"),
                         [(p, c, e) for _, p, c, e in TRANSITIONS],
                         ids=[name for name, _, _, _ in TRANSITIONS])
def test_each_transition_yields_its_events_in_order(
        previous: ControllerReading, current: ControllerReading, expected: list[str]) -> None:
    assert types(previous, current) == expected


def test_a_temperature_alarm_is_raised_once_while_out_of_range_and_again_after_return() -> None:
    temperatures = [12.0, -1.0, -3.0, -2.0, 4.0, 55.0, 60.0, 20.0, 51.0]
    alarms = []
    previous: ControllerReading | None = None
    for temperature in temperatures:
        current = at_rest(temperature_c=temperature)
        alarms.append(types(previous, current).count("temperature_alarm"))
        previous = current
    assert alarms == [0, 1, 0, 0, 0, 1, 0, 0, 1]


def test_the_temperature_alarm_detail_names_the_temperature_and_the_limits() -> None:
    assert transition_events(REST, at_rest(temperature_c=-2.5), LIMITS) == [
        ("temperature_alarm", "-2.5 °C outside 0..50 °C")]


def test_temperature_limits_are_configurable() -> None:
    warm_room = TemperatureLimits(low_c=5.0, high_c=35.0)
    assert transition_events(REST, at_rest(temperature_c=4.0), warm_room) == [
        ("temperature_alarm", "4 °C outside 5..35 °C")]
    assert transition_events(REST, at_rest(temperature_c=40.0), LIMITS) == []


FIRST_READINGS: list[tuple[str, ControllerReading, list[str]]] = [
    ("a cabinet at rest", REST, []),
    ("door open", at_rest(door_open=True), ["door_opened"]),
    ("door closed", at_rest(door_open=False), []),
    ("AED present", at_rest(aed_present=True), []),
    ("on mains", at_rest(power="mains"), []),
    ("passed self-test", at_rest(self_test="pass"), []),
    ("nothing known", ControllerReading(), []),
    ("AED absent", at_rest(aed_present=False), ["aed_removed"]),
    ("on battery", at_rest(power="battery"), ["power_lost"]),
    ("failed self-test", at_rest(self_test="fail"), ["self_test_failed"]),
    ("too cold", at_rest(temperature_c=-1.0), ["temperature_alarm"]),
]


@pytest.mark.parametrize(("current", "expected"), [(c, e) for _, c, e in FIRST_READINGS],
                         ids=[name for name, _, _ in FIRST_READINGS])
def test_the_first_reading_reports_only_states_that_need_attention(
        current: ControllerReading, expected: list[str]) -> None:
    assert types(None, current) == expected


readings = st.builds(
    ControllerReading,
    door_open=st.none() | st.booleans(),
    aed_present=st.none() | st.booleans(),
    temperature_c=st.none() | st.integers(-400, 850).map(lambda tenths: tenths / 10),
    self_test=st.none() | st.sampled_from(["pass", "fail", "unknown"]),
    power=st.none() | st.sampled_from(["mains", "battery"]),
)


@given(reading=readings)
def test_a_reading_identical_to_the_previous_one_yields_no_event(
        reading: ControllerReading) -> None:
    assert transition_events(reading, reading, LIMITS) == []


@given(previous=st.none() | readings, current=readings)
def test_every_event_is_a_contract_event_type_and_appears_at_most_once(
        previous: ControllerReading | None, current: ControllerReading) -> None:
    found = types(previous, current)
    assert set(found) <= EVENT_TYPES
    assert len(found) == len(set(found))
    assert not {"door_opened", "door_closed"} <= set(found)
    assert not {"aed_removed", "aed_returned"} <= set(found)
    assert not {"power_lost", "power_restored"} <= set(found)
