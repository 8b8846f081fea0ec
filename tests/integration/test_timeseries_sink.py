"""The time-series sink against a real server of the InfluxDB v2 write API: VictoriaMetrics.

VictoriaMetrics stores measurement `aed_telemetry` with field `battery_pct` as the metric
`aed_telemetry_battery_pct`, with the tags as labels; `/api/v1/export` reads every stored sample
back. A new series becomes searchable only when VictoriaMetrics flushes its index (about 10 s in
1.79), so each read asks for `/internal/force_flush` first and polls with a deadline.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device_agents.local_broker import free_port
from fleet.timeseries import InfluxSink, TelemetrySample

from .mqtt_support import wait_until
from .victoria_support import VictoriaMetrics

MUNICIPALITIES = ["'s-Hertogenbosch", "Súdwest-Fryslân", "Bergen (NH)", "Utrecht",
                  "Land van Cuijk, Boxmeer=oud"]
# Recent enough for the default one-month retention.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def make_victoria_metrics(tmp_path: Path) -> Iterator[Callable[..., VictoriaMetrics]]:
    """Builds VictoriaMetrics servers (not started), each stopped at teardown."""
    servers: list[VictoriaMetrics] = []

    def make(*flags: str) -> VictoriaMetrics:
        folder = tmp_path / f"vm{len(servers)}"
        folder.mkdir()
        servers.append(VictoriaMetrics(folder, *flags))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def victoria_metrics(make_victoria_metrics: Callable[..., VictoriaMetrics]) -> VictoriaMetrics:
    server = make_victoria_metrics()
    server.start()
    return server


def fleet_samples(devices: int, per_device: int) -> list[TelemetrySample]:
    """Samples of many devices, interleaved in time like the ingest would see them."""
    return [
        TelemetrySample(
            device_id=f"cab-{d:03}", aed_id=f"aed-{d:03}",
            municipality=MUNICIPALITIES[d % len(MUNICIPALITIES)],
            ts=START + timedelta(seconds=i, milliseconds=d),
            fields={"battery_pct": (d + i) % 101, "temperature_c": 10 + i / 4,
                    "door_open": i % 2 == 1, "pads_days_left": 400 - i})
        for i in range(per_device) for d in range(devices)]


def expected_points(samples: list[TelemetrySample], field: str) -> Counter[tuple[str, int, float]]:
    return Counter((s.device_id, (s.ts - EPOCH) // timedelta(milliseconds=1),
                    float(s.fields[field])) for s in samples)


def sink_for(url: str, **options: Any) -> InfluxSink:
    tuning: dict[str, Any] = {"batch_size": 500, "flush_interval_s": 0.1, "retry_max_s": 0.5}
    return InfluxSink(url, "aedfleet", "telemetry", "any-token", **(tuning | options)).start()


def add_in_ingest_batches(sink: InfluxSink, samples: list[TelemetrySample], size: int = 100
                          ) -> None:
    for start in range(0, len(samples), size):
        sink.add(samples[start:start + size])


def test_every_sample_written_is_stored_once_with_its_tags_as_labels(
        victoria_metrics: VictoriaMetrics) -> None:
    samples = fleet_samples(devices=50, per_device=40)
    sink = sink_for(victoria_metrics.url)
    try:
        add_in_ingest_batches(sink, samples)
        wait_until(lambda: sink.stats.written == len(samples), 30, "the sink to write everything")
        stored = victoria_metrics.wait_for_points("aed_telemetry_battery_pct", len(samples))
    finally:
        sink.close()
    assert stored == expected_points(samples, "battery_pct")
    assert victoria_metrics.wait_for_points("aed_telemetry_door_open", len(samples)) == (
        expected_points(samples, "door_open"))
    series = victoria_metrics.export("aed_telemetry_temperature_c")
    labels = {series["metric"]["device"]: series["metric"] for series in series}
    assert len(labels) == 50
    assert labels["cab-000"] == {"__name__": "aed_telemetry_temperature_c", "device": "cab-000",
                                 "aed": "aed-000", "municipality": "'s-Hertogenbosch"}
    assert labels["cab-004"]["municipality"] == "Land van Cuijk, Boxmeer=oud"
    assert {label["municipality"] for label in labels.values()} == set(MUNICIPALITIES)
    assert (sink.stats.dropped, sink.stats.write_failures, sink.stats.buffered) == (0, 0, 0)


def test_points_written_while_the_server_was_down_arrive_after_it_returns(
        make_victoria_metrics: Callable[..., VictoriaMetrics]) -> None:
    server = make_victoria_metrics()  # its port is chosen, nobody listens on it yet
    samples = fleet_samples(devices=20, per_device=50)
    sink = sink_for(server.url)
    try:
        add_in_ingest_batches(sink, samples[:600])
        wait_until(lambda: sink.stats.write_failures >= 2, 10, "failed writes")
        add_in_ingest_batches(sink, samples[600:])
        assert (sink.stats.written, sink.stats.buffered) == (0, len(samples))
        server.start()
        wait_until(lambda: sink.stats.written == len(samples), 30, "the sink to catch up")
        stored = server.wait_for_points("aed_telemetry_battery_pct", len(samples))
    finally:
        sink.close()
    assert stored == expected_points(samples, "battery_pct")
    assert sink.stats.write_failures >= 2
    assert (sink.stats.dropped, sink.stats.buffered) == (0, 0)


def test_when_the_buffer_overflows_during_an_outage_the_newest_samples_arrive(
        make_victoria_metrics: Callable[..., VictoriaMetrics]) -> None:
    server = make_victoria_metrics()
    samples = fleet_samples(devices=10, per_device=100)
    sink = sink_for(server.url, buffer_max=300, batch_size=100)
    try:
        add_in_ingest_batches(sink, samples[:100])
        wait_until(lambda: sink.stats.write_failures >= 1, 10, "a failed write")
        add_in_ingest_batches(sink, samples[100:])
        server.start()
        wait_until(lambda: sink.stats.written == 300, 30, "the sink to catch up")
        stored = server.wait_for_points("aed_telemetry_battery_pct", 300)
    finally:
        sink.close()
    assert stored == expected_points(samples[-300:], "battery_pct")
    assert (sink.stats.dropped, sink.stats.buffered) == (700, 0)


@pytest.fixture
def hung_server() -> Iterator[socket.socket]:
    """A listening socket that accepts connections (with `accept()`) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        server.settimeout(10)
        yield server


