"""Modbus register maps as data (contract §3): RCC-1, decoding rules, bad maps, a new vendor."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agents.errors import CabinetReadError, RegisterMapError
from device_agents.reading import ControllerReading
from device_agents.register_map import (
    RegisterMap,
    decode_registers,
    encode_reading,
    find_register_map,
    load_register_map,
)

CABINETS = Path(__file__).resolve().parents[2] / "config" / "cabinets"
RCC1 = load_register_map(CABINETS / "rcc1.toml")

# The contract §3 example state: 87 %, pads to 2027-05-01, door shut, AED in, 12.5 °C, passed,
# heater off, on mains.
EXAMPLE_BLOCK = [87, 2027, 5, 1, 0, 1, 125, 1, 0, 0]
EXAMPLE_READING = ControllerReading(
    battery_pct=87, pads_expiry=date(2027, 5, 1), door_open=False, aed_present=True,
    temperature_c=12.5, self_test="pass", heater_on=False, power="mains")


def block(**changes: int) -> list[int]:
    """The example block with registers changed by their contract §3 address (`r6=0xFF83`)."""
    registers = list(EXAMPLE_BLOCK)
    for name, value in changes.items():
        registers[int(name[1:])] = value
    return registers


# --- the RCC-1 map ------------------------------------------------------------------------------

def test_rcc1_map_covers_registers_0_to_9_with_unit_id_1() -> None:
    assert (RCC1.name, RCC1.unit_id, RCC1.function) == ("rcc1", 1, "holding")
    assert (RCC1.first_address, RCC1.count) == (0, 10)
    assert RCC1.coils == {"unlock": 0}


def test_rcc1_map_places_each_field_at_its_contract_address() -> None:
    addresses = {r.field: (r.address, r.type) for r in RCC1.registers}
    assert addresses == {
        "battery_pct": (0, "uint16"), "pads_expiry": (1, "date_ymd"), "door_open": (4, "bool"),
        "aed_present": (5, "bool"), "temperature_c": (6, "int16"), "self_test": (7, "enum"),
        "heater_on": (8, "bool"), "power": (9, "enum")}


def test_find_register_map_looks_a_model_up_by_name_in_a_folder() -> None:
    assert find_register_map("rcc1", CABINETS) == RCC1


def test_contract_example_block_decodes_to_the_example_reading() -> None:
    assert decode_registers(RCC1, EXAMPLE_BLOCK) == EXAMPLE_READING


def test_contract_example_reading_encodes_to_the_example_block() -> None:
    assert encode_reading(RCC1, EXAMPLE_READING) == EXAMPLE_BLOCK


@pytest.mark.parametrize(("word", "celsius"), [
    (0xFF83, -12.5), (0xFFFF, -0.1), (0xFE70, -40.0), (0x0000, 0.0), (0x0352, 85.0),
    (0x0001, 0.1)])
def test_temperature_is_int16_twos_complement_in_tenths(word: int, celsius: float) -> None:
    assert decode_registers(RCC1, block(r6=word)).temperature_c == celsius


def test_negative_temperature_encodes_as_twos_complement() -> None:
    reading = ControllerReading(temperature_c=-12.5)
    assert encode_reading(RCC1, reading)[6] == 0xFF83


@pytest.mark.parametrize(("register", "value", "field", "expected"), [
    (7, 0, "self_test", "unknown"), (7, 1, "self_test", "pass"), (7, 2, "self_test", "fail"),
    (9, 0, "power", "mains"), (9, 1, "power", "battery"),
    (4, 1, "door_open", True), (5, 0, "aed_present", False), (8, 1, "heater_on", True),
    (0, 0, "battery_pct", 0), (0, 100, "battery_pct", 100)])
def test_each_register_value_decodes_to_its_contract_meaning(
        register: int, value: int, field: str, expected: object) -> None:
    reading = decode_registers(RCC1, block(**{f"r{register}": value}))
    assert getattr(reading, field) == expected


def test_all_zero_date_registers_mean_the_pads_expiry_is_unknown() -> None:
    assert decode_registers(RCC1, block(r1=0, r2=0, r3=0)).pads_expiry is None


def test_a_longer_read_than_the_map_needs_is_decoded_from_its_start() -> None:
    assert decode_registers(RCC1, EXAMPLE_BLOCK + [7, 7]) == EXAMPLE_READING


rcc1_readings = st.builds(
    ControllerReading,
    battery_pct=st.integers(0, 100),
    pads_expiry=st.none() | st.dates(date(1, 1, 1), date(9999, 12, 31)),
    door_open=st.booleans(),
    aed_present=st.booleans(),
    temperature_c=st.integers(-400, 850).map(lambda tenths: tenths / 10),
    self_test=st.sampled_from(["pass", "fail", "unknown"]),
    heater_on=st.booleans(),
    power=st.sampled_from(["mains", "battery"]),
)


@given(reading=rcc1_readings)
def test_encoding_then_decoding_a_reading_gives_it_back(reading: ControllerReading) -> None:
    registers = encode_reading(RCC1, reading)
    assert len(registers) == RCC1.count
    assert all(0 <= word <= 0xFFFF for word in registers)
    assert decode_registers(RCC1, registers) == reading


# --- bad register values ------------------------------------------------------------------------

BAD_BLOCKS: list[tuple[str, list[int], str]] = [
    ("battery 101 %", block(r0=101), "battery_pct"),
    ("temperature above 85.0", block(r6=851), "temperature_c"),
    ("temperature below -40.0", block(r6=0x10000 - 401), "temperature_c"),
    ("door 2", block(r4=2), "door_open"),
    ("aed_present 0xFFFF", block(r5=0xFFFF), "aed_present"),
    ("heater 7", block(r8=7), "heater_on"),
    ("self-test code 3", block(r7=3), "self_test"),
    ("power code 2", block(r9=2), "power"),
    ("month 13", block(r2=13), "pads_expiry"),
    ("30 February", block(r2=2, r3=30), "pads_expiry"),
    ("year 0", block(r1=0), "pads_expiry"),
    ("register above 16 bits", block(r0=0x10000), "battery_pct"),
    ("negative register", block(r4=-1), "door_open"),
]


@pytest.mark.parametrize(("registers", "field"), [(regs, field) for _, regs, field in BAD_BLOCKS],
                         ids=[name for name, _, _ in BAD_BLOCKS])
def test_a_bad_register_value_raises_cabinet_read_error_naming_the_field(
        registers: list[int], field: str) -> None:
    with pytest.raises(CabinetReadError, match=field):
        decode_registers(RCC1, registers)


@pytest.mark.parametrize("length", [0, 1, 9])
def test_a_short_read_raises_cabinet_read_error(length: int) -> None:
    with pytest.raises(CabinetReadError, match=f"short read: {length} of 10"):
        decode_registers(RCC1, EXAMPLE_BLOCK[:length])


# --- invalid map files --------------------------------------------------------------------------

VALID_REGISTER = '[[registers]]\nfield = "battery_pct"\naddress = 0\ntype = "uint16"\n'
INVALID_MAPS: list[tuple[str, str, str]] = [
    ("unknown field", 'name = "x"\n[[registers]]\nfield = "batery_pct"\naddress = 0\n'
     'type = "uint16"\n', "unknown field 'batery_pct'"),
    ("enum without values", 'name = "x"\n[[registers]]\nfield = "power"\naddress = 0\n'
     'type = "enum"\n', "needs a values table"),
    ("enum with an empty values table", 'name = "x"\n[[registers]]\nfield = "power"\n'
     'address = 0\ntype = "enum"\nvalues = {}\n', "needs a values table"),
    ("two registers at one address", 'name = "x"\n' + VALID_REGISTER +
     '[[registers]]\nfield = "door_open"\naddress = 0\ntype = "bool"\n', "address 0 used by"),
    ("a date overlapping the next register", 'name = "x"\n[[registers]]\nfield = "pads_expiry"\n'
     'address = 0\ntype = "date_ymd"\n[[registers]]\nfield = "door_open"\naddress = 2\n'
     'type = "bool"\n', "address 2 used by pads_expiry and door_open"),
    ("unknown top-level key", 'name = "x"\nbaud = 9600\n' + VALID_REGISTER, "baud"),
    ("unknown register key", 'name = "x"\n[[registers]]\nfield = "battery_pct"\naddress = 0\n'
     'type = "uint16"\nsigned = true\n', "signed"),
    ("unknown register type", 'name = "x"\n[[registers]]\nfield = "battery_pct"\naddress = 0\n'
     'type = "float32"\n', "type"),
    ("address beyond 16 bits", 'name = "x"\n[[registers]]\nfield = "battery_pct"\n'
     'address = 65536\ntype = "uint16"\n', "address"),
    ("unit id beyond 247", 'name = "x"\nunit_id = 248\n' + VALID_REGISTER, "unit_id"),
    ("registers spanning more than one read", 'name = "x"\n' + VALID_REGISTER +
     '[[registers]]\nfield = "door_open"\naddress = 125\ntype = "bool"\n', "125 registers"),
    ("no name", VALID_REGISTER, "name"),
    ("no registers", 'name = "x"\n', "registers"),
    ("bad TOML", 'name = "x\n' + VALID_REGISTER, "rcc9.toml"),
]


@pytest.mark.parametrize(("text", "reason"), [(text, reason) for _, text, reason in INVALID_MAPS],
                         ids=[name for name, _, _ in INVALID_MAPS])
def test_an_invalid_map_file_raises_register_map_error_naming_the_problem(
        tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "rcc9.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegisterMapError) as caught:
        load_register_map(path)
    assert reason in str(caught.value)


def test_a_missing_map_file_raises_register_map_error(tmp_path: Path) -> None:
    with pytest.raises(RegisterMapError, match="cannot read register map"):
        find_register_map("no-such-cabinet", tmp_path)


# --- a second vendor's cabinet is a new map, not new code ---------------------------------------

VENDOR_MAP = """
name = "acme-cab2"
description = "A different vendor: input registers from 100, hundredths of a degree"
unit_id = 7
function = "input"

