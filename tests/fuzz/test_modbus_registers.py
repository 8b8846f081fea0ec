"""Modbus register blocks and register map files: any words, any lengths, any map."""

from __future__ import annotations

import contextlib
import math
import struct
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from device_agents.errors import CabinetReadError, RegisterMapError
from device_agents.reading import FIELD_NAMES, ControllerReading
from device_agents.register_map import (
    RegisterDescriptor,
    RegisterMap,
    decode_registers,
    encode_reading,
    load_register_map,
)

from .hostile import MEMORY_SLACK, fuzzing, memory_growth, mutated_text, random_variants

RCC1_FILE = Path(__file__).resolve().parents[2] / "config" / "cabinets" / "rcc1.toml"
RCC1 = load_register_map(RCC1_FILE)
EXAMPLE_BLOCK = [87, 2027, 5, 1, 0, 1, 125, 1, 0, 0]  # contract §3
ROUNDING = 5e-7

# Words a controller sends (codes, percentages, days, years, negative temperatures), or any.
words = st.one_of(st.integers(0, 3), st.integers(0, 120), st.integers(1, 31),
                  st.integers(1900, 2100), st.integers(0xFC00, 0xFFFF), st.integers(0, 0xFFFF))


def blocks(register_map: RegisterMap) -> st.SearchStrategy[list[int]]:
    """Blocks read for `register_map`: short reads, exact ones and longer ones."""
    return st.lists(words, max_size=register_map.count + 5)


def likely_words(descriptor: RegisterDescriptor) -> st.SearchStrategy[list[int]]:
    """The words of one register: mostly ones it takes, one time in ten any words."""
    near: st.SearchStrategy[list[int]]
    if descriptor.type == "date_ymd":
        near = st.dates().map(lambda day: [day.year, day.month, day.day]) | st.just([0, 0, 0])
    elif descriptor.type == "bool":
        near = st.lists(st.integers(0, 1), min_size=1, max_size=1)
    elif descriptor.type == "enum":
        assert descriptor.values is not None
        near = st.lists(st.sampled_from(sorted(descriptor.values)), min_size=1, max_size=1)
    else:
        near = st.lists(raw_words_within(descriptor), min_size=1, max_size=1)
    anything = st.lists(words, min_size=descriptor.width, max_size=descriptor.width)
    return st.tuples(st.integers(0, 9), near, anything).map(
        lambda choice: choice[2] if choice[0] == 0 else choice[1])


def raw_words_within(descriptor: RegisterDescriptor) -> st.SearchStrategy[int]:
    """Words whose scaled value lies within the descriptor's limits (two's complement if int16)."""
    if descriptor.min is None or descriptor.max is None or descriptor.scale == 0:
        return words
    low, high = sorted((descriptor.min / descriptor.scale, descriptor.max / descriptor.scale))
    smallest, largest = (-0x8000, 0x7FFF) if descriptor.type == "int16" else (0, 0xFFFF)
    # Clamped before rounding: a tiny scale makes the limits infinite.
    first = math.ceil(min(max(low, smallest), largest + 1))
    last = math.floor(max(min(high, largest), smallest - 1))
    if first > last:
        return words
    return st.integers(first, last).map(lambda number: number & 0xFFFF)


def full_blocks(register_map: RegisterMap) -> st.SearchStrategy[list[int]]:
    """Blocks of exactly the map's length, each register mostly a value it takes."""
    parts: list[st.SearchStrategy[list[int]]] = []
    address = register_map.first_address
    for descriptor in sorted(register_map.registers, key=lambda d: d.address):
        gap = descriptor.address - address
        parts += [st.lists(words, min_size=gap, max_size=gap), likely_words(descriptor)]
        address = descriptor.address + descriptor.width
    return st.tuples(*parts).map(lambda words_of: [word for part in words_of for word in part])


def assert_within_its_map(register_map: RegisterMap, reading: ControllerReading) -> None:
    """Each decoded value has its register type's kind and lies within the map's limits."""
    for descriptor in register_map.registers:
        value = getattr(reading, descriptor.field)
        if descriptor.type == "date_ymd":
            assert value is None or isinstance(value, date)
        elif descriptor.type == "bool":
            assert isinstance(value, bool)
        elif descriptor.type == "enum":
            assert descriptor.values is not None and value in descriptor.values.values()
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool)
            # Limits are checked before the value is rounded to 6 decimals.
            assert descriptor.min is None or value >= descriptor.min - ROUNDING
            assert descriptor.max is None or value <= descriptor.max + ROUNDING


@fuzzing(ci_examples=300)
@given(block=blocks(RCC1) | full_blocks(RCC1))
def test_any_rcc1_block_decodes_within_the_contract_limits_or_raises_cabinet_read_error(
        block: list[int]) -> None:
    try:
        reading = decode_registers(RCC1, block)
    except CabinetReadError:
        return
    assert len(block) >= RCC1.count
    assert_within_its_map(RCC1, reading)


