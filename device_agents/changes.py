"""Which events a change between two controller readings means (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from device_agents.reading import ControllerReading


@dataclass(frozen=True)
class TemperatureLimits:
    """Cabinet temperature outside these limits raises a `temperature_alarm` event."""

    low_c: float = 0.0
    high_c: float = 50.0


def transition_events(previous: ControllerReading | None, current: ControllerReading,
                      limits: TemperatureLimits) -> list[tuple[str, str | None]]:
    """(event type, detail) for each transition from `previous` to `current`, in order."""
    events: list[tuple[str, str | None]] = []
    before = previous or ControllerReading()
    if current.door_open is not None and current.door_open != before.door_open:
        if current.door_open:
            events.append(("door_opened", None))
        elif before.door_open is not None:
            events.append(("door_closed", None))
    if current.aed_present is not None and current.aed_present != before.aed_present:
        if not current.aed_present:
            events.append(("aed_removed", None))
        elif before.aed_present is not None:
            events.append(("aed_returned", None))
    if current.self_test == "fail" and before.self_test != "fail":
        events.append(("self_test_failed", None))
    if current.power is not None and current.power != before.power:
        if current.power == "battery":
            events.append(("power_lost", None))
        elif before.power is not None:
            events.append(("power_restored", None))
    if _temperature_alarm(current, limits) and not _temperature_alarm(before, limits):
        events.append(("temperature_alarm", f"{current.temperature_c:g} °C outside "
                       f"{limits.low_c:g}..{limits.high_c:g} °C"))
    return events


def _temperature_alarm(reading: ControllerReading, limits: TemperatureLimits) -> bool:
    t = reading.temperature_c
    return t is not None and not (limits.low_c <= t <= limits.high_c)
