"""Telemetry as a time series in a store that speaks the InfluxDB v2 write API.

After each commit the ingest hands its telemetry samples to `TimeSeriesSink.add`, which only
appends them to a bounded buffer. A background thread turns them into line protocol (measurement
`aed_telemetry`, tags `device`, `municipality`, `aed`) and writes them in batches. When the store
is down the thread retries with exponential backoff while the buffer fills; a full buffer drops its
oldest samples and counts them. Nothing here blocks the ingest or raises for server trouble.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import urllib3
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

if TYPE_CHECKING:
    from fleet.settings import Settings
    from fleet.wire import TelemetryMessage

logger = logging.getLogger(__name__)

MEASUREMENT = "aed_telemetry"
HTTP_TIMEOUT_S = 10.0
"""A hung store fails a write after this long instead of holding the writer (and close) forever."""
# Answers that say "not now" (or "not configured yet") rather than "this data is bad": retried.
_RETRIED_CLIENT_ERRORS = frozenset({401, 403, 404, 408, 429})

FieldValue = float | int | bool
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class TelemetrySample:
    """One applied telemetry message, as a point of the time series."""

    device_id: str
    aed_id: str | None
    municipality: str | None
    ts: datetime  # timezone-aware
    fields: Mapping[str, FieldValue]


def sample_fields(message: TelemetryMessage) -> dict[str, FieldValue]:
    """The numeric fields of a telemetry message: only those it carries."""
    fields: dict[str, FieldValue] = {}
    for name in ("battery_pct", "temperature_c", "door_open", "aed_present", "heater_on"):
        value = getattr(message, name)
        if value is not None:
            fields[name] = value
    if message.power is not None:
        fields["on_battery"] = message.power == "battery"
    if message.self_test in ("pass", "fail"):
        fields["self_test_ok"] = 1 if message.self_test == "pass" else 0
    day = message.ts.date()
    if message.pads_expiry is not None:
        fields["pads_days_left"] = (message.pads_expiry - day).days
    if message.battery_expiry is not None:
        fields["battery_days_left"] = (message.battery_expiry - day).days
    if message.source_fault is not None:
        fields["source_fault"] = bool(message.source_fault)
    return fields


def to_line_protocol(sample: TelemetrySample, measurement: str = MEASUREMENT) -> str:
    """The sample as one line of InfluxDB line protocol (ms precision); "" when it has no fields."""
    point = Point(measurement).tag("device", sample.device_id)
    if sample.municipality is not None:
        point.tag("municipality", sample.municipality)
    if sample.aed_id is not None:
        point.tag("aed", sample.aed_id)
    for name, value in sample.fields.items():
        point.field(name, value)
    # Point would turn a datetime into ms through a float and can land 1 ms early
    # (…800.250 becomes …800249): integer arithmetic gives the exact millisecond.
    epoch_ms = (sample.ts - _EPOCH) // _ONE_MS
    return str(point.time(epoch_ms, WritePrecision.MS).to_line_protocol())


@dataclass
class SinkStats:
    """Plain counters of a sink, read by the metrics module."""

    written: int = 0
    dropped: int = 0
    write_failures: int = 0
    buffered: int = 0
    last_error: str | None = None


class TimeSeriesSink(Protocol):
    """Where the ingest sends its telemetry samples after each commit."""

    stats: SinkStats

    def add(self, samples: Sequence[TelemetrySample]) -> None:
        """Queue samples for writing; never blocks, never raises for server trouble."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what can be written within the timeout, then stop."""


class NullSink:
    """The sink when no time-series store is configured: it keeps nothing."""

    def __init__(self) -> None:
        self.stats = SinkStats()

    def add(self, samples: Sequence[TelemetrySample]) -> None:
        """Forget the samples."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Nothing to flush."""


class _Rejected(Exception):
    """The store refused a batch for its content: retrying it would never succeed."""


