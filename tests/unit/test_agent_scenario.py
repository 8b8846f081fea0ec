"""Simulator scenarios: every shipped file loads; state over time; ramps, loops, bad files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agents.errors import AgentError
from device_agents.reading import ControllerReading
from device_agents.simulators.scenario import Scenario, load_scenario, state_at

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))
BATTERY_DRAIN = load_scenario(SCENARIOS / "battery_drain.toml")
DOOR_AND_REMOVAL = load_scenario(SCENARIOS / "door_and_removal.toml")
FAULTS = load_scenario(SCENARIOS / "faults.toml")
HEALTHY = load_scenario(SCENARIOS / "healthy.toml")


def test_the_four_documented_scenarios_are_shipped() -> None:
    assert {path.stem for path in SHIPPED} >= {
        "battery_drain", "door_and_removal", "faults", "healthy"}


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_every_shipped_scenario_loads_and_gives_a_full_reading_throughout(path: Path) -> None:
    scenario = load_scenario(path)
    end = scenario.duration_s or max([s.at_s for s in scenario.steps] + [0]) + 60
    for elapsed in range(0, int(end) + 1, 5):
        reading = state_at(scenario, elapsed).reading
        assert None not in (reading.battery_pct, reading.door_open, reading.aed_present,
                            reading.temperature_c, reading.self_test, reading.power)


def test_the_initial_state_holds_at_time_zero() -> None:
    state = state_at(HEALTHY, 0)
    assert state.reading == ControllerReading(
        battery_pct=94, pads_expiry=date(2027, 9, 1), door_open=False, aed_present=True,
        temperature_c=14.5, self_test="pass", heater_on=False, power="mains")
    assert not state.silent and not state.noisy


@given(elapsed=st.floats(0, 1e7))
def test_a_scenario_without_steps_or_ramps_never_changes(elapsed: float) -> None:
    assert state_at(HEALTHY, elapsed) == state_at(HEALTHY, 0)


# --- steps --------------------------------------------------------------------------------------

DOOR_TIMELINE = [
    (0, False, True), (9.9, False, True), (10, True, True), (13, True, True), (14, True, False),
    (20, False, False), (79, False, False), (80, True, True), (90, False, True),
    (119, False, True)]


@pytest.mark.parametrize(("elapsed", "door_open", "aed_present"), DOOR_TIMELINE)
def test_steps_apply_from_their_second_on(
        elapsed: float, door_open: bool, aed_present: bool) -> None:
    reading = state_at(DOOR_AND_REMOVAL, elapsed).reading
    assert (reading.door_open, reading.aed_present) == (door_open, aed_present)


@pytest.mark.parametrize(("elapsed", "silent", "noisy"), [
    (39, False, False), (40, True, False), (69.9, True, False), (70, False, False),
    (79, False, False), (80, False, True), (119.9, False, True), (120, False, False),
    (179, False, False)])
def test_silent_and_noise_windows_last_their_seconds(
        elapsed: float, silent: bool, noisy: bool) -> None:
    state = state_at(FAULTS, elapsed)
    assert (state.silent, state.noisy) == (silent, noisy)


def test_a_noise_step_also_sets_its_fields() -> None:
    reading = state_at(FAULTS, 85).reading
    assert (reading.power, reading.temperature_c, reading.self_test) == ("mains", 5.0, "fail")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


INITIAL = """
[initial]
battery_pct = 80
door_open = false
temperature_c = 10.0
"""


def test_steps_apply_in_time_order_whatever_their_order_in_the_file(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, 'name = "shuffled"\n' + INITIAL + """
[[steps]]
at_s = 30
set = { door_open = false, temperature_c = 3.0 }

[[steps]]
at_s = 10
set = { door_open = true, temperature_c = 1.0 }

