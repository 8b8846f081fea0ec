"""Registry files: a hostile row or feature is reported by its number, its neighbours are kept.

`fleet.registry_file` turns each row into a record or a `RowRejection` naming the line (CSV) or
feature number (GeoJSON); only a file that cannot be read at all raises `ImportFileError`.
The neighbours are real rows and features (Swiss OSM export, Cologne registry) and generated
registry rows; one of them is made hostile and the outcome of every other must not change.
"""

from __future__ import annotations

import contextlib
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fleet.errors import ImportFileError
from fleet.registry_file import ParsedFile, parse_csv, parse_geojson, read_registry_file

from .hostile import (
    MEMORY_SLACK,
    any_text,
    fuzzing,
    json_values,
    member_values,
    memory_growth,
    mutated_bytes,
    mutated_text,
    nested_json,
    nesting_depths,
    random_variants,
)

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
LINE_END = re.compile(r"\r\n|\r|\n")
REAL_HOURS = ["24/7", "Mo-Fr 08:00-18:00", "Mo-Fr 08:00-18:00; PH off", "22:00-06:00",
              "Mo-Sa 07:00-22:00; Su 09:00-17:00", "Mo,Mi,Fr 7:30 - 12:00, Di 9:30 - 18:00"]


def real_csv(name: str) -> tuple[str, list[str]]:
    """The header of a real export in tests/data and its rows without quotes (one line each)."""
    header, *rows = (TEST_DATA / name).read_text(encoding="utf-8-sig").splitlines()
    return header, [row for row in rows if row and '"' not in row]


SWISS_CSV = real_csv("ch_osm_defibrillators_2020-12_head200.csv")
COLOGNE_CSV = real_csv("koeln_aed.csv")
SWISS_FEATURES = json.loads((TEST_DATA / "ch_osm_defibrillators_2020-12.geojson").read_text(
    encoding="utf-8"))["features"]

