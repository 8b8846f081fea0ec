"""`aedfleet bench ingest`: end-to-end ingest throughput and latency on a real Mosquitto.

A national fleet of cabinets is registered in a fresh database; one load generator publishes
their telemetry (QoS 1) through a private Mosquitto with the project's configuration. Measured in
the same run, on the same messages:

- raw: how fast `mosquitto_sub` receives them, the physical limit of broker and publisher here;
- applied, 1 and 2 workers: real `aedfleet ingest` processes on a shared subscription, from the
  first publish until every message is committed (the ledger holds it) and acked;
- burst: every cabinet reports at once; time until all are committed;
- latency: at a steady rate, from publish to the cabinet's ack (sent right after the commit).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from sqlalchemy import Engine, func, insert, select

from device_agents.local_broker import LocalMosquitto
from device_agents.publishing import PublishWindow
from fleet import migrate
from fleet.db import make_engine
from fleet.models import Aed, AppliedMessage, Cabinet, ReadinessDeclaration

WINDOW = 1_000


def _register(engine: Engine, cabinets: int, now: datetime) -> list[str]:
    devices = [f"nl-{i:05d}" for i in range(cabinets)]
    with engine.begin() as connection:
        for start in range(0, cabinets, 5_000):
            chunk = devices[start:start + 5_000]
            connection.execute(insert(Aed), [
                {"id": f"aed-{d}", "lat": 50.8 + (i % 270) * 0.01, "lon": 3.4 + (i // 270) * 0.04,
                 "access": "public", "opening_hours": "24/7", "out_of_service": False,
                 "created_at": now, "updated_at": now}
                for i, d in enumerate(chunk, start)])
            connection.execute(insert(Cabinet), [
                {"device_id": d, "aed_id": f"aed-{d}", "register_map": "rcc1", "created_at": now}
                for d in chunk])
            connection.execute(insert(ReadinessDeclaration), [
                {"aed_id": f"aed-{d}", "declared_at": now - timedelta(days=10),
                 "declared_by": "bench", "recorded_at": now} for d in chunk])
    return devices


def _payload(device: str, seq: int, ts: str, pads: str, tested: str) -> bytes:
    return json.dumps({
        "v": 1, "device_id": device, "seq": seq, "ts": ts, "battery_pct": 80 + seq // 10 % 20,
        "pads_expiry": pads, "self_test": "pass", "self_test_ts": tested, "door_open": False,
        "aed_present": True, "temperature_c": 12.5, "heater_on": False,
        "power": "mains"}).encode()


class Load:
    """Telemetry of the fleet as cabinets send it; every call hands out fresh seqs.

    Mostly heartbeats that repeat a cabinet's state; a cabinet's battery reading changes on
    every tenth of its reports, and that report is re-evaluated for readiness.
    """

    def __init__(self, devices: list[str]) -> None:
        self.devices = devices
        self.next_seq = dict.fromkeys(devices, 1)
        self.pads = (date.today() + timedelta(days=500)).isoformat()
        self.tested = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def messages(self, count: int) -> list[tuple[str, bytes]]:
        """`count` messages, cabinet after cabinet, each cabinet's seqs without a gap."""
        out = []
        ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for n in range(count):
            device = self.devices[n % len(self.devices)]
            seq = self.next_seq[device]
            self.next_seq[device] = seq + 1
            out.append((f"aed/{device}/telemetry",
                        _payload(device, seq, ts, self.pads, self.tested)))
        return out


async def _publish(broker: LocalMosquitto, messages: list[tuple[str, bytes]],
                   rate: float | None = None, sent_at: dict[str, float] | None = None) -> float:
    """Publish at full speed (or `rate` per second); returns the time of the first publish."""
    async with aiomqtt.Client("127.0.0.1", broker.port, username="loadgen",
                              password=broker.credentials["loadgen"], identifier="bench-loadgen",
                              max_inflight_messages=WINDOW) as client:
        client.pending_calls_threshold = WINDOW * 2
        window = PublishWindow(client, WINDOW)
        first = time.perf_counter()
        for n, (topic, payload) in enumerate(messages):
            if rate is not None:
                delay = first + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if sent_at is not None:
                sent_at[topic.split("/")[1]] = time.perf_counter()
            await window.publish(topic, payload)
        await window.drain()
    return first


def _ledger(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(AppliedMessage)).scalar_one())


async def _until_ledger(engine: Engine, target: int, timeout_s: float) -> float:
    deadline = time.perf_counter() + timeout_s
    while True:
        count = await asyncio.to_thread(_ledger, engine)
        if count >= target:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {count} of {target} messages applied in {timeout_s} s")
        await asyncio.sleep(0.02)


async def _raw_rate(broker: LocalMosquitto, load: Load, count: int) -> float:
    """Messages per second `mosquitto_sub` receives while the generator publishes them."""
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "fleet",
         "-P", broker.credentials["fleet"], "-q", "1", "-t", "aed/+/telemetry"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert sub.stdout is not None
    stdout = sub.stdout
    subscribed = threading.Event()

    def read() -> float:
        received = 0
        for line in stdout:
            if line == b"probe\n":
                subscribed.set()
                continue
            received += 1
            if received == count:
                return time.perf_counter()
        raise RuntimeError(f"mosquitto_sub ended after {received} of {count} messages")

    reading = asyncio.create_task(asyncio.to_thread(read))
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, username="loadgen",
                                  password=broker.credentials["loadgen"]) as client:
            deadline = time.perf_counter() + 30
            while not subscribed.is_set():  # subscribed once a probe comes through
                if time.perf_counter() > deadline:
                    raise RuntimeError("mosquitto_sub did not subscribe")
                await client.publish("aed/bench-probe/telemetry", b"probe", qos=1)
                await asyncio.sleep(0.1)
        first = await _publish(broker, load.messages(count))
        async with asyncio.timeout(600):
            done = await reading
    finally:
        sub.terminate()
        sub.wait(10)
    return count / (done - first)


