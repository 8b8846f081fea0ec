"""Registry files: every rejection with its line, file-level errors, OSM mapping, real exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.access import opening_hours_error
from fleet.errors import ImportFileError
from fleet.models import ID_PATTERN
from fleet.registry_file import (
    REGISTRY_COLUMNS,
    ParsedFile,
    RowError,
    RowRejection,
    parse_csv,
    parse_geojson,
    read_registry_file,
    record_from_fields,
)

TEST_DATA = Path(__file__).parent.parent / "data"
HEADER = "id,lat,lon,opening_hours,access,indoor,pads_expiry,device_id"


def ids_by_line(parsed: ParsedFile) -> list[tuple[int, str]]:
    return [(line, record.id) for line, record in parsed.records]


def feature(properties: dict[str, Any] | None = None, coordinates: Any = (5.1, 52.1),
            **members: Any) -> dict[str, Any]:
    """A GeoJSON point feature; `members` adds or replaces top-level members (`id`, `geometry`)."""
    return {"type": "Feature", "properties": properties or {},
            "geometry": {"type": "Point", "coordinates": list(coordinates)}, **members}


def collection(*features: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


# --- Registry CSV: one bad row between two good ones -----------------------------------------

BAD_ROWS = [
    # (name, the row at line 3, the reason's start, the id the rejection names)
    ("missing id", ",52.2,5.2,24/7,public,yes,2027-01-01,", "missing id", None),
    ("blank id", "  ,52.2,5.2,24/7,public,yes,2027-01-01,", "missing id", None),
    ("id with a space", "bad id,52.2,5.2,,,,,", "invalid id 'bad id'", "bad id"),
    ("id with a slash", "node/12,52.2,5.2,,,,,", "invalid id 'node/12'", "node/12"),
    ("id longer than 64", "x" * 65 + ",52.2,5.2,,,,,", "invalid id", "x" * 65),
    ("missing lat", "b1,,5.2,,,,,", "bad coordinates: lat and lon are required", "b1"),
    ("missing lon", "b1,52.2, ,,,,,", "bad coordinates: lat and lon are required", "b1"),
    ("non-numeric lat", "b1,north,5.2,,,,,", "bad coordinates: 'north', '5.2' are not numbers",
     "b1"),
    ("lat out of range", "b1,91,5.2,,,,,", "bad coordinates: lat 91.0 / lon 5.2 out of range",
     "b1"),
    ("lon out of range", "b1,52.2,-180.5,,,,,", "bad coordinates: lat 52.2 / lon -180.5 out of",
     "b1"),
    ("lat and lon swapped beyond range", "b1,120.1,52.2,,,,,", "bad coordinates: lat 120.1",
     "b1"),
    ("0,0", "b1,0,0,,,,,", "bad coordinates: 0, 0 (a missing location)", "b1"),
    ("0.0,0.000", "b1,0.0,0.000,,,,,", "bad coordinates: 0, 0 (a missing location)", "b1"),
    ("NaN", "b1,NaN,5.2,,,,,", "bad coordinates: not finite", "b1"),
    ("infinity", "b1,52.2,inf,,,,,", "bad coordinates: not finite", "b1"),
    ("unparseable hours", "b1,52.2,5.2,Mo - Fr 08:00 - 16:00 Uhr,,,,",
     "unparseable opening_hours 'Mo - Fr 08:00 - 16:00 Uhr'", "b1"),
    ("unknown access", "b1,52.2,5.2,24/7,sometimes,,,",
     "unknown access value 'sometimes'", "b1"),
    ("unknown indoor", "b1,52.2,5.2,24/7,public,wall,,", "unknown indoor value 'wall'", "b1"),
    ("pads expiry not ISO", "b1,52.2,5.2,,,,31-12-2027,",
     "pads_expiry '31-12-2027' is not a date (YYYY-MM-DD)", "b1"),
    ("pads expiry no such day", "b1,52.2,5.2,,,,2027-02-30,",
     "pads_expiry '2027-02-30' is not a date", "b1"),
    ("invalid device id", "b1,52.2,5.2,,,,,cab 7", "invalid device_id 'cab 7'", "b1"),
    ("too few fields", "b1,52.2,5.2", "row has 3 of the header's 8 fields (truncated?)", "b1"),
    ("too many fields", "b1,52.2,5.2,24/7,public,yes,2027-01-01,cab-7,surplus",
     "row has more fields than the header's 8", "b1"),
]


@pytest.mark.parametrize(("row", "reason", "aed_id"), [case[1:] for case in BAD_ROWS],
                         ids=[case[0] for case in BAD_ROWS])
def test_a_bad_row_is_rejected_with_its_line_and_reason_and_its_neighbours_are_kept(
        row: str, reason: str, aed_id: str | None) -> None:
    text = "\n".join([
        HEADER,
        "good-1,52.1,5.1,24/7,public,yes,2027-01-01,cab-1",
        row,
        "good-2,52.3,5.3,Mo-Fr 08:00-18:00,private,no,2027-01-01,cab-2",
    ]) + "\n"
    parsed = parse_csv(text)
    assert ids_by_line(parsed) == [(2, "good-1"), (4, "good-2")]
    [rejection] = parsed.rejections
    assert (rejection.line, rejection.aed_id) == (3, aed_id)
    assert rejection.reason.startswith(reason), rejection.reason


def test_a_good_registry_row_becomes_a_complete_record() -> None:
    text = (
        "id,lat,lon,address,municipality,opening_hours,access,indoor,location_hint,manager,"
        "cabinet_code,device_id,name,serial,make,model,pads_expiry,battery_expiry\n"
        "ams-001, 52.3731 , 4.8922 ,Dam 1,Amsterdam,Mo-Fr 08:00-18:00,Permissive,Yes,"
        "next to the entrance,Gemeente Amsterdam,1234,cab-ams-001,Paleis,SN1,Philips,FRx,"
        "2027-03-01,2029-12-31\n"
    )
    parsed = parse_csv(text, source="city-registry")
    assert parsed.format == "registry-csv"
    assert parsed.rejections == [] and parsed.notes == []
    [(line, record)] = parsed.records
    assert line == 2
    assert record.model_dump() == {
        "id": "ams-001", "lat": 52.3731, "lon": 4.8922, "address": "Dam 1",
        "municipality": "Amsterdam", "opening_hours": "Mo-Fr 08:00-18:00", "access": "public",
        "indoor": True, "location_hint": "next to the entrance", "manager": "Gemeente Amsterdam",
        "cabinet_code": "1234", "device_id": "cab-ams-001", "name": "Paleis", "serial": "SN1",
        "make": "Philips", "model": "FRx", "pads_expiry": date(2027, 3, 1),
        "battery_expiry": date(2029, 12, 31), "out_of_service": False, "source": "city-registry",
    }


def test_the_source_of_records_defaults_to_the_file_format() -> None:
    parsed = parse_csv("id,lat,lon\na1,52.1,5.1\n")
    assert parsed.records[0][1].source == "registry-csv"


def test_a_duplicate_id_is_rejected_naming_the_line_it_was_first_seen_at() -> None:
    parsed = parse_csv("id,lat,lon\na1,52.1,5.1\na2,52.2,5.2\na1,52.3,5.3\n")
    assert ids_by_line(parsed) == [(2, "a1"), (3, "a2")]
    assert parsed.rejections == [RowRejection(4, "duplicate id a1 (first seen at line 2)", "a1")]


def test_a_truncated_last_row_without_newline_is_rejected() -> None:
    parsed = parse_csv("id,lat,lon,opening_hours\na1,52.1,5.1,24/7\na2,52.2")
    assert ids_by_line(parsed) == [(2, "a1")]
    assert parsed.rejections == [
        RowRejection(3, "row has 2 of the header's 4 fields (truncated?)", "a2")]


def test_a_last_row_cut_inside_a_quoted_field_is_rejected() -> None:
    parsed = parse_csv('id,lat,lon,location_hint\na1,52.1,5.1,hall\na2,52.2,"5.2,lob')
    assert ids_by_line(parsed) == [(2, "a1")]
    assert [(r.line, r.reason) for r in parsed.rejections] == [
        (3, "row has 3 of the header's 4 fields (truncated?)")]


@pytest.mark.parametrize("blank", ["", ",,", " , , "], ids=["empty line", "commas", "spaces"])
def test_a_blank_line_is_skipped_without_shifting_line_numbers(blank: str) -> None:
    parsed = parse_csv(f"id,lat,lon\na1,52.1,5.1\n{blank}\na2,52.2,5.2\n")
    assert ids_by_line(parsed) == [(2, "a1"), (4, "a2")]
    assert parsed.rejections == []


def test_a_line_of_only_spaces_is_skipped_like_a_blank_line() -> None:
    parsed = parse_csv("id,lat,lon\na1,52.1,5.1\n   \na2,52.2,5.2\n")
    assert ids_by_line(parsed) == [(2, "a1"), (4, "a2")]
    assert parsed.rejections == []


def test_rows_after_a_quoted_multi_line_field_keep_their_physical_line_numbers() -> None:
    text = (
        "id,lat,lon,location_hint\n"           # line 1
        'a1,52.1,5.1,"in the hall,\n'          # line 2
        'left of the lift"\n'                  # line 3
        "a2,52.2,5.2,lobby\n"                  # line 4
        "a3,,5.3,porch\n"                      # line 5
        "a2,52.4,5.4,again\n"                  # line 6
    )
    parsed = parse_csv(text)
    assert [record.id for _, record in parsed.records] == ["a1", "a2"]
    assert parsed.records[0][1].location_hint == "in the hall,\nleft of the lift"
    assert parsed.records[1][0] == 4
    assert parsed.rejections == [
        RowRejection(5, "bad coordinates: lat and lon are required", "a3"),
        RowRejection(6, "duplicate id a2 (first seen at line 4)", "a2"),
    ]


def test_crlf_line_endings_are_read_like_newlines() -> None:
    parsed = parse_csv("id,lat,lon\r\na1,52.1,5.1\r\nb1,,5.2\r\na2,52.2,5.2\r\n")
    assert ids_by_line(parsed) == [(2, "a1"), (4, "a2")]
    assert [r.line for r in parsed.rejections] == [3]


def test_unknown_columns_are_reported_once_in_a_note_and_ignored() -> None:
    parsed = parse_csv("ID,Lat,Lon,colour,Remarks\na1,52.1,5.1,green,x\na2,52.2,5.2,red,y\n")
    assert parsed.notes == ["columns ignored (not part of the registry format): colour, remarks"]
    assert ids_by_line(parsed) == [(2, "a1"), (3, "a2")]


def test_latitude_and_longitude_are_accepted_for_lat_and_lon() -> None:
    parsed = parse_csv("id,latitude,longitude\na1,52.1,5.1\n")
    assert parsed.notes == []
    assert (parsed.records[0][1].lat, parsed.records[0][1].lon) == (52.1, 5.1)


def test_a_decimal_comma_in_coordinates_is_read_as_a_point() -> None:
    parsed = parse_csv('id,lat,lon\na1,"52,1234","5,5678"\n')
    assert (parsed.records[0][1].lat, parsed.records[0][1].lon) == (52.1234, 5.5678)


def test_coordinates_are_rounded_to_seven_decimals() -> None:
    parsed = parse_csv("id,lat,lon\na1,52.123456789,5.987654321\n")
    assert (parsed.records[0][1].lat, parsed.records[0][1].lon) == (52.1234568, 5.9876543)


def test_an_empty_access_value_means_public() -> None:
    parsed = parse_csv("id,lat,lon,access\na1,52.1,5.1,\n")
    assert parsed.records[0][1].access == "public"


@pytest.mark.parametrize("header", ["id,lat", "id,lon,address", "lat,lon", "name,address"])
def test_a_csv_without_the_required_columns_is_refused(header: str) -> None:
    with pytest.raises(ImportFileError, match="required columns missing"):
        parse_csv(header + "\n")


def test_the_refusal_names_every_missing_required_column() -> None:
    with pytest.raises(ImportFileError, match="required columns missing: lat, lon"):
        parse_csv("id,address\na1,Dam 1\n")


@pytest.mark.parametrize("text", ["", "\n"], ids=["empty", "one newline"])
def test_an_empty_csv_is_refused(text: str) -> None:
    with pytest.raises(ImportFileError, match="empty"):
        parse_csv(text)


def test_a_csv_with_only_a_header_has_no_rows() -> None:
    parsed = parse_csv("id,lat,lon\n")
    assert parsed.rows == 0


@pytest.mark.parametrize(("prefix", "expected"), [("", "a1"), ("nl-", "nl-a1"), ("x_", "x_a1")])
def test_the_id_prefix_is_put_before_every_id(prefix: str, expected: str) -> None:
    parsed = parse_csv("id,lat,lon\na1,52.1,5.1\n", id_prefix=prefix)
    assert ids_by_line(parsed) == [(2, expected)]


def test_an_id_prefix_that_makes_an_id_too_long_rejects_the_row() -> None:
    parsed = parse_csv("id,lat,lon\n" + "a" * 60 + ",52.1,5.1\nb1,52.2,5.2\n", id_prefix="city-")
    assert ids_by_line(parsed) == [(3, "city-b1")]
    [rejection] = parsed.rejections
    assert rejection.line == 2
    assert rejection.reason.startswith("invalid id 'city-" + "a" * 60 + "'")


def test_an_invalid_id_prefix_rejects_every_row() -> None:
    parsed = parse_csv("id,lat,lon\na1,52.1,5.1\n", id_prefix="nl/")
    assert parsed.records == []
    assert parsed.rejections[0].reason.startswith("invalid id 'nl/a1'")


def test_duplicates_are_found_on_the_prefixed_id() -> None:
    parsed = parse_csv("id,lat,lon\na1,52.1,5.1\na1,52.2,5.2\n", id_prefix="nl-")
    assert parsed.rejections == [
        RowRejection(3, "duplicate id nl-a1 (first seen at line 2)", "nl-a1")]


# --- record_from_fields ----------------------------------------------------------------------

BASE_FIELDS = {"id": "a1", "lat": "52.1", "lon": "5.1"}


@pytest.mark.parametrize(("value", "expected"), [
    ("yes", "public"), ("public", "public"), ("permissive", "public"),
    ("customers", "public"), ("designated", "public"), ("Yes", "public"), (" PUBLIC ", "public"),
    ("no", "private"), ("private", "private"), ("employees", "private"), ("staff", "private"),
])
def test_osm_access_values_map_to_public_or_private(value: str, expected: str) -> None:
    assert record_from_fields({**BASE_FIELDS, "access": value}).access == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("yes", True), ("true", True), ("1", True), ("Y", True),
    ("no", False), ("false", False), ("0", False), ("N", False),
])
def test_indoor_values_map_to_true_or_false(value: str, expected: bool) -> None:
    assert record_from_fields({**BASE_FIELDS, "indoor": value}).indoor is expected


@pytest.mark.parametrize(("tags", "address"), [
    ({"addr:street": "Bahnhofstrasse", "addr:housenumber": "1", "addr:postcode": "8001",
      "addr:city": "Zürich"}, "Bahnhofstrasse 1, 8001 Zürich"),
    ({"addr:street": "Bahnhofstrasse", "addr:housenumber": "1"}, "Bahnhofstrasse 1"),
    ({"addr:street": "Bahnhofstrasse", "addr:city": "Zürich"}, "Bahnhofstrasse, Zürich"),
    ({"addr:postcode": "8001", "addr:city": "Zürich"}, "8001 Zürich"),
    ({"addr:city": "Zürich"}, "Zürich"),
    ({"addr:housenumber": "", "addr:city": " "}, None),
    ({"address": "Dam 1", "addr:street": "Elsewhere"}, "Dam 1"),
])
def test_an_osm_address_is_composed_from_its_addr_tags(
        tags: dict[str, str], address: str | None) -> None:
    assert record_from_fields({**BASE_FIELDS, **tags}).address == address


def test_a_postal_code_column_is_added_to_the_address_once() -> None:
    with_code = record_from_fields({**BASE_FIELDS, "address": "Dam 1", "postalcode": "1012 JS"})
    already = record_from_fields(
        {**BASE_FIELDS, "address": "Dam 1, 1012 JS", "postalcode": "1012 JS"})
    assert with_code.address == "Dam 1, 1012 JS"
    assert already.address == "Dam 1, 1012 JS"


def test_osm_tags_fill_the_manager_and_location_hint() -> None:
    record = record_from_fields({**BASE_FIELDS, "operator": "Samariterverein",
                                 "defibrillator:location": "Perron 1",
                                 "description": "löst keinen Alarm aus"})
    assert (record.manager, record.location_hint) == ("Samariterverein", "Perron 1")


def test_a_description_is_the_location_hint_when_there_is_no_other() -> None:
    record = record_from_fields({**BASE_FIELDS, "description": "at the bus stop"})
    assert record.location_hint == "at the bus stop"


def test_a_registry_column_wins_over_its_osm_alias_in_either_order() -> None:
    first = record_from_fields({**BASE_FIELDS, "manager": "GGD", "operator": "OSM operator"})
    last = record_from_fields({**BASE_FIELDS, "operator": "OSM operator", "manager": "GGD"})
    assert first.manager == last.manager == "GGD"


@pytest.mark.parametrize(("name", "limit"), [
    ("address", 300), ("location_hint", 500), ("name", 200), ("opening_hours", 500),
    ("cabinet_code", 32), ("manager", 200), ("municipality", 120),
])
def test_a_field_longer_than_its_column_rejects_the_row(name: str, limit: int) -> None:
    value = "24/7" + "; 24/7" * 100 if name == "opening_hours" else "x" * (limit + 1)
    with pytest.raises(RowError, match=f"{name} longer than {limit} characters"):
        record_from_fields({**BASE_FIELDS, name: value})


def test_values_are_stripped_of_surrounding_whitespace() -> None:
    record = record_from_fields({"id": " a1 ", "lat": " 52.1", "lon": "5.1 ",
                                 "name": "  Town hall  ", "opening_hours": " 24/7 "})
    assert (record.id, record.name, record.opening_hours) == ("a1", "Town hall", "24/7")


# --- GeoJSON ----------------------------------------------------------------------------------

def test_osm_features_get_osm_node_ids_and_their_tags_are_read() -> None:
    parsed = parse_geojson(collection(
        feature({"osm_id": 692850699, "osm_type": "node", "access": "permissive",
                 "defibrillator:location": "Bushaltestelle", "opening_hours": "24/7",
                 "indoor": "no", "operator": "Gemeinde"}, (8.8311129, 47.6780089),
                id="node/692850699"),
        feature({"osm_id": 42, "osm_type": "way"}, (8.5, 47.3), id="way/42"),
        feature({}, (8.6, 47.4), id="node/7"),
    ))
    assert parsed.format == "osm-geojson"
    assert ids_by_line(parsed) == [
        (1, "osm-node-692850699"), (2, "osm-way-42"), (3, "osm-node-7")]
    first = parsed.records[0][1]
    assert (first.lat, first.lon) == (47.6780089, 8.8311129)
    assert (first.access, first.indoor, first.location_hint, first.manager, first.source) == (
        "public", False, "Bushaltestelle", "Gemeinde", "osm-geojson")


def test_an_osm_export_with_ids_only_on_the_features_is_recognised_as_osm() -> None:
    parsed = parse_geojson(collection(
        feature({"@id": "node/5", "emergency": "defibrillator"}, (8.5, 47.3), id="node/5")))
    assert ids_by_line(parsed) == [(1, "osm-node-5")]
    assert parsed.format == "osm-geojson"
    assert parsed.records[0][1].source == "osm-geojson"


def test_registry_geojson_takes_the_id_property_and_else_the_feature_id() -> None:
    parsed = parse_geojson(collection(
        feature({"id": "ams-1", "access": "private"}, id="ignored"),
        feature({"name": "Town hall"}, (5.2, 52.2), id=17),
    ))
    assert parsed.format == "geojson"
    assert ids_by_line(parsed) == [(1, "ams-1"), (2, "17")]
    assert parsed.records[0][1].access == "private"


def test_the_id_prefix_applies_to_osm_ids() -> None:
    parsed = parse_geojson(collection(feature({"osm_id": 5, "osm_type": "node"})),
                           id_prefix="ch-")
    assert ids_by_line(parsed) == [(1, "ch-osm-node-5")]


BAD_FEATURES = [
    ("no geometry", feature({"id": "b1"}, geometry=None),
     "bad coordinates: feature has no geometry"),
    ("a line, not a point",
     feature({"id": "b1"}, geometry={"type": "LineString", "coordinates": [[5, 52], [6, 53]]}),
     "bad coordinates: geometry is not a Point"),
    ("a point without coordinates",
     feature({"id": "b1"}, geometry={"type": "Point", "coordinates": [5.1]}),
     "bad coordinates: Point without [lon, lat]"),
    ("null coordinates", feature({"id": "b1"}, (None, None)), "bad coordinates: 'None', 'None'"),
    ("lat out of range", feature({"id": "b1"}, (5.1, 95.0)), "bad coordinates: lat 95.0"),
    ("null island", feature({"id": "b1"}, (0, 0)), "bad coordinates: 0, 0"),
    ("not a feature", {"type": "Point", "coordinates": [5.1, 52.1]}, "not a GeoJSON Feature"),
    ("properties not an object", feature() | {"properties": [1]},
     "feature properties are not an object"),
    ("osm feature with unknown access", feature({"osm_id": 9, "access": "PUB"}),
     "unknown access value 'PUB'"),
    ("no id at all", feature({"name": "x"}), "missing id"),
]


@pytest.mark.parametrize(("bad", "reason"), [case[1:] for case in BAD_FEATURES],
                         ids=[case[0] for case in BAD_FEATURES])
def test_a_bad_feature_is_rejected_with_its_feature_number(bad: Any, reason: str) -> None:
    parsed = parse_geojson(collection(
        feature({"id": "good-1"}), bad, feature({"id": "good-2"}, (5.3, 52.3))))
    assert ids_by_line(parsed) == [(1, "good-1"), (3, "good-2")]
    [rejection] = parsed.rejections
    assert rejection.line == 2
    assert rejection.reason.startswith(reason), rejection.reason


def test_a_truncated_geojson_file_is_refused() -> None:
    text = collection(feature({"id": "a1"}), feature({"id": "a2"}))
    with pytest.raises(ImportFileError, match="not valid JSON .* truncated"):
        parse_geojson(text[: len(text) // 2])


@pytest.mark.parametrize("document", [
    {"type": "Feature", "properties": {}, "geometry": None},
    [{"type": "Feature"}],
    {"features": []},
    "FeatureCollection",
])
def test_json_that_is_not_a_feature_collection_is_refused(document: Any) -> None:
    with pytest.raises(ImportFileError, match="not a GeoJSON FeatureCollection"):
        parse_geojson(json.dumps(document))


def test_a_feature_collection_without_a_features_list_is_refused() -> None:
    with pytest.raises(ImportFileError, match="without a features list"):
        parse_geojson(json.dumps({"type": "FeatureCollection", "features": {}}))


# --- OpenStreetMap CSV ------------------------------------------------------------------------

def test_an_osm_csv_export_gets_osm_ids_and_keeps_tag_columns_quietly() -> None:
    parsed = parse_csv(
        "osm_id,osm_type,lat,lon,access,addr:street,addr:housenumber,emergency:phone\n"
        "123,node,47.1,8.1,customers,Hauptstrasse,5,144\n"
        "x9,node,47.2,8.2,yes,,,144\n"
    )
    assert parsed.format == "osm-csv"
    assert parsed.notes == []
    [(line, record)] = parsed.records
    assert (line, record.id, record.access, record.address) == (
        2, "osm-node-123", "public", "Hauptstrasse 5")
    assert parsed.rejections == [RowRejection(3, "missing id")]


# --- Real exports in tests/data --------------------------------------------------------------

@pytest.fixture(scope="module")
def swiss() -> ParsedFile:
    return read_registry_file(TEST_DATA / "ch_osm_defibrillators_2020-12.geojson")


@pytest.fixture(scope="module")
def cologne() -> ParsedFile:
    return read_registry_file(TEST_DATA / "koeln_aed.csv")


def test_the_swiss_osm_export_keeps_all_but_four_of_its_1550_features(swiss: ParsedFile) -> None:
    assert swiss.format == "osm-geojson"
    assert (swiss.rows, len(swiss.records), len(swiss.rejections)) == (1550, 1546, 4)
    assert [(r.line, r.aed_id, r.reason.split(":")[0]) for r in swiss.rejections] == [
        (272, "osm-node-6633263848", "unknown access value 'PUB'"),
        (380, "osm-node-6637199787", "unknown access value 'PUB'"),
        (1454, "osm-node-7978662260", "unknown indoor value 'wall'"),
        (1519, "osm-node-8154591433", "unknown access value '7/24'"),
    ]


def test_every_swiss_record_is_an_osm_node_with_a_unique_id(swiss: ParsedFile) -> None:
    ids = [record.id for _, record in swiss.records]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"osm-node-\d+", aed_id) for aed_id in ids)
    assert Counter(record.access for _, record in swiss.records) == {
        "public": 1538, "private": 8}
    assert all(record.opening_hours == "24/7" for _, record in swiss.records)


def test_a_swiss_record_has_its_osm_address_and_tags(swiss: ParsedFile) -> None:
    line, record = next((line, r) for line, r in swiss.records if r.id == "osm-node-2196407940")
    assert line == 6
    assert (record.address, record.location_hint, record.manager, record.indoor) == (
        "Bahnhofstrasse 1, 4537 Wiedlisbach", "Eingangsbereich Bank", "Raiffeisenbank", True)


def test_the_cologne_csv_rejects_free_text_hours_and_missing_coordinates_only(
        cologne: ParsedFile) -> None:
    assert cologne.format == "registry-csv"
    assert (cologne.rows, len(cologne.records), len(cologne.rejections)) == (145, 104, 41)
    reasons = Counter(
        "hours" if r.reason.startswith("unparseable opening_hours")
        else "coordinates" if r.reason == "bad coordinates: lat and lon are required"
        else r.reason
        for r in cologne.rejections)
    assert reasons == {"coordinates": 24, "hours": 17}


def test_cologne_rejections_name_the_row_and_the_german_hours(cologne: ParsedFile) -> None:
    by_line = {r.line: r for r in cologne.rejections}
    assert by_line[18].reason.startswith("unparseable opening_hours '6.00-19.30 Uhr'")
    assert by_line[133].reason.startswith(
        "unparseable opening_hours 'Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen'")
    assert by_line[19] == RowRejection(19, "bad coordinates: lat and lon are required", "19")
    # id 14 is absent from the file and id 135 appears twice: lines and ids differ from there on.
    assert by_line[136] == RowRejection(136, "bad coordinates: lat and lon are required", "135")


def test_cologne_keeps_its_good_rows_with_postal_codes_and_notes_unknown_columns(
        cologne: ParsedFile) -> None:
    line, first = cologne.records[0]
    assert (line, first.id, first.name, first.address) == (
        2, "1", "Sparkasse KölnBonn", "Mailänder Passage 51, 50765")
    assert all(opening_hours_error(r.opening_hours) is None
               for _, r in cologne.records if r.opening_hours)
    assert cologne.notes == [
        "columns ignored (not part of the registry format): city_district, city_subdistrict, "
        "osm_node_id, aedkatasternet_id, definow_id, aed4eu_id, crowdsav_id, defikoeln_id, "
        "source, last_edited, last_edited_by, comment"]


def test_the_swiss_osm_csv_sample_keeps_all_200_rows() -> None:
    parsed = read_registry_file(TEST_DATA / "ch_osm_defibrillators_2020-12_head200.csv")
    assert parsed.format == "osm-csv"
    assert (len(parsed.records), len(parsed.rejections)) == (200, 0)
    assert parsed.records[0][1].id == "osm-node-692850699"


# --- Property: arbitrary text never crashes the parser ---------------------------------------

CSV_COLUMNS = [*REGISTRY_COLUMNS, "name", "serial", "make", "model", "pads_expiry",
               "battery_expiry"]
GOOD_ROW = {
    "id": "good-1", "lat": "52.1", "lon": "5.1", "address": "Dam 1", "municipality": "Amsterdam",
    "opening_hours": "Mo-Fr 08:00-18:00", "access": "public", "indoor": "yes",
    "location_hint": "hall", "manager": "GGD", "cabinet_code": "1234", "device_id": "cab-1",
    "name": "Town hall", "serial": "SN1", "make": "Philips", "model": "FRx",
    "pads_expiry": "2027-01-01", "battery_expiry": "2029-01-01",
}
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def registry_csv(*rows: dict[str, str]) -> str:
    out = io.StringIO()
    # The default "\r\n" terminator makes the writer quote every field holding "\r" or "\n".
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.sampled_from(CSV_COLUMNS), text=st.text(max_size=80))
def test_arbitrary_text_in_any_field_gives_a_record_or_a_rejection_and_keeps_the_neighbour(
        column: str, text: str) -> None:
    fuzzed = {**GOOD_ROW, "id": "fuzz-2", column: text}
    parsed = parse_csv(registry_csv(GOOD_ROW, fuzzed))
    assert parsed.records[0] == (2, record_from_fields(GOOD_ROW, source="registry-csv"))
    assert parsed.rows == 2
    line = 3 + len(LINE_BREAK.findall(text))
    if len(parsed.records) == 2:
        record_line, record = parsed.records[1]
        assert record_line == line
        assert re.fullmatch(ID_PATTERN, record.id)
        assert -90 <= record.lat <= 90 and -180 <= record.lon <= 180
        assert (record.lat, record.lon) != (0, 0)
        assert record.opening_hours is None or opening_hours_error(record.opening_hours) is None
    else:
        [rejection] = parsed.rejections
        assert rejection.line == line
        assert rejection.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(member=st.sampled_from(["id", "osm_id", "osm_type", "access", "indoor", "opening_hours",
                               "addr:street", "name", "pads_expiry"]),
       value=json_values, coordinates=st.lists(json_values, max_size=3))
def test_arbitrary_json_in_a_feature_gives_a_record_or_a_rejection_and_keeps_the_neighbour(
        member: str, value: Any, coordinates: list[Any]) -> None:
    parsed = parse_geojson(collection(
        feature({"id": "good-1"}), feature({"id": "fuzz-2", member: value}, coordinates)))
    assert ids_by_line(parsed)[0] == (1, "good-1")
    assert parsed.rows == 2
