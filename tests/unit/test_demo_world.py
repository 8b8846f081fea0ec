"""The demo's simulated world, piece by piece: places, people, cabinets, phones, calls."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon

from alarm_core.policy import DispatchPolicy
from alarm_core.registry import validate_responder
from device_agents.config import load_agent_config
from fleet.demo.broker import mosquitto_conf
from fleet.demo.cabinets import DemoCabinet, agent_config, busiest_manager, choose_cabinets
from fleet.demo.calls import describe_close, describe_dispatch
from fleet.demo.people import responder_record
from fleet.demo.phones import answer_payload, choose_answer
from fleet.demo.places import area_from_geojson, around, random_place
from fleet.demo.regions import KOELN, NL
from fleet.demo.virtual_fleet import VirtualCabinet, initial_reading

# An L-shaped "municipality": its bounding box holds a corner that is not inside.
L_SHAPE = Polygon([(5.0, 52.0), (5.2, 52.0), (5.2, 52.05), (5.05, 52.05), (5.05, 52.1),
                   (5.0, 52.1)])
TODAY = date(2026, 11, 27)


@given(seed=st.integers(0, 2**32))
def test_a_random_place_lies_inside_the_area_as_lat_lon(seed: int) -> None:
    lat, lon = random_place(L_SHAPE, random.Random(seed))

    assert L_SHAPE.contains(Point(lon, lat))


def test_an_area_read_from_geojson_gives_places_inside_it() -> None:
    area = area_from_geojson(json.dumps(L_SHAPE.__geo_interface__))

    assert all(L_SHAPE.contains(Point(lon, lat))
               for lat, lon in (random_place(area, random.Random(n)) for n in range(50)))


@pytest.mark.parametrize("number", range(1, 40))
def test_every_synthetic_responder_passes_registration(number: int) -> None:
    record = responder_record(number, L_SHAPE, TODAY, random.Random(number))

    checked = validate_responder(record, TODAY, DispatchPolicy())

    assert checked.id == f"demo-r-{number:04d}"
    assert L_SHAPE.contains(Point(checked.home_lon, checked.home_lat))


@pytest.mark.parametrize("region_loaded", [True, False])
def test_a_cologne_responder_speaks_german_and_is_registered_in_cologne_when_it_is_loaded(
        region_loaded: bool) -> None:
    record = responder_record(7, L_SHAPE, TODAY, random.Random(7), KOELN, region_loaded)

    checked = validate_responder(record, TODAY, DispatchPolicy())

    assert (checked.id, checked.language) == ("demo-rk-0007", "de")
    assert checked.region == ("DE-NW-KOELN" if region_loaded else None)
    assert checked.phone is not None and checked.phone.startswith("+49151")


def test_a_dutch_responder_speaks_dutch() -> None:
    record = responder_record(1, L_SHAPE, TODAY, random.Random(1), NL, True)

    assert (record["id"], record["language"], record["region"]) == ("demo-r-0001", "nl", "NL")


METRES_PER_DEGREE_LAT = 111_320.0
PLACES = [(52.01, 5.01), (52.04, 5.15), (52.09, 5.03)]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), radius_m=st.sampled_from([300.0, 600.0, 1_500.0]))
def test_a_place_around_given_places_lies_within_the_radius_of_one_and_inside_the_area(
        seed: int, radius_m: float) -> None:
    near = around(PLACES, radius_m, L_SHAPE)

    lat, lon = random_place(near, random.Random(seed))

    assert L_SHAPE.contains(Point(lon, lat))
    scale_x = METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))
    assert min(math.hypot((lon - p_lon) * scale_x, (lat - p_lat) * METRES_PER_DEGREE_LAT)
               for p_lat, p_lon in PLACES) <= radius_m * 1.01


def test_the_same_seed_gives_the_same_responders() -> None:
    first = [responder_record(n, L_SHAPE, TODAY, random.Random(7)) for n in range(1, 5)]
    again = [responder_record(n, L_SHAPE, TODAY, random.Random(7)) for n in range(1, 5)]

    assert first == again


CABINETS = [("cab-1", "A1", "Beheer Oost"), ("cab-2", "A2", None), ("cab-3", "A3", "Beheer West"),
            ("cab-4", "A4", "Beheer West"), ("cab-5", "A5", "Beheer Oost"),
            ("cab-6", "A6", "Beheer West")]


@pytest.mark.parametrize(("cabinets", "manager"), [
    (CABINETS, "Beheer West"),
    (CABINETS[:2] + CABINETS[2:4], "Beheer West"),
    (CABINETS[:1] + CABINETS[2:3], "Beheer Oost"),  # a tie: the first by name
    (CABINETS[1:2], None),
    ([], None),
])
def test_the_manager_with_most_cabinets_is_chosen(
        cabinets: list[tuple[str, str, str | None]], manager: str | None) -> None:
    assert busiest_manager(cabinets) == manager


def test_connected_cabinets_are_the_managers_first_one_per_line() -> None:
    chosen = choose_cabinets(CABINETS, "Beheer West", Path("scenarios"))

    assert [(c.device_id, c.line, c.scenario.name) for c in chosen] == [
        ("cab-3", "modbus", "demo_healthy.toml"), ("cab-4", "modbus", "demo_door.toml"),
        ("cab-6", "serial", "demo_battery.toml"), ("cab-1", "serial", "demo_pads.toml")]


@pytest.mark.parametrize("source", [
    {"kind": "modbus-tcp", "host": "127.0.0.1", "port": 15020, "register_map": "rcc1",
     "register_map_dir": Path("/opt/aedfleet/config/cabinets")},
    {"kind": "serial", "device": Path("/tmp/aedfleet-demo-x/cab-1.tty")},
])
def test_the_agent_configuration_is_a_valid_agent_file(tmp_path: Path,
                                                       source: dict[str, object]) -> None:
    cabinet = DemoCabinet("cab-1", "A1", "modbus", Path("demo_healthy.toml"))
    path = tmp_path / "agent.toml"
    path.write_text(agent_config(cabinet, "mqtt://127.0.0.1:1884", tmp_path / "s.spool", source))

    config = load_agent_config(path)

    assert (config.device_id, config.mqtt_url, config.spool_path) == (
        "cab-1", "mqtt://127.0.0.1:1884", tmp_path / "s.spool")
    assert config.source.kind == source["kind"]


@pytest.mark.parametrize(("as_root", "has_user_root"), [(True, True), (False, False)])
def test_mosquitto_runs_as_root_only_when_told(as_root: bool, has_user_root: bool) -> None:
    conf = mosquitto_conf(1884, as_root)

    assert "listener 1884 127.0.0.1" in conf.splitlines()
    assert "allow_anonymous true" in conf.splitlines()
    assert ("user root" in conf.splitlines()) == has_user_root


def test_phones_accept_decline_and_ignore_in_about_the_planned_shares() -> None:
    rng = random.Random(3)
    answers = [choose_answer(rng) for _ in range(10_000)]
    accepted = [a for a in answers if a and a[0] == "accept"]
    declined = [a for a in answers if a and a[0] == "decline"]

    assert 3_800 < len(accepted) < 4_200
    assert 2_800 < len(declined) < 3_200
    assert all(0 < delay <= 20 for _, delay in accepted + declined)


def test_a_phone_answer_is_a_contract_response() -> None:
    document = json.loads(answer_payload("inc-1", "accept", datetime(2026, 11, 27, 12, tzinfo=UTC)))

    assert document == {"v": 1, "incident_id": "inc-1", "answer": "accept",
                        "ts": "2026-11-27T12:00:00Z"}


def test_virtual_cabinets_carry_on_from_the_fleets_seq_and_drop_what_is_acked() -> None:
    cabinet = VirtualCabinet("cab-9", initial_reading(random.Random(1), TODAY), seq=41, due=0)
    rng = random.Random(5)
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    for _ in range(5):
        cabinet.heartbeat(rng, now)

    seqs = list(cabinet.unacked)
    assert seqs == list(range(42, cabinet.seq + 1))
    documents = {seq: json.loads(data) for seq, (_, data) in cabinet.unacked.items()}
    assert all(document["seq"] == seq and document["device_id"] == "cab-9"
               for seq, document in documents.items())
    assert sum(1 for leaf, _ in cabinet.unacked.values() if leaf == "telemetry") == 5

    cabinet.acked(seqs[2])

    assert list(cabinet.unacked) == seqs[3:]


def test_most_virtual_cabinets_start_ready() -> None:
    rng = random.Random(2)
    readings = [initial_reading(rng, TODAY) for _ in range(1_000)]
    low = sum(1 for r in readings if r.battery_pct is not None and r.battery_pct < 20)

    assert 20 < low < 70
    assert all(r.pads_expiry is not None and r.pads_expiry > TODAY for r in readings)


INCIDENT = {
    "id": "inc-1", "outcome": "dispatched", "victim": {"lat": 52.1, "lon": 5.1, "address": None},
    "responders": [{"role": "cpr"}, {"role": "cpr"}, {"role": "fetch_aed"}],
    "aeds": [{"id": "A1"}], "expected_first_cpr_s": 61.4, "expected_first_aed_s": None,
    "counts": {"alerted": 3, "waiting": 0, "accepted": 1, "declined": 1, "cancelled": 1}}


def test_a_dispatched_call_is_told_in_one_line() -> None:
    assert describe_dispatch(4, INCIDENT) == (
        "112 call 4 at 52.10000, 5.10000: inc-1: 3 responders alerted (2 CPR, 1 fetching "
        "1 AEDs); expected: first CPR in 61 s")


def test_with_several_centres_a_call_names_its_centre() -> None:
    assert describe_dispatch(5, INCIDENT, "Köln").startswith(
        "112 call 5 (Köln) at 52.10000, 5.10000: inc-1: 3 responders alerted")


def test_a_call_without_responders_says_so() -> None:
    assert describe_dispatch(1, {**INCIDENT, "outcome": "no_responders"}).endswith(
        "inc-1: no responders")


def test_a_closed_call_tells_the_answers() -> None:
    assert describe_close(INCIDENT, 90) == (
        "inc-1 closed after 1.5 min: 1 accepted, 1 declined, 1 stood down")
