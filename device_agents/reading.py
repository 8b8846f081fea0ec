"""What a cabinet controller tells the agent, whatever the line it came over."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any

SELF_TEST_VALUES = ("pass", "fail", "unknown")
POWER_VALUES = ("mains", "battery")


@dataclass(frozen=True)
class ControllerReading:
    """One consistent snapshot of a cabinet controller's state."""

    battery_pct: int | None = None
    pads_expiry: date | None = None
    door_open: bool | None = None
    aed_present: bool | None = None
    temperature_c: float | None = None
    self_test: str | None = None
    heater_on: bool | None = None
    power: str | None = None

    def telemetry_fields(self) -> dict[str, Any]:
        """The contract v1 telemetry fields this reading fills (dates as ISO strings)."""
        result: dict[str, Any] = {}
        for name in FIELD_NAMES:
            value = getattr(self, name)
            if value is not None:
                result[name] = value.isoformat() if isinstance(value, date) else value
        return result


FIELD_NAMES = tuple(f.name for f in fields(ControllerReading))
