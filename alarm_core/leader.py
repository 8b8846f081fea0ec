"""Active/standby: of the alarm cores on one database, exactly one is active.

On PostgreSQL the active node holds a session-level advisory lock on its own connection; the
lock goes with that connection, so a node that dies, or whose connection the server drops,
hands over without anyone's help and a standby's next try (every second) takes it. On SQLite
(one machine) an exclusive lock on a file beside the database does the same for two processes.

A node that cannot confirm its lock within `CHECK_TIMEOUT_S` stops at once: for the seconds in
between the database still refuses a double dispatch, because every AED and responder is
claimed with a compare-and-set and an incident is idempotent on its 112 reference.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

logger = logging.getLogger(__name__)

LOCK_KEY = 0x4145_4446_4C54_0001
"""The advisory lock's key: "AEDFLT" and the alarm core's number (1)."""
CHECK_TIMEOUT_S = 5.0


class Leadership(Protocol):
    def try_acquire(self) -> bool:
        """Take the lead if nobody holds it; True once this node holds it."""

    def still_held(self) -> bool:
        """False once this node can no longer be sure it holds the lead."""

    def release(self) -> None: ...


class PostgresLeadership:
    """`pg_try_advisory_lock` on a connection of its own, outside any transaction."""

    def __init__(self, engine: Engine) -> None:
        # A connection of its own, never pooled: closing it must end the session (and with
        # it the lock); TCP keepalives notice a vanished server within seconds.
        self._engine = create_engine(engine.url, poolclass=NullPool, connect_args={
            "connect_timeout": 5, "keepalives_idle": 5, "keepalives_interval": 2,
            "keepalives_count": 2})
        self._connection: Any = None
        self._held = False

    def try_acquire(self) -> bool:
        if self._held:
            return True
        try:
            if self._connection is None:
                self._connection = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
            got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": LOCK_KEY}).scalar()
        except Exception as exc:  # no database: stay standby, try again
            logger.warning("leadership: cannot reach the database (%s)", exc)
            self._drop()
            return False
        self._held = bool(got)
        return self._held

    def still_held(self) -> bool:
        if not self._held or self._connection is None:
            return False
        try:
            mine = self._connection.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objid = :low AND classid = :high"),
                {"low": LOCK_KEY & 0xFFFF_FFFF, "high": LOCK_KEY >> 32}).scalar()
        except Exception as exc:
            logger.error("leadership: lock connection lost (%s)", exc)
            self._drop()
            return False
        if not mine:
            self._held = False
        return self._held

    def release(self) -> None:
        if self._held and self._connection is not None:
            # Unlocked at once; only closing the connection would leave it to the server's
            # backend to notice, a moment later.
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": LOCK_KEY})
            except Exception:
                logger.debug("leadership: unlock on a dead connection", exc_info=True)
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        self._held = False
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # the connection is gone already
                logger.debug("leadership: closing a dead connection", exc_info=True)
            self._connection = None


class FileLeadership:
    """An exclusive `flock` on `<database>.alarm.lock`: two alarm cores on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 -- held open as long as the lead
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True

    def still_held(self) -> bool:
        if self._file is None:
            return False
        try:  # a lock file deleted or replaced would let a second node lock a new one
            return os.fstat(self._file.fileno()).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SoleLeadership:
    """An in-memory database: nobody else can share it, so this node always leads."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def leadership_for(engine: Engine) -> Leadership:
    """The way alarm cores sharing this engine's database agree on the active one."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresLeadership(engine)
    if url.database and url.database != ":memory:":
        return FileLeadership(Path(f"{url.database}.alarm.lock"))
    return SoleLeadership()
