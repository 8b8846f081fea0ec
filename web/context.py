"""What every view reads from the application: the database engine, the settings, the time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app

from fleet.settings import Settings


def engine() -> Any:
    return current_app.config["ENGINE"]


def settings() -> Settings:
    return current_app.config["SETTINGS"]  # type: ignore[no-any-return]


def now() -> datetime:
    """The application's clock (tests and benchmarks set one), else the wall clock in UTC."""
    clock = current_app.config.get("CLOCK")
    return clock() if clock is not None else datetime.now(UTC)
