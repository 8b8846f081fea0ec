"""Coverage now, kept current for the console's map: changed AEDs are applied incrementally,
and everything is recomputed now and then (responders come and go, quiet hours begin)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from alarm_core.loading import aed_entries, changed_aed_ids
from fleet.coverage.model import CoverageMap
from fleet.coverage.service import (
    CoverageInputs,
    NationalCoverage,
    load_inputs,
    national_map,
    national_summary,
)
from fleet.db import session_scope
from fleet.settings import Settings

logger = logging.getLogger(__name__)

# Registry changes are read from a little before the last read: a change committed while that
# read ran, stamped earlier, is not missed (applying one twice changes nothing).
OVERLAP = timedelta(seconds=5)


class LiveCoverage:
    """The inputs (and, once asked for, the national map) at the present moment.

    Inputs are replaced, never changed, so a request keeps a consistent set while a refresh
    makes the next one; the national map is changed in place and read only under the lock.
    Intervals are measured on the monotonic clock: a wall clock set back does not stall them.
    """

    def __init__(self, engine: Any, settings: Settings,
                 clock: Callable[[], datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.settings = engine, settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._inputs: CoverageInputs | None = None
        self._map: CoverageMap | None = None
        self._loaded: float | None = None
        self._refreshed: float | None = None
        self._since: datetime | None = None
        """Registry changes are read from this moment on (the wall clock of the last read)."""

    def inputs(self) -> CoverageInputs:
        """Registry, readiness and responders as of at most `refresh_s` ago."""
        with self._lock:
            return self._current(self.clock(), want_map=False)[0]

    def national(self) -> NationalCoverage:
        """The whole country at the present moment (its map is built on first use)."""
        with self._lock:
            inputs, whole = self._current(self.clock(), want_map=True)
            assert whole is not None
            return national_summary(whole, inputs)

    def _current(self, now: datetime, want_map: bool) -> tuple[CoverageInputs, CoverageMap | None]:
        tick = self._monotonic()
        coverage = self.settings.coverage
        if self._inputs is None or self._loaded is None or \
                tick - self._loaded >= coverage.full_refresh_minutes * 60:
            with session_scope(self.engine) as session:
                self._inputs = load_inputs(session, self.settings, now)
            self._map = None
            self._loaded = self._refreshed = tick
            self._since = now
        elif self._refreshed is not None and tick - self._refreshed >= coverage.refresh_s:
            self._apply_changes(now)
            self._refreshed = tick
        if want_map and self._map is None:
            self._map = national_map(self._inputs, now)
        elif self._map is not None and self._map.at != now:
            self._map.advance(now)
        return self._inputs, self._map

    def _apply_changes(self, now: datetime) -> None:
        assert self._inputs is not None and self._since is not None
        since = min(self._since, now) - OVERLAP
        with session_scope(self.engine) as session:
            ids = changed_aed_ids(session, since)
            entries = aed_entries(session, self.settings, now, ids) if ids else []
        self._since = now
        removed = set(ids) - {entry.id for entry in entries}
        self._inputs = self._inputs.with_aeds(entries, removed)
        if self._map is not None:
            for entry in entries:
                self._map.set_aed(entry)
            for aed_id in removed:
                self._map.remove_aed(aed_id)
        if ids:
            logger.info("coverage: %d AEDs changed, applied", len(ids))
