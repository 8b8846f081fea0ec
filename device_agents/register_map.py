"""Modbus register maps as data (config/cabinets/*.toml) and their pure decoding."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device_agents.errors import CabinetReadError, RegisterMapError
from device_agents.reading import ControllerReading
from device_agents.toml_files import load_model

READING_FIELDS = {f.name for f in dataclass_fields(ControllerReading)}


class RegisterDescriptor(BaseModel):
    """One value in the controller's register space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    address: int = Field(ge=0, le=65535)
    type: Literal["uint16", "int16", "bool", "enum", "date_ymd"]
    scale: float = Field(default=1.0, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    values: dict[int, str] | None = None

    @property
    def width(self) -> int:
        return 3 if self.type == "date_ymd" else 1

    @model_validator(mode="after")
    def _consistent(self) -> RegisterDescriptor:
        if self.field not in READING_FIELDS:
            raise ValueError(f"unknown field {self.field!r}; known: {sorted(READING_FIELDS)}")
        if self.type == "enum" and not self.values:
            raise ValueError(f"{self.field}: an enum register needs a values table")
        return self


class RegisterMap(BaseModel):
    """A cabinet model's Modbus map: descriptors, unit id and the unlock coil."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    unit_id: int = Field(default=1, ge=0, le=247)
    function: Literal["holding", "input"] = "holding"
    registers: tuple[RegisterDescriptor, ...]
    coils: dict[str, int] = {}

    @property
    def first_address(self) -> int:
        return min(r.address for r in self.registers)

    @property
    def count(self) -> int:
        return max(r.address + r.width for r in self.registers) - self.first_address

    @model_validator(mode="after")
    def _no_overlap(self) -> RegisterMap:
        used: dict[int, str] = {}
        for register in self.registers:
            for address in range(register.address, register.address + register.width):
                if address in used:
                    raise ValueError(f"address {address} used by {used[address]} and "
                                     f"{register.field}")
                used[address] = register.field
        if self.count > 125:
            raise ValueError("registers span more than one Modbus read (125 registers)")
        return self


def load_register_map(path: Path) -> RegisterMap:
    """Load and validate a register map file; raises `RegisterMapError` naming the problem."""
    return load_model(path, RegisterMap, "register map", RegisterMapError)


def find_register_map(name: str, folder: Path = Path("config/cabinets")) -> RegisterMap:
    return load_register_map(folder / f"{name}.toml")


def decode_registers(register_map: RegisterMap, registers: list[int]) -> ControllerReading:
    """Turn the raw block read from `first_address` into a reading; bad values raise."""
    if len(registers) < register_map.count:
        raise CabinetReadError(f"short read: {len(registers)} of {register_map.count} registers")
    base = register_map.first_address
    values: dict[str, Any] = {}
    for descriptor in register_map.registers:
        offset = descriptor.address - base
        raw = registers[offset:offset + descriptor.width]
        values[descriptor.field] = _decode(descriptor, raw)
    return ControllerReading(**values)


def _decode(descriptor: RegisterDescriptor, raw: list[int]) -> Any:
    name = descriptor.field
    if any(not 0 <= word <= 0xFFFF for word in raw):
        raise CabinetReadError(f"{name}: register value outside 16 bits")
    word = raw[0]
    if descriptor.type == "date_ymd":
        if raw == [0, 0, 0]:
            return None  # not known to the controller
        try:
            return date(raw[0], raw[1], raw[2])
        except ValueError:
            raise CabinetReadError(f"{name}: {raw} is not a date") from None
    if descriptor.type == "bool":
        if word not in (0, 1):
            raise CabinetReadError(f"{name}: {word} is not 0 or 1")
        return word == 1
    if descriptor.type == "enum":
        assert descriptor.values is not None
        if word not in descriptor.values:
            raise CabinetReadError(f"{name}: {word} is not one of {sorted(descriptor.values)}")
        return descriptor.values[word]
    number = word - 0x10000 if descriptor.type == "int16" and word >= 0x8000 else word
    value = number * descriptor.scale
    if descriptor.min is not None and value < descriptor.min or \
            descriptor.max is not None and value > descriptor.max:
        low = "" if descriptor.min is None else f"{descriptor.min:g}"
        high = "" if descriptor.max is None else f"{descriptor.max:g}"
        raise CabinetReadError(f"{name}: {value:g} out of range {low}..{high}")
    if descriptor.scale == 1.0:
        return int(value)
    return round(value, 6)


def encode_reading(register_map: RegisterMap, reading: ControllerReading) -> list[int]:
    """The register block a controller holding `reading` serves (for simulators and tests)."""
    block = [0] * register_map.count
    base = register_map.first_address
    for descriptor in register_map.registers:
        value = getattr(reading, descriptor.field)
        offset = descriptor.address - base
        if descriptor.type == "date_ymd":
            block[offset:offset + 3] = [value.year, value.month, value.day] if value else [0, 0, 0]
        elif descriptor.type == "bool":
            block[offset] = 1 if value else 0
        elif descriptor.type == "enum":
            assert descriptor.values is not None
            codes = {text: code for code, text in descriptor.values.items()}
            block[offset] = codes.get(value, 0) if value is not None else 0
        else:
            number = round((value or 0) / descriptor.scale)
            block[offset] = number & 0xFFFF
    return block
