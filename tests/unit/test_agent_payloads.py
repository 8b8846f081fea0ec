"""Contract §1 payloads: telemetry, event and status shapes; size limit; ack and cmd parsing."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agents.errors import CommandError
from device_agents.payloads import (
    EVENT_TYPES,
    Command,
    encode,
    event,
    parse_ack,
    parse_command,
    status,
    telemetry,
)
from device_agents.reading import ControllerReading

TS = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
FULL_READING = ControllerReading(
    battery_pct=87, pads_expiry=date(2027, 5, 1), door_open=False, aed_present=True,
    temperature_c=12.5, self_test="pass", heater_on=True, power="mains")


def as_json(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


# --- telemetry ----------------------------------------------------------------------------------

def test_telemetry_of_a_full_reading_carries_every_contract_field() -> None:
    assert as_json(encode(telemetry("cab-17", 5, TS, FULL_READING))) == {
        "v": 1, "device_id": "cab-17", "seq": 5, "ts": "2026-11-27T12:00:00Z",
        "battery_pct": 87, "pads_expiry": "2027-05-01", "door_open": False, "aed_present": True,
        "temperature_c": 12.5, "self_test": "pass", "heater_on": True, "power": "mains"}


def test_telemetry_omits_the_fields_the_reading_does_not_know() -> None:
    reading = ControllerReading(battery_pct=0, door_open=False)
    assert telemetry("cab-17", 6, TS, reading) == {
        "v": 1, "device_id": "cab-17", "seq": 6, "ts": "2026-11-27T12:00:00Z",
        "battery_pct": 0, "door_open": False}


def test_telemetry_without_a_reading_carries_only_the_source_fault() -> None:
    assert telemetry("cab-17", 7, TS, None, source_fault="no frame for 60 s") == {
        "v": 1, "device_id": "cab-17", "seq": 7, "ts": "2026-11-27T12:00:00Z",
        "source_fault": "no frame for 60 s"}


def test_telemetry_without_reading_or_fault_has_only_the_required_fields() -> None:
    assert set(telemetry("cab-17", 8, TS, None)) == {"v", "device_id", "seq", "ts"}


def test_a_long_source_fault_is_cut_to_200_characters() -> None:
    assert len(telemetry("cab-17", 9, TS, None, source_fault="x" * 5000)["source_fault"]) == 200


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2026, 11, 27, 12, 0, tzinfo=UTC), "2026-11-27T12:00:00Z"),
    (datetime(2026, 11, 27, 13, 0, tzinfo=timezone(timedelta(hours=1))), "2026-11-27T12:00:00Z"),
    (datetime(2026, 11, 27, 12, 0, 0, 250_000, tzinfo=UTC), "2026-11-27T12:00:00.250Z"),
    (datetime(2026, 11, 27, 12, 0, 0, 999_999, tzinfo=UTC), "2026-11-27T12:00:00.999Z"),
], ids=["utc", "plus-one-hour", "milliseconds", "microseconds-truncated"])
def test_timestamps_are_rfc3339_utc_with_a_z(moment: datetime, text: str) -> None:
    assert telemetry("cab-17", 1, moment, None)["ts"] == text


@given(moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                           timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                                                      timezone(timedelta(hours=5, minutes=30))])))
def test_every_timestamp_is_rfc3339_utc_and_names_the_same_moment(moment: datetime) -> None:
    text = telemetry("cab-17", 1, moment, None)["ts"]
    assert RFC3339_UTC.match(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert timedelta(0) <= moment - parsed < timedelta(milliseconds=1)


# --- events and status --------------------------------------------------------------------------

def test_an_event_carries_type_detail_and_cmd_id() -> None:
    assert event("cab-17", 10, TS, "cmd_result", detail="unlocked for 900 s", cmd_id="c-1") == {
        "v": 1, "device_id": "cab-17", "seq": 10, "ts": "2026-11-27T12:00:00Z",
        "type": "cmd_result", "detail": "unlocked for 900 s", "cmd_id": "c-1"}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_contract_event_type_makes_an_event_without_optional_fields(
        event_type: str) -> None:
    assert event("cab-17", 11, TS, event_type) == {
        "v": 1, "device_id": "cab-17", "seq": 11, "ts": "2026-11-27T12:00:00Z",
        "type": event_type}


def test_the_event_types_are_exactly_the_contracts() -> None:
    contract = {
        "door_opened", "door_closed", "aed_removed", "aed_returned", "self_test_failed",
        "tamper", "power_lost", "power_restored", "temperature_alarm", "source_fault",
        "source_restored", "cmd_result"}
    assert set(EVENT_TYPES) == contract


@pytest.mark.parametrize("event_type", ["door_open", "DOOR_OPENED", "", "telemetry"])
def test_an_event_type_outside_the_contract_is_refused(event_type: str) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        event("cab-17", 12, TS, event_type)


@pytest.mark.parametrize(("online", "state"), [(True, "online"), (False, "offline")])
def test_status_says_online_or_offline(online: bool, state: str) -> None:
    assert as_json(encode(status("cab-17", online, TS))) == {
        "v": 1, "device_id": "cab-17", "state": state, "ts": "2026-11-27T12:00:00Z"}


# --- size limit ---------------------------------------------------------------------------------

def padded(size: int, char: str = "a") -> dict[str, Any]:
    """A payload whose compact JSON is exactly `size` bytes with one-byte `char`s."""
    return {"x": char * (size - len('{"x":""}'))}


def test_a_payload_of_exactly_4_kib_is_encoded() -> None:
    assert len(encode(padded(4096))) == 4096


def test_a_payload_over_4_kib_is_refused() -> None:
    with pytest.raises(ValueError, match="4097 bytes exceeds 4096"):
        encode(padded(4097))


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    payload = {"x": "é" * 2045}  # 2,053 characters, 4,098 bytes
    with pytest.raises(ValueError, match="exceeds 4096"):
        encode(payload)


def test_encoding_is_compact_utf8_json() -> None:
    assert encode({"detail": "Tür offen", "n": 1}) == '{"detail":"Tür offen","n":1}'.encode()


# --- ack ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "seq"), [
    (b'{"v":1,"seq":0}', 0),
    (b'{"v":1,"seq":42}', 42),
    (b'{"seq":9007199254740993,"v":1}', 9007199254740993),
    (b'{"v":1,"seq":7,"device_id":"cab-17","future":[1,2]}', 7),
], ids=["zero", "plain", "huge", "unknown-fields-ignored"])
def test_a_valid_ack_gives_the_seq_it_covers(data: bytes, seq: int) -> None:
    assert parse_ack(data) == seq


BAD_ACKS: list[tuple[str, bytes]] = [
    ("version 2", b'{"v":2,"seq":1}'),
    ("version 0", b'{"v":0,"seq":1}'),
    ("version as a string", b'{"v":"1","seq":1}'),
    ("no version", b'{"seq":1}'),
    ("negative seq", b'{"v":1,"seq":-1}'),
    ("boolean seq", b'{"v":1,"seq":true}'),
    ("string seq", b'{"v":1,"seq":"3"}'),
    ("fractional seq", b'{"v":1,"seq":1.5}'),
    ("null seq", b'{"v":1,"seq":null}'),
    ("no seq", b'{"v":1}'),
    ("not JSON", b'{"v":1,"seq":'),
    ("not UTF-8", b'\xff\xfe{"v":1,"seq":1}'),
    ("a JSON list", b'[1,1]'),
    ("a JSON number", b'1'),
    ("empty", b""),
    ("over 4 KiB", b'{"v":1,"seq":1,"pad":"' + b"a" * 4096 + b'"}'),
]


@pytest.mark.parametrize("data", [data for _, data in BAD_ACKS],
                         ids=[name for name, _ in BAD_ACKS])
def test_a_malformed_ack_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_ack(data)


def test_an_ack_with_a_boolean_version_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_ack(b'{"v":true,"seq":1}')


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_as_an_ack_raise_nothing_but_value_error(data: bytes) -> None:
    try:
        seq = parse_ack(data)
    except ValueError:
        return
    assert isinstance(seq, int) and seq >= 0


# --- commands -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "command"), [
    (b'{"v":1,"cmd_id":"c-1","cmd":"unlock","valid_s":60}', Command("c-1", "unlock", 60)),
    (b'{"v":1,"cmd_id":"c-2","cmd":"unlock"}', Command("c-2", "unlock", 900)),
    (b'{"v":1,"cmd_id":"c-3","cmd":"unlock","valid_s":null}', Command("c-3", "unlock", 900)),
    (b'{"v":1,"cmd_id":"c-4","cmd":"unlock","valid_s":1}', Command("c-4", "unlock", 1)),
    (b'{"v":1,"cmd_id":"c-5","cmd":"unlock","valid_s":3600}', Command("c-5", "unlock", 3600)),
    (b'{"v":1,"cmd_id":"c-6","cmd":"ping"}', Command("c-6", "ping", None)),
    (b'{"v":1,"cmd_id":"c-7","cmd":"ping","valid_s":99}', Command("c-7", "ping", None)),
    (b'{"v":1,"cmd_id":"c-8","cmd":"self_test"}', Command("c-8", "self_test", None)),
    (b'{"v":1,"cmd_id":"A_z-9","cmd":"ping","by":"ops"}', Command("A_z-9", "ping", None)),
], ids=["unlock-60", "unlock-default-900", "unlock-null-default", "unlock-min", "unlock-max",
        "ping", "ping-ignores-valid_s", "self_test", "unknown-field-ignored"])
def test_a_valid_command_is_parsed(data: bytes, command: Command) -> None:
    assert parse_command(data) == command


def cmd(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


COMMAND_ERRORS: list[tuple[str, bytes, str | None]] = [
    ("unknown command", cmd(v=1, cmd_id="c-1", cmd="reboot"), "c-1"),
    ("no command", cmd(v=1, cmd_id="c-2"), "c-2"),
    ("version 2", cmd(v=2, cmd_id="c-3", cmd="ping"), "c-3"),
    ("no version", cmd(cmd_id="c-4", cmd="ping"), "c-4"),
    ("unlock for 0 s", cmd(v=1, cmd_id="c-5", cmd="unlock", valid_s=0), "c-5"),
    ("unlock for 3601 s", cmd(v=1, cmd_id="c-6", cmd="unlock", valid_s=3601), "c-6"),
    ("unlock for true s", cmd(v=1, cmd_id="c-7", cmd="unlock", valid_s=True), "c-7"),
    ("unlock for 90.5 s", cmd(v=1, cmd_id="c-8", cmd="unlock", valid_s=90.5), "c-8"),
    ("unlock for '900' s", cmd(v=1, cmd_id="c-9", cmd="unlock", valid_s="900"), "c-9"),
    ("malformed JSON", b'{"v":1,"cmd_id":"c-10","cmd":"ping"', None),
    ("not UTF-8", b'\xff{"v":1,"cmd_id":"c-11","cmd":"ping"}', None),
    ("a JSON list", b'[{"v":1,"cmd_id":"c-12","cmd":"ping"}]', None),
    ("over 4 KiB", cmd(v=1, cmd_id="c-13", cmd="ping", pad="a" * 4096), None),
    ("no cmd_id", cmd(v=1, cmd="ping"), None),
    ("empty cmd_id", cmd(v=1, cmd_id="", cmd="ping"), None),
    ("numeric cmd_id", cmd(v=1, cmd_id=14, cmd="ping"), None),
    ("cmd_id with a slash", cmd(v=1, cmd_id="c/15", cmd="ping"), None),
    ("cmd_id of 65 characters", cmd(v=1, cmd_id="c" * 65, cmd="ping"), None),
]


@pytest.mark.parametrize(("data", "cmd_id"), [(data, cmd_id) for _, data, cmd_id in COMMAND_ERRORS],
                         ids=[name for name, _, _ in COMMAND_ERRORS])
def test_a_bad_command_raises_command_error_with_its_cmd_id_when_readable(
        data: bytes, cmd_id: str | None) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(data)
    assert caught.value.cmd_id == cmd_id


def test_the_longest_allowed_cmd_id_is_64_characters() -> None:
    assert parse_command(cmd(v=1, cmd_id="c" * 64, cmd="ping")).cmd_id == "c" * 64


def test_a_command_with_a_boolean_version_is_refused() -> None:
    with pytest.raises(CommandError):
        parse_command(cmd(v=True, cmd_id="c-1", cmd="ping"))


def test_a_cmd_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(cmd(v=1, cmd_id="c-17\n", cmd="ping"))
    assert caught.value.cmd_id is None


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_as_a_command_raise_nothing_but_command_error(data: bytes) -> None:
    try:
        command = parse_command(data)
    except CommandError:
        return
    assert isinstance(command, Command)
