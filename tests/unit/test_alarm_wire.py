"""Alarm core payloads: incidents from 112, answers and locations from apps, alerts out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from alarm_core.errors import Refused
from alarm_core.policy import BUILT_IN_EXCLUSIONS
from alarm_core.wire import (
    MAX_PAYLOAD,
    IncidentRequest,
    LocationReport,
    ResponderAnswer,
    alert_payload,
    cancel_payload,
    decode_json,
    parse_answer,
    parse_incident,
    parse_location,
    sms_text,
)

KNOWN = BUILT_IN_EXCLUSIONS
GOOD: dict[str, Any] = {
    "reference": "112-AMS/2026:0042_a.b", "lat": 52.37, "lon": 4.89,
    "address": "Dam 1, Amsterdam", "called_at": "2026-06-17T10:00:00Z", "source": "112",
    "exclusions": [],
}


def refused(parse: Any, *args: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        parse(*args)
    return caught.value


# --- parse_incident ---------------------------------------------------------------------------

def test_a_complete_incident_is_parsed_into_typed_fields() -> None:
    request = parse_incident(GOOD, KNOWN)
    assert request == IncidentRequest(
        reference="112-AMS/2026:0042_a.b", lat=52.37, lon=4.89, address="Dam 1, Amsterdam",
        called_at=datetime(2026, 6, 17, 10, 0, tzinfo=UTC), source="112", exclusions=())


def test_the_smallest_incident_has_a_reference_and_coordinates() -> None:
    request = parse_incident({"reference": "A", "lat": 52, "lon": 5}, KNOWN)
    assert (request.lat, request.lon, request.source, request.exclusions) == (52.0, 5.0, "112", ())
    assert isinstance(request.lat, float)
    assert request.called_at is None and request.address is None


def test_an_address_alone_is_accepted_by_the_parser() -> None:
    request = parse_incident({"reference": "A", "address": "Dam 1, Amsterdam"}, KNOWN)
    assert (request.lat, request.lon, request.address) == (None, None, "Dam 1, Amsterdam")


def test_called_at_with_an_offset_is_converted_to_utc() -> None:
    request = parse_incident({**GOOD, "called_at": "2026-06-17T12:00:00+02:00"}, KNOWN)
    assert request.called_at == datetime(2026, 6, 17, 10, 0, tzinfo=UTC)
    assert request.called_at is not None and request.called_at.utcoffset() == timedelta(0)


def test_exclusions_are_deduplicated_and_sorted() -> None:
    request = parse_incident({**GOOD, "exclusions": ["unsafe_scene", "trauma", "unsafe_scene"]},
                             KNOWN)
    assert request.exclusions == ("trauma", "unsafe_scene")


def test_a_wearable_source_is_accepted() -> None:
    assert parse_incident({**GOOD, "source": "wearable"}, KNOWN).source == "wearable"


def test_extra_exclusion_codes_of_the_policy_are_known() -> None:
    known = {**KNOWN, "drowning": "drowning: ambulance only"}
    assert parse_incident({**GOOD, "exclusions": ["drowning"]}, known).exclusions == ("drowning",)


INCIDENT_REFUSALS = [
    # (name, body, code)
    ("body is a list", [GOOD], "invalid_body"),
    ("body is a string", "incident", "invalid_body"),
    ("missing reference", {k: v for k, v in GOOD.items() if k != "reference"}, "invalid_field"),
    ("empty reference", {**GOOD, "reference": ""}, "invalid_field"),
    ("reference with a space", {**GOOD, "reference": "INC 1"}, "invalid_field"),
    ("reference with a semicolon", {**GOOD, "reference": "INC;1"}, "invalid_field"),
    ("reference with a non-ascii letter", {**GOOD, "reference": "INC-ü"}, "invalid_field"),
    ("reference longer than 100", {**GOOD, "reference": "A" * 101}, "invalid_field"),
    ("reference not a string", {**GOOD, "reference": 42}, "invalid_field"),
    ("lat without lon", {"reference": "A", "lat": 52.37}, "invalid_field"),
    ("lon without lat", {"reference": "A", "lon": 4.89}, "invalid_field"),
    ("lat above 90", {**GOOD, "lat": 90.0001}, "invalid_field"),
    ("lat below -90", {**GOOD, "lat": -91}, "invalid_field"),
    ("lon above 180", {**GOOD, "lon": 180.5}, "invalid_field"),
    ("lat is NaN", {**GOOD, "lat": float("nan")}, "invalid_field"),
    ("lon is infinite", {**GOOD, "lon": float("inf")}, "invalid_field"),
    ("lat is a bool", {**GOOD, "lat": True}, "invalid_field"),
    ("lon is a bool", {**GOOD, "lon": False}, "invalid_field"),
    ("lat is a string", {**GOOD, "lat": "52.37"}, "invalid_field"),
    ("no location at all", {"reference": "A"}, "missing_location"),
    ("no location, explicit nulls", {"reference": "A", "lat": None, "lon": None,
                                     "address": None}, "missing_location"),
    ("empty address", {"reference": "A", "address": ""}, "invalid_field"),
    ("address too long", {"reference": "A", "address": "x" * 301}, "invalid_field"),
    ("address not a string", {"reference": "A", "address": ["Dam 1"]}, "invalid_field"),
    ("called_at without a zone", {**GOOD, "called_at": "2026-06-17T10:00:00"}, "invalid_field"),
    ("called_at not a time", {**GOOD, "called_at": "yesterday"}, "invalid_field"),
    ("called_at a number", {**GOOD, "called_at": 1781690400}, "invalid_field"),
    ("source unknown", {**GOOD, "source": "999"}, "invalid_field"),
    ("source a number", {**GOOD, "source": 112}, "invalid_field"),
    ("exclusions not a list", {**GOOD, "exclusions": "trauma"}, "invalid_field"),
    ("exclusions not strings", {**GOOD, "exclusions": [1]}, "invalid_field"),
    ("unknown exclusion", {**GOOD, "exclusions": ["trauma", "alien"]}, "unknown_exclusion"),
    ("source a list", {**GOOD, "source": ["112"]}, "invalid_field"),
    ("incident_type unknown", {**GOOD, "incident_type": "heartbreak"}, "invalid_field"),
    ("incident_type a number", {**GOOD, "incident_type": 3}, "invalid_field"),
    ("incident_type a list", {**GOOD, "incident_type": ["drowning"]}, "invalid_field"),
    ("incident_type an object", {**GOOD, "incident_type": {"type": "drowning"}},
     "invalid_field"),
]


@pytest.mark.parametrize(("body", "code"), [r[1:] for r in INCIDENT_REFUSALS],
                         ids=[r[0] for r in INCIDENT_REFUSALS])
def test_an_invalid_incident_is_refused_with_a_stable_code(body: Any, code: str) -> None:
    error = refused(parse_incident, body, KNOWN)
    assert error.code == code
    assert error.status == (400 if code == "invalid_body" else 422)
    assert error.message


def test_coordinates_at_the_limits_are_accepted() -> None:
    request = parse_incident({"reference": "A", "lat": -90, "lon": 180}, KNOWN)
    assert (request.lat, request.lon) == (-90.0, 180.0)


def test_an_unknown_exclusion_is_refused_with_the_list_of_known_codes() -> None:
    error = refused(parse_incident, {**GOOD, "exclusions": ["alien", "trauma"]}, KNOWN)
    assert error.code == "unknown_exclusion"
    assert "['alien']" in error.message
    assert str(sorted(KNOWN)) in error.message


def test_a_reference_with_a_trailing_newline_is_refused() -> None:
    assert refused(parse_incident, {**GOOD, "reference": "INC-1\n"}, KNOWN).code \
        == "invalid_field"


# --- IncidentRequest.fingerprint --------------------------------------------------------------

def fingerprint(body: dict[str, Any]) -> str:
    return parse_incident(body, KNOWN).fingerprint()


def test_the_fingerprint_is_a_sha256_hex_digest_stable_over_parses() -> None:
    first = fingerprint(GOOD)
    assert len(first) == 64 and int(first, 16) >= 0
    assert fingerprint(dict(GOOD)) == first
    assert fingerprint(json.loads(json.dumps(GOOD))) == first


def test_the_fingerprint_ignores_how_the_same_content_is_written() -> None:
    base = {**GOOD, "exclusions": ["trauma", "unsafe_scene"]}
    same = [
        {**base, "exclusions": ["unsafe_scene", "trauma", "trauma"]},
        {**base, "called_at": "2026-06-17T12:00:00+02:00"},
        {**base, "lat": 52.37, "lon": 4.89},
        dict(reversed(list(base.items()))),
    ]
    assert {fingerprint(body) for body in same} == {fingerprint(base)}
    assert fingerprint({"reference": "A", "lat": 52, "lon": 5}) \
        == fingerprint({"reference": "A", "lat": 52.0, "lon": 5.0, "source": "112"})


@pytest.mark.parametrize(
    "change",
    [{"reference": "other"}, {"lat": 52.3701}, {"lon": 4.8901}, {"address": "Dam 2"},
     {"address": None}, {"called_at": "2026-06-17T10:00:01Z"}, {"called_at": None},
     {"source": "wearable"}, {"exclusions": ["trauma"]}],
    ids=["reference", "lat", "lon", "address", "no address", "called_at", "no called_at",
         "source", "exclusions"],
)
def test_the_fingerprint_differs_when_the_content_differs(change: dict[str, Any]) -> None:
    assert fingerprint({**GOOD, **change}) != fingerprint(GOOD)


# --- parse_answer and parse_location ----------------------------------------------------------

def test_an_answer_is_parsed_with_its_time_in_utc() -> None:
    answer = parse_answer({"v": 1, "incident_id": "inc-1", "answer": "accept",
                           "ts": "2026-06-17T12:00:05+02:00"})
    assert answer == ResponderAnswer("inc-1", "accept",
                                     datetime(2026, 6, 17, 10, 0, 5, tzinfo=UTC))


def test_an_answer_without_a_time_is_accepted() -> None:
    assert parse_answer({"incident_id": "inc-1", "answer": "decline"}) \
        == ResponderAnswer("inc-1", "decline", None)


ANSWER_REFUSALS = [
    ("not an object", ["accept"], "invalid_body"),
    ("missing incident", {"answer": "accept"}, "invalid_field"),
    ("empty incident", {"incident_id": "", "answer": "accept"}, "invalid_field"),
    ("incident longer than 40", {"incident_id": "i" * 41, "answer": "accept"}, "invalid_field"),
    ("incident not a string", {"incident_id": 7, "answer": "accept"}, "invalid_field"),
    ("unknown answer", {"incident_id": "inc-1", "answer": "maybe"}, "invalid_field"),
    ("missing answer", {"incident_id": "inc-1"}, "invalid_field"),
    ("answer in capitals", {"incident_id": "inc-1", "answer": "ACCEPT"}, "invalid_field"),
    ("time without zone", {"incident_id": "inc-1", "answer": "accept",
                           "ts": "2026-06-17T10:00:00"}, "invalid_field"),
]


@pytest.mark.parametrize(("body", "code"), [r[1:] for r in ANSWER_REFUSALS],
                         ids=[r[0] for r in ANSWER_REFUSALS])
def test_an_invalid_answer_is_refused_with_a_stable_code(body: Any, code: str) -> None:
    assert refused(parse_answer, body).code == code


def test_a_location_is_parsed_with_its_time_in_utc() -> None:
    report = parse_location({"v": 0, "incident_id": "inc-1", "lat": 52.37, "lon": 4,
                             "ts": "2026-06-17T10:00:00Z"})
    assert report == LocationReport("inc-1", 52.37, 4.0, datetime(2026, 6, 17, 10, tzinfo=UTC))


LOCATION = {"incident_id": "inc-1", "lat": 52.37, "lon": 4.89, "ts": "2026-06-17T10:00:00Z"}
LOCATION_REFUSALS = [
    ("not an object", None, "invalid_body"),
    ("missing incident", {**LOCATION, "incident_id": None}, "invalid_field"),
    ("missing lat", {**LOCATION, "lat": None}, "invalid_field"),
    ("missing lon", {k: v for k, v in LOCATION.items() if k != "lon"}, "invalid_field"),
    ("lat out of range", {**LOCATION, "lat": 95}, "invalid_field"),
    ("lon NaN", {**LOCATION, "lon": float("nan")}, "invalid_field"),
    ("lat a bool", {**LOCATION, "lat": True}, "invalid_field"),
    ("missing time", {k: v for k, v in LOCATION.items() if k != "ts"}, "invalid_field"),
    ("time without zone", {**LOCATION, "ts": "2026-06-17T10:00:00"}, "invalid_field"),
]


@pytest.mark.parametrize(("body", "code"), [r[1:] for r in LOCATION_REFUSALS],
                         ids=[r[0] for r in LOCATION_REFUSALS])
def test_an_invalid_location_is_refused_with_a_stable_code(body: Any, code: str) -> None:
    assert refused(parse_location, body).code == code


# --- decode_json ------------------------------------------------------------------------------

def test_a_utf8_json_payload_is_decoded() -> None:
    assert decode_json('{"answer": "accept", "note": "één"}'.encode()) \
        == {"answer": "accept", "note": "één"}


def test_a_payload_of_exactly_the_maximum_size_is_decoded() -> None:
    payload = json.dumps({"pad": "x" * (MAX_PAYLOAD - 11)}).encode()
    assert len(payload) == MAX_PAYLOAD
    assert decode_json(payload)["pad"].startswith("x")


DECODE_REFUSALS = [
    ("one byte too large", json.dumps({"pad": "x" * (MAX_PAYLOAD - 10)}).encode(),
     "payload_too_large"),
    ("far too large", b" " * 100_000, "payload_too_large"),
    ("not json", b"accept", "invalid_json"),
    ("truncated json", b'{"answer": ', "invalid_json"),
    ("empty", b"", "invalid_json"),
    ("not utf-8", b'{"answer": "\xff\xfe"}', "invalid_json"),
    ("latin-1", '{"note": "café"}'.encode("latin-1"), "invalid_json"),
]


@pytest.mark.parametrize(("payload", "code"), [r[1:] for r in DECODE_REFUSALS],
                         ids=[r[0] for r in DECODE_REFUSALS])
def test_an_undecodable_payload_is_refused_with_a_stable_code(payload: bytes, code: str) -> None:
    assert refused(decode_json, payload).code == code


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_payload_in_another_unicode_encoding_is_refused(encoding: str) -> None:
    assert refused(decode_json, '{"answer": "accept"}'.encode(encoding)).code == "invalid_json"


# --- alert_payload, sms_text, cancel_payload --------------------------------------------------

SENT_AT = datetime(2026, 6, 17, 12, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2)))
VICTIM = {"lat": 52.37, "lon": 4.89, "address": None}
AED = {"aed_id": "aed-7", "lat": 52.3712345, "lon": 4.8923456, "access_code": "4711",
       "location_hint": "left of the pharmacy door"}


def test_an_app_alert_carries_the_cabinet_access_code() -> None:
    payload = alert_payload("inc-1", "fetch_aed", VICTIM, AED, SENT_AT, app=True)
    assert payload == {"v": 1, "incident_id": "inc-1", "role": "fetch_aed", "victim": VICTIM,
                       "aed": AED, "sent_at": "2026-06-17T10:00:00Z"}


def test_an_sms_alert_never_carries_the_access_code() -> None:
    payload = alert_payload("inc-1", "fetch_aed", VICTIM, AED, SENT_AT, app=False)
    assert payload["aed"] == {**AED, "access_code": None}
    assert "4711" not in json.dumps(payload)
    assert AED["access_code"] == "4711"  # the caller's dict is not changed


def test_a_cpr_alert_has_no_aed() -> None:
    for app in (True, False):
        payload = alert_payload("inc-1", "cpr", VICTIM, None, SENT_AT, app=app)
        assert payload["aed"] is None and payload["role"] == "cpr"


@pytest.mark.parametrize("app", [True, False], ids=["app payload", "sms payload"])
def test_the_sms_text_never_contains_the_access_code(app: bool) -> None:
    payload = alert_payload("inc-1", "fetch_aed", VICTIM, AED, SENT_AT, app=app)
    text = sms_text(payload)
    assert "4711" not in text
    assert text == ("aedfleet RESUSCITATION ALARM: fetch the AED at 52.37123,4.89235 "
                    "(left of the pharmacy door) and bring it to 52.37000,4.89000.")


def test_the_sms_text_for_cpr_names_the_address_when_known() -> None:
    payload = alert_payload("inc-1", "cpr", {**VICTIM, "address": "Dam 1"}, None, SENT_AT,
                            app=False)
    assert sms_text(payload) == "aedfleet RESUSCITATION ALARM: go to Dam 1 and start CPR."


def test_a_cancellation_has_the_contract_shape_and_its_sms_wording() -> None:
    payload = cancel_payload("inc-1", "enough_responders")
    assert payload == {"v": 1, "incident_id": "inc-1", "reason": "enough_responders"}
    assert sms_text(payload) == ("aedfleet: alarm inc-1 cancelled (enough responders are on "
                                 "their way). Thank you.")
