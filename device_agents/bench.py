"""`aedfleet bench agent`: the cabinet agent's footprint and throughput, on a real Mosquitto.

- idle: resident memory and CPU of an `aedfleet agent` process reading an unchanging cabinet;
- 1 Hz: CPU while the cabinet's door changes every second;
- drain: time to send a 10,000-message spool after an outage until the fleet acked it all,
  with the agent's batched publishing against one-PUBACK-at-a-time as the baseline;
- simulator: messages per second one `simulate fleet` process drives into the broker.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from device_agents import payloads
from device_agents.errors import AgentError
from device_agents.local_broker import LocalMosquitto, free_port
from device_agents.reading import ControllerReading
from device_agents.register_map import RegisterMap
from device_agents.simulators.fleet import drive_fleet, virtual_fleet
from device_agents.simulators.modbus_server import ModbusCabinetSimulator
from device_agents.simulators.scenario import Scenario
from device_agents.spool import Spool

DEVICE = "bench-cab"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _scenario(door_every_s: float | None) -> Scenario:
    steps = [] if door_every_s is None else [
        {"at_s": i * door_every_s, "set": {"door_open": i % 2 == 1}} for i in range(1, 3600)]
    return Scenario.model_validate({
        "name": "bench", "initial": {
            "battery_pct": 90, "pads_expiry": "2027-09-01", "door_open": False,
            "aed_present": True, "temperature_c": 15.0, "self_test": "pass",
            "heater_on": False, "power": "mains"}, "steps": steps})


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Acker:
    """The fleet side: receives the agent's messages and acks the highest seq, in batches."""

    def __init__(self, broker: LocalMosquitto) -> None:
        self.broker = broker
        self.received = 0
        self.first_at: float | None = None
        self.highest = 0

    async def run(self, ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", self.broker.port, username="fleet",
                                  password=self.broker.credentials["fleet"]) as client:
            await client.subscribe(f"aed/{DEVICE}/telemetry", qos=1)
            await client.subscribe(f"aed/{DEVICE}/event", qos=1)
            ready.set()
            pending = 0
            async for message in client.messages:
                self.first_at = self.first_at or time.perf_counter()
                self.received += 1
                self.highest = max(self.highest, json.loads(message.payload)["seq"])  # type: ignore[arg-type]
                pending += 1
                # Like an ingest worker: ack per batch, or when the stream pauses.
                if pending >= 100 or len(client.messages) == 0:
                    await client.publish(f"aed/{DEVICE}/ack",
                                         json.dumps({"v": 1, "seq": self.highest}), qos=1)
                    pending = 0


def _agent_config(folder: Path, broker: LocalMosquitto, modbus_port: int, maps: Path,
                  publish_batch: int = 100) -> Path:
    config = folder / f"agent-{publish_batch}.toml"
    config.write_text(
        f'device_id = "{DEVICE}"\nmqtt_url = "mqtt://{DEVICE}@127.0.0.1:{broker.port}"\n'
        f'spool_path = "{folder / "spool.db"}"\npoll_interval_s = 1.0\n'
        f'backoff_min_s = 0.2\nbackoff_max_s = 1.0\npublish_batch = {publish_batch}\n'
        f'spool_max_messages = 100000\n'
        f'[source]\nkind = "modbus-tcp"\nport = {modbus_port}\nregister_map_dir = "{maps}"\n')
    return config


