"""Alarm core input: responder apps' MQTT answers and locations, the 112 centre's incidents.

Parsing raises `Refused` with a stable code and a 4xx status (`alarm_core.wire`); whatever else
escapes becomes an `apply_failed` dead letter on MQTT and a 500 on HTTP.
"""

from __future__ import annotations

import contextlib
import json
import math
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarm_core.errors import Refused
from alarm_core.policy import BUILT_IN_EXCLUSIONS
from alarm_core.wire import (
    MAX_PAYLOAD,
    REFERENCE,
    SOURCES,
    IncidentRequest,
    LocationReport,
    Position,
    ResponderAnswer,
    decode_json,
    parse_answer,
    parse_incident,
    parse_location,
    parse_position,
)

from .hostile import (
    MEMORY_SLACK,
    fuzzing,
    json_values,
    member_values,
    memory_growth,
    mutated_bytes,
    nested_json,
    nesting_depths,
    random_variants,
    with_raw_member,
)

REFUSAL_CODES = {"invalid_body", "invalid_field", "missing_location", "unknown_exclusion",
                 "invalid_json", "payload_too_large"}
KNOWN = BUILT_IN_EXCLUSIONS

times = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda moment: moment.isoformat().replace("+00:00", "Z"))
incident_ids = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=40)
latitudes, longitudes = st.floats(-90, 90), st.floats(-180, 180)

BODIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "answer": st.fixed_dictionaries(
        {"incident_id": incident_ids, "answer": st.sampled_from(["accept", "decline"])},
        optional={"ts": times}),
    "location": st.fixed_dictionaries(
        {"incident_id": incident_ids, "lat": latitudes, "lon": longitudes, "ts": times}),
    "position": st.fixed_dictionaries({"lat": latitudes, "lon": longitudes, "ts": times}),
    "incident": st.fixed_dictionaries(
        {"reference": st.text(string.ascii_letters + string.digits + "_.:/-", min_size=1,
                              max_size=100),
         "lat": latitudes, "lon": longitudes},
        optional={"address": st.text(min_size=1, max_size=300), "called_at": times,
                  "source": st.sampled_from(SOURCES),
                  "exclusions": st.lists(st.sampled_from(sorted(KNOWN)), max_size=3)}),
}
MEMBER_NAMES = ["incident_id", "answer", "ts", "lat", "lon", "reference", "address", "called_at",
                "source", "exclusions", "extra"]
bodies = st.sampled_from(sorted(BODIES)).flatmap(
    lambda kind: st.tuples(st.just(kind), BODIES[kind]))


def parse(kind: str, body: Any) -> Any:
    """The parser of `kind` applied to `body`."""
    if kind == "incident":
        return parse_incident(body, KNOWN)
    return {"answer": parse_answer, "location": parse_location, "position": parse_position}[
        kind](body)


def parsed_or_refused(kind: str, body: Any) -> Any:
    """What the parser makes of `body`, or None when it refuses it with a 4xx and a stable code."""
    try:
        return parse(kind, body)
    except Refused as refusal:
        assert refusal.code in REFUSAL_CODES
        assert 400 <= refusal.status < 500 and refusal.message
        return None


def assert_sound(parsed: Any) -> None:
    """A parsed request has its contract's types and ranges, its times aware and in UTC."""
    assert isinstance(parsed, IncidentRequest | ResponderAnswer | LocationReport | Position)
    if isinstance(parsed, LocationReport | Position | IncidentRequest) and parsed.lat is not None:
        assert parsed.lon is not None
        assert math.isfinite(parsed.lat) and -90 <= parsed.lat <= 90
        assert math.isfinite(parsed.lon) and -180 <= parsed.lon <= 180
    moment = parsed.called_at if isinstance(parsed, IncidentRequest) else parsed.ts
    assert moment is None or moment.utcoffset() == timedelta(0)
    if isinstance(parsed, IncidentRequest):
        assert REFERENCE.fullmatch(parsed.reference)
        assert parsed.lat is not None or parsed.address
        assert set(parsed.exclusions) <= set(KNOWN) and parsed.source in SOURCES
        assert len(parsed.fingerprint()) == 64
    if isinstance(parsed, ResponderAnswer | LocationReport):
        assert 0 < len(parsed.incident_id) <= 40


@fuzzing(ci_examples=200)
@given(body=bodies)
def test_every_valid_body_is_parsed(body: tuple[str, dict[str, Any]]) -> None:
    # The generator the hostile tests start from makes valid bodies only.
    kind, document = body
    assert_sound(parse(kind, document))


