"""Contract v1 payloads the agent sends and receives, as pure functions (contract §1)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from device_agents.errors import CommandError
from device_agents.reading import ControllerReading

VERSION = 1
MAX_PAYLOAD = 4096
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
EVENT_TYPES = frozenset({
    "door_opened", "door_closed", "aed_removed", "aed_returned", "self_test_failed", "tamper",
    "power_lost", "power_restored", "temperature_alarm", "source_fault", "source_restored",
    "cmd_result",
})
COMMANDS = ("unlock", "ping", "self_test")
MAX_UNLOCK_S = 3600


def rfc3339(moment: datetime) -> str:
    """`2026-11-27T12:00:00Z` (UTC, whole seconds or milliseconds)."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _text(value: str, limit: int) -> str:
    """Free text for the fleet: NUL (which the fleet rejects) shown as U+FFFD, cut to `limit`."""
    return value.replace("\x00", "\ufffd")[:limit]


def telemetry(device_id: str, seq: int, ts: datetime, reading: ControllerReading | None,
              source_fault: str | None = None) -> dict[str, Any]:
    """A telemetry snapshot; without a reading (source fault) it carries only the fault."""
    payload: dict[str, Any] = {"v": VERSION, "device_id": device_id, "seq": seq,
                               "ts": rfc3339(ts)}
    if reading is not None:
        payload.update(reading.telemetry_fields())
    if source_fault:
        payload["source_fault"] = _text(source_fault, 200)
    return payload


def event(device_id: str, seq: int, ts: datetime, event_type: str, detail: str | None = None,
          cmd_id: str | None = None) -> dict[str, Any]:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    payload: dict[str, Any] = {"v": VERSION, "device_id": device_id, "seq": seq,
                               "ts": rfc3339(ts), "type": event_type}
    if detail is not None:
        payload["detail"] = _text(detail, 500)
    if cmd_id is not None:
        payload["cmd_id"] = cmd_id
    return payload


def status(device_id: str, online: bool, ts: datetime) -> dict[str, Any]:
    return {"v": VERSION, "device_id": device_id, "state": "online" if online else "offline",
            "ts": rfc3339(ts)}


def encode(payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD}")
    return data


def parse_ack(data: bytes) -> int:
    """The seq an `ack` payload covers; raises ValueError for anything malformed."""
    document = _json_object(data)
    seq = document.get("seq")
    if not _is_version(document.get("v")) or not isinstance(seq, int) or isinstance(seq, bool) \
            or seq < 0:
        raise ValueError("ack needs v=1 and a non-negative integer seq")
    return seq


@dataclass(frozen=True)
class Command:
    cmd_id: str
    cmd: str
    valid_s: int | None = None


def parse_command(data: bytes) -> Command:
    """Validate a `cmd` payload; raises `CommandError` with the reason (and cmd_id if known)."""
    try:
        document = _json_object(data)
    except ValueError as exc:
        raise CommandError(f"malformed command: {exc}") from None
    cmd_id = document.get("cmd_id")
    if not isinstance(cmd_id, str) or not DEVICE_ID_RE.fullmatch(cmd_id):
        raise CommandError("malformed command: cmd_id must be 1-64 letters, digits, '-' or '_'")
    if not _is_version(document.get("v")):
        raise CommandError(f"unsupported command version {document.get('v')!r}", cmd_id)
    cmd = document.get("cmd")
    if cmd not in COMMANDS:
        raise CommandError(f"unknown command {cmd!r}; known: {', '.join(COMMANDS)}", cmd_id)
    valid_s = document.get("valid_s")
    if cmd == "unlock":
        if valid_s is None:
            valid_s = 900
        if not isinstance(valid_s, int) or isinstance(valid_s, bool) \
                or not 1 <= valid_s <= MAX_UNLOCK_S:
            raise CommandError(f"unlock valid_s must be 1..{MAX_UNLOCK_S} seconds", cmd_id)
    return Command(cmd_id=cmd_id, cmd=cmd, valid_s=valid_s if cmd == "unlock" else None)


def _is_version(value: object) -> bool:
    return type(value) is int and value == VERSION  # True == 1 in Python; not on the wire


def load_json(data: bytes) -> Any:
    """JSON from UTF-8 bytes, or ValueError: not UTF-8, not JSON, nested deeper than the
    parser goes, an integer too long to convert, or text with an unpaired surrogate
    (`"\\ud800"`, which no UTF-8 store or database can hold)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not UTF-8 JSON: {str(exc)[:200]}") from None
    if b"\\u" in data:  # only an escape makes a surrogate
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not UTF-8 JSON: text with an unpaired surrogate") from None
    return document


def _json_object(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD}")
    document = load_json(data)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document
