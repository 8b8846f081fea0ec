"""Coverage now, kept current for the console's map: changed AEDs are applied incrementally,
and everything is recomputed now and then (responders come and go, quiet hours begin)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from alarm_core.loading import aed_entries, changed_aed_ids
from fleet.coverage.model import CoverageMap
from fleet.coverage.service import CoverageInputs, load_inputs, national_map
from fleet.db import session_scope
from fleet.settings import Settings

logger = logging.getLogger(__name__)


class LiveCoverage:
    """The inputs (and, once asked for, the national map) at the present moment."""

    def __init__(self, engine: Any, settings: Settings,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine, self.settings = engine, settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._inputs: CoverageInputs | None = None
        self._map: CoverageMap | None = None
        self._loaded_at: datetime | None = None
        self._refreshed_at: datetime | None = None

    def inputs(self) -> CoverageInputs:
        """Registry, readiness and responders as of at most `refresh_s` ago."""
        with self._lock:
            return self._current(self.clock(), want_map=False)[0]

    def national(self) -> tuple[CoverageInputs, CoverageMap]:
        """The national map at the present moment (built on first use)."""
        with self._lock:
            inputs, whole = self._current(self.clock(), want_map=True)
            assert whole is not None
            return inputs, whole

    def _current(self, now: datetime, want_map: bool) -> tuple[CoverageInputs, CoverageMap | None]:
        full = timedelta(minutes=self.settings.coverage.full_refresh_minutes)
        if self._inputs is None or self._loaded_at is None or now - self._loaded_at >= full:
            with session_scope(self.engine) as session:
                self._inputs = load_inputs(session, self.settings, now)
            self._map = None
            self._loaded_at = self._refreshed_at = now
        elif self._refreshed_at is not None and (now - self._refreshed_at).total_seconds() \
                >= self.settings.coverage.refresh_s:
            self._apply_changes(self._inputs, self._refreshed_at, now)
            self._refreshed_at = now
        if want_map and self._map is None:
            self._map = national_map(self._inputs, now)
        elif self._map is not None and self._map.at != now:
            self._map.advance(now)
        return self._inputs, self._map

    def _apply_changes(self, inputs: CoverageInputs, since: datetime, now: datetime) -> None:
        with session_scope(self.engine) as session:
            ids = changed_aed_ids(session, since)
            entries = aed_entries(session, self.settings, now, ids) if ids else []
        found = {entry.id for entry in entries}
        removed = set(ids) - found
        inputs.replace_aeds(entries, removed)
        if self._map is not None:
            self._map.at = now
            for entry in entries:
                self._map.set_aed(entry)
            for aed_id in removed:
                self._map.remove_aed(aed_id)
        if ids:
            logger.info("coverage: %d AEDs changed, applied", len(ids))