def _start_workers(broker: LocalMosquitto, database_url: str, count: int,
                   folder: Path) -> list[subprocess.Popen[bytes]]:
    aedfleet = Path(sys.executable).with_name("aedfleet")
    workers = []
    for n in range(count):
        env = {**os.environ, "AEDFLEET_DATABASE_URL": database_url,
               "AEDFLEET_MQTT_URL": broker.url("fleet"),
               "AEDFLEET_INGEST__CLIENT_ID": f"bench-ingest-{n}",
               "AEDFLEET_INGEST__SWEEP_INTERVAL_S": "3600"}
        env.pop("AEDFLEET_CONFIG", None)
        log = (folder / f"ingest-{n}.log").open("ab")
        workers.append(subprocess.Popen([str(aedfleet), "ingest"], env=env, cwd=folder,
                                        stdout=log, stderr=log))
    return workers


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()


async def _applied_rate(broker: LocalMosquitto, engine: Engine, database_url: str, load: Load,
                        count: int, workers: int, folder: Path) -> dict[str, float]:
    processes = _start_workers(broker, database_url, workers, folder)
    try:
        await _until_ready(broker, engine, load, folder)
        base = await asyncio.to_thread(_ledger, engine)
        publishing = asyncio.create_task(_publish(broker, load.messages(count)))
        done = await _until_ledger(engine, base + count, 600)
        first = await publishing
        return {"seconds": done - first, "msgs_per_s": count / (done - first)}
    finally:
        _stop_workers(processes)


async def _latency(broker: LocalMosquitto, engine: Engine, database_url: str, load: Load,
                   count: int, rate: float, folder: Path) -> list[float]:
    """Publish-to-ack latencies (ms) at a steady rate, one worker, one message per cabinet."""
    processes = _start_workers(broker, database_url, 1, folder)
    acked: dict[str, float] = {}
    sent: dict[str, float] = {}
    try:
        await _until_ready(broker, engine, load, folder)
        async with aiomqtt.Client("127.0.0.1", broker.port, username="loadgen",
                                  password=broker.credentials["loadgen"],
                                  identifier="bench-acks") as client:
            await client.subscribe("aed/+/ack", qos=0)

            async def collect() -> None:
                async for message in client.messages:
                    acked.setdefault(message.topic.value.split("/")[1], time.perf_counter())

            collector = asyncio.create_task(collect())
            await _publish(broker, load.messages(count), rate=rate, sent_at=sent)
            deadline = time.perf_counter() + 60
            while len(acked) < count and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            collector.cancel()
    finally:
        _stop_workers(processes)
    return sorted((acked[d] - sent[d]) * 1000 for d in sent if d in acked)


async def _until_ready(broker: LocalMosquitto, engine: Engine, load: Load, folder: Path) -> None:
    base = await asyncio.to_thread(_ledger, engine)
    probe = load.messages(1)
    deadline = time.perf_counter() + 60
    while await asyncio.to_thread(_ledger, engine) <= base:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"ingest worker did not start; see {folder}/ingest-*.log")
        await _publish(broker, probe)
        await asyncio.sleep(0.2)


async def _run(cabinets: int, messages: int, latency_rate: float, latency_count: int,
               database_url: str | None, folder: Path) -> dict[str, Any]:
    broker = LocalMosquitto(folder / "broker", [], ("fleet", "loadgen"))
    broker.start()
    url = database_url or f"sqlite:///{folder / 'ingest.db'}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        load = Load(_register(engine, cabinets, datetime.now(UTC)))
        # The same traffic from other cabinet ids: the workers' cabinets keep seqs without gaps.
        raw = await _raw_rate(broker, Load([f"raw-{i:05d}" for i in range(cabinets)]), messages)
        one = await _applied_rate(broker, engine, url, load, messages, 1, folder)
        two = await _applied_rate(broker, engine, url, load, messages, 2, folder)
        burst = await _applied_rate(broker, engine, url, load, cabinets, 1, folder)
        latencies = await _latency(broker, engine, url, load, latency_count, latency_rate, folder)
    finally:
        engine.dispose()
        broker.stop()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "benchmark": "ingest", "database": engine.dialect.name, "cabinets": cabinets,
        "messages": messages, "raw_msgs_per_s": round(raw),
        "applied_msgs_per_s_1w": round(one["msgs_per_s"]),
        "applied_msgs_per_s_2w": round(two["msgs_per_s"]),
        "applied_vs_raw_1w": round(one["msgs_per_s"] / raw, 2),
        "burst_cabinets": cabinets, "burst_25k_s": round(burst["seconds"], 2),
        "latency_rate_msgs_per_s": latency_rate, "latency_samples": len(latencies),
        "p50_ms": round(quantiles[49], 1), "p99_ms": round(quantiles[98], 1),
    }


def bench_ingest(cabinets: int = 25_000, messages: int = 50_000, latency_rate: float = 500.0,
                 latency_count: int = 5_000, database_url: str | None = None) -> dict[str, Any]:
    """Run the ingest benchmark in a temporary folder; returns its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_run(cabinets, messages, latency_rate, latency_count, database_url,
                                Path(tmp)))
