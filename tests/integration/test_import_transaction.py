"""An import is one transaction: when the database refuses any part of it, no AED of the file stays.

The failures are made by the databases themselves: a trigger that refuses one AED (on both), and on
PostgreSQL its own enforcement of a column's length.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from fleet.models import Aed, AedCreate, Manager, Municipality
from fleet.registry import import_registry
from fleet.registry_file import read_registry_file

TEST_DATA = Path(__file__).parents[1] / "data"
SWISS_GEOJSON = TEST_DATA / "ch_osm_defibrillators_2020-12.geojson"
COLOGNE_CSV = TEST_DATA / "koeln_aed.csv"

TRIGGER_MESSAGE = "refused by the test trigger"


def stored_ids(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(Aed.id)).all())


def row_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {model.__name__: session.exec(select(func.count()).select_from(model)).one()
                for model in (Aed, Manager, Municipality)}


def refuse_inserting_aed(engine: Engine, aed_id: str) -> None:
    """Install a trigger that makes the database refuse to insert the AED `aed_id`."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text(
                f"CREATE TRIGGER refuse_one_aed BEFORE INSERT ON aed WHEN NEW.id = '{aed_id}' "
                f"BEGIN SELECT RAISE(ABORT, '{TRIGGER_MESSAGE}'); END"))
        else:
            connection.execute(text(
                "CREATE FUNCTION refuse_one_aed() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.id = '{aed_id}' THEN RAISE EXCEPTION '{TRIGGER_MESSAGE}'; END IF; "
                "RETURN NEW; END $$"))
            connection.execute(text(
                "CREATE TRIGGER refuse_one_aed BEFORE INSERT ON aed "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one_aed()"))


def drop_refusal(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse_one_aed" if engine.dialect.name == "sqlite"
                                else "DROP TRIGGER refuse_one_aed ON aed"))


def test_database_refusing_the_last_aed_keeps_nothing_of_the_file(engine: Engine) -> None:
    import_registry(engine, read_registry_file(COLOGNE_CSV, id_prefix="koeln-"))
    before_ids, before_counts = stored_ids(engine), row_counts(engine)
    swiss = read_registry_file(SWISS_GEOJSON)
    last_id = swiss.records[-1][1].id
    # The last record is in the fourth chunk: three chunks have been flushed when it fails.
    assert len(swiss.records) > 3 * 500
    refuse_inserting_aed(engine, last_id)

    with pytest.raises(DBAPIError, match=TRIGGER_MESSAGE):
        import_registry(engine, swiss)

    assert stored_ids(engine) == before_ids
    assert row_counts(engine) == before_counts


def test_import_succeeds_in_full_once_the_database_no_longer_refuses(engine: Engine) -> None:
    swiss = read_registry_file(SWISS_GEOJSON)
    refuse_inserting_aed(engine, swiss.records[-1][1].id)
    with pytest.raises(DBAPIError):
        import_registry(engine, swiss)
    drop_refusal(engine)

    report = import_registry(engine, read_registry_file(SWISS_GEOJSON))

    assert (report.created, report.updated, report.unchanged) == (1546, 0, 0)
    assert len(stored_ids(engine)) == 1546


def test_postgresql_refusing_an_overlong_column_keeps_nothing_of_the_file(
        engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    parsed = read_registry_file(SWISS_GEOJSON)
    # The parser checks lengths itself; model_construct skips that check so that the row reaches
    # the database, as it would if the parser and the schema ever disagreed.
    overlong = AedCreate.model_construct(id="ch-overlong", lat=46.9, lon=7.4,
                                         address="Bundesplatz " + "3" * 300, source="test")
    parsed.records.append((len(parsed.records) + 1, overlong))

    with pytest.raises(DBAPIError, match="too long"):
        import_registry(engine, parsed)

    assert row_counts(engine) == {"Aed": 0, "Manager": 0, "Municipality": 0}
