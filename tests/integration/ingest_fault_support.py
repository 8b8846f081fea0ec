"""Faults for the ingest tests: a killable `aedfleet ingest` process, a TCP proxy to cut the
database link, a cabinet publisher that times its acks, and the fleet as the database sees it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlmodel import Session, select

from device_agents.agent import CabinetAgent
from device_agents.config import AgentConfig, SourceConfig
from device_agents.local_broker import free_port
from device_agents.register_map import find_register_map
from device_agents.simulators.modbus_server import ModbusCabinetSimulator
from device_agents.simulators.scenario import Scenario
from device_agents.sources.modbus import ModbusSource
from device_agents.spool import Spool
from device_agents.tasks import cancel_and_wait
from fleet.models import AppliedMessage, DeadLetter, DeviceEvent, TelemetryState

from .ingest_support import CabinetPublisher, event, telemetry
from .mqtt_support import Mosquitto

AEDFLEET = Path(sys.executable).with_name("aedfleet")


# --- what the cabinets send --------------------------------------------------------------------

@dataclass
class Stream:
    """Messages of many cabinets, one round after another: round r carries seq r of each."""

    devices: list[str]
    rounds: int
    event_rounds: dict[int, str] = field(default_factory=dict)  # round -> event type

    def round(self, r: int) -> list[tuple[str, bytes]]:
        kind = self.event_rounds.get(r)
        if kind is None:
            return [(f"aed/{d}/telemetry", telemetry(d, r, battery_pct=r % 101))
                    for d in self.devices]
        return [(f"aed/{d}/event", event(d, r, kind)) for d in self.devices]

    def messages(self, first: int = 1, last: int | None = None) -> list[tuple[str, bytes]]:
        return [m for r in range(first, (last or self.rounds) + 1) for m in self.round(r)]

    def keys(self) -> set[tuple[str, int]]:
        return {(d, r) for d in self.devices for r in range(1, self.rounds + 1)}

    def event_keys(self) -> list[tuple[str, int]]:
        return sorted((d, r) for d in self.devices for r in self.event_rounds)

    def last_telemetry_seq(self) -> int:
        return max(r for r in range(1, self.rounds + 1) if r not in self.event_rounds)


class TimedAcks(CabinetPublisher):
    """A `CabinetPublisher` that also notes when each ack arrived (time.monotonic())."""

    def __init__(self, broker: Mosquitto) -> None:
        super().__init__(broker)
        self.timed: list[tuple[str, int, float]] = []

    async def __aenter__(self) -> TimedAcks:
        await super().__aenter__()
        return self

    async def _collect(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            device = message.topic.value.split("/")[1]
            seq = json.loads(message.payload)["seq"]  # type: ignore[arg-type]
            self.acks[device].append(seq)
            self.timed.append((device, seq, time.monotonic()))

    def between(self, start: float, end: float) -> list[tuple[str, int]]:
        return [(device, seq) for device, seq, at in self.timed if start <= at < end]


# --- the fleet as the database sees it ---------------------------------------------------------

@dataclass
class Stored:
    ledger: list[tuple[str, int, str]]  # (device, seq, kind)
    events: list[tuple[str, int, str]]  # (device, seq, type)
    state_seq: dict[str, int]
    dead_letters: list[tuple[str | None, str, bytes]]  # (device, reason, payload)

    def ledger_keys(self, devices: set[str] | None = None) -> list[tuple[str, int]]:
        return sorted((d, s) for d, s, _ in self.ledger if devices is None or d in devices)

    def event_keys(self, devices: set[str] | None = None) -> list[tuple[str, int]]:
        return sorted((d, s) for d, s, _ in self.events if devices is None or d in devices)


def stored(engine: Engine) -> Stored:
    with Session(engine) as session:
        ledger = [(d, s, k) for d, s, k in session.exec(
            select(AppliedMessage.device_id, AppliedMessage.seq, AppliedMessage.kind))]
        events = [(d, s, t) for d, s, t in session.exec(
            select(DeviceEvent.device_id, DeviceEvent.seq, DeviceEvent.type))]
        states = {d: s for d, s in session.exec(
            select(TelemetryState.device_id, TelemetryState.seq))}
        letters = [(d, r, bytes(p)) for d, r, p in session.exec(
            select(DeadLetter.device_id, DeadLetter.reason, DeadLetter.payload))]
    return Stored(ledger, events, states, letters)


def ledger_keys(engine: Engine) -> set[tuple[str, int]]:
    with Session(engine) as session:
        return {(d, s) for d, s in session.exec(
            select(AppliedMessage.device_id, AppliedMessage.seq))}


# --- `aedfleet ingest` as a process ------------------------------------------------------------

class IngestProcess:
    """`aedfleet ingest` under a fixed client id, in its own folder, serving its metrics."""

    def __init__(self, folder: Path, database_url: str, mqtt_url: str, client_id: str) -> None:
        self.folder = folder
        self.client_id = client_id
        self.log_path = folder / f"{client_id}.log"
        self.env = {**os.environ, "AEDFLEET_DATABASE_URL": database_url,
                    "AEDFLEET_MQTT_URL": mqtt_url, "AEDFLEET_INGEST__CLIENT_ID": client_id,
                    "AEDFLEET_INGEST__SWEEP_INTERVAL_S": "3600"}
        self.env.pop("AEDFLEET_CONFIG", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.metrics_port = free_port()
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.client_id}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(AEDFLEET), "ingest", "--metrics", f"127.0.0.1:{self.metrics_port}"],
                env=self.env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no clean stop, no unsubscribe, no last acks."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            return None

    def assert_alive(self) -> None:
        """Fail at once, with its log, if the worker has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"ingest worker {self.client_id} exited with "
                                 f"{self.process.returncode}:\n{self.log()[-5000:]}")

    def metric(self, name: str) -> float | None:
        """A sample of the running worker's /metrics; None while it does not answer."""
        if self.process is None or self.process.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1) as response:
                text = response.read().decode()
        except OSError:
            return None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and not sample.labels:
                    return float(sample.value)
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def probe_until_received(publisher: CabinetPublisher, device: str,
                               workers: list[IngestProcess], timeout_s: float = 30) -> int:
    """Publish probe telemetry until every worker has received some (all are subscribed).

    A shared subscription hands messages round robin to the group's members, so a few probes
    reach each of them. Returns the number of probes sent (probe seqs are 1..n).
    """
    deadline = time.monotonic() + timeout_s
    sent = 0
    while not all((w.metric("aedfleet_ingest_received_total") or 0) > 0 for w in workers):
        for worker in workers:
            worker.assert_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(w.log()[-3000:] for w in workers)
            raise AssertionError(f"ingest workers did not subscribe in {timeout_s} s:\n{logs}")
        sent += 1
        await publisher.publish(f"aed/{device}/telemetry", telemetry(device, sent))
        await asyncio.sleep(0.1)
    return sent


