"""The agent's durable spool: every message is stored on the cabinet before it is sent.

One SQLite file (WAL, `synchronous=FULL`: a power cut loses no committed message). Each message
gets the next `seq` in the same transaction that stores it, so a restart never reuses a seq. A
message leaves the spool only when the fleet's `ack` covers its seq.

Overflow policy, when the spool holds `max_messages`: telemetry is thinned, events are never
dropped. Every second telemetry snapshot of the older half of the spooled telemetry is deleted
(the newest telemetry always stays), which halves the resolution of the oldest history while
keeping its span. The number of thinned snapshots is counted and reported. If only events remain,
the spool grows past its bound and says so in the log rather than lose an event.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS message (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_kind ON message (kind, seq);
"""


@dataclass(frozen=True)
class SpooledMessage:
    seq: int
    kind: str  # "telemetry" or "event"
    payload: bytes


class Spool:
    """Durable, seq-ordered message store of one device."""

    def __init__(self, path: Path, max_messages: int = 50_000) -> None:
        if max_messages < 10:
            raise ValueError("a spool must hold at least 10 messages")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._count = self._db.execute("SELECT count(*) FROM message").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        return self._count

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    @property
    def last_seq(self) -> int:
        """The highest seq ever given out (0 before the first message)."""
        with self._lock:
            return int(self._meta("next_seq", "1")) - 1

    @property
    def acked_seq(self) -> int:
        with self._lock:
            return int(self._meta("acked_seq", "0"))

    @property
    def thinned(self) -> int:
        """How many telemetry snapshots the overflow policy has dropped, ever."""
        with self._lock:
            return int(self._meta("thinned", "0"))

    def append(self, kind: str, build: Callable[[int], bytes]) -> SpooledMessage:
        """Store the message `build(seq)` under the next seq; durable when this returns."""
        if kind not in ("telemetry", "event"):
            raise ValueError(f"unknown message kind {kind!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = int(self._meta("next_seq", "1"))
                payload = build(seq)
                if self._count >= self.max_messages:
                    self._thin()
                self._db.execute("INSERT INTO message (seq, kind, payload) VALUES (?, ?, ?)",
                                 (seq, kind, payload.decode("utf-8")))
                self._set_meta("next_seq", str(seq + 1))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._count = self._db.execute("SELECT count(*) FROM message").fetchone()[0]
                raise
            self._count += 1
        return SpooledMessage(seq, kind, payload)

    def _thin(self) -> None:
        telemetry = [row[0] for row in self._db.execute(
            "SELECT seq FROM message WHERE kind = 'telemetry' ORDER BY seq")]
        older = telemetry[:-1][: max(1, len(telemetry) // 2)]
        # Every second one after the oldest, so the thinned history keeps its span.
        doomed = older[1::2] or older[:1]
        if not doomed:
            logger.error("spool full with %d messages, nearly all events, and no older "
                         "telemetry to thin: keeping every event, growing past the bound of %d",
                         self._count, self.max_messages)
            return
        self._db.executemany("DELETE FROM message WHERE seq = ?", [(s,) for s in doomed])
        self._count -= len(doomed)
        self._set_meta("thinned", str(int(self._meta("thinned", "0")) + len(doomed)))
        logger.warning("spool full: thinned %d old telemetry snapshots (seq %d..%d)",
                       len(doomed), doomed[0], doomed[-1])

    def pending(self, after: int, limit: int = 500) -> list[SpooledMessage]:
        """Spooled messages with seq > `after`, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, payload FROM message WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit)).fetchall()
        return [SpooledMessage(seq, kind, payload.encode("utf-8")) for seq, kind, payload in rows]

    def ack(self, seq: int) -> int:
        """Drop every message with seq <= `seq`; returns how many were dropped.

        An ack beyond the last seq given out is ignored (it cannot be for this spool).
        """
        with self._lock:
            last = int(self._meta("next_seq", "1")) - 1
            if seq > last:
                logger.warning("ignoring ack of seq %d beyond the last seq %d", seq, last)
                return 0
            if seq <= int(self._meta("acked_seq", "0")):
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute("DELETE FROM message WHERE seq <= ?", (seq,))
            self._set_meta("acked_seq", str(seq))
            self._db.execute("COMMIT")
            self._count -= cursor.rowcount
            return cursor.rowcount

    def load_state(self, key: str) -> Any:
        """A small JSON value the agent keeps across restarts (e.g. its last reading)."""
        with self._lock:
            value = self._meta(f"state:{key}", "null")
        return json.loads(value)

    def save_state(self, key: str, value: Any) -> None:
        with self._lock:
            self._set_meta(f"state:{key}", json.dumps(value))
