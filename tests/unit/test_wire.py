"""Validation of cabinet payloads against contract v1: what the fleet applies, what it rejects."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_agents import payloads
from device_agents.reading import ControllerReading
from fleet.wire import (
    REJECTION_REASONS,
    EventMessage,
    PayloadRejected,
    StatusMessage,
    TelemetryMessage,
    parse_cabinet_message,
)

TOPIC = "aed/cab-1/telemetry"
GOOD: dict[str, Any] = {
    "v": 1, "device_id": "cab-1", "seq": 3, "ts": "2026-11-27T12:00:00Z", "battery_pct": 87,
    "pads_expiry": "2027-05-01", "door_open": False, "aed_present": True, "temperature_c": 12.5,
    "self_test": "pass", "power": "mains",
}


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def test_a_contract_telemetry_payload_is_parsed_into_typed_fields() -> None:
    message = parse_cabinet_message(TOPIC, encode(GOOD))
    assert isinstance(message, TelemetryMessage)
    assert message.ts == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert (message.seq, message.battery_pct, message.pads_expiry) == (3, 87, date(2027, 5, 1))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    message = parse_cabinet_message(TOPIC, encode({**GOOD, "firmware": "2.1", "humidity": 40}))
    assert isinstance(message, TelemetryMessage)


def test_a_whole_number_temperature_is_a_temperature() -> None:
    message = parse_cabinet_message(TOPIC, encode({**GOOD, "temperature_c": 12}))
    assert isinstance(message, TelemetryMessage) and message.temperature_c == 12.0


def test_events_and_status_are_parsed() -> None:
    event = parse_cabinet_message("aed/cab-1/event", encode(
        {"v": 1, "device_id": "cab-1", "seq": 4, "ts": "2026-11-27T12:00:00Z",
         "type": "cmd_result", "detail": "ok: pong", "cmd_id": "c-1"}))
    status = parse_cabinet_message("aed/cab-1/status", encode(
        {"v": 1, "device_id": "cab-1", "state": "offline", "ts": "2026-11-27T12:00:00Z"}))
    assert isinstance(event, EventMessage) and event.cmd_id == "c-1"
    assert isinstance(status, StatusMessage) and status.state == "offline"


@pytest.mark.parametrize(("change", "code"), [
    ({"battery_pct": 101}, "out_of_range"),
    ({"battery_pct": -1}, "out_of_range"),
    ({"battery_pct": "87"}, "wrong_type"),
    ({"battery_pct": True}, "wrong_type"),
    ({"battery_pct": 87.5}, "wrong_type"),
    ({"door_open": 0}, "wrong_type"),
    ({"temperature_c": 85.1}, "out_of_range"),
    ({"temperature_c": -40.1}, "out_of_range"),
    ({"temperature_c": True}, "wrong_type"),
    ({"pads_expiry": "2027-13-01"}, "out_of_range"),
    ({"pads_expiry": 20270501}, "wrong_type"),
    ({"ts": "2026-11-27T12:00:00"}, "out_of_range"),
    ({"ts": "yesterday"}, "out_of_range"),
    ({"seq": 0}, "out_of_range"),
    ({"seq": 1.5}, "wrong_type"),
    ({"seq": "3"}, "wrong_type"),
    ({"self_test": "ok"}, "out_of_range"),
    ({"power": "solar"}, "out_of_range"),
    ({"source_fault": "x" * 201}, "out_of_range"),
    ({"device_id": "cab-2"}, "device_mismatch"),
    ({"device_id": "cab 1"}, "out_of_range"),
    ({"v": 2}, "unsupported_version"),
    ({"v": True}, "unsupported_version"),
    ({"v": "1"}, "unsupported_version"),
], ids=lambda value: json.dumps(value) if isinstance(value, dict) else value)
def test_a_bad_value_is_rejected_with_its_reason(change: dict[str, Any], code: str) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message(TOPIC, encode({**GOOD, **change}))
    assert rejected.value.code == code


@pytest.mark.parametrize("field", ["v", "device_id", "seq", "ts"])
def test_a_missing_required_field_is_rejected(field: str) -> None:
    document = {k: v for k, v in GOOD.items() if k != field}
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message(TOPIC, encode(document))
    assert rejected.value.code in ("missing_field", "unsupported_version")
    assert field in str(rejected.value) or field == "v"


@pytest.mark.parametrize(("topic", "payload", "code"), [
    ("aed/cab-1/ack", encode(GOOD), "bad_topic"),
    ("aed/cab 1/telemetry", encode(GOOD), "bad_topic"),
    ("aed/cab-1/telemetry/x", encode(GOOD), "bad_topic"),
    (TOPIC, b"x" * 4097, "oversize"),
    (TOPIC, b"\xff\xfe", "not_json"),
    (TOPIC, b"{\"v\": 1,", "not_json"),
    (TOPIC, b"[1, 2]", "not_object"),
    ("aed/cab-1/event", encode({**GOOD, "type": "exploded"}), "out_of_range"),
    ("aed/cab-1/event", encode(GOOD), "missing_field"),
    ("aed/cab-1/status", encode({"v": 1, "device_id": "cab-1", "ts": GOOD["ts"],
                                 "state": "asleep"}), "out_of_range"),
])
def test_a_malformed_message_is_rejected_with_its_reason(topic: str, payload: bytes,
                                                         code: str) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message(topic, payload)
    assert rejected.value.code == code
    assert rejected.value.code in REJECTION_REASONS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_either_a_message_or_a_rejection(payload: bytes) -> None:
    try:
        parse_cabinet_message(TOPIC, payload)
    except PayloadRejected as rejected:
        assert rejected.code in REJECTION_REASONS


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GOOD) + ["extra"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       max_size=8))
def test_arbitrary_field_values_never_crash_the_validator(change: dict[str, Any]) -> None:
    try:
        parse_cabinet_message(TOPIC, encode({**GOOD, **change}))
    except PayloadRejected as rejected:
        assert rejected.code in REJECTION_REASONS


readings = st.builds(
    ControllerReading,
    battery_pct=st.none() | st.integers(0, 100),
    pads_expiry=st.none() | st.dates(date(2020, 1, 1), date(2040, 12, 31)),
    door_open=st.none() | st.booleans(),
    aed_present=st.none() | st.booleans(),
    temperature_c=st.none() | st.integers(-400, 850).map(lambda t: t / 10),
    self_test=st.none() | st.sampled_from(["pass", "fail", "unknown"]),
    heater_on=st.none() | st.booleans(),
    power=st.none() | st.sampled_from(["mains", "battery"]))


@settings(max_examples=300, deadline=None)
@given(readings, st.integers(1, 2**40), st.none() | st.text(max_size=300))
def test_whatever_the_agent_sends_the_fleet_accepts(reading: ControllerReading, seq: int,
                                                     fault: str | None) -> None:
    sent = payloads.telemetry("cab-1", seq, datetime(2026, 11, 27, 12, 0, 1, 500, tzinfo=UTC),
                              reading, fault)
    message = parse_cabinet_message(TOPIC, payloads.encode(sent))
    assert isinstance(message, TelemetryMessage)
    assert message.seq == seq and message.battery_pct == reading.battery_pct
    assert message.pads_expiry == reading.pads_expiry


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**40), st.none() | st.text(max_size=600))
def test_whatever_event_detail_the_agent_sends_the_fleet_accepts(seq: int,
                                                                 detail: str | None) -> None:
    sent = payloads.event("cab-1", seq, datetime(2026, 11, 27, 12, 0, 1, tzinfo=UTC), "tamper",
                          detail)
    message = parse_cabinet_message("aed/cab-1/event", payloads.encode(sent))
    assert isinstance(message, EventMessage) and message.seq == seq


def test_a_nul_character_in_a_text_field_is_rejected_as_out_of_range() -> None:
    payload = json.dumps({"v": 1, "device_id": "cab-1", "seq": 3, "ts": "2026-11-27T12:00:00Z",
                          "type": "tamper", "detail": "lid\u0000forced"}).encode()
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message("aed/cab-1/event", payload)
    assert rejected.value.code == "out_of_range" and "NUL" in str(rejected.value)


def test_a_time_that_lies_before_year_one_in_utc_is_rejected_as_out_of_range() -> None:
    payload = json.dumps({"v": 1, "device_id": "cab-1", "seq": 3,
                          "ts": "0001-01-01T00:30:00+01:00"}).encode()
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message(TOPIC, payload)
    assert rejected.value.code == "out_of_range"


def test_json_nested_deeper_than_the_parser_goes_is_rejected_as_not_json() -> None:
    payload = b"[" * 2000 + b"]" * 2000  # under 4 KiB, and too deep for the JSON parser
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message(TOPIC, payload)
    assert rejected.value.code == "not_json"