@fuzzing(ci_examples=300)
@given(block=full_blocks(RCC1))
def test_an_rcc1_block_that_decodes_is_the_block_its_reading_encodes_to(
        block: list[int]) -> None:
    # No two blocks decode to the same reading: nothing the controller says is lost or bent.
    try:
        reading = decode_registers(RCC1, block)
    except CabinetReadError:
        event("refused")
        return
    event("decoded")
    assert encode_reading(RCC1, reading) == block


@fuzzing(ci_examples=200)
@given(position=st.integers(0, len(EXAMPLE_BLOCK) - 1),
       word=st.integers(max_value=-1) | st.integers(min_value=0x10000))
def test_a_word_beyond_16_bits_anywhere_raises_cabinet_read_error_naming_its_field(
        position: int, word: int) -> None:
    block = [*EXAMPLE_BLOCK[:position], word, *EXAMPLE_BLOCK[position + 1:]]
    [field] = [d.field for d in RCC1.registers if d.address <= position < d.address + d.width]
    with pytest.raises(CabinetReadError, match=field):
        decode_registers(RCC1, block)


# --- maps other than RCC-1 ----------------------------------------------------------------------

limits = st.none() | st.floats(-1e6, 1e6)


@st.composite
def register_maps(draw: st.DrawFn) -> RegisterMap:
    """A valid map of a few of the reading's fields, with gaps, limits, scales and codes."""
    fields = draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=len(FIELD_NAMES),
                           unique=True))
    address = draw(st.integers(0, 1000))
    registers: list[dict[str, Any]] = []
    for field in fields:
        kind = draw(st.sampled_from(["uint16", "int16", "bool", "enum", "date_ymd"]))
        register: dict[str, Any] = {"field": field, "address": address, "type": kind}
        if kind in ("uint16", "int16"):
            register |= {"scale": draw(st.floats(-1e3, 1e3)), "min": draw(limits),
                         "max": draw(limits)}
        if kind == "enum":
            register["values"] = draw(st.dictionaries(st.integers(0, 0xFFFF),
                                                      st.text(max_size=8), min_size=1))
        registers.append(register)
        address += (3 if kind == "date_ymd" else 1) + draw(st.integers(0, 3))
    return RegisterMap.model_validate({"name": "fuzz", "registers": registers})


@fuzzing(ci_examples=300)
@given(data=st.data(), register_map=register_maps())
def test_any_block_for_any_map_decodes_within_the_maps_limits_or_raises_cabinet_read_error(
        data: st.DataObject, register_map: RegisterMap) -> None:
    block = data.draw(blocks(register_map) | full_blocks(register_map), label="block")
    try:
        reading = decode_registers(register_map, block)
    except CabinetReadError:
        event("refused")
        return
    event("decoded")
    assert_within_its_map(register_map, reading)


# --- map files ----------------------------------------------------------------------------------

TOML_PIECES = st.sampled_from(['"', "'", "=", "[", "]", "[[", "{", "}", ",", ".", "-", "\n", "#",
                               "0", "1", "65536", "-1", "1e400", "nan", "inf", "true",
                               "registers", "field", "address", "type", "enum", "values",
                               "scale", "min", "max", "\\", "\x00", "é"])


@fuzzing(ci_examples=200)
@given(text=mutated_text(RCC1_FILE.read_text(encoding="utf-8"), TOML_PIECES, max_edits=6))
def test_a_mutated_map_file_loads_or_raises_register_map_error(
        text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzzed-cabinet.toml"
    path.write_text(text, encoding="utf-8")
    try:
        register_map = load_register_map(path)
    except RegisterMapError as exc:
        assert str(path) in str(exc)
    else:
        assert register_map.registers


def test_a_map_file_that_is_not_utf8_raises_register_map_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(RegisterMapError):
        load_register_map(path)


def test_a_map_with_a_nan_scale_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.toml"
    path.write_text(RCC1_FILE.read_text(encoding="utf-8").replace("scale = 0.1", "scale = nan"),
                    encoding="utf-8")
    with pytest.raises(RegisterMapError):
        load_register_map(path)


def test_decoding_keeps_no_memory_per_hostile_block() -> None:
    example = struct.pack(">10H", *EXAMPLE_BLOCK)
    hostile = [list(struct.unpack(f">{len(raw) // 2}H", raw[:len(raw) // 2 * 2]))
               for raw in random_variants([example], 3000, seed=2)]

    def decode_all() -> None:
        for block in hostile:
            with contextlib.suppress(CabinetReadError):
                decode_registers(RCC1, block)

    assert memory_growth(decode_all) < MEMORY_SLACK
