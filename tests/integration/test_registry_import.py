"""Importing real registry files into SQLite and PostgreSQL: counts, idempotency, cabinets."""

from __future__ import annotations

import csv
import io
from datetime import date
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from fleet.models import Aed, Cabinet, Municipality
from fleet.municipalities import read_boundaries
from fleet.registry import ImportReport, import_registry, load_municipalities
from fleet.registry_file import parse_csv, read_registry_file

TEST_DATA = Path(__file__).parents[1] / "data"
SWISS_GEOJSON = TEST_DATA / "ch_osm_defibrillators_2020-12.geojson"
SWISS_CSV_HEAD = TEST_DATA / "ch_osm_defibrillators_2020-12_head200.csv"
COLOGNE_CSV = TEST_DATA / "koeln_aed.csv"
SWISS_REJECTED_FEATURES = [272, 380, 1454, 1519]
FIRST_SWISS_NODE = "osm-node-692850699"


def import_file(engine: Engine, path: Path, id_prefix: str = "") -> ImportReport:
    return import_registry(engine, read_registry_file(path, id_prefix=id_prefix))


def import_text(engine: Engine, text: str) -> ImportReport:
    return import_registry(engine, parse_csv(text))


def aed_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Aed)).one()


def fetch_aed(engine: Engine, aed_id: str) -> Aed:
    with Session(engine) as session:
        aed = session.get(Aed, aed_id)
        assert aed is not None, f"AED {aed_id} not stored"
        return aed


