"""Fixtures shared by the integration and end-to-end tests: a fresh database on each engine.

`database_url` runs a test once on SQLite (a file in the test's tmp_path) and once on PostgreSQL.
The PostgreSQL run needs a server: `AEDFLEET_TEST_POSTGRES_URL` names it (`.ci/run` starts a
private cluster and sets it); each test gets its own database there, dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import fresh_postgres_database
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from fleet import migrate
from fleet.db import make_engine
from fleet.settings import Settings

POSTGRES_URL_VARIABLE = "AEDFLEET_TEST_POSTGRES_URL"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The SQLAlchemy URL of an empty database that only this test uses."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aedfleet.db'}"
        return
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set: no PostgreSQL server to test against "
                    "(.ci/run starts one and sets it)")
    yield from fresh_postgres_database(make_url(server_url))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database, with the schema made by the migrations."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The settings every component gets, pointing at the test's database."""
    return Settings(database_url=database_url)
