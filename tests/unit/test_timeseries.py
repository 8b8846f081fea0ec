"""Telemetry samples as time-series points: their fields, their line protocol, the sink's buffer."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fleet.settings import Settings, TimeSeriesSettings
from fleet.timeseries import (
    InfluxSink,
    NullSink,
    TelemetrySample,
    make_sink,
    sample_fields,
    to_line_protocol,
)
from fleet.wire import TelemetryMessage, parse_cabinet_message

NOON = datetime(2026, 11, 27, 12, 0, 0, 250_000, tzinfo=UTC)
NOON_MS = 1_795_780_800_250


def telemetry(**fields: Any) -> TelemetryMessage:
    document = {"v": 1, "device_id": "cab-1", "seq": 3, "ts": "2026-11-27T12:00:00Z", **fields}
    message = parse_cabinet_message("aed/cab-1/telemetry", json.dumps(document).encode())
    assert isinstance(message, TelemetryMessage)
    return message


def sample(device: str = "cab-1", municipality: str | None = "Utrecht",
           aed: str | None = "aed-1", **fields: float | int | bool) -> TelemetrySample:
    return TelemetrySample(device_id=device, aed_id=aed, municipality=municipality, ts=NOON,
                           fields=fields or {"battery_pct": 87})


def refused_url() -> str:
    """The URL of a loopback port nobody listens on: every connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_full_telemetry_message_gives_every_field() -> None:
    message = telemetry(battery_pct=87, temperature_c=12.5, door_open=False, aed_present=True,
                        heater_on=True, power="battery", self_test="pass",
                        pads_expiry="2027-05-01", battery_expiry="2026-11-20",
                        source_fault="controller silent")
    assert sample_fields(message) == {
        "battery_pct": 87, "temperature_c": 12.5, "door_open": False, "aed_present": True,
        "heater_on": True, "on_battery": True, "self_test_ok": 1, "pads_days_left": 155,
        "battery_days_left": -7, "source_fault": True}


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {}),
    ({"source_fault": "no answer on /dev/ttyUSB0"}, {"source_fault": True}),
    ({"battery_pct": 0, "power": "mains"}, {"battery_pct": 0, "on_battery": False}),
    ({"self_test": "fail", "door_open": True}, {"self_test_ok": 0, "door_open": True}),
    ({"self_test": "unknown", "temperature_c": -3}, {"temperature_c": -3.0}),
    ({"pads_expiry": "2026-11-27"}, {"pads_days_left": 0}),
])
def test_a_partial_message_gives_only_the_fields_it_carries(
        fields: dict[str, Any], expected: dict[str, float | int | bool]) -> None:
    assert sample_fields(telemetry(**fields)) == expected


def test_days_left_count_from_the_date_of_the_message_not_of_its_arrival() -> None:
    late_evening = telemetry(ts="2026-11-27T23:59:59Z", pads_expiry="2026-11-28")
    assert sample_fields(late_evening) == {"pads_days_left": 1}


@pytest.mark.parametrize(("municipality", "aed", "tags"), [
    ("'s-Hertogenbosch", "aed-1", r"aed=aed-1,device=cab-1,municipality='s-Hertogenbosch"),
    ("Súdwest-Fryslân", "aed-1", "aed=aed-1,device=cab-1,municipality=Súdwest-Fryslân"),
    ("Bergen (NH)", "AED 12", r"aed=AED\ 12,device=cab-1,municipality=Bergen\ (NH)"),
    ("Land van Cuijk, Boxmeer=oud", "aed-1",
     r"aed=aed-1,device=cab-1,municipality=Land\ van\ Cuijk\,\ Boxmeer\=oud"),
    (None, None, "device=cab-1"),
])
def test_line_protocol_escapes_tags_and_omits_the_unknown_ones(
        municipality: str | None, aed: str | None, tags: str) -> None:
    line = to_line_protocol(sample(municipality=municipality, aed=aed, battery_pct=87))
    assert line == f"aed_telemetry,{tags} battery_pct=87i {NOON_MS}"


def test_line_protocol_types_each_field_and_stamps_the_sample_time_in_ms() -> None:
    local_noon = NOON.astimezone(ZoneInfo("Europe/Amsterdam"))
    line = to_line_protocol(TelemetrySample(
        device_id="cab-1", aed_id=None, municipality=None, ts=local_noon,
        fields={"temperature_c": 21.0, "door_open": True, "pads_days_left": -3, "self_test_ok": 1}),
        measurement="cabinet")
    assert line == (f"cabinet,device=cab-1 door_open=true,pads_days_left=-3i,self_test_ok=1i,"
                    f"temperature_c=21 {NOON_MS}")


def test_a_sample_without_fields_has_no_line() -> None:
    empty = TelemetrySample(device_id="cab-1", aed_id=None, municipality=None, ts=NOON, fields={})
    assert to_line_protocol(empty) == ""


def test_a_full_buffer_drops_the_oldest_samples_and_counts_them() -> None:
    sink = InfluxSink(refused_url(), "org", "bucket", "token", buffer_max=100, batch_size=10)
    sink.add([sample(device=f"cab-{i}") for i in range(60)])
    sink.add([sample(device=f"cab-{i}") for i in range(60, 250)])
    assert (sink.stats.buffered, sink.stats.dropped) == (100, 150)
    sink.close(timeout_s=1)
    assert (sink.stats.buffered, sink.stats.dropped, sink.stats.written) == (0, 250, 0)


def test_while_the_store_refuses_connections_the_samples_wait_and_failures_are_counted() -> None:
    sink = InfluxSink(refused_url(), "org", "bucket", "token", buffer_max=1_000, batch_size=50,
                      flush_interval_s=0.02, retry_max_s=0.05).start()
    try:
        started = time.monotonic()
        for i in range(30):
            sink.add([sample(device=f"cab-{i}", battery_pct=j) for j in range(10)])
        assert time.monotonic() - started < 1.0
        deadline = time.monotonic() + 10
        while sink.stats.write_failures < 3:
            assert time.monotonic() < deadline, "the sink never tried to write"
            time.sleep(0.01)
        assert (sink.stats.buffered, sink.stats.dropped, sink.stats.written) == (300, 0, 0)
        assert sink.stats.last_error is not None and "refused" in sink.stats.last_error
    finally:
        sink.close(timeout_s=2)
    assert (sink.stats.buffered, sink.stats.dropped) == (0, 300)


def test_samples_added_after_close_are_counted_as_dropped() -> None:
    sink = InfluxSink(refused_url(), "org", "bucket", "token")
    sink.close(timeout_s=1)
    sink.add([sample(), sample()])
    sink.close(timeout_s=1)
    assert (sink.stats.buffered, sink.stats.dropped) == (0, 2)


def test_the_null_sink_keeps_nothing_and_counts_nothing() -> None:
    sink = NullSink()
    sink.add([sample() for _ in range(10)])
    sink.close()
    assert (sink.stats.written, sink.stats.dropped, sink.stats.buffered) == (0, 0, 0)


def test_without_an_influx_url_the_sink_is_the_null_sink() -> None:
    assert isinstance(make_sink(Settings(influx_url="")), NullSink)


def test_with_an_influx_url_the_sink_is_a_started_influx_sink() -> None:
    sink = make_sink(Settings(influx_url=refused_url(), influx_bucket="aed",
                              timeseries=TimeSeriesSettings(buffer_max=5)))
    try:
        assert isinstance(sink, InfluxSink)
        sink.add([sample() for _ in range(8)])
        assert (sink.stats.buffered, sink.stats.dropped) == (5, 3)
    finally:
        sink.close(timeout_s=1)
