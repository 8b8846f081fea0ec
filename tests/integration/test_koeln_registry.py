"""Cologne's real AEDs through the real registry import, on SQLite and PostgreSQL: the
converted registry file, and the published list with its German opening hours read on import."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from fleet.access import opening_hours_error
from fleet.models import Aed, Cabinet, Manager
from fleet.registry import import_registry
from fleet.registry_file import parse_csv, read_registry_file

TEST_DATA = Path(__file__).parents[1] / "data"
COLOGNE_REGISTRY = TEST_DATA / "koeln_registry.csv"
COLOGNE_PUBLISHED = TEST_DATA / "koeln_aed.csv"


def stored_aeds(engine: Engine) -> dict[str, Aed]:
    with Session(engine) as session:
        return {aed.id: aed for aed in session.exec(select(Aed))}


def test_the_cologne_registry_file_imports_all_121_aeds(engine: Engine) -> None:
    report = import_registry(engine, read_registry_file(COLOGNE_REGISTRY))

    assert (report.format, report.rows, report.created, len(report.rejections)) == (
        "registry-csv", 121, 121, 0)
    aeds = stored_aeds(engine)
    assert len(aeds) == 121
    assert sum(1 for aed in aeds.values() if aed.opening_hours) == 17
    assert all(opening_hours_error(aed.opening_hours) is None
               for aed in aeds.values() if aed.opening_hours)
    first = aeds["DE-K-0001"]
    assert (first.name, first.address, first.lat, first.lon) == (
        "Sparkasse KölnBonn", "Mailänder Passage 51, 50765 Köln", 51.0216619, 6.897402)
    dom = aeds["DE-K-0018"]
    assert (dom.name, dom.address, dom.location_hint, dom.opening_hours) == (
        "Kölner Dom", None, "Nordeingang (Richtung Bahnhof)",
        "Mo-Su 06:00-19:30")
    with Session(engine) as session:
        assert session.exec(select(Manager.name)).all() == ["Stadt Köln – Feuerwehr"]
        assert session.exec(select(func.count()).select_from(Cabinet)).one() == 49


def test_the_demo_copy_of_the_cologne_registry_is_the_tested_file() -> None:
    packaged = resources.files("fleet.data").joinpath("demo_registry_koeln.csv")

    assert packaged.read_bytes() == COLOGNE_REGISTRY.read_bytes()


def test_importing_the_cologne_registry_again_changes_nothing(engine: Engine) -> None:
    import_registry(engine, read_registry_file(COLOGNE_REGISTRY))

    again = import_registry(engine, read_registry_file(COLOGNE_REGISTRY))

    assert (again.created, again.updated, again.unchanged) == (0, 0, 121)


def test_the_published_list_with_german_hours_read_keeps_121_aeds_and_all_their_hours(
        engine: Engine) -> None:
    parsed = read_registry_file(COLOGNE_PUBLISHED, id_prefix="koeln-", german_hours=True)

    report = import_registry(engine, parsed)

    assert (report.rows, report.created, len(report.rejections)) == (145, 121, 24)
    assert {r.reason for r in report.rejections} == {"bad coordinates: lat and lon are required"}
    assert "17 opening_hours read from German text into OpenStreetMap syntax" in report.notes
    aeds = stored_aeds(engine)
    assert aeds["koeln-131"].opening_hours == "Mo-Fr 09:00-18:00"
    assert sum(1 for aed in aeds.values() if aed.opening_hours) == 17


def test_hours_that_can_no_longer_be_read_are_cleared_not_kept(engine: Engine) -> None:
    header = "id,lat,lon,opening_hours\n"
    import_registry(engine, parse_csv(header + "k1,50.94,6.96,Mo-Fr 8-18 Uhr\n",
                                      german_hours=True))
    assert stored_aeds(engine)["k1"].opening_hours == "Mo-Fr 08:00-18:00"

    report = import_registry(engine, parse_csv(
        header + "k1,50.94,6.96,während der Öffnungszeiten\n", german_hours=True))

    assert report.updated == 1
    assert stored_aeds(engine)["k1"].opening_hours is None
    assert report.notes == [
        "line 2: opening_hours 'während der Öffnungszeiten' not read (refers to opening hours "
        "without giving them): imported without hours, counts as closed"]


def test_without_the_option_german_hours_are_still_rejected(engine: Engine) -> None:
    report = import_registry(engine, read_registry_file(COLOGNE_PUBLISHED, id_prefix="koeln-"))

    assert (report.created, len(report.rejections)) == (104, 41)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Aed).where(
            col(Aed.opening_hours).is_not(None))).one() == 0
