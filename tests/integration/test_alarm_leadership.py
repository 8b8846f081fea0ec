"""Active/standby of alarm cores on one database: who holds the lead, and when it passes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from alarm_core.leader import FileLeadership, PostgresLeadership, leadership_for
from fleet.db import make_engine


def test_only_one_of_two_nodes_leads_and_the_other_takes_over_once_it_lets_go(
        engine: Engine) -> None:
    other_engine = make_engine(engine.url.render_as_string(hide_password=False))
    first, second = leadership_for(engine), leadership_for(other_engine)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.try_acquire() and first.still_held()
        assert not second.still_held()

        first.release()

        assert second.try_acquire() and second.still_held()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        other_engine.dispose()


def test_a_node_whose_lock_connection_the_server_drops_knows_it_no_longer_leads(
        engine: Engine) -> None:
    if engine.url.get_backend_name() != "postgresql":
        pytest.skip("the server-side lock and its connection are PostgreSQL's")
    leader, standby = PostgresLeadership(engine), PostgresLeadership(engine)
    try:
        assert leader.try_acquire()
        with engine.connect() as admin:
            admin.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"))
            admin.commit()

        assert not leader.still_held()
        assert standby.try_acquire()
        assert leader.try_acquire() is False
    finally:
        leader.release()
        standby.release()


def test_a_node_whose_lock_file_was_deleted_knows_it_no_longer_leads(tmp_path: Path) -> None:
    leader = FileLeadership(tmp_path / "aedfleet.db.alarm.lock")
    other = FileLeadership(tmp_path / "aedfleet.db.alarm.lock")
    try:
        assert leader.try_acquire() and leader.still_held()
        (tmp_path / "aedfleet.db.alarm.lock").unlink()  # a cleaner, or a hand

        assert other.try_acquire()  # locks a new file
        assert not leader.still_held()
    finally:
        leader.release()
        other.release()

