"""A fresh PostgreSQL database for a test or a test module, dropped afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL


def fresh_postgres_database(server: URL) -> Iterator[str]:
    """Create `t_<random>` on the server, hand out its URL, and drop it (even if still in use)."""
    name = f"t_{secrets.token_hex(6)}"
    admin_conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False)
    finally:
        with psycopg.connect(admin_conninfo, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