@fuzzing(ci_examples=250)
@given(body=bodies, member=st.sampled_from(MEMBER_NAMES), value=member_values)
def test_a_valid_body_with_one_member_made_hostile_is_parsed_or_refused(
        body: tuple[str, dict[str, Any]], member: str, value: Any) -> None:
    kind, document = body
    parsed = parsed_or_refused(kind, {**document, member: value})
    if parsed is not None:
        assert_sound(parsed)


@fuzzing(ci_examples=200)
@given(kind=st.sampled_from(sorted(BODIES)), body=json_values)
def test_any_json_value_as_a_body_is_parsed_or_refused(kind: str, body: Any) -> None:
    parsed = parsed_or_refused(kind, body)
    if parsed is not None:
        assert_sound(parsed)


def decoded_or_refused(payload: bytes) -> Any:
    """`decode_json` of the payload, or a sentinel when refused with its documented codes."""
    try:
        return decode_json(payload)
    except Refused as refusal:
        assert refusal.code in ("invalid_json", "payload_too_large")
        return refusal


@fuzzing(ci_examples=300)
@given(data=st.data(), body=bodies.filter(lambda body: body[0] in ("answer", "location")),
       member=st.sampled_from(MEMBER_NAMES))
def test_any_mqtt_payload_of_a_responder_app_is_parsed_or_refused(
        data: st.DataObject, body: tuple[str, dict[str, Any]], member: str) -> None:
    # What the runner does with a message on responders/{id}/response|location.
    kind, document = body
    valid = json.dumps(document).encode()
    payload = data.draw(st.one_of(
        st.binary(max_size=MAX_PAYLOAD + 10),
        mutated_bytes(valid),
        nesting_depths.map(lambda depth: with_raw_member(document, member, nested_json(depth))),
        member_values.map(lambda value: json.dumps({**document, member: value}).encode())),
        label="payload")
    decoded = decoded_or_refused(payload)
    if isinstance(decoded, Refused):
        return
    assert len(payload) <= MAX_PAYLOAD
    parsed = parsed_or_refused(kind, decoded)
    if parsed is not None:
        assert_sound(parsed)


@pytest.mark.parametrize(("kind", "body"), [
    ("answer", {"incident_id": "i-1", "answer": "accept", "ts": "0001-01-01T00:30:00+01:00"}),
    ("location", {"incident_id": "i-1", "lat": 52.1, "lon": 5.1,
                  "ts": "9999-12-31T23:59:59-01:00"}),
    ("incident", {"reference": "R-1", "lat": 52.1, "lon": 5.1,
                  "called_at": "0001-01-01T00:00:00+00:01"}),
], ids=["answer-ts", "location-ts", "incident-called_at"])
def test_a_time_outside_the_years_1_to_9999_in_utc_is_refused(kind: str, body: Any) -> None:
    with pytest.raises(Refused) as refusal:
        parse(kind, body)
    assert refusal.value.code == "invalid_field"


# --- known bugs ---------------------------------------------------------------------------------

def test_a_payload_nested_deeper_than_the_parser_goes_is_refused_as_invalid_json() -> None:
    with pytest.raises(Refused) as refusal:
        decode_json(b"[" * 2000 + b"]" * 2000)
    assert refusal.value.code == "invalid_json"


@pytest.mark.parametrize("kind", ["incident", "position", "location"])
def test_a_whole_number_coordinate_beyond_a_floats_range_is_refused(kind: str) -> None:
    body = {"reference": "R-1", "incident_id": "i-1", "lat": 10**309, "lon": 5,
            "ts": "2026-06-17T10:00:00Z"}
    with pytest.raises(Refused) as refusal:
        parse(kind, body)
    assert refusal.value.code == "invalid_field"


# --- memory -------------------------------------------------------------------------------------

def test_responder_parsing_keeps_no_memory_per_hostile_payload() -> None:
    seeds = [b'{"incident_id":"i-1","answer":"accept","ts":"2026-06-17T10:00:00Z"}',
             b'{"incident_id":"i-1","lat":52.1,"lon":5.1,"ts":"2026-06-17T10:00:00+02:00"}',
             b'{"reference":"R-1","lat":52.1,"lon":5.1,"exclusions":["x"],"source":"112"}']
    hostile = random_variants(seeds, 2000, seed=4)

    def parse_all() -> None:
        for payload in hostile:
            # What is raised is the other tests' business; here only what stays behind counts.
            with contextlib.suppress(Exception):
                body = decode_json(payload)
                for kind in ("answer", "location", "incident"):
                    with contextlib.suppress(Exception):
                        parse(kind, body)

    assert memory_growth(parse_all) < MEMORY_SLACK
