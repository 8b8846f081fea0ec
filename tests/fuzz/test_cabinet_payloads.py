"""MQTT payloads between cabinets and the fleet: valid ones made hostile one member at a time.

The fleet validates what cabinets publish (`fleet.wire.parse_cabinet_message`, which raises
`PayloadRejected`); the agent validates the fleet's acks and commands (`device_agents.payloads`,
which raise `ValueError` and `CommandError`).
"""

from __future__ import annotations

import contextlib
import json
import math
import string
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agents import payloads
from device_agents.errors import CommandError
from fleet.wire import (
    REJECTION_REASONS,
    EventMessage,
    PayloadRejected,
    StatusMessage,
    TelemetryMessage,
    parse_cabinet_message,
    topic_device,
)

from .hostile import (
    MEMORY_SLACK,
    any_text,
    fuzzing,
    member_values,
    memory_growth,
    mutated_bytes,
    nested_json,
    nesting_depths,
    random_variants,
    with_raw_member,
)

device_ids = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=64)
times = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda moment: moment.isoformat().replace("+00:00", "Z"))
iso_dates = st.dates(date(2000, 1, 1), date(2100, 1, 1)).map(date.isoformat)
short_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)

TELEMETRY_FIELDS = {
    "battery_pct": st.integers(0, 100), "battery_expiry": iso_dates, "pads_expiry": iso_dates,
    "self_test": st.sampled_from(["pass", "fail", "unknown"]), "self_test_ts": times,
    "door_open": st.booleans(), "aed_present": st.booleans(),
    "temperature_c": st.floats(-40, 85) | st.integers(-40, 85), "heater_on": st.booleans(),
    "power": st.sampled_from(["mains", "battery"]), "source_fault": short_text,
}
EVENT_TYPES = sorted(payloads.EVENT_TYPES)


