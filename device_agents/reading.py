"""What a cabinet controller tells the agent, whatever the line it came over."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
        fields: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            fields[name] = value.isoformat() if isinstance(value, date) else value
        return fields