[[steps]]
at_s = 20
set = { temperature_c = 2.0 }
"""))
    timeline = [(t, state_at(scenario, t).reading) for t in (5, 10, 25, 30)]
    assert [(t, r.door_open, r.temperature_c) for t, r in timeline] == [
        (5, False, 10.0), (10, True, 1.0), (25, True, 2.0), (30, False, 3.0)]


def test_pads_expiry_may_be_an_iso_string_or_a_toml_date(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, 'name = "dates"\n' + INITIAL +
                                   'pads_expiry = 2027-05-01\n[[steps]]\nat_s = 5\n'
                                   'set = { pads_expiry = "2028-01-31" }\n'))
    assert state_at(scenario, 0).reading.pads_expiry == date(2027, 5, 1)
    assert state_at(scenario, 5).reading.pads_expiry == date(2028, 1, 31)


# --- ramps --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("elapsed", "battery"), [
    (0, 40), (30, 39), (60, 38), (600, 20), (1050, 5), (1080, 5), (100_000, 5)])
def test_battery_drains_two_percent_a_minute_down_to_five(elapsed: float, battery: int) -> None:
    assert state_at(BATTERY_DRAIN, elapsed).reading.battery_pct == battery


@given(earlier=st.floats(0, 10_000), later=st.floats(0, 10_000))
def test_a_draining_battery_never_rises_and_never_drops_below_its_floor(
        earlier: float, later: float) -> None:
    earlier, later = sorted((earlier, later))
    before = state_at(BATTERY_DRAIN, earlier).reading.battery_pct
    after = state_at(BATTERY_DRAIN, later).reading.battery_pct
    assert before is not None and after is not None
    assert 5 <= after <= before <= 40


def test_the_battery_drain_scenario_fails_its_self_test_at_600_s() -> None:
    assert state_at(BATTERY_DRAIN, 599).reading.self_test == "pass"
    assert state_at(BATTERY_DRAIN, 600).reading.self_test == "fail"


def test_a_ramp_starts_late_and_stops_at_its_ceiling(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, 'name = "heating up"\n' + INITIAL + """
[[ramps]]
field = "temperature_c"
per_minute = 1.5
start_s = 60
max = 12.0
"""))
    temperatures = [state_at(scenario, t).reading.temperature_c for t in (0, 60, 100, 120, 1000)]
    assert temperatures == [10.0, 10.0, 11.0, 11.5, 12.0]


# --- loops --------------------------------------------------------------------------------------

@given(elapsed=st.integers(0, 119), rounds=st.integers(1, 50))
def test_a_looping_scenario_starts_again_after_its_duration(elapsed: int, rounds: int) -> None:
    assert state_at(DOOR_AND_REMOVAL, elapsed + 120 * rounds, loop=True) == \
        state_at(DOOR_AND_REMOVAL, elapsed)


def test_without_loop_a_scenario_stays_in_its_final_state() -> None:
    assert state_at(DOOR_AND_REMOVAL, 130) == state_at(DOOR_AND_REMOVAL, 119)
    assert state_at(DOOR_AND_REMOVAL, 130, loop=True).reading.door_open is True


def test_loop_without_a_duration_plays_the_scenario_once() -> None:
    assert state_at(BATTERY_DRAIN, 5000, loop=True) == state_at(BATTERY_DRAIN, 5000)


# --- invalid scenarios --------------------------------------------------------------------------

INVALID: list[tuple[str, str]] = [
    ("unknown field in initial", 'name = "x"\n[initial]\nbatery_pct = 80\n'),
    ("unknown field in a step's set", 'name = "x"\n' + INITIAL +
     '[[steps]]\nat_s = 10\nset = { dor_open = true }\n'),
    ("impossible date in initial", 'name = "x"\n' + INITIAL + 'pads_expiry = "2027-13-01"\n'),
    ("impossible date in a step", 'name = "x"\n' + INITIAL +
     '[[steps]]\nat_s = 10\nset = { pads_expiry = "2027-02-30" }\n'),
    ("date that is not ISO", 'name = "x"\n' + INITIAL + 'pads_expiry = "01.05.2027"\n'),
    ("unknown step key", 'name = "x"\n' + INITIAL + '[[steps]]\nat_s = 10\nquiet_s = 5\n'),
    ("negative step time", 'name = "x"\n' + INITIAL + '[[steps]]\nat_s = -1\n'),
    ("negative silence", 'name = "x"\n' + INITIAL + '[[steps]]\nat_s = 1\nsilent_s = -5\n'),
    ("step without a time", 'name = "x"\n' + INITIAL + '[[steps]]\nset = { door_open = true }\n'),
    ("unknown top-level key", 'name = "x"\nspeed = 2\n' + INITIAL),
    ("no initial state", 'name = "x"\n'),
    ("no name", INITIAL),
    ("zero frame interval", 'name = "x"\nframe_interval_s = 0\n' + INITIAL),
    ("ramp without a rate", 'name = "x"\n' + INITIAL + '[[ramps]]\nfield = "battery_pct"\n'),
    ("bad TOML", 'name = "x\n' + INITIAL),
]


@pytest.mark.parametrize("text", [text for _, text in INVALID], ids=[name for name, _ in INVALID])
def test_an_invalid_scenario_raises_agent_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AgentError, match="scenario.toml"):
        load_scenario(path)


def test_a_missing_scenario_file_raises_agent_error(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.toml")


def test_a_ramp_on_an_unknown_field_is_refused_when_loading(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\n' + INITIAL +
                 '[[ramps]]\nfield = "batery_pct"\nper_minute = -1.0\n')
    with pytest.raises(AgentError, match="batery_pct"):
        load_scenario(path)


def test_a_scenario_can_be_built_from_data_without_a_file() -> None:
    scenario = Scenario.model_validate({
        "name": "inline", "initial": {"door_open": False},
        "steps": [{"at_s": 1, "set": {"door_open": True}}]})
    assert state_at(scenario, 1).reading.door_open is True
