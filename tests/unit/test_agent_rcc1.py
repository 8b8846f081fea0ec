"""RCC-1 serial frames (contract §2): the example frame, round trips, every kind of bad line."""

from __future__ import annotations

from datetime import date
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import readings

from device_agents.errors import FrameError
from device_agents.rcc1 import (
    Frame,
    StatusFrame,
    encode,
    parse_line,
    parse_status,
    parse_status_line,
    status_body,
)
from device_agents.reading import ControllerReading

EXAMPLE_BODY = "AEDC,17,87,20270501,0,1,125,P"


def nmea_checksum(body: str) -> str:
    """The contract's checksum, computed here independently of the code under test."""
    return f"{reduce(lambda acc, byte: acc ^ byte, body.encode('ascii'), 0):02X}"


def line(body: str, checksum: str | None = None) -> bytes:
    """A complete line for `body`, with its correct checksum unless one is given."""
    return f"${body}*{checksum if checksum is not None else nmea_checksum(body)}\r\n".encode()


def aedc(seq: str = "17", battery: str = "87", pads: str = "20270501", door: str = "0",
         present: str = "1", temp: str = "125", test: str = "P") -> str:
    """An AEDC body with the contract example's values unless a field is given."""
    return ",".join(["AEDC", seq, battery, pads, door, present, temp, test])


# --- the contract's example ---------------------------------------------------------------------

def test_contract_example_checksum_is_the_xor_of_the_body() -> None:
    assert nmea_checksum(EXAMPLE_BODY) == "42"
    assert encode(EXAMPLE_BODY) == b"$AEDC,17,87,20270501,0,1,125,P*42\r\n"


@pytest.mark.parametrize("raw", [
    b"$AEDC,17,87,20270501,0,1,125,P*42\r\n",
    b"$AEDC,17,87,20270501,0,1,125,P*42\n",
    b"$AEDC,17,87,20270501,0,1,125,P*42",
    "$AEDC,17,87,20270501,0,1,125,P*42\r\n",
], ids=["crlf", "lf", "no-line-end", "str"])
def test_contract_example_frame_parses_to_the_documented_reading(raw: bytes | str) -> None:
    assert parse_status_line(raw) == StatusFrame(17, ControllerReading(
        battery_pct=87, pads_expiry=date(2027, 5, 1), door_open=False, aed_present=True,
        temperature_c=12.5, self_test="pass"))


def test_parse_line_splits_a_frame_into_its_name_and_fields() -> None:
    assert parse_line(line("UNLK,30")) == Frame("UNLK", ("30",))
    assert parse_line(line("POLL")) == Frame("POLL", ())


@pytest.mark.parametrize(("letter", "self_test"), [("P", "pass"), ("F", "fail"), ("U", "unknown")])
def test_each_self_test_letter_maps_to_its_contract_value(letter: str, self_test: str) -> None:
    assert parse_status_line(line(aedc(test=letter))).reading.self_test == self_test


@pytest.mark.parametrize(("temp", "celsius"), [
    ("-400", -40.0), ("-25", -2.5), ("0", 0.0), ("850", 85.0)])
def test_temperature_is_tenths_of_a_degree_with_the_contract_limits_inclusive(
        temp: str, celsius: float) -> None:
    assert parse_status_line(line(aedc(temp=temp))).reading.temperature_c == celsius


def test_all_zero_pads_date_means_the_controller_does_not_know_the_expiry() -> None:
    assert parse_status_line(line(aedc(pads="00000000"))).reading.pads_expiry is None


# --- round trip ---------------------------------------------------------------------------------

@settings(max_examples=300)
@given(controller_seq=st.integers(0, 2**32 - 1), reading=readings)
def test_encoding_then_parsing_a_status_frame_gives_back_the_reading(
        controller_seq: int, reading: ControllerReading) -> None:
    raw = encode(status_body(controller_seq, reading))
    assert parse_status_line(raw) == StatusFrame(controller_seq, reading)


@given(controller_seq=st.integers(0, 2**32 - 1), reading=readings)
def test_encoded_frames_carry_the_contracts_checksum(
        controller_seq: int, reading: ControllerReading) -> None:
    raw = encode(status_body(controller_seq, reading)).decode("ascii")
    body, checksum = raw[1:].rstrip("\r\n").split("*")
    assert raw.startswith("$") and raw.endswith("\r\n")
    assert checksum == nmea_checksum(body)


# --- bad lines ----------------------------------------------------------------------------------

