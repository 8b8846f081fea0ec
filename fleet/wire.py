"""Validation of what cabinets publish (contract v1 §1), as pure functions.

`parse_cabinet_message(topic, payload)` returns a typed message or raises `PayloadRejected` with a
reason code and words: the ingest stores rejected payloads as dead letters with that reason and
counts them by code. Unknown fields are ignored (forward compatible); a missing required field, a
wrong type, an out-of-range value or a `device_id` that differs from the topic's is rejected.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from device_agents.payloads import load_json

MAX_PAYLOAD = 4096
DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOPIC = re.compile(r"(?P<root>[^/]+)/(?P<device>[^/]+)/(?P<leaf>telemetry|event|status)")

# Reason codes of rejected payloads.
REJECTION_REASONS = {
    "bad_topic": "the topic is not aed/{device_id}/telemetry|event|status",
    "oversize": f"the payload is larger than {MAX_PAYLOAD} bytes",
    "not_json": "the payload is not UTF-8 JSON",
    "not_object": "the payload is not a JSON object",
    "unsupported_version": "the payload's `v` is not 1",
    "missing_field": "a required field is missing",
    "wrong_type": "a field has the wrong type",
    "out_of_range": "a field's value is out of range or not one of the allowed values",
    "device_mismatch": "the payload's device_id differs from the topic's",
}


class PayloadRejected(ValueError):
    """A payload the fleet does not apply; `code` is one of `REJECTION_REASONS`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _utc_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("wrong_type", "must be an RFC 3339 time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError("out_of_range", "{value} is not an RFC 3339 time",
                                  {"value": value[:40]}) from None
    if moment.tzinfo is None:
        raise PydanticCustomError("out_of_range", "{value} has no time zone",
                                  {"value": value[:40]})
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:30:00+01:00 lies before year 1 in UTC
        raise PydanticCustomError("out_of_range", "{value} lies outside the years 1-9999 in UTC",
                                  {"value": value[:40]}) from None


def _text(value: Any) -> Any:
    # PostgreSQL cannot store a NUL character in text; no cabinet has a reason to send one.
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("out_of_range", "contains a NUL character")
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str):
        raise PydanticCustomError("wrong_type", "must be an ISO date string")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("out_of_range", "{value} is not an ISO date",
                                  {"value": value[:40]}) from None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    v: Literal[1]
    device_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    ts: datetime

    @field_validator("ts", mode="plain")
    @classmethod
    def _ts(cls, value: Any) -> datetime:
        return _utc_time(value)


class _Sequenced(_Message):
    seq: Annotated[int, Field(ge=1, le=2**63 - 1)]


class TelemetryMessage(_Sequenced):
    battery_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    battery_expiry: date | None = None
    pads_expiry: date | None = None
    self_test: Literal["pass", "fail", "unknown"] | None = None
    self_test_ts: datetime | None = None
    door_open: bool | None = None
    aed_present: bool | None = None
    temperature_c: Annotated[float, Field(ge=-40, le=85)] | None = None
    heater_on: bool | None = None
    power: Literal["mains", "battery"] | None = None
    source_fault: Annotated[str, Field(max_length=200)] | None = None

    @field_validator("battery_expiry", "pads_expiry", mode="plain")
    @classmethod
    def _dates(cls, value: Any) -> date | None:
        return None if value is None else _iso_date(value)

    @field_validator("self_test_ts", mode="plain")
    @classmethod
    def _self_test_ts(cls, value: Any) -> datetime | None:
        return None if value is None else _utc_time(value)

    @field_validator("source_fault", mode="before")
    @classmethod
    def _source_fault(cls, value: Any) -> Any:
        return _text(value)

    @field_validator("temperature_c", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # JSON has one number type: 12 and 12.5 are both temperatures; true is not.
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # more digits than a float holds
                raise PydanticCustomError("out_of_range", "the number is too large") from None
        return value


class EventMessage(_Sequenced):
    type: Literal[
        "door_opened", "door_closed", "aed_removed", "aed_returned", "self_test_failed",
        "tamper", "power_lost", "power_restored", "temperature_alarm", "source_fault",
        "source_restored", "cmd_result",
    ]
    detail: Annotated[str, Field(max_length=500)] | None = None
    cmd_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None

    @field_validator("detail", mode="before")
    @classmethod
    def _detail(cls, value: Any) -> Any:
        return _text(value)


class StatusMessage(_Message):
    state: Literal["online", "offline"]


CabinetMessage = TelemetryMessage | EventMessage | StatusMessage
_MODELS: dict[str, type[_Message]] = {
    "telemetry": TelemetryMessage, "event": EventMessage, "status": StatusMessage}


def topic_device(topic: str) -> str | None:
    """The device id of a cabinet topic (`aed/{id}/telemetry|event|status`), else None."""
    match = TOPIC.fullmatch(topic)
    if match is None or not DEVICE_ID.fullmatch(match["device"]):
        return None
    return match["device"]


def parse_cabinet_message(topic: str, payload: bytes) -> CabinetMessage:
    """Validate one message a cabinet published; raises `PayloadRejected`."""
    device = topic_device(topic)
    if device is None:
        raise PayloadRejected("bad_topic", f"unexpected topic {topic[:200]!r}")
    leaf = topic.rsplit("/", 1)[1]
    if len(payload) > MAX_PAYLOAD:
        raise PayloadRejected("oversize", f"payload of {len(payload)} bytes")
    try:
        document = load_json(payload)
    except ValueError as exc:
        raise PayloadRejected("not_json", str(exc)) from None
    if not isinstance(document, dict):
        raise PayloadRejected("not_object", "the payload is not a JSON object")
    version = document.get("v")
    if type(version) is not int or version != 1:
        raise PayloadRejected("unsupported_version", f"version {version!r}, expected 1")
    try:
        message = _MODELS[leaf].model_validate(document)
    except ValidationError as exc:
        raise _rejection(exc) from None
    if message.device_id != device:
        raise PayloadRejected("device_mismatch", f"device_id {message.device_id!r} on the "
                                                 f"topic of {device!r}")
    return message  # type: ignore[return-value]


def _rejection(exc: ValidationError) -> PayloadRejected:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "payload"
    kind = error["type"]
    if kind in REJECTION_REASONS:
        code = kind
    elif kind == "missing":
        code = "missing_field"
    elif kind in ("greater_than_equal", "less_than_equal", "literal_error", "string_too_long",
                  "string_pattern_mismatch"):
        code = "out_of_range"
    else:
        code = "wrong_type"
    return PayloadRejected(code, f"{field}: {error['msg']}")
