"""The RCC-1 serial line protocol (contract §2) as pure functions: frames in, readings out.

`$AEDC,<seq>,<battery_pct>,<pads YYYYMMDD>,<door 0|1>,<present 0|1>,<temp_c_x10>,<P|F|U>*HH`
where HH is the XOR of every byte between `$` and `*`, two upper-case hex digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from device_agents.errors import FrameError
from device_agents.reading import ControllerReading

MAX_LINE = 128
SELF_TEST_CODES = {"P": "pass", "F": "fail", "U": "unknown"}
SELF_TEST_LETTERS = {name: letter for letter, name in SELF_TEST_CODES.items()}


def checksum(body: str) -> str:
    """XOR of the bytes of `body` (what lies between `$` and `*`), as two hex digits."""
    value = 0
    for byte in body.encode("ascii"):
        value ^= byte
    return f"{value:02X}"


def encode(body: str) -> bytes:
    """A complete line for `body`, e.g. `POLL` -> b'$POLL*..\\r\\n'."""
    return f"${body}*{checksum(body)}\r\n".encode("ascii")


@dataclass(frozen=True)
class Frame:
    """A checked frame: its sentence name and fields."""

    name: str
    fields: tuple[str, ...]


def parse_line(line: bytes | str) -> Frame:
    """Check framing and checksum of one line; raises `FrameError` saying what is wrong."""
    if isinstance(line, bytes):
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise FrameError("non-ASCII bytes on the line", "noise") from None
    else:
        text = line
        if not text.isascii():
            raise FrameError("non-ASCII characters on the line", "noise")
    text = text.strip("\r\n")
    if len(text) > MAX_LINE:
        raise FrameError(f"line longer than {MAX_LINE} characters")
    if not text.startswith("$"):
        raise FrameError("no '$' at the start of the line")
    star = text.rfind("*")
    if star < 0 or len(text) - star != 3:
        raise FrameError("no '*HH' checksum at the end of the line")
    body, given = text[1:star], text[star + 1:]
    if "$" in body:
        raise FrameError("a second '$' inside the frame (two frames run together)")
    expected = checksum(body)
    if given.upper() != expected or given != given.upper():
        raise FrameError(f"bad checksum {given}, expected {expected}", "checksum")
    name, *fields = body.split(",")
    return Frame(name, tuple(fields))


@dataclass(frozen=True)
class StatusFrame:
    """An `$AEDC` status frame: the controller's sequence number and its reading."""

    controller_seq: int
    reading: ControllerReading


def parse_status(frame: Frame) -> StatusFrame:
    """Decode an `AEDC` frame with range checks; raises `FrameError`."""
    if frame.name != "AEDC":
        raise FrameError(f"not a status frame: {frame.name}", "not_status")
    if len(frame.fields) != 7:
        raise FrameError(f"AEDC frame with {len(frame.fields)} fields, expected 7", "field_count")
    seq_text, battery_text, pads_text, door_text, present_text, temp_text, test_text = frame.fields
    controller_seq = _integer("seq", seq_text, 0, 2**32 - 1)
    battery = _integer("battery_pct", battery_text, 0, 100)
    pads = _pads_date(pads_text)
    door = _flag("door", door_text)
    present = _flag("aed_present", present_text)
    temperature = _integer("temperature", temp_text, -400, 850) / 10
    if test_text not in SELF_TEST_CODES:
        raise FrameError(f"self-test code {test_text!r} is not P, F or U", "bad_value")
    return StatusFrame(controller_seq, ControllerReading(
        battery_pct=battery, pads_expiry=pads, door_open=door, aed_present=present,
        temperature_c=temperature, self_test=SELF_TEST_CODES[test_text]))


def parse_status_line(line: bytes | str) -> StatusFrame:
    return parse_status(parse_line(line))


def status_body(controller_seq: int, reading: ControllerReading) -> str:
    """The body of an `AEDC` frame for a reading (what a controller or simulator sends)."""
    pads = reading.pads_expiry.strftime("%Y%m%d") if reading.pads_expiry else "00000000"
    temperature = round((reading.temperature_c or 0.0) * 10)
    return ",".join([
        "AEDC", str(controller_seq), str(reading.battery_pct or 0), pads,
        "1" if reading.door_open else "0", "1" if reading.aed_present else "0",
        str(temperature), SELF_TEST_LETTERS.get(reading.self_test or "unknown", "U")])


def _integer(name: str, text: str, low: int, high: int) -> int:
    # Plain decimal digits only (int() would also take '+', spaces and '_').
    if not re.fullmatch(r"-?[0-9]{1,10}" if low < 0 else r"[0-9]{1,10}", text):
        raise FrameError(f"{name} {text!r} is not a whole number", "bad_value")
    value = int(text)
    if not low <= value <= high:
        raise FrameError(f"{name} {value} out of range {low}..{high}", "bad_value")
    return value


def _flag(name: str, text: str) -> bool:
    if text not in ("0", "1"):
        raise FrameError(f"{name} {text!r} is not 0 or 1", "bad_value")
    return text == "1"


def _pads_date(text: str) -> date | None:
    if text == "00000000":
        return None  # the controller does not know the pads' expiry
    if len(text) != 8 or not text.isdigit():
        raise FrameError(f"pads expiry {text!r} is not YYYYMMDD", "bad_value")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise FrameError(f"pads expiry {text!r} is not a real date", "bad_value") from None
