"""`aedfleet bench soak`: a national day, compressed, against the real processes.

A synthetic country (`alarm_core.bench.build_world`: responders and AEDs where people live,
calls where cardiac arrests happen, from CBS population data) is stored; Mosquitto, one
`aedfleet ingest` worker and the alarm core (`aedfleet alarm`) run as in production. Time runs
`speed` times faster than a real day for everything that happens on a schedule:

- every cabinet reports every 15 minutes (its heartbeat), over MQTT with QoS 1;
- 112 calls come at the national rate, 40 an hour, each closed 20 minutes later;
- 2 % of app responders send their position every 10 minutes (capped at 50 a second).

Measured: each call's intake time as the 112 centre sees it (HTTP round trip), whether every
alert reached the responders' topics, whether every cabinet message the broker accepted was
applied, and the resident memory of the ingest worker and the alarm core. The figures compare
the first fifth of the run with the last: a system that leaks or slows down shows it there.
"""

from __future__ import annotations

import asyncio
import heapq
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from alarm_core.bench import (
    AlertCounter,
    World,
    _fresh_database,
    _wait_for_http,
    build_world,
    percentile,
    store_world,
)
from device_agents.local_broker import LocalMosquitto, free_port
from device_agents.publishing import PublishWindow
from fleet.bench_ingest import WINDOW, Load, _ledger

HEARTBEAT_S = 900.0
CALLS_PER_HOUR = 40.0
CLOSE_AFTER_S = 1_200.0
POSITION_SHARE = 0.02
POSITION_EVERY_S = 600.0
POSITIONS_MAX_PER_S = 50.0
SAMPLE_S = 5.0


