"""What every view reads from the application: the database engine, the settings, the time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request

from alarm_core.errors import Refused
from fleet.settings import Settings


def engine() -> Any:
    return current_app.config["ENGINE"]


def settings() -> Settings:
    return current_app.config["SETTINGS"]  # type: ignore[no-any-return]


def now() -> datetime:
    """The application's clock (tests and benchmarks set one), else the wall clock in UTC."""
    clock = current_app.config.get("CLOCK")
    return clock() if clock is not None else datetime.now(UTC)


def served(key: str, code: str, message: str) -> Any:
    """A part this server may or may not run (the alarm core, the live coverage): 503 when
    it does not."""
    part = current_app.config.get(key)
    if part is None:
        raise Refused(code, message, status=503)
    active = current_app.config.get("ALARM_ACTIVE")
    if key == "ALARM_CORE" and active is not None and not active():
        raise Refused("standby", "this alarm core is the standby: send to the active node",
                      status=503)
    return part


def whole_number(name: str, default: int, low: int, high: int) -> int:
    """A query parameter that must be a whole number from `low` to `high` (else 400)."""
    value = request.args.get(name)
    if value is None:
        return default
    if re.fullmatch(r"[0-9]{1,9}", value) is None or not low <= int(value) <= high:
        raise Refused("invalid_argument", f"{name} must be a whole number from {low} to {high}",
                      status=400)
    return int(value)
