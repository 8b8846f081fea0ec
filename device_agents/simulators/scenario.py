"""Scenario files for simulated RCC-1 cabinet controllers, and the state they describe over time.

A scenario (TOML) gives the controller's initial state, steps at given seconds (`set` fields, or
make the controller `silent_s` seconds long, or put `noise_s` seconds of line noise between good
frames) and ramps (e.g. a battery draining by 1 % a minute). `state_at` is a pure function of the
scenario and the elapsed time, so tests can check a simulator against it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from device_agents.errors import AgentError
from device_agents.reading import ControllerReading
from device_agents.toml_files import load_model


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_s: float = Field(ge=0)
    set: dict[str, Any] = {}
    silent_s: float = Field(default=0, ge=0)
    noise_s: float = Field(default=0, ge=0)


class Ramp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    per_minute: float
    start_s: float = 0
    min: float | None = None
    max: float | None = None


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    frame_interval_s: float = Field(default=10.0, gt=0)
    initial: dict[str, Any]
    steps: list[Step] = []
    ramps: list[Ramp] = []
    duration_s: float | None = None
    """With `loop`, the scenario starts again after this many seconds."""


@dataclass(frozen=True)
class ControllerState:
    reading: ControllerReading
    silent: bool
    noisy: bool


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; raises `AgentError` naming the problem."""
    scenario = load_model(path, Scenario, "scenario")
    try:
        _reading(scenario.initial)
        for step in scenario.steps:
            _reading({**scenario.initial, **step.set})
        for ramp in scenario.ramps:
            value = getattr(_reading(scenario.initial), ramp.field, "missing")
            if value == "missing" or isinstance(value, bool) or \
                    not isinstance(value, int | float | None):
                raise ValueError(f"ramp on {ramp.field!r}: not a numeric reading field")
    except (TypeError, ValueError) as exc:
        raise AgentError(f"{path}: {exc}") from exc
    return scenario


def _reading(fields: dict[str, Any]) -> ControllerReading:
    values = dict(fields)
    if isinstance(values.get("pads_expiry"), str):
        values["pads_expiry"] = date.fromisoformat(values["pads_expiry"])
    return ControllerReading(**values)


def state_at(scenario: Scenario, elapsed_s: float, loop: bool = False) -> ControllerState:
    """The controller's state `elapsed_s` seconds into the scenario."""
    if loop and scenario.duration_s:
        elapsed_s %= scenario.duration_s
    fields = dict(scenario.initial)
    silent = noisy = False
    for step in sorted(scenario.steps, key=lambda s: s.at_s):
        if step.at_s > elapsed_s:
            break
        fields.update(step.set)
        if step.silent_s and elapsed_s < step.at_s + step.silent_s:
            silent = True
        if step.noise_s and elapsed_s < step.at_s + step.noise_s:
            noisy = True
    reading = _reading(fields)
    for ramp in scenario.ramps:
        if elapsed_s <= ramp.start_s:
            continue
        value = float(getattr(reading, ramp.field) or 0) + \
            ramp.per_minute * (elapsed_s - ramp.start_s) / 60
        if ramp.min is not None:
            value = max(ramp.min, value)
        if ramp.max is not None:
            value = min(ramp.max, value)
        is_int = isinstance(getattr(reading, ramp.field), int)
        changes: dict[str, Any] = {ramp.field: int(value) if is_int else round(value, 1)}
        reading = replace(reading, **changes)
    return ControllerState(reading, silent, noisy)
