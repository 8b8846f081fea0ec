"""Alembic environment: runs migrations on the connection `fleet.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import alarm_core.models  # noqa: F401  (registers the alarm tables)
import fleet.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from fleet.db import make_engine

        engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