# --- a TCP proxy to cut a database link --------------------------------------------------------

class TcpProxy:
    """socat on `port` forwarding to `target`; `cut()` kills it and every link it carries."""

    def __init__(self, target_host: str, target_port: int) -> None:
        if shutil.which("socat") is None:
            pytest.skip("socat is not installed (apt-get install socat)")
        self.target = f"{target_host}:{target_port}"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10) -> None:
        # Its own session: the forked child of each link is in the group `cut()` kills.
        self.process = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
             f"TCP:{self.target}"], stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"socat did not listen on {self.port}") from None
                time.sleep(0.02)

    def cut(self) -> None:
        """Kill the listener and the children holding the links: every connection dies."""
        if self.process is None:
            return
        process, self.process = self.process, None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# --- real cabinet agents on simulated Modbus cabinets ------------------------------------------

ROOT = Path(__file__).parents[2]
RCC1 = find_register_map("rcc1", ROOT / "config" / "cabinets")


def door_flapping(changes: int) -> Scenario:
    """A cabinet whose door opens and closes every scenario second, `changes` times, then rests
    shut: a door event and a telemetry snapshot per change, then silence."""
    steps = [{"at_s": float(t), "set": {"door_open": t % 2 == 1}} for t in range(1, changes + 1)]
    if changes % 2:
        steps.append({"at_s": float(changes + 1), "set": {"door_open": False}})
    return Scenario.model_validate({
        "name": "door flapping", "frame_interval_s": 10, "initial": {
            "battery_pct": 90, "pads_expiry": "2027-09-01", "door_open": False,
            "aed_present": True, "temperature_c": 15.0, "self_test": "pass",
            "heater_on": False, "power": "mains"},
        "steps": steps})


@dataclass
class AgentCabinet:
    """A simulated RCC-1 Modbus controller and the real agent reading it, with its spool."""

    device_id: str
    simulator: ModbusCabinetSimulator
    agent: CabinetAgent
    spool: Spool
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, broker: Mosquitto, device_id: str, folder: Path, scenario: Scenario,
                    speed: float, ack_timeout_s: float = 2.0) -> AgentCabinet:
        port = free_port()
        simulator = ModbusCabinetSimulator(scenario, RCC1, port=port, speed=speed)
        ready = asyncio.Event()
        tasks = [asyncio.create_task(simulator.run(ready))]
        await asyncio.wait_for(ready.wait(), 10)
        source = SourceConfig(kind="modbus-tcp", port=port, timeout_s=0.5,
                              register_map_dir=ROOT / "config" / "cabinets")
        config = AgentConfig.model_validate({
            "device_id": device_id, "mqtt_url": broker.url(device_id),
            "spool_path": folder / device_id / "spool.db", "poll_interval_s": 0.1,
            "backoff_min_s": 0.1, "backoff_max_s": 0.5, "ack_timeout_s": ack_timeout_s,
            "source": source})
        spool = Spool(config.spool_path)
        agent = CabinetAgent(config, ModbusSource.tcp("127.0.0.1", port, RCC1, 0.5), spool)
        tasks.append(asyncio.create_task(agent.run()))
        return cls(device_id, simulator, agent, spool, tasks)

    def settled(self) -> bool:
        """Everything the agent produced is acked and its spool is empty."""
        return len(self.spool) == 0 and self.spool.acked_seq == self.spool.last_seq

    async def stop(self) -> None:
        stuck = await cancel_and_wait(self.tasks, timeout_s=20)  # type: ignore[arg-type]
        self.spool.close()
        assert not stuck, f"tasks of {self.device_id} that did not stop: {stuck}"