REGISTRY_HEADER = "id,lat,lon,address,opening_hours,access,indoor,pads_expiry,device_id"
plain = st.text(string.ascii_letters + string.digits + " -./", max_size=20)
registry_rows = st.builds(
    lambda *values: ",".join(values),
    st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=20),
    st.floats(-90, 90).map(str), st.floats(-180, 180).map(str), plain,
    st.sampled_from(["", *REAL_HOURS]).map(lambda hours: hours.replace(",", ";")),
    st.sampled_from(["", "yes", "public", "private", "no"]),
    st.sampled_from(["", "yes", "no"]), st.sampled_from(["", "2027-05-01", "2030-01-31"]),
    st.sampled_from(["", "cab-1", "cab-2"]))


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A header and 2-6 rows: real ones from one export, or generated registry rows."""
    source = draw(st.sampled_from(["swiss", "cologne", "registry"]))
    if source == "registry":
        rows = draw(st.lists(registry_rows, min_size=2, max_size=6,
                             unique_by=lambda row: row.split(",")[0]))
        return REGISTRY_HEADER, rows
    header, real = SWISS_CSV if source == "swiss" else COLOGNE_CSV
    return header, draw(st.lists(st.sampled_from(real), min_size=2, max_size=6, unique=True))


# Pieces a hostile row is made of: separators, numbers, words the parser looks for, any text;
# no quote or line end, which would merge the row with its neighbours (that is CSV, not a bug).
ROW_PIECES = st.one_of(
    st.sampled_from([",", ";", " ", "-", ".", "e", "0", "1e400", "nan", "inf", "-0", "1_0",
                     "\x00", "\t", "\ufeff", "24/7", "PH off", "yes", "private", "node/1",
                     "2027-02-30", "x" * 600, "é", "\u2028"]),
    any_text.map(lambda text: text.replace('"', "").replace("\r", "").replace("\n", "")))


def outcomes(parsed: ParsedFile) -> dict[int, Any]:
    """Per line (or feature number): the record's fields (without its source, which names the
    file's format), or the rejection's reason."""
    result: dict[int, Any] = {line: record.model_dump(exclude={"source"})
                              for line, record in parsed.records}
    for rejection in parsed.rejections:
        assert rejection.line not in result, f"two outcomes for line {rejection.line}"
        result[rejection.line] = rejection.reason
    return result


def assert_only_the_hostile_one_changed(before: ParsedFile, after: ParsedFile,
                                        hostile: int) -> None:
    """Every row but the `hostile` one has the outcome it had; that one has an outcome."""
    old, new = outcomes(before), outcomes(after)
    assert hostile in new, f"row {hostile} neither imported nor rejected"
    for line, outcome in old.items():
        if line != hostile:
            assert new.get(line) == outcome, f"row {line} changed next to hostile row {hostile}"
    assert set(new) <= set(old) | {hostile}


@fuzzing(ci_examples=200)
@given(data=st.data(), file=csv_files())
def test_a_hostile_csv_row_is_reported_by_its_line_and_its_neighbours_are_kept(
        data: st.DataObject, file: tuple[str, list[str]]) -> None:
    header, rows = file
    index = data.draw(st.integers(0, len(rows) - 1), label="hostile row")
    hostile_row = data.draw(mutated_text(rows[index], ROW_PIECES, max_edits=6), label="row")
    assume(hostile_row.replace(",", "").strip())  # a blank line is skipped, rightly
    before = parse_csv("\n".join([header, *rows]) + "\n")
    after = parse_csv("\n".join([header, *rows[:index], hostile_row, *rows[index + 1:]]) + "\n")
    # A hostile row that takes a neighbour's id makes that neighbour a duplicate, rightly.
    hostile_ids = {record.id for line, record in after.records if line == index + 2}
    assume(not hostile_ids & {record.id for line, record in before.records if line != index + 2})
    assert_only_the_hostile_one_changed(before, after, index + 2)


@fuzzing(ci_examples=200)
@given(text=any_text | st.text(",\"\r\n ;idlatonsm_.0123456789", max_size=200))
def test_any_text_as_a_csv_gives_rows_and_rejections_by_line_or_import_file_error(
        text: str) -> None:
    try:
        parsed = parse_csv(text)
    except ImportFileError as exc:
        assert str(exc)
        return
    last_line = len(LINE_END.findall(text)) + 1
    lines = [line for line, _ in parsed.records]
    assert lines == sorted(set(lines))
    assert all(2 <= line <= last_line for line in outcomes(parsed))
    assert all(rejection.reason for rejection in parsed.rejections)


# --- GeoJSON ------------------------------------------------------------------------------------

FEATURE_MEMBERS = ["id", "osm_id", "osm_type", "@id", "access", "indoor", "opening_hours",
                   "name", "addr:street", "pads_expiry", "device_id", "lat", "lon"]


@st.composite
def hostile_features(draw: st.DrawFn, feature: dict[str, Any]) -> Any:
    """`feature` with a property, its coordinates or its id made hostile, or any JSON value."""
    how = draw(st.sampled_from(["property", "coordinates", "feature id", "geometry", "whole"]))
    value = draw(member_values)
    if how == "property":
        member = draw(st.sampled_from(FEATURE_MEMBERS) | any_text)
        return {**feature, "properties": {**feature["properties"], member: value}}
    if how == "coordinates":
        coordinates = list(feature["geometry"]["coordinates"])
        coordinates[draw(st.integers(0, 1))] = value
        return {**feature, "geometry": {"type": "Point", "coordinates": coordinates}}
    if how == "feature id":
        return {**feature, "id": value}
    if how == "geometry":
        return {**feature, "geometry": value}
    return draw(json_values)


registry_features = st.builds(
    lambda aed_id, lat, lon, hours: {
        "type": "Feature", "id": aed_id, "properties": {"opening_hours": hours},
        "geometry": {"type": "Point", "coordinates": [lon, lat]}},
    st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=20),
    st.floats(-90, 90), st.floats(-180, 180), st.sampled_from(REAL_HOURS))


@fuzzing(ci_examples=200)
@given(data=st.data(), features=st.lists(st.sampled_from(SWISS_FEATURES) | registry_features,
                                         min_size=2, max_size=5, unique_by=lambda f: f["id"]))
def test_a_hostile_feature_is_reported_by_its_number_and_its_neighbours_are_kept(
        data: st.DataObject, features: list[dict[str, Any]]) -> None:
    index = data.draw(st.integers(0, len(features) - 1), label="hostile feature")
    hostile = data.draw(hostile_features(features[index]), label="feature")
    before = parse_geojson(json.dumps({"type": "FeatureCollection", "features": features}))
    changed = [*features[:index], hostile, *features[index + 1:]]
    after = parse_geojson(json.dumps({"type": "FeatureCollection", "features": changed}))
    hostile_ids = {record.id for number, record in after.records if number == index + 1}
    assume(not hostile_ids & {record.id for number, record in before.records
                              if number != index + 1})
    assert_only_the_hostile_one_changed(before, after, index + 1)


@fuzzing(ci_examples=200)
@given(data=st.data(), features=st.lists(st.sampled_from(SWISS_FEATURES), min_size=1, max_size=3))
def test_any_damage_to_a_geojson_file_gives_features_and_rejections_or_import_file_error(
        data: st.DataObject, features: list[dict[str, Any]]) -> None:
    valid = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    raw = data.draw(st.one_of(
        mutated_bytes(valid, max_edits=6),
        nesting_depths.map(lambda depth: valid[:-1] + b', "x": ' + nested_json(depth).encode()
                           + b"}"),
        st.binary(max_size=200)), label="file")
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed = parse_geojson(text)
    except ImportFileError as exc:
        assert str(exc)
        return
    assert all(1 <= number <= len(features) + 8 for number in outcomes(parsed))


@fuzzing(ci_examples=100)
@given(raw=st.one_of(
    mutated_bytes(b"id,lat,lon\nb1,52.1,5.1\n"),
    mutated_bytes(b'\xef\xbb\xbf{"type": "FeatureCollection", "features": []}'),
    mutated_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    st.binary(max_size=100)),
    suffix=st.sampled_from([".csv", ".geojson", ".json", ".csv.gz", ".txt"]))
def test_any_file_reads_as_a_registry_or_raises_import_file_error(
        raw: bytes, suffix: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.getbasetemp() / f"fuzzed-registry{suffix}"
    path.write_bytes(raw)
    try:
        parsed = read_registry_file(path)
    except ImportFileError as exc:
        assert str(exc)
        return
    assert parsed.format in ("registry-csv", "osm-csv", "geojson", "osm-geojson")


# --- known bugs ---------------------------------------------------------------------------------

def test_a_field_over_the_csv_size_limit_rejects_its_row_only() -> None:
    text = "id,lat,lon\na1,52.1,5.1\na2,52.1," + "5" * 131_073 + "\na3,52.2,5.2\n"
    parsed = parse_csv(text)
    assert [(line, record.id) for line, record in parsed.records] == [(2, "a1"), (4, "a3")]
    assert [rejection.line for rejection in parsed.rejections] == [3]


@pytest.mark.parametrize("text", [
    "[" * 2000 + "]" * 2000,
    '{"type": "FeatureCollection", "features": [], "x": ' + "1" * 4301 + "}",
], ids=["nested", "long-integer"])
def test_geojson_the_json_parser_cannot_read_raises_import_file_error(text: str) -> None:
    with pytest.raises(ImportFileError):
        parse_geojson(text)


def test_opening_hours_with_a_lone_surrogate_reject_their_feature_only() -> None:
    def feature(aed_id: str, hours: str) -> dict[str, Any]:
        return {"type": "Feature", "id": aed_id, "properties": {"opening_hours": hours},
                "geometry": {"type": "Point", "coordinates": [5.1, 52.1]}}

    parsed = parse_geojson(json.dumps({"type": "FeatureCollection", "features": [
        feature("a1", "24/7"), feature("a2", "Mo-Fr 08:00-18:00\ud800"), feature("a3", "24/7")]}))
    assert [(number, record.id) for number, record in parsed.records] == [(1, "a1"), (3, "a3")]
    assert [rejection.line for rejection in parsed.rejections] == [2]


def test_a_damaged_gzip_file_raises_import_file_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff")
    with pytest.raises(ImportFileError, match="damaged gzip"):
        read_registry_file(path)


def test_a_geojson_records_source_does_not_depend_on_the_features_before_it() -> None:
    osm = {"type": "Feature", "id": "node/1", "properties": {},
           "geometry": {"type": "Point", "coordinates": [5.1, 52.1]}}
    registry = {"type": "Feature", "id": "a1", "properties": {},
                "geometry": {"type": "Point", "coordinates": [5.2, 52.2]}}

    def source_of_a1(*features: dict[str, Any]) -> str | None:
        parsed = parse_geojson(json.dumps({"type": "FeatureCollection", "features": features}))
        return next(record.source for _, record in parsed.records if record.id == "a1")

    assert source_of_a1(osm, registry) == source_of_a1({**osm, "geometry": None}, registry)


# --- memory -------------------------------------------------------------------------------------

def test_importing_keeps_no_memory_per_hostile_file() -> None:
    csv_text = "\n".join([SWISS_CSV[0], *SWISS_CSV[1][:3]]) + "\n"
    geojson = json.dumps({"type": "FeatureCollection", "features": SWISS_FEATURES[:3]})
    hostile = [raw.decode("utf-8", errors="replace")
               for raw in random_variants([csv_text.encode(), geojson.encode()], 1000, seed=5)]

    def import_all() -> None:
        for text in hostile:
            # What is raised is the other tests' business; here only what stays behind counts.
            with contextlib.suppress(Exception):
                parse_csv(text)
            with contextlib.suppress(Exception):
                parse_geojson(text)

    assert memory_growth(import_all) < MEMORY_SLACK

