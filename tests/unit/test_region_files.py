"""The region files in config/regions: they load, their areas do not overlap, and the demo's
AEDs lie in their own region."""

from __future__ import annotations

import csv
from importlib import resources
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from fleet.readiness import ReadinessPolicy
from fleet.regions import Region, RegionMap, check_overlaps, read_region_file

REGIONS = Path(__file__).resolve().parents[2] / "config" / "regions"


@pytest.fixture(scope="module")
def regions() -> dict[str, Region]:
    specs = [read_region_file(path) for path in sorted(REGIONS.glob("*.toml"))]
    return {spec.code: spec.region(DispatchPolicy(), ReadinessPolicy()) for spec in specs}


def demo_registry(name: str) -> tuple[np.ndarray, np.ndarray]:
    text = resources.files("fleet.data").joinpath(name).read_text("utf-8")
    rows = list(csv.DictReader(StringIO(text)))
    return (np.array([float(r["lat"]) for r in rows]), np.array([float(r["lon"]) for r in rows]))


def test_every_region_file_loads_and_no_two_areas_overlap(regions: dict[str, Region]) -> None:
    assert sorted(regions) == ["BE-VLG-LEUVEN", "DE-NW-KOELN", "DE-RP-NEUWIED", "IE-GALWAY", "NL"]
    check_overlaps(regions.values())


@pytest.mark.parametrize(("code", "timezone", "languages"), [
    ("NL", "Europe/Amsterdam", ("nl", "en")),
    ("DE-NW-KOELN", "Europe/Berlin", ("de", "en")),
    ("BE-VLG-LEUVEN", "Europe/Brussels", ("nl", "fr", "en")),
    ("IE-GALWAY", "Europe/Dublin", ("en",)),
    ("DE-RP-NEUWIED", "Europe/Berlin", ("de",)),
])
def test_each_region_has_its_time_zone_and_languages(
        regions: dict[str, Region], code: str, timezone: str, languages: tuple[str, ...]) -> None:
    assert (regions[code].timezone, regions[code].languages) == (timezone, languages)


def test_cologne_sends_aeds_open_now_and_the_netherlands_only_those_open_day_and_night(
        regions: dict[str, Region]) -> None:
    assert regions["DE-NW-KOELN"].dispatch.aed_access == AedAccessPolicy.OPEN_NOW
    assert regions["DE-NW-KOELN"].readiness.battery_low_pct == 25
    assert regions["NL"].dispatch.aed_access == AedAccessPolicy.ALWAYS_OPEN


def test_the_netherlands_and_cologne_share_neither_responders_nor_aeds(
        regions: dict[str, Region]) -> None:
    nl, koeln = regions["NL"], regions["DE-NW-KOELN"]

    assert not nl.shares_responders_with(koeln)
    assert not nl.shares_aeds_with(koeln)


@pytest.mark.parametrize(("registry", "code"), [
    ("demo_registry_utrecht.csv", "NL"),
    ("demo_registry_koeln.csv", "DE-NW-KOELN"),
])
def test_every_demo_aed_lies_in_its_own_region(regions: dict[str, Region], registry: str,
                                               code: str) -> None:
    lats, lons = demo_registry(registry)

    assert set(RegionMap(list(regions.values())).codes_at(lats, lons)) == {code}


@pytest.mark.parametrize(("place", "code"), [
    ((52.0907, 5.1214), "NL"),  # Utrecht
    ((53.2194, 6.5665), "NL"),  # Groningen
    ((50.8514, 5.6910), "NL"),  # Maastricht
    ((53.3668, 5.2200), "NL"),  # Terschelling
    ((50.9413, 6.9583), "DE-NW-KOELN"),  # the cathedral
    ((50.8659, 7.1427), "DE-NW-KOELN"),  # the airport
    ((50.8798, 4.7005), "BE-VLG-LEUVEN"),
    ((53.2707, -9.0568), "IE-GALWAY"),
    ((50.4286, 7.4615), "DE-RP-NEUWIED"),
    ((51.2277, 6.7735), None),  # Düsseldorf
    ((50.8503, 4.3517), None),  # Brussels
])
def test_places_fall_in_the_region_they_belong_to(regions: dict[str, Region],
                                                  place: tuple[float, float],
                                                  code: str | None) -> None:
    found = RegionMap(list(regions.values())).region_at(*place)

    assert (found.code if found else None) == code


def test_the_area_of_the_netherlands_stays_small() -> None:
    assert (REGIONS / "nl.geojson").stat().st_size < 300_000