class InfluxSink:
    """Buffers samples and writes them from a daemon thread to an InfluxDB v2 write API."""

    def __init__(self, url: str, org: str, bucket: str, token: str, *,
                 measurement: str = MEASUREMENT, buffer_max: int = 200_000,
                 batch_size: int = 5_000, flush_interval_s: float = 1.0,
                 retry_max_s: float = 30.0) -> None:
        self.stats = SinkStats()
        self._url = url
        self._org = org
        self._bucket = bucket
        self._measurement = measurement
        self._buffer_max = buffer_max
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_max_s = retry_max_s
        self._client = InfluxDBClient(url=url, token=token, org=org,
                                      timeout=int(HTTP_TIMEOUT_S * 1000))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        # Oldest on the left. A batch being written is taken out and, if the write fails, put
        # back on the left, so the buffer plus one batch in flight is all that is ever held.
        self._queue: deque[TelemetrySample] = deque(maxlen=buffer_max)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        self._close_deadline = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> InfluxSink:
        """Launch the writer thread; returns the sink."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="aedfleet-timeseries",
                                            daemon=True)
            self._thread.start()
        return self

    def add(self, samples: Sequence[TelemetrySample]) -> None:
        """Queue samples for writing; when the buffer is full its oldest samples are dropped."""
        if not samples:
            return
        with self._lock:
            if self._closed:
                self.stats.dropped += len(samples)
                return
            overflow = len(self._queue) + len(samples) - self._buffer_max
            self._queue.extend(samples)
            if overflow > 0:
                self.stats.dropped += overflow
            self.stats.buffered = len(self._queue) + self._in_flight
            batch_ready = len(self._queue) >= self._batch_size
        if batch_ready:
            self._wake.set()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what the store takes within `timeout_s`; what is left is counted as dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_deadline = time.monotonic() + timeout_s
        self._stopping.set()
        self._wake.set()
        if self._thread is None:
            self._give_up_on_buffer()
            self._client.close()
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("time-series writer still busy after %.1f s; leaving it behind",
                           timeout_s)

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                if failures:  # backing off: only close() cuts the wait short
                    self._stopping.wait(min(self._retry_max_s,
                                            self._flush_interval_s * 2 ** min(failures - 1, 16)))
                else:
                    self._wake.wait(self._flush_interval_s)
                    self._wake.clear()
                if self._stopping.is_set():
                    break
                if self._write_buffer(stop_at=None):
                    if failures:
                        logger.info("time-series store at %s is back after %d failed writes",
                                    self._url, failures)
                    failures = 0
                else:
                    failures += 1
            self._write_buffer(stop_at=self._close_deadline)
        except Exception:  # a bug here must not go unnoticed, nor take the ingest down
            logger.exception("time-series writer stopped")
        finally:
            self._give_up_on_buffer()
            self._client.close()

    def _write_buffer(self, stop_at: float | None) -> bool:
        """Write batches until the buffer is empty (True), a write fails or time is up (False)."""
        while True:
            if stop_at is None and self._stopping.is_set():
                return False
            if stop_at is not None and time.monotonic() >= stop_at:
                return False
            batch = self._take_batch()
            if not batch:
                return True
            if not self._write_batch(batch):
                return False

    def _take_batch(self) -> list[TelemetrySample]:
        with self._lock:
            count = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            self._in_flight = count
        return batch

    def _write_batch(self, batch: list[TelemetrySample]) -> bool:
        """Write one batch taken from the buffer; False if it went back there to be retried."""
        writable = self._writable(batch)
        lines = [line for _, line in writable]
        try:
            if lines:
                self._write(lines)
        except (InfluxDBError, urllib3.exceptions.HTTPError, OSError) as exc:
            error = _describe(exc)
            with self._lock:
                self.stats.write_failures += 1
                self.stats.last_error = error
                self._put_back([sample for sample, _ in writable])
                buffered = self.stats.buffered
            logger.warning("cannot write %d samples to the time-series store at %s (%s); "
                           "%d samples buffered", len(lines), self._url, error, buffered)
            return False
        except Exception as exc:  # rejected as bad data, or a surprise: retrying cannot help
            if isinstance(exc, _Rejected):
                logger.error("the time-series store at %s rejected %d samples, dropped: %s",
                             self._url, len(lines), exc)
            else:
                logger.exception("dropped %d samples that could not be written", len(lines))
            with self._lock:
                self.stats.dropped += len(lines)
                self.stats.last_error = str(exc)
                self._finish_batch()
            return True
        with self._lock:
            self.stats.written += len(lines)
            self._finish_batch()
        return True

    def _writable(self, batch: list[TelemetrySample]) -> list[tuple[TelemetrySample, str]]:
        """The batch's samples with their line protocol; a sample without fields has none."""
        writable = []
        for sample in batch:
            try:
                line = to_line_protocol(sample, self._measurement)
            except (ValueError, TypeError) as exc:  # a field of a type line protocol lacks
                logger.error("dropped a sample of %s that has no line protocol: %s",
                             sample.device_id, exc)
                with self._lock:
                    self.stats.dropped += 1
                continue
            if line:
                writable.append((sample, line))
        return writable

    def _write(self, lines: list[str]) -> None:
        try:
            # WritePrecision.MS is the str "ms", though `write` is annotated to want the class.
            self._write_api.write(bucket=self._bucket, org=self._org, record=lines,
                                  write_precision=WritePrecision.MS)  # type: ignore[arg-type]
        except InfluxDBError as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and 400 <= status < 500 and (
                    status not in _RETRIED_CLIENT_ERRORS):
                raise _Rejected(_describe(exc)) from exc
            raise

    def _put_back(self, batch: list[TelemetrySample]) -> None:
        """Return a failed batch to the front of the buffer, dropping its oldest if full."""
        room = self._buffer_max - len(self._queue)
        keep = batch[len(batch) - room:] if room < len(batch) else batch
        self._queue.extendleft(reversed(keep))
        self.stats.dropped += len(batch) - len(keep)
        self._finish_batch()

    def _finish_batch(self) -> None:
        self._in_flight = 0
        self.stats.buffered = len(self._queue)

    def _give_up_on_buffer(self) -> None:
        with self._lock:
            left = len(self._queue) + self._in_flight
            self._queue.clear()
            self._in_flight = 0
            self.stats.dropped += left
            self.stats.buffered = 0
        if left:
            logger.warning("time-series sink closed with %d samples unwritten (counted as dropped)",
                           left)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(exc, InfluxDBError) and status is not None:
        message = getattr(exc, "message", None) or getattr(exc, "reason", None) or ""
        return f"HTTP {status} {message}".strip()
    return f"{type(exc).__name__}: {exc}"


def make_sink(settings: Settings) -> TimeSeriesSink:
    """A started `InfluxSink` when `influx_url` is set, else a `NullSink`."""
    if not settings.influx_enabled:
        return NullSink()
    buffering = settings.timeseries
    return InfluxSink(settings.influx_url, settings.influx_org, settings.influx_bucket,
                      settings.influx_token, measurement=buffering.measurement,
                      buffer_max=buffering.buffer_max, batch_size=buffering.batch_size,
                      flush_interval_s=buffering.flush_interval_s,
                      retry_max_s=buffering.retry_max_s).start()