def cabinets_by_device(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as session:
        return {c.device_id: c.aed_id for c in session.exec(select(Cabinet))}


def demo_registry_rows() -> list[dict[str, str]]:
    text = resources.files("fleet.data").joinpath("demo_registry_utrecht.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def csv_text(rows: list[dict[str, str]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# --- the real files ---------------------------------------------------------------------------

def test_swiss_geojson_import_stores_every_valid_feature_and_reports_the_four_bad_ones(
        engine: Engine) -> None:
    report = import_file(engine, SWISS_GEOJSON)

    assert (report.format, report.rows) == ("osm-geojson", 1550)
    assert (report.created, report.updated, report.unchanged) == (1546, 0, 0)
    assert sorted(r.line for r in report.rejections) == SWISS_REJECTED_FEATURES
    assert aed_count(engine) == 1546
    first = fetch_aed(engine, FIRST_SWISS_NODE)
    assert (first.lat, first.lon) == (47.6780089, 8.8311129)
    assert first.location_hint == "Bushaltestelle/Mehrzweckhalle"
    assert first.opening_hours == "24/7"


def test_reimporting_the_swiss_geojson_creates_no_duplicates_and_counts_all_unchanged(
        engine: Engine) -> None:
    import_file(engine, SWISS_GEOJSON)
    stamped = fetch_aed(engine, FIRST_SWISS_NODE).updated_at

    again = import_file(engine, SWISS_GEOJSON)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 1546)
    assert len(again.rejections) == 4
    assert aed_count(engine) == 1546
    assert fetch_aed(engine, FIRST_SWISS_NODE).updated_at == stamped


def test_osm_csv_export_is_imported_and_reimported_without_change(engine: Engine) -> None:
    first = import_file(engine, SWISS_CSV_HEAD)
    again = import_file(engine, SWISS_CSV_HEAD)

    assert (first.format, first.rows, first.created, len(first.rejections)) == \
        ("osm-csv", 200, 200, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 200)
    assert aed_count(engine) == 200


def test_osm_csv_and_geojson_exports_of_the_same_nodes_share_their_ids(engine: Engine) -> None:
    import_file(engine, SWISS_GEOJSON)

    report = import_file(engine, SWISS_CSV_HEAD)

    assert report.created == 0
    assert report.updated + report.unchanged == 200
    assert aed_count(engine) == 1546


def test_cologne_csv_is_imported_under_its_id_prefix(engine: Engine) -> None:
    report = import_file(engine, COLOGNE_CSV, id_prefix="koeln-")

    assert (report.format, report.rows, report.created, len(report.rejections)) == \
        ("registry-csv", 145, 104, 41)
    with Session(engine) as session:
        ids = session.exec(select(Aed.id)).all()
    assert len(ids) == 104
    assert all(aed_id.startswith("koeln-") for aed_id in ids)
    first = fetch_aed(engine, "koeln-1")
    assert first.name == "Sparkasse KölnBonn"
    assert first.address == "Mailänder Passage 51, 50765"
    assert (first.lat, first.lon) == (51.0216619, 6.897402)


def test_a_changed_field_on_reimport_updates_only_that_aed(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, COLOGNE_CSV, id_prefix="koeln-")
    stamped = fetch_aed(engine, "koeln-1").updated_at
    with COLOGNE_CSV.open(encoding="utf-8-sig", newline="") as source:
        reader = csv.DictReader(source)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    rows[0]["name"] = "Sparkasse KölnBonn, Filiale Chorweiler"
    changed = tmp_path / "koeln_changed.csv"
    changed.write_text(csv_text(rows, columns), encoding="utf-8")

    report = import_file(engine, changed, id_prefix="koeln-")

    assert (report.created, report.updated, report.unchanged) == (0, 1, 103)
    aed = fetch_aed(engine, "koeln-1")
    assert aed.name == "Sparkasse KölnBonn, Filiale Chorweiler"
    assert aed.updated_at > stamped
    assert aed_count(engine) == 104


def test_osm_reimport_keeps_the_pads_expiry_a_registry_csv_set_for_the_same_id(
        engine: Engine) -> None:
    import_file(engine, SWISS_GEOJSON)
    manager_file = (f"id,lat,lon,pads_expiry,battery_expiry\n"
                    f"{FIRST_SWISS_NODE},47.6780089,8.8311129,2027-05-01,2029-01-31\n")
    assert import_text(engine, manager_file).updated == 1

    report = import_file(engine, SWISS_GEOJSON)

    aed = fetch_aed(engine, FIRST_SWISS_NODE)
    assert aed.pads_expiry == date(2027, 5, 1)
    assert aed.battery_expiry == date(2029, 1, 31)
    assert aed.location_hint == "Bushaltestelle/Mehrzweckhalle"
    assert report.created == 0


# --- municipalities and cabinets ---------------------------------------------------------------

def test_demo_registry_without_municipality_column_is_placed_by_coordinates(
        engine: Engine) -> None:
    assert load_municipalities(engine, read_boundaries()) > 300
    rows = demo_registry_rows()
    columns = [c for c in rows[0] if c != "municipality"]

    report = import_text(engine, csv_text(rows, columns))

    assert report.created == 536
    assert report.municipalities_assigned == 536
    with Session(engine) as session:
        placed = session.exec(
            select(Municipality.name, func.count())
            .join(Aed, col(Aed.municipality_id) == Municipality.id)
            .group_by(col(Municipality.name))).all()
    assert dict(placed) == {"Utrecht": 536}


def test_demo_registry_creates_a_cabinet_bound_to_each_aed_with_a_device_id(
        engine: Engine) -> None:
    rows = demo_registry_rows()

    report = import_text(engine, csv_text(rows, list(rows[0])))

    rejected = {r.aed_id for r in report.rejections}
    expected = {row["device_id"]: row["id"] for row in rows
                if row["device_id"] and row["id"] not in rejected}
    assert len(expected) > 100
    assert cabinets_by_device(engine) == expected
    assert import_text(engine, csv_text(rows, list(rows[0]))).unchanged == 536
    assert cabinets_by_device(engine) == expected


def test_device_id_already_bound_to_another_aed_is_rejected_for_that_row_only(
        engine: Engine) -> None:
    import_text(engine, "id,lat,lon,device_id\nNL-A1,52.1,5.1,cab-1\n")

    report = import_text(engine, "id,lat,lon,device_id\n"
                                 "NL-A2,52.2,5.2,cab-1\n"
                                 "NL-A3,52.3,5.3,cab-3\n")

    assert [(r.line, r.aed_id, r.reason) for r in report.rejections] == \
        [(2, "NL-A2", "cabinet cab-1 already holds AED NL-A1")]
    assert report.created == 1
    assert cabinets_by_device(engine) == {"cab-1": "NL-A1", "cab-3": "NL-A3"}
    with Session(engine) as session:
        assert session.get(Aed, "NL-A2") is None


def test_two_rows_of_one_file_claiming_the_same_device_id_keep_the_first(engine: Engine) -> None:
    report = import_text(engine, "id,lat,lon,device_id\n"
                                 "NL-B1,52.1,5.1,cab-b\n"
                                 "NL-B2,52.2,5.2,cab-b\n")

    assert [(r.line, r.aed_id) for r in report.rejections] == [(3, "NL-B2")]
    assert cabinets_by_device(engine) == {"cab-b": "NL-B1"}


def test_an_aed_given_a_new_device_id_moves_to_that_cabinet_and_releases_the_old_one(
        engine: Engine) -> None:
    import_text(engine, "id,lat,lon,device_id\nNL-C1,52.1,5.1,cab-old\n")

    report = import_text(engine, "id,lat,lon,device_id\n"
                                 "NL-C1,52.1,5.1,cab-new\n"
                                 "NL-C2,52.2,5.2,\n")

    assert (report.created, report.unchanged, report.rejections) == (1, 1, [])
    assert cabinets_by_device(engine) == {"cab-old": None, "cab-new": "NL-C1"}
    assert aed_count(engine) == 2


def test_an_aed_moved_back_to_its_released_cabinet_is_bound_to_it_again(engine: Engine) -> None:
    import_text(engine, "id,lat,lon,device_id\nNL-D1,52.1,5.1,cab-first\n")
    import_text(engine, "id,lat,lon,device_id\nNL-D1,52.1,5.1,cab-second\n")
    assert cabinets_by_device(engine) == {"cab-first": None, "cab-second": "NL-D1"}

    report = import_text(engine, "id,lat,lon,device_id\nNL-D1,52.1,5.1,cab-first\n")

    assert report.rejections == []
    assert cabinets_by_device(engine) == {"cab-first": "NL-D1", "cab-second": None}