BAD_LINES: list[tuple[str, bytes | str, str]] = [
    ("non-ASCII byte", b"$AEDC,17,87,20270501,0,1,12\xb05,P*42\r\n", "noise"),
    ("all noise", b"\xff\xfe\x00\x81", "noise"),
    ("no dollar", line(EXAMPLE_BODY)[1:], "framing"),
    ("empty line", b"\r\n", "framing"),
    ("no checksum", b"$AEDC,17,87,20270501,0,1,125,P\r\n", "framing"),
    ("star without digits", b"$AEDC,17,87,20270501,0,1,125,P*\r\n", "framing"),
    ("one checksum digit", b"$AEDC,17,87,20270501,0,1,125,P*4\r\n", "framing"),
    ("three checksum digits", b"$AEDC,17,87,20270501,0,1,125,P*420\r\n", "framing"),
    ("two frames run together", line(EXAMPLE_BODY).rstrip() + line(EXAMPLE_BODY), "framing"),
    ("too long", line("AEDC," + "1" * 200), "framing"),
    ("wrong checksum", line(EXAMPLE_BODY, "43"), "checksum"),
    ("checksum not hex", line(EXAMPLE_BODY, "ZZ"), "checksum"),
    ("lower-case hex checksum", line(aedc(seq="18"), "4d"), "checksum"),
    ("six fields", line("AEDC,17,87,20270501,0,1,125"), "field_count"),
    ("eight fields", line(EXAMPLE_BODY + ",1"), "field_count"),
    ("no fields", line("AEDC"), "field_count"),
    ("battery 101", line(aedc(battery="101")), "bad_value"),
    ("battery negative", line(aedc(battery="-1")), "bad_value"),
    ("battery not a number", line(aedc(battery="x7")), "bad_value"),
    ("battery empty", line(aedc(battery="")), "bad_value"),
    ("battery decimal", line(aedc(battery="87.5")), "bad_value"),
    ("seq negative", line(aedc(seq="-1")), "bad_value"),
    ("seq beyond 32 bits", line(aedc(seq=str(2**32))), "bad_value"),
    ("temperature above 85.0", line(aedc(temp="851")), "bad_value"),
    ("temperature below -40.0", line(aedc(temp="-401")), "bad_value"),
    ("temperature with a decimal point", line(aedc(temp="12.5")), "bad_value"),
    ("door 2", line(aedc(door="2")), "bad_value"),
    ("door empty", line(aedc(door="")), "bad_value"),
    ("aed_present yes", line(aedc(present="Y")), "bad_value"),
    ("month 13", line(aedc(pads="20271301")), "bad_value"),
    ("31 April", line(aedc(pads="20270431")), "bad_value"),
    ("29 February of a common year", line(aedc(pads="20270229")), "bad_value"),
    ("year 0", line(aedc(pads="00000101")), "bad_value"),
    ("seven-digit date", line(aedc(pads="2027051")), "bad_value"),
    ("ISO date", line(aedc(pads="2027-05-01")), "bad_value"),
    ("self-test X", line(aedc(test="X")), "bad_value"),
    ("self-test lower-case p", line(aedc(test="p")), "bad_value"),
    ("self-test word", line(aedc(test="PASS")), "bad_value"),
    ("poll request", line("POLL"), "not_status"),
    ("unlock acknowledgement", line("ACK,UNLK"), "not_status"),
    ("lower-case sentence name", line(EXAMPLE_BODY.lower()), "not_status"),
]


def test_the_lower_case_checksum_case_is_otherwise_correct() -> None:
    assert nmea_checksum(aedc(seq="18")) == "4D"
    assert parse_status_line(line(aedc(seq="18"), "4D")).controller_seq == 18


@pytest.mark.parametrize(("raw", "code"), [(raw, code) for _, raw, code in BAD_LINES],
                         ids=[name for name, _, _ in BAD_LINES])
def test_each_kind_of_bad_line_raises_frame_error_with_its_code(
        raw: bytes | str, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_status_line(raw)
    assert caught.value.code == code


def test_a_bad_checksum_message_names_the_expected_checksum() -> None:
    with pytest.raises(FrameError, match="expected 42"):
        parse_line(line(EXAMPLE_BODY, "00"))


def test_parse_status_rejects_a_frame_that_is_not_aedc_before_counting_fields() -> None:
    with pytest.raises(FrameError) as caught:
        parse_status(Frame("XYZ", ("1",) * 7))
    assert caught.value.code == "not_status"


@pytest.mark.parametrize("battery", ["+87", " 87", "8_7", "87 "])
def test_numbers_in_a_frame_are_plain_decimal_digits(battery: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_status_line(line(aedc(battery=battery)))
    assert caught.value.code == "bad_value"


# --- robustness ---------------------------------------------------------------------------------

FRAME_ERROR_CODES = {"noise", "framing", "checksum", "field_count", "bad_value", "not_status"}


def assert_frame_error_or_status(raw: bytes) -> None:
    """A line either parses to a status frame or raises FrameError with a documented code."""
    try:
        parsed = parse_status_line(raw)
    except FrameError as exc:
        assert exc.code in FRAME_ERROR_CODES
    else:
        assert isinstance(parsed, StatusFrame)


@settings(max_examples=500)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_raise_nothing_but_frame_error(raw: bytes) -> None:
    assert_frame_error_or_status(raw)


frame_alphabet = st.sampled_from(list(b"$*,\r\n0123456789ACDEFPUX-"))


@settings(max_examples=500)
@given(raw=st.lists(frame_alphabet, max_size=80).map(bytes))
def test_frame_like_byte_soup_raises_nothing_but_frame_error(raw: bytes) -> None:
    assert_frame_error_or_status(raw)


@settings(max_examples=500)
@given(reading=readings, data=st.data())
def test_changing_one_byte_of_a_good_frame_never_yields_a_different_reading(
        reading: ControllerReading, data: st.DataObject) -> None:
    good = encode(status_body(17, reading))
    position = data.draw(st.integers(0, len(good) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != good[position]))
    corrupted = good[:position] + bytes([replacement]) + good[position + 1:]
    try:
        parsed = parse_status_line(corrupted)
    except FrameError:
        return
    # Only the line end may change harmlessly (e.g. '\r' -> '\n').
    assert parsed == StatusFrame(17, reading)
    assert position >= len(good) - 2


@pytest.mark.parametrize("text", [
    "$AEDC,17,87,20270501,0,1,12°5,P*42\r\n",
    "$AEDÇ*00",
], ids=["degree-sign", "cedilla"])
def test_a_non_ascii_text_line_is_noise_like_non_ascii_bytes(text: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_status_line(text)
    assert caught.value.code == "noise"