@dataclass
class Run:
    """What the load generators saw, shared between their threads."""

    started: float
    minutes: float
    calls: list[tuple[float, float]] = field(default_factory=list)  # (at, ms)
    incidents: dict[str, int] = field(default_factory=dict)  # id -> alerted
    missed: int = 0
    positions: int = 0
    positions_refused: int = 0
    memory: list[tuple[float, float, float]] = field(default_factory=list)  # (at, ingest, alarm)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Http:
    """One keep-alive connection to the alarm core, reopened when it breaks."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        try:
            self.connection.request(method, path, json.dumps(body), self.headers)
            response = self.connection.getresponse()
            return response.status, json.loads(response.read())
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise


def _dispatch_centre(run: Run, world: World, port: int, token: str, speed: float) -> None:
    """112 calls at the national rate (compressed), each closed 20 simulated minutes later."""
    client = Http(port, token)
    every_s = 3_600.0 / CALLS_PER_HOUR / speed
    closing: list[tuple[float, str]] = []
    number = 0
    next_call = time.monotonic()
    while not run.stop.is_set():
        now = time.monotonic()
        while closing and closing[0][0] <= now:
            _, incident_id = heapq.heappop(closing)
            try:
                client.call("POST", f"/api/v1/incidents/{incident_id}/close", {"reason": "soak"})
            except (OSError, http.client.HTTPException) as exc:
                run.errors.append(f"close {incident_id}: {exc}")
        if now >= next_call:
            lat, lon = world.incidents[number % len(world.incidents)].tolist()
            body = {"reference": f"soak-{number}", "lat": lat, "lon": lon, "source": "112"}
            number += 1
            sent = time.perf_counter()
            try:
                status, document = client.call("POST", "/api/v1/incidents", body)
            except (OSError, http.client.HTTPException) as exc:
                run.missed += 1
                run.errors.append(f"call {body['reference']}: {exc}")
            else:
                if status != 201:
                    run.missed += 1
                    run.errors.append(f"call {body['reference']}: {status} {document}")
                else:
                    run.calls.append((run.elapsed(), (time.perf_counter() - sent) * 1000))
                    run.incidents[document["id"]] = document["counts"]["alerted"]
                    heapq.heappush(closing, (now + CLOSE_AFTER_S / speed, document["id"]))
            next_call += every_s
        run.stop.wait(max(0.0, min(next_call, closing[0][0] if closing else next_call)
                          - time.monotonic()))


def _responder_apps(run: Run, world: World, port: int, token: str, speed: float) -> None:
    """Positions of the responders whose app reports one, near where they are."""
    client = Http(port, token)
    rng = random.Random(3)
    movers = [(r.id, r.lat, r.lon) for r in world.responders
              if r.app and r.lat is not None and r.lon is not None]
    rate = min(POSITIONS_MAX_PER_S, len(movers) * POSITION_SHARE / POSITION_EVERY_S * speed)
    next_at = time.monotonic()
    while not run.stop.is_set() and rate > 0:
        who, lat, lon = movers[rng.randrange(len(movers))]
        body = {"lat": lat + rng.uniform(-0.005, 0.005), "lon": lon + rng.uniform(-0.008, 0.008),
                "ts": datetime.now(UTC).isoformat()}
        try:
            status, _ = client.call("PUT", f"/api/v1/responders/{who}/position", body)
        except (OSError, http.client.HTTPException) as exc:
            run.errors.append(f"position: {exc}")
        else:
            run.positions += 1
            run.positions_refused += status != 200
        next_at += 1.0 / rate
        run.stop.wait(max(0.0, next_at - time.monotonic()))


def _sample_memory(run: Run, ingest: subprocess.Popen[bytes],
                   alarm: subprocess.Popen[bytes]) -> None:
    while not run.stop.is_set():
        run.memory.append((run.elapsed(), _rss_mb(ingest.pid), _rss_mb(alarm.pid)))
        run.stop.wait(SAMPLE_S)


async def _cabinets(run: Run, broker: LocalMosquitto, load: Load, speed: float) -> int:
    """Heartbeats of every cabinet at the compressed rate; returns how many the broker took."""
    rate = len(load.devices) / HEARTBEAT_S * speed
    sent = 0
    async with aiomqtt.Client("127.0.0.1", broker.port, username="loadgen",
                              password=broker.credentials["loadgen"], identifier="soak-cabinets",
                              max_inflight_messages=WINDOW) as client:
        client.pending_calls_threshold = WINDOW * 2
        window = PublishWindow(client, WINDOW)
        while not run.stop.is_set():
            due = int(run.elapsed() * rate) - sent
            for topic, payload in load.messages(max(0, due)):
                await window.publish(topic, payload)
                sent += 1
            await asyncio.sleep(0.1)
        await window.drain()
    return sent


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def _window(run: Run, low: float, high: float) -> list[float]:
    span = run.minutes * 60
    return [ms for at, ms in run.calls if low * span <= at < high * span]


def _memory_at(run: Run, low: float, high: float) -> tuple[float, float]:
    """Mean resident memory (MB) of the ingest worker and of the alarm core in a window."""
    span = run.minutes * 60
    picked = [(ingest, alarm) for at, ingest, alarm in run.memory
              if low * span <= at <= high * span]
    if not picked:
        return 0.0, 0.0
    return (sum(i for i, _ in picked) / len(picked), sum(a for _, a in picked) / len(picked))


def bench_soak(minutes: float = 30.0, speed: float = 10.0, responders: int = 250_000,
               aeds: int = 25_000, server_url: str | None = None,
               progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run the compressed day for `minutes` of wall time; the figures of the module doc."""
    from fleet import migrate
    from fleet.db import make_engine
    from web.auth import create_token

    now = datetime.now(UTC).replace(microsecond=0)
    world = build_world(responders, aeds, 20_000, now, seed=2026)
    with tempfile.TemporaryDirectory(prefix="aedfleet-bench-soak-") as folder:
        root = Path(folder)
        database_url = (_fresh_database(server_url) if server_url
                        else f"sqlite:///{root / 'soak.db'}")
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        started = time.perf_counter()
        store_world(engine, world, now)
        dispatch_token = create_token(engine, "soak-112", now)
        apps_token = create_token(engine, "soak-apps", now, scope="responders")
        devices = [f"cab-{a.id}" for a in world.aeds if a.readiness == "ready"]
        progress(f"{len(world.responders):,} responders, {len(world.aeds):,} AEDs "
                 f"({len(devices):,} in reporting cabinets) stored in "
                 f"{time.perf_counter() - started:.1f} s")
        broker = LocalMosquitto(root / "broker", devices=[], services=("fleet", "loadgen",
                                                                       "soak"))
        broker.start()
        env = {**os.environ, "AEDFLEET_DATABASE_URL": database_url,
               "AEDFLEET_MQTT_URL": broker.url("fleet"), "AEDFLEET_ALARM__CLIENT_ID": "soak",
               "AEDFLEET_INGEST__CLIENT_ID": "soak-ingest"}
        env.pop("AEDFLEET_CONFIG", None)
        aedfleet = str(Path(sys.executable).with_name("aedfleet"))
        port = free_port()
        with (root / "alarm.log").open("wb") as alarm_log, \
                (root / "ingest.log").open("wb") as ingest_log:
            alarm = subprocess.Popen([aedfleet, "alarm", "--http", f"127.0.0.1:{port}"],
                                     env=env, cwd=root, stdout=alarm_log,
                                     stderr=subprocess.STDOUT)
            ingest = subprocess.Popen([aedfleet, "ingest"], env=env, cwd=root,
                                      stdout=ingest_log, stderr=subprocess.STDOUT)
        counter = AlertCounter(broker.port, "soak", broker.credentials["soak"])
        run = Run(time.monotonic(), minutes)
        try:
            _wait_for_http(port, alarm, root / "alarm.log")
            progress(f"running a day at {speed:g}x for {minutes:g} minutes: "
                     f"{CALLS_PER_HOUR * speed:g} calls/h, "
                     f"{len(devices) / HEARTBEAT_S * speed:,.0f} cabinet messages/s")
            run.started = time.monotonic()
            threads = [threading.Thread(target=_dispatch_centre,
                                        args=(run, world, port, dispatch_token, speed)),
                       threading.Thread(target=_responder_apps,
                                        args=(run, world, port, apps_token, speed)),
                       threading.Thread(target=_sample_memory, args=(run, ingest, alarm))]
            for thread in threads:
                thread.start()
            timer = threading.Timer(minutes * 60, run.stop.set)
            timer.start()
            sent = asyncio.run(_cabinets(run, broker, Load(devices), speed))
            for thread in threads:
                thread.join()
            progress(f"{len(run.calls)} calls, {sent:,} cabinet messages; draining")
            deadline = time.monotonic() + 120
            while _ledger(engine) < sent and time.monotonic() < deadline:
                time.sleep(0.5)
            applied = _ledger(engine)
            alerts_missing = sum(max(0, count - len(counter.wait_for(incident, count, 10.0)))
                                 for incident, count in run.incidents.items())
            for process in (alarm, ingest):
                if process.poll() is not None:
                    run.errors.append(f"a process died: {process.args!r} ({process.returncode})")
        finally:
            run.stop.set()
            counter.stop()
            for process in (alarm, ingest):
                process.terminate()
            for process in (alarm, ingest):
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
            broker.stop()
            engine.dispose()
    start, end = _window(run, 0.0, 0.2), _window(run, 0.8, 1.01)
    (ingest_start, alarm_start), (ingest_end, alarm_end) = (_memory_at(run, 0.1, 0.2),
                                                            _memory_at(run, 0.9, 1.01))
    rss_start, rss_end = ingest_start + alarm_start, ingest_end + alarm_end
    return {
        "minutes": minutes, "speed": speed, "simulated_hours": round(minutes * speed / 60, 1),
        "database": "postgresql" if server_url else "sqlite",
        "responders": len(world.responders), "aeds": len(world.aeds), "cabinets": len(devices),
        "incidents": len(run.calls), "missed_incidents": run.missed,
        "alerts_missing": alerts_missing, "messages": sent, "lost_messages": sent - applied,
        "positions": run.positions, "positions_refused": run.positions_refused,
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
        "rss_growth_mb": round(rss_end - rss_start, 1),
        "ingest_rss_mb_start": round(ingest_start, 1), "ingest_rss_mb_end": round(ingest_end, 1),
        "alarm_rss_mb_start": round(alarm_start, 1), "alarm_rss_mb_end": round(alarm_end, 1),
        "p50_dispatch_ms_start": _p(start, 50),
        "p50_dispatch_ms_end": _p(end, 50),
        "p99_dispatch_ms_start": _p(start, 99),
        "p99_dispatch_ms_end": _p(end, 99),
        "errors": run.errors[:10],
    }
