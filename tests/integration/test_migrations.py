"""The Alembic migrations build, remove and rebuild the schema on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import fleet.models  # noqa: F401  (registers every table on SQLModel.metadata)
from fleet import migrate
from fleet.db import make_engine

MODEL_TABLES = set(SQLModel.metadata.tables)


@pytest.fixture
def bare_engine(database_url: str):
    """An engine on an empty database: no migration run yet."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_to_head_creates_every_table_of_the_models(bare_engine: Engine) -> None:
    assert migrate.current_revision(bare_engine) is None

    migrate.upgrade(bare_engine)

    assert tables(bare_engine) >= MODEL_TABLES
    assert {"aed", "cabinet", "telemetrystate", "readinessdeclaration"} <= MODEL_TABLES
    assert migrate.current_revision(bare_engine) == migrate.head_revision(bare_engine)


def test_downgrade_to_base_removes_every_table_and_upgrade_builds_them_again(
        bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine)

    migrate.downgrade(bare_engine, "base")

    assert tables(bare_engine) - {"alembic_version"} == set()
    assert migrate.current_revision(bare_engine) is None

    migrate.upgrade(bare_engine)

    assert tables(bare_engine) >= MODEL_TABLES
    assert migrate.current_revision(bare_engine) == migrate.head_revision(bare_engine)


def test_upgrading_a_database_already_at_head_changes_nothing(engine: Engine) -> None:
    before = tables(engine)

    migrate.upgrade(engine)

    assert tables(engine) == before
    assert migrate.current_revision(engine) == migrate.head_revision(engine)


def test_migrated_schema_matches_the_models_column_for_column(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)

    assert differences == [], "models changed without a migration (aedfleet db revision)"
