"""The ingest writes every applied telemetry sample to the time-series store, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fleet.ingest.worker import IngestWorker
from fleet.settings import IngestSettings, Settings
from fleet.timeseries import make_sink

from .ingest_support import CabinetPublisher, RunningWorker, register_fleet, telemetry
from .mqtt_support import Mosquitto, eventually
from .victoria_support import VictoriaMetrics


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    (tmp_path / "vm").mkdir()
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    yield server
    server.stop()


async def test_each_applied_sample_reaches_the_time_series_once_resends_and_late_ones_included(
        broker: Mosquitto, victoria_metrics: VictoriaMetrics, engine: Engine,
        database_url: str) -> None:
    devices = register_fleet(engine, 20)
    settings = Settings(database_url=database_url, mqtt_url=broker.url("fleet"),
                        influx_url=victoria_metrics.url, influx_org="aedfleet",
                        influx_bucket="telemetry", influx_token="unused",
                        ingest=IngestSettings(sweep_interval_s=3600, batch_wait_ms=10))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    reports = {(device, seq): 50 + seq for device in devices for seq in range(1, 11)}
    sink = make_sink(settings)
    try:
        async with RunningWorker(IngestWorker(settings, engine, sink=sink)), \
                CabinetPublisher(broker) as cabinets:
            # Seq 1-8 in order, then 10, then the late 9, then every message once more.
            order = [*range(1, 9), 10, 9]
            for seq in order:
                await cabinets.publish_many([
                    (f"aed/{device}/telemetry", telemetry(
                        device, seq, start + timedelta(minutes=seq),
                        battery_pct=reports[(device, seq)])) for device in devices])
            await eventually(lambda: all(cabinets.acked(d) == 10 for d in devices), 15, "acks")
            await cabinets.publish_many([
                (f"aed/{device}/telemetry", telemetry(device, 3, start + timedelta(minutes=3),
                                                      battery_pct=reports[(device, 3)]))
                for device in devices])
            await eventually(lambda: sink.stats.written == len(reports), 20, "the sink")
    finally:
        sink.close()
    stored = victoria_metrics.wait_for_points("aed_telemetry_battery_pct", len(reports))
    expected = {(device, int((start + timedelta(minutes=seq)).timestamp() * 1000), float(value))
                for (device, seq), value in reports.items()}
    assert set(stored) == expected  # at the cabinet's time, not the time of arrival
    assert set(stored.values()) == {1}, "a resent message is not written twice"
    assert sink.stats.dropped == 0