def stuck_sink(hung_server: socket.socket | None, **options: Any
               ) -> tuple[InfluxSink, socket.socket | None]:
    """A sink whose writer is stuck: in its backoff (server down) or in a write (server hung)."""
    if hung_server is None:
        sink = sink_for(f"http://127.0.0.1:{free_port()}", **options)
        sink.add(fleet_samples(devices=10, per_device=20))
        wait_until(lambda: sink.stats.write_failures >= 2, 5, "failed writes")
        return sink, None
    sink = sink_for(f"http://127.0.0.1:{hung_server.getsockname()[1]}", **options)
    sink.add(fleet_samples(devices=10, per_device=20))
    connection, _ = hung_server.accept()  # the writer has sent a batch and waits for an answer
    return sink, connection


@pytest.mark.parametrize("server", ["down", "hung"])
def test_adding_samples_never_waits_for_a_server_that_is_down_or_hangs(
        server: str, hung_server: socket.socket) -> None:
    sink, connection = stuck_sink(hung_server if server == "hung" else None, batch_size=200)
    try:
        samples = fleet_samples(devices=100, per_device=100)
        started = time.monotonic()
        add_in_ingest_batches(sink, samples)
        took = time.monotonic() - started
        # Adding is an append: waiting for the writer would take a write's time-out (10 s).
        assert took < 1.0, f"adding 10,000 samples took {took:.2f} s with the server {server}"
        assert sink.stats.buffered == 200 + len(samples)
        assert (sink.stats.written, sink.stats.dropped) == (0, 0)
    finally:
        sink.close(timeout_s=0.5)
        if connection is not None:
            connection.close()


@pytest.mark.parametrize("server", ["down", "hung"])
def test_close_returns_within_its_timeout_while_the_server_is_down_or_hangs(
        server: str, hung_server: socket.socket) -> None:
    sink, connection = stuck_sink(hung_server if server == "hung" else None, retry_max_s=30.0)
    try:
        started = time.monotonic()
        sink.close(timeout_s=1.0)
        took = time.monotonic() - started
    finally:
        if connection is not None:
            connection.close()
    assert took < 1.5, f"close took {took:.2f} s with the server {server}"
    wait_until(lambda: sink.stats.buffered == 0, 5, "the writer to give up")
    assert (sink.stats.written, sink.stats.dropped) == (0, 200)


def test_a_batch_the_server_rejects_is_dropped_and_the_next_ones_still_arrive(
        make_victoria_metrics: Callable[..., VictoriaMetrics]) -> None:
    server = make_victoria_metrics("-influx.maxLineSize=1000")
    server.start()
    samples = fleet_samples(devices=1, per_device=21)
    oversized = TelemetrySample(device_id="cab-000", aed_id=None, municipality="x" * 2000,
                                ts=samples[10].ts, fields=samples[10].fields)
    # One sample a batch: VictoriaMetrics answers 400 to a body that is one over-long line.
    sink = sink_for(server.url, batch_size=1)
    try:
        add_in_ingest_batches(sink, samples[:10] + [oversized] + samples[11:], size=5)
        wait_until(lambda: sink.stats.written + sink.stats.dropped == 21, 30, "all batches")
        stored = server.wait_for_points("aed_telemetry_battery_pct", 20)
    finally:
        sink.close()
    assert (sink.stats.written, sink.stats.dropped, sink.stats.write_failures) == (20, 1, 0)
    assert sink.stats.last_error is not None and "HTTP 400" in sink.stats.last_error
    assert stored == expected_points(samples[:10] + samples[11:], "battery_pct")