def documents(device_id: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(topic leaf, document) of a valid contract v1 message of `device_id`."""
    common = {"v": st.just(1), "device_id": st.just(device_id), "ts": times}
    sequenced = {**common, "seq": st.integers(1, 2**63 - 1)}
    telemetry = st.fixed_dictionaries(sequenced, optional=TELEMETRY_FIELDS)
    event = st.fixed_dictionaries(
        {**sequenced, "type": st.sampled_from(EVENT_TYPES)},
        optional={"detail": short_text, "cmd_id": device_ids})
    status = st.fixed_dictionaries({**common, "state": st.sampled_from(["online", "offline"])})
    return st.one_of(st.tuples(st.just("telemetry"), telemetry), st.tuples(st.just("event"), event),
                     st.tuples(st.just("status"), status))


Message = tuple[str, tuple[str, dict[str, Any]]]  # device id, (topic leaf, document)
messages = device_ids.flatmap(
    lambda device_id: st.tuples(st.just(device_id), documents(device_id)))
# The contract's members, and unknown ones (ignored, for forward compatibility).
MEMBER_NAMES = sorted({"v", "device_id", "seq", "ts", "type", "detail", "cmd_id", "state",
                       *TELEMETRY_FIELDS, "firmware", "V", "ts "})


def parsed_or_rejected(topic: str, payload: bytes) -> Any:
    """The message, or None when rejected with a documented reason; nothing else escapes."""
    try:
        return parse_cabinet_message(topic, payload)
    except PayloadRejected as rejected:
        assert rejected.code in REJECTION_REASONS
        assert str(rejected)
        return None


def assert_sound(message: Any, topic: str) -> None:
    """An accepted message is typed, within the contract's ranges, and from the topic's device."""
    assert isinstance(message, TelemetryMessage | EventMessage | StatusMessage)
    assert message.device_id == topic_device(topic)
    assert message.ts.utcoffset() == timedelta(0)
    if isinstance(message, TelemetryMessage | EventMessage):
        assert 1 <= message.seq <= 2**63 - 1
    if isinstance(message, TelemetryMessage):
        assert message.battery_pct is None or 0 <= message.battery_pct <= 100
        assert message.temperature_c is None or (
            math.isfinite(message.temperature_c) and -40 <= message.temperature_c <= 85)
        assert message.self_test_ts is None or message.self_test_ts.utcoffset() == timedelta(0)
        assert message.source_fault is None or "\x00" not in message.source_fault


@fuzzing(ci_examples=200)
@given(message=messages)
def test_every_valid_contract_message_is_accepted(message: Message) -> None:
    # The generator the hostile tests start from makes valid messages only.
    device_id, (leaf, document) = message
    topic = f"aed/{device_id}/{leaf}"
    assert_sound(parse_cabinet_message(topic, json.dumps(document).encode()), topic)


@fuzzing(ci_examples=250)
@given(message=messages, member=st.sampled_from(MEMBER_NAMES), value=member_values)
def test_a_valid_payload_with_one_member_made_hostile_is_a_message_or_a_rejection(
        message: Message, member: str, value: Any) -> None:
    device_id, (leaf, document) = message
    topic = f"aed/{device_id}/{leaf}"
    accepted = parsed_or_rejected(topic, json.dumps({**document, member: value}).encode())
    if accepted is not None:
        assert_sound(accepted, topic)


@fuzzing(ci_examples=300)
@given(message=messages, member=st.sampled_from(MEMBER_NAMES), depth=nesting_depths,
       opener=st.sampled_from("[{"))
def test_a_member_nested_at_any_depth_is_a_message_or_a_rejection(
        message: Message, member: str, depth: int, opener: str) -> None:
    device_id, (leaf, document) = message
    topic = f"aed/{device_id}/{leaf}"
    accepted = parsed_or_rejected(topic, with_raw_member(document, member,
                                                         nested_json(depth, opener)))
    if accepted is not None:
        assert_sound(accepted, topic)


@fuzzing(ci_examples=250)
@given(data=st.data(), message=messages)
def test_byte_level_mutations_of_a_valid_payload_are_a_message_or_a_rejection(
        data: st.DataObject, message: Message) -> None:
    device_id, (leaf, document) = message
    topic = f"aed/{device_id}/{leaf}"
    payload = data.draw(mutated_bytes(json.dumps(document).encode()), label="payload")
    accepted = parsed_or_rejected(topic, payload)
    if accepted is not None:
        assert_sound(accepted, topic)


@fuzzing(ci_examples=300)
@given(data=st.data(), message=messages)
def test_a_valid_payload_on_any_topic_is_applied_only_to_the_topics_own_device(
        data: st.DataObject, message: Message) -> None:
    device_id, (_, document) = message
    topic = data.draw(st.one_of(
        any_text,
        st.from_regex(r"[^/]{0,5}/[^/]{0,70}/(telemetry|event|status|ack)", fullmatch=True),
        st.builds(f"{{}}/{device_id}/{{}}".format, any_text,
                  st.sampled_from(["telemetry", "event", "status", "ack", "cmd", ""]))),
        label="topic")
    accepted = parsed_or_rejected(topic, json.dumps(document).encode())
    if accepted is not None:
        assert_sound(accepted, topic)
        assert topic.rsplit("/", 1)[1] in ("telemetry", "event", "status")


# --- what the agent takes from the fleet --------------------------------------------------------

acks = st.fixed_dictionaries({"v": st.just(1), "seq": st.integers(0, 2**63 - 1)})
commands = st.fixed_dictionaries(
    {"v": st.just(1), "cmd_id": device_ids, "cmd": st.sampled_from(payloads.COMMANDS)},
    optional={"valid_s": st.integers(1, payloads.MAX_UNLOCK_S)})


def ack_or_value_error(payload: bytes) -> int | None:
    try:
        return payloads.parse_ack(payload)
    except ValueError:
        return None


def command_or_command_error(payload: bytes) -> payloads.Command | None:
    try:
        return payloads.parse_command(payload)
    except CommandError:
        return None


@fuzzing(ci_examples=300)
@given(data=st.data(), document=acks | commands,
       member=st.sampled_from(["v", "seq", "cmd_id", "cmd", "valid_s", "extra"]),
       value=member_values)
def test_a_hostile_ack_or_command_is_parsed_or_refused_with_the_agents_error_types(
        data: st.DataObject, document: dict[str, Any], member: str, value: Any) -> None:
    payload = data.draw(st.one_of(
        st.just(json.dumps({**document, member: value}).encode()),
        mutated_bytes(json.dumps(document).encode()),
        nesting_depths.map(lambda depth: with_raw_member(document, member, nested_json(depth)))),
        label="payload")
    seq = ack_or_value_error(payload)
    assert seq is None or (type(seq) is int and seq >= 0)
    command = command_or_command_error(payload)
    if command is not None:
        assert payloads.DEVICE_ID_RE.fullmatch(command.cmd_id)
        assert command.cmd in payloads.COMMANDS
        assert (command.valid_s is not None) == (command.cmd == "unlock")
        assert command.valid_s is None or 1 <= command.valid_s <= payloads.MAX_UNLOCK_S


# --- known bugs ---------------------------------------------------------------------------------

TELEMETRY = b'{"v":1,"device_id":"cab-1","seq":3,"ts":"2026-11-27T12:00:00Z"'


def test_a_whole_number_temperature_beyond_a_floats_range_is_rejected() -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message("aed/cab-1/telemetry", TELEMETRY + b',"temperature_c":1'
                              + b"0" * 309 + b"}")
    assert rejected.value.code == "out_of_range"


@pytest.mark.parametrize(("topic", "payload"), [
    ("aed/cab-1/status", b'{"v":1,"device_id":"cab-1","state":"online","ts":"\\ud800"}'),
    ("aed/cab-1/telemetry", TELEMETRY + b',"pads_expiry":"\\udfff"}'),
], ids=["ts", "pads_expiry"])
def test_a_time_or_date_with_a_lone_surrogate_is_rejected(topic: str, payload: bytes) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        parse_cabinet_message(topic, payload)
    assert rejected.value.code == "not_json"


def test_an_ack_nested_deeper_than_the_parser_goes_raises_value_error() -> None:
    with pytest.raises(ValueError):
        payloads.parse_ack(b"[" * 2000 + b"]" * 2000)


def test_a_command_nested_deeper_than_the_parser_goes_raises_command_error() -> None:
    with pytest.raises(CommandError):
        payloads.parse_command(b'{"v":1,"cmd_id":"c-1","cmd":"ping","x":' + b"[" * 2000
                               + b"]" * 2000 + b"}")


# --- memory -------------------------------------------------------------------------------------

def test_payload_validation_keeps_no_memory_per_hostile_payload() -> None:
    seeds = [TELEMETRY + b',"battery_pct":87,"temperature_c":12.5,"source_fault":"x"}',
             b'{"v":1,"device_id":"cab-1","seq":4,"ts":"2026-11-27T12:00:00Z","type":"tamper"}',
             b'{"v":1,"cmd_id":"c-1","cmd":"unlock","valid_s":900}', b'{"v":1,"seq":7}']
    hostile = random_variants(seeds, 3000, seed=3)

    def validate_all() -> None:
        for payload in hostile:
            # What is raised is the other tests' business; here only what stays behind counts.
            with contextlib.suppress(Exception):
                parse_cabinet_message("aed/cab-1/telemetry", payload)
            with contextlib.suppress(Exception):
                payloads.parse_command(payload)
            with contextlib.suppress(Exception):
                payloads.parse_ack(payload)

    assert memory_growth(validate_all) < MEMORY_SLACK