[[registers]]
field = "temperature_c"
address = 100
type = "int16"
scale = 0.01
min = -30
max = 70

[[registers]]
field = "self_test"
address = 101
type = "enum"
values = { 0 = "unknown", 10 = "pass", 20 = "fail" }

[[registers]]
field = "battery_pct"
address = 102
type = "uint16"
scale = 0.5
min = 0
max = 100

[[registers]]
field = "aed_present"
address = 104
type = "bool"

[[registers]]
field = "pads_expiry"
address = 105
type = "date_ymd"

[coils]
unlock = 3
"""


VENDOR = RegisterMap.model_validate(tomllib.loads(VENDOR_MAP))


@pytest.fixture
def vendor_map(tmp_path: Path) -> RegisterMap:
    path = tmp_path / "acme-cab2.toml"
    path.write_text(VENDOR_MAP, encoding="utf-8")
    return load_register_map(path)


def test_a_second_vendors_map_loads_with_its_own_addresses(vendor_map: RegisterMap) -> None:
    assert (vendor_map.unit_id, vendor_map.function) == (7, "input")
    assert (vendor_map.first_address, vendor_map.count) == (100, 8)
    assert vendor_map.coils == {"unlock": 3}


def test_a_second_vendors_block_decodes_with_its_own_scale_and_codes(
        vendor_map: RegisterMap) -> None:
    # 100: -2.5 °C in hundredths, 101: fail, 102: 87 % in half percent, 103: unused,
    # 104: AED present, 105-107: 2027-05-01
    registers = [0x10000 - 250, 20, 174, 0xBEEF, 1, 2027, 5, 1]
    assert decode_registers(vendor_map, registers) == ControllerReading(
        temperature_c=-2.5, self_test="fail", battery_pct=87, aed_present=True,
        pads_expiry=date(2027, 5, 1))


@pytest.mark.parametrize(("registers", "field"), [
    ([7001, 10, 100, 0, 1, 0, 0, 0], "temperature_c"),
    ([0, 1, 100, 0, 1, 0, 0, 0], "self_test"),
    ([0, 10, 201, 0, 1, 0, 0, 0], "battery_pct"),
])
def test_a_second_vendors_limits_and_codes_are_checked(
        vendor_map: RegisterMap, registers: list[int], field: str) -> None:
    with pytest.raises(CabinetReadError, match=field):
        decode_registers(vendor_map, registers)


vendor_readings = st.builds(
    ControllerReading,
    temperature_c=st.integers(-3000, 7000).map(lambda hundredths: hundredths / 100),
    self_test=st.sampled_from(["pass", "fail", "unknown"]),
    battery_pct=st.integers(0, 100),
    aed_present=st.booleans(),
    pads_expiry=st.none() | st.dates(date(2000, 1, 1), date(2099, 12, 31)),
)


@given(reading=vendor_readings)
def test_a_second_vendors_map_round_trips_readings(reading: ControllerReading) -> None:
    assert decode_registers(VENDOR, encode_reading(VENDOR, reading)) == reading


@pytest.mark.parametrize(("bounds", "word"), [("max = 100", 101), ("min = 10", 9)])
def test_a_map_with_only_one_bound_rejects_values_beyond_it(
        tmp_path: Path, bounds: str, word: int) -> None:
    path = tmp_path / "one-bound.toml"
    path.write_text(f'name = "one-bound"\n{VALID_REGISTER}{bounds}\n', encoding="utf-8")
    with pytest.raises(CabinetReadError, match="battery_pct"):
        decode_registers(load_register_map(path), [word])