def _start_agent(config: Path, broker: LocalMosquitto) -> subprocess.Popen[bytes]:
    aedfleet = Path(sys.executable).with_name("aedfleet")
    env = {**os.environ, "AEDFLEET_AGENT_PASSWORD": broker.credentials[DEVICE]}
    return subprocess.Popen([str(aedfleet), "agent", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def _fill_spool(path: Path, count: int) -> None:
    spool = Spool(path, max_messages=count + 10)
    reading = ControllerReading(battery_pct=90, door_open=False, aed_present=True,
                                temperature_c=15.0, self_test="pass")
    now = datetime.now(UTC)
    for _ in range(count):
        spool.append("telemetry", lambda seq: payloads.encode(
            payloads.telemetry(DEVICE, seq, now, reading)))
    spool.close()


async def _measure_cpu(pid: int, seconds: float) -> float:
    cpu, wall = _cpu_s(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    return 100 * (_cpu_s(pid) - cpu) / (time.perf_counter() - wall)


async def _footprint(folder: Path, broker: LocalMosquitto, register_map: RegisterMap, maps: Path,
                     sample_s: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    for label, scenario in (("idle", _scenario(None)), ("1hz", _scenario(1.0))):
        port = free_port()
        simulator = ModbusCabinetSimulator(scenario, register_map, port=port)
        ready = asyncio.Event()
        serving = asyncio.create_task(simulator.run(ready))
        await ready.wait()
        work = folder / label
        work.mkdir()
        acker = Acker(broker)
        acker_ready = asyncio.Event()
        acking = asyncio.create_task(acker.run(acker_ready))
        await acker_ready.wait()
        agent = _start_agent(_agent_config(work, broker, port, maps), broker)
        try:
            deadline = time.monotonic() + 30
            while acker.received == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # past start-up
            figures[f"{label}_cpu_pct"] = round(await _measure_cpu(agent.pid, sample_s), 2)
            figures[f"{label}_rss_mb"] = round(_rss_mb(agent.pid), 1)
            figures[f"{label}_messages"] = acker.received
        finally:
            _stop(agent)
            acking.cancel()
            serving.cancel()
            await asyncio.gather(acking, serving, return_exceptions=True)
    return figures


async def _drain(folder: Path, broker: LocalMosquitto, maps: Path, count: int,
                 publish_batch: int) -> float:
    work = folder / f"drain-{publish_batch}"
    work.mkdir()
    _fill_spool(work / "spool.db", count)
    acker = Acker(broker)
    ready = asyncio.Event()
    acking = asyncio.create_task(acker.run(ready))
    await ready.wait()
    # No cabinet answers: the agent only drains its spool (its source faults are spooled too).
    agent = _start_agent(_agent_config(work, broker, free_port(), maps, publish_batch), broker)
    try:
        spool = Spool(work / "spool.db")
        deadline = time.monotonic() + 600
        while spool.acked_seq < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        done = time.perf_counter()
        spool.close()
        if acker.first_at is None:
            raise AgentError("the agent never sent its backlog")
        return done - acker.first_at
    finally:
        _stop(agent)
        acking.cancel()
        await asyncio.gather(acking, return_exceptions=True)


async def _run(quick: bool, register_map: RegisterMap, maps: Path) -> dict[str, Any]:
    drain_count = 1_000 if quick else 10_000
    sim_messages = 2_000 if quick else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = LocalMosquitto(folder / "broker", [DEVICE], ("fleet", "loadgen"))
        broker.start()
        try:
            figures: dict[str, Any] = {"benchmark": "agent", "quick": quick}
            figures.update(await _footprint(folder, broker, register_map, maps,
                                            2.0 if quick else 10.0))
            batched = await _drain(folder, broker, maps, drain_count, publish_batch=100)
            one_by_one = await _drain(folder, broker, maps, drain_count, publish_batch=1)
            figures.update({
                "drain_messages": drain_count,
                "drain_s": round(batched, 3),
                "drain_msgs_per_s": round(drain_count / batched),
                "baseline_one_puback_at_a_time_s": round(one_by_one, 3),
                "drain_speedup_vs_baseline": round(one_by_one / batched, 1),
            })
            run = await drive_fleet(broker.url("loadgen"), virtual_fleet(1_000), sim_messages)
            figures.update({"sim_cabinets": run.cabinets, "sim_messages": run.messages,
                            "sim_msgs_per_s": round(run.messages_per_s)})
        finally:
            broker.stop()
    # The headline figures last; a quick run extrapolates its 1,000-message drain.
    figures["idle_rss_mb"] = figures.pop("idle_rss_mb")
    figures["drain_10k_s"] = round(batched * 10_000 / drain_count, 3)
    figures["drain_10k_s_extrapolated"] = quick
    figures["sim_msgs_per_s"] = figures.pop("sim_msgs_per_s")
    return figures


def bench_agent(quick: bool, register_map: RegisterMap, maps: Path) -> dict[str, Any]:
    return asyncio.run(_run(quick, register_map, maps))
