"""Region files that cannot be used are refused with a reason that names what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet.regions import RegionError, parse_spec, read_region_file

SQUARE = {"type": "Polygon", "coordinates": [[[5, 52], [6, 52], [6, 53], [5, 53], [5, 52]]]}
GOOD: dict[str, Any] = {"code": "NL-UT", "name": "Utrecht", "timezone": "Europe/Amsterdam",
                        "languages": ["nl", "en"], "area": "x.geojson"}


def test_a_good_region_keeps_its_overrides_apart_from_the_settings() -> None:
    spec = parse_spec({**GOOD, "dispatch": {"max_alerted": 40}}, SQUARE)
    assert spec.country == "NL"  # from the code
    assert spec.dispatch == {"max_alerted": 40} and spec.readiness == {}
    assert spec.languages == ("nl", "en")


@pytest.mark.parametrize(("change", "area", "words"), [
    ({"code": "nl"}, SQUARE, "code must be"),
    ({"code": "NL-UTRECHT-CENTRUM-X"}, SQUARE, "code must be"),
    ({"name": ""}, SQUARE, "name must be"),
    ({"timezone": "Europe/Atlantis"}, SQUARE, "unknown time zone"),
    ({"timezone": "../etc/passwd"}, SQUARE, "unknown time zone"),
    ({"country": "Netherlands"}, SQUARE, "two-letter"),
    ({"languages": []}, SQUARE, "languages must"),
    ({"languages": ["nl", "es"]}, SQUARE, "languages must"),
    ({"languages": ["nl", "nl"]}, SQUARE, "languages must"),
    ({"colour": "orange"}, SQUARE, "unknown key"),
    ({"dispatch": {"max_alerted": "many"}}, SQUARE, "max_alerted"),
    ({"dispatch": {"max_alerts": 5}}, SQUARE, "has no setting max_alerts"),
    ({"dispatch": {"cpr_share": 2}}, SQUARE, "cpr_share"),
    ({"dispatch": {"medical_only_incident_types": ["heartbreak"]}}, SQUARE, "heartbreak"),
    ({"dispatch": {"min_age_years": 16}}, SQUARE, "the same for every region"),
    ({"readiness": {"battery_low_pct": "low"}}, SQUARE, "battery_low_pct"),
    ({"dispatch": "wide"}, SQUARE, "must be tables"),
    ({}, {"type": "Point", "coordinates": [5, 52]}, "must be a polygon"),
    ({}, {"type": "Polygon", "coordinates": "nowhere"}, "not valid GeoJSON"),
    ({}, {"type": "FeatureCollection", "features": []}, "no features"),
    ({}, [1, 2], "GeoJSON object"),
    ({"timezone": "Europe"}, SQUARE, "unknown time zone"),  # a folder of the zone database
    ({}, {"type": "Circle", "coordinates": [5, 52]}, "not valid GeoJSON"),
    ({}, {"type": "Polygon", "coordinates": []}, "empty"),
    ({}, {"type": "Polygon", "coordinates": [[[500, 52], [501, 52], [501, 53], [500, 52]]]},
     "longitude, latitude"),
])
def test_a_bad_region_file_is_refused_with_its_reason(change: dict[str, Any], area: Any,
                                                     words: str) -> None:
    with pytest.raises(RegionError, match=words):
        parse_spec({**GOOD, **change}, area)


def test_a_region_file_names_its_area_file_and_both_must_be_readable(tmp_path: Path) -> None:
    toml = tmp_path / "ut.toml"
    toml.write_text('code = "NL-UT"\nname = "Utrecht"\ntimezone = "Europe/Amsterdam"\n'
                    'languages = ["nl"]\narea = "missing.geojson"\n', encoding="utf-8")
    with pytest.raises(RegionError, match="missing.geojson"):
        read_region_file(toml)
    toml.write_text("code = [", encoding="utf-8")
    with pytest.raises(RegionError, match="ut.toml"):
        read_region_file(toml)


def test_a_self_crossing_outline_is_repaired_rather_than_refused() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[5, 52], [6, 53], [6, 52], [5, 53], [5, 52]]]}
    spec = parse_spec(GOOD, bowtie)
    assert '"MultiPolygon"' in spec.area_geojson or '"Polygon"' in spec.area_geojson
