"""The cabinet agent against a real Mosquitto, a real pymodbus server and a real pty."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from device_agents.agent import CabinetAgent
from device_agents.broker_config import TlsFiles
from device_agents.config import AgentConfig, SourceConfig
from device_agents.local_broker import free_port
from device_agents.register_map import find_register_map
from device_agents.simulators.modbus_server import ModbusCabinetSimulator
from device_agents.simulators.scenario import Scenario, load_scenario
from device_agents.simulators.serial_controller import SerialCabinetSimulator
from device_agents.sources.modbus import ModbusSource
from device_agents.sources.serial_line import SerialSource
from device_agents.spool import Spool
from device_agents.tasks import cancel_and_wait

from .mqtt_support import FleetReceiver, Mosquitto, eventually

ROOT = Path(__file__).parents[2]
SCENARIOS = ROOT / "config" / "scenarios"
RCC1 = find_register_map("rcc1", ROOT / "config" / "cabinets")
AEDFLEET = Path(sys.executable).with_name("aedfleet")
DEVICE = "cab-test-1"


def door_every_second() -> Scenario:
    """A cabinet whose door opens and closes every second: a change every second."""
    steps = [{"at_s": float(t), "set": {"door_open": t % 2 == 1}} for t in range(1, 400)]
    return Scenario.model_validate({
        "name": "door flapping", "frame_interval_s": 10, "initial": {
            "battery_pct": 90, "pads_expiry": "2027-09-01", "door_open": False,
            "aed_present": True, "temperature_c": 15.0, "self_test": "pass",
            "heater_on": False, "power": "mains"},
        "steps": steps})


@pytest.fixture
def broker(tmp_path: Path) -> Mosquitto:
    mosquitto = Mosquitto(tmp_path / "broker", [DEVICE, "cab-test-2"])
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
async def fleet(broker: Mosquitto) -> AsyncIterator[FleetReceiver]:
    receiver = FleetReceiver("127.0.0.1", broker.port, broker.credentials["fleet"])
    await receiver.start()
    yield receiver
    await receiver.stop()


def agent_config(broker: Mosquitto, tmp_path: Path, source: SourceConfig,
                 **overrides: object) -> AgentConfig:
    values: dict[str, object] = {
        "device_id": DEVICE, "mqtt_url": broker.url(DEVICE),
        "spool_path": tmp_path / "agent" / "spool.db", "poll_interval_s": 0.1,
        "backoff_min_s": 0.1, "backoff_max_s": 0.5, "ack_timeout_s": 2.0, "source": source}
    values.update(overrides)
    return AgentConfig.model_validate(values)


class Running:
    """Background tasks of one test, cancelled at the end."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, coroutine: object) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self.tasks.append(task)
        return task

    async def stop(self) -> None:
        stuck = await cancel_and_wait(self.tasks, timeout_s=20)  # type: ignore[arg-type]
        assert not stuck, f"tasks that did not stop when cancelled: {stuck}"


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    tasks = Running()
    yield tasks
    await tasks.stop()


async def modbus_cabinet(running: Running, scenario: Scenario,
                         speed: float = 1.0) -> tuple[ModbusCabinetSimulator, SourceConfig]:
    port = free_port()
    simulator = ModbusCabinetSimulator(scenario, RCC1, port=port, speed=speed)
    ready = asyncio.Event()
    running.start(simulator.run(ready))
    await asyncio.wait_for(ready.wait(), 10)
    return simulator, SourceConfig(kind="modbus-tcp", port=port, timeout_s=0.5,
                                   register_map_dir=ROOT / "config" / "cabinets")


def assert_in_seq_order_and_complete(seqs: list[int], last: int) -> None:
    """Every seq 1..last arrived, and first arrivals came in seq order."""
    first_arrivals = list(dict.fromkeys(seqs))
    assert first_arrivals == sorted(first_arrivals), "messages arrived out of seq order"
    assert set(seqs) == set(range(1, last + 1)), \
        f"missing seqs: {sorted(set(range(1, last + 1)) - set(seqs))[:20]}"


async def test_agent_reports_a_modbus_cabinets_door_and_aed_removal_as_events_and_telemetry(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    simulator, source = await modbus_cabinet(
        running, load_scenario(SCENARIOS / "door_and_removal.toml"), speed=10)
    spool = Spool(tmp_path / "spool.db")
    agent = CabinetAgent(agent_config(broker, tmp_path, source), ModbusSource.tcp(
        "127.0.0.1", source.port, RCC1, 0.5), spool)
    running.start(agent.run())

    await eventually(lambda: len(fleet.of(DEVICE, "event")) >= 6, 30, "six events")
    types = [e["type"] for e in fleet.of(DEVICE, "event")][:6]
    assert types == ["door_opened", "aed_removed", "door_closed", "door_opened", "aed_returned",
                     "door_closed"]
    telemetry = fleet.of(DEVICE, "telemetry")
    assert telemetry[0]["battery_pct"] == 91 and telemetry[0]["pads_expiry"] == "2027-09-01"
    assert any(t["aed_present"] is False for t in telemetry)
    status = fleet.of(DEVICE, "status")
    assert status and status[0]["state"] == "online"
    seqs = fleet.seqs(DEVICE)
    assert len(seqs) == len(set(seqs)), "no message sent twice while the fleet acks in time"
    await eventually(lambda: len(spool) == 0, 10, "the acked spool to empty")


async def test_broker_outage_loses_nothing_and_delivers_in_seq_order_without_repeats_after_ack(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    _, source = await modbus_cabinet(running, door_every_second(), speed=4)
    spool = Spool(tmp_path / "spool.db")
    agent = CabinetAgent(agent_config(broker, tmp_path, source),
                         ModbusSource.tcp("127.0.0.1", source.port, RCC1, 0.5), spool)
    running.start(agent.run())
    await eventually(lambda: len(fleet.seqs(DEVICE)) >= 5, 20, "first messages")

    acked_before_outage = spool.acked_seq
    broker.stop()
    spooled_before = spool.last_seq
    await eventually(lambda: spool.last_seq >= spooled_before + 40, 30,
                     "40 more changes spooled during the outage")
    broker.start()

    last = spool.last_seq
    await eventually(lambda: spool.acked_seq >= last, 30, "the backlog to be acked")
    seqs = fleet.seqs(DEVICE)
    assert_in_seq_order_and_complete([s for s in seqs if s <= last], last)
    # Only what the agent had not seen acked is sent again (an ack lost in the outage)...
    repeated = {s for s in seqs if seqs.count(s) > 1}
    assert all(s > acked_before_outage for s in repeated), repeated
    # ...and once the agent has an ack, that message never comes again.
    seen = len(fleet.messages)
    await asyncio.sleep(2)  # the door goes on changing: new messages, no old ones
    later = [m.payload["seq"] for m in fleet.messages[seen:] if "seq" in m.payload]
    assert later and min(later) > last


async def test_agent_killed_during_an_outage_loses_nothing_and_continues_its_seq(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    _, source = await modbus_cabinet(running, door_every_second(), speed=4)
    config = agent_config(broker, tmp_path, source)
    config_file = tmp_path / "agent.toml"
    config_file.write_text(
        f'device_id = "{DEVICE}"\nmqtt_url = "mqtt://{DEVICE}@127.0.0.1:{broker.port}"\n'
        f'spool_path = "{config.spool_path}"\npoll_interval_s = 0.1\nbackoff_min_s = 0.1\n'
        f'backoff_max_s = 0.5\nack_timeout_s = 2.0\n'
        f'[source]\nkind = "modbus-tcp"\nport = {source.port}\ntimeout_s = 0.5\n'
        f'register_map_dir = "{ROOT / "config" / "cabinets"}"\n')
    env = {**os.environ, "AEDFLEET_AGENT_PASSWORD": broker.credentials[DEVICE]}

    def start_agent() -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(AEDFLEET), "agent", "--config", str(config_file)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    agent = start_agent()
    try:
        await eventually(lambda: len(fleet.seqs(DEVICE)) >= 5, 30, "first messages")
        broker.stop()
        seen_before_outage = max(fleet.seqs(DEVICE))
        spool_path = config.spool_path
        await eventually(lambda: Spool(spool_path).last_seq >= seen_before_outage + 20, 30,
                         "changes spooled during the outage")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        killed_at_seq = Spool(spool_path).last_seq

        agent = start_agent()  # restarted while the broker is still down
        await eventually(lambda: Spool(spool_path).last_seq > killed_at_seq + 5, 30,
                         "the restarted agent to spool with new seqs")
        broker.start()
        last = Spool(spool_path).last_seq
        await eventually(lambda: Spool(spool_path).acked_seq >= last, 30, "everything acked")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            stopped_cleanly = agent.wait(10) is not None
        except subprocess.TimeoutExpired:
            agent.kill()
            stopped_cleanly = False
    assert stopped_cleanly, "the agent stops within 10 s of SIGTERM"
    seqs = [s for s in fleet.seqs(DEVICE) if s <= last]
    assert_in_seq_order_and_complete(seqs, last)
    assert last > killed_at_seq, "the restarted agent continued the seq"


async def test_a_cabinet_cannot_publish_or_read_on_another_cabinets_topics(
        broker: Mosquitto, fleet: FleetReceiver) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, username=DEVICE,
                              password=broker.credentials[DEVICE]) as intruder:
        await intruder.subscribe("aed/cab-test-2/cmd", qos=1)
        await intruder.publish("aed/cab-test-2/telemetry", json.dumps(
            {"v": 1, "device_id": "cab-test-2", "seq": 1, "ts": "2026-11-27T12:00:00Z"}), qos=1)
        await intruder.publish(f"aed/{DEVICE}/telemetry", json.dumps(
            {"v": 1, "device_id": DEVICE, "seq": 1, "ts": "2026-11-27T12:00:00Z"}), qos=1)
        async with aiomqtt.Client("127.0.0.1", broker.port, username="fleet",
                                  password=broker.credentials["fleet"]) as fleet_client:
            await fleet_client.publish("aed/cab-test-2/cmd", json.dumps(
                {"v": 1, "cmd_id": "c1", "cmd": "ping"}), qos=1)
        # The cabinet's own message is the proof that the broker delivered what it allowed.
        await eventually(lambda: fleet.of(DEVICE, "telemetry"), 10, "the allowed message")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                async for _ in intruder.messages:
                    break
    assert fleet.of("cab-test-2", "telemetry") == []


async def test_fleet_commands_are_answered_with_results_and_bad_ones_with_errors(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    simulator, source = await modbus_cabinet(running, load_scenario(SCENARIOS / "healthy.toml"))
    agent = CabinetAgent(agent_config(broker, tmp_path, source),
                         ModbusSource.tcp("127.0.0.1", source.port, RCC1, 0.5),
                         Spool(tmp_path / "spool.db"))
    running.start(agent.run())
    await asyncio.wait_for(agent.connected.wait(), 15)
    async with aiomqtt.Client("127.0.0.1", broker.port, username="fleet",
                              password=broker.credentials["fleet"]) as client:
        for payload in (b'{"v":1,"cmd_id":"u1","cmd":"unlock","valid_s":600}',
                        b'{"v":1,"cmd_id":"u1","cmd":"unlock","valid_s":600}',
                        b'{"v":1,"cmd_id":"p1","cmd":"ping"}',
                        b'{"v":1,"cmd_id":"s1","cmd":"self_test"}',
                        b'{"v":1,"cmd_id":"x1","cmd":"reboot"}',
                        b'{"v":1,"cmd":"ping"}',
                        b"not json"):
            await client.publish(f"aed/{DEVICE}/cmd", payload, qos=1)

    def results() -> list[tuple[str | None, str]]:
        return [(e.get("cmd_id"), e["detail"]) for e in fleet.of(DEVICE, "event")
                if e["type"] == "cmd_result"]

    await eventually(lambda: len(results()) >= 7, 20, "seven command results")
    answers = dict.fromkeys(results())
    assert ("u1", "ok: unlocked for 600 s") in answers
    assert ("p1", "ok: pong") in answers
    assert ("s1", "ok: last self-test pass") in answers
    assert any(cmd_id == "x1" and detail.startswith("error: unknown command 'reboot'")
               for cmd_id, detail in answers)
    errors_without_id = [d for cmd_id, d in results() if cmd_id is None]
    assert len(errors_without_id) == 2 and all(d.startswith("error: malformed command")
                                               for d in errors_without_id)
    assert simulator.unlocks == 1, "a redelivered unlock is answered, not carried out twice"


async def test_a_silent_controller_raises_source_fault_and_its_return_source_restored(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    scenario = Scenario.model_validate({
        **load_scenario(SCENARIOS / "healthy.toml").model_dump(),
        "steps": [{"at_s": 2, "silent_s": 3}]})
    _, source = await modbus_cabinet(running, scenario)
    agent = CabinetAgent(agent_config(broker, tmp_path, source),
                         ModbusSource.tcp("127.0.0.1", source.port, RCC1, 0.3),
                         Spool(tmp_path / "spool.db"))
    running.start(agent.run())

    def event_types() -> list[str]:
        return [e["type"] for e in fleet.of(DEVICE, "event")]

    await eventually(lambda: "source_restored" in event_types(), 30, "source_restored")
    assert event_types().index("source_fault") < event_types().index("source_restored")
    faulty = [t for t in fleet.of(DEVICE, "telemetry") if "source_fault" in t]
    assert faulty and "battery_pct" not in faulty[0], "a fault report carries no stale values"
    await eventually(lambda: fleet.of(DEVICE, "telemetry")[-1].get("battery_pct") == 94, 10,
                     "a full telemetry report after the controller came back")


async def test_noisy_serial_line_applies_every_good_frame_and_counts_every_bad_one(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    scenario = Scenario.model_validate({
        "name": "noisy", "frame_interval_s": 0.2,
        "initial": {"battery_pct": 80, "pads_expiry": "2027-01-01", "door_open": False,
                    "aed_present": True, "temperature_c": 10.0, "self_test": "pass"},
        "steps": [{"at_s": 0, "noise_s": 6},
                  {"at_s": 2, "set": {"door_open": True}},
                  {"at_s": 4, "set": {"door_open": False}}]})
    simulator = SerialCabinetSimulator(scenario, seed=7)
    serial_source = SerialSource(simulator.path, max_age_s=5, reply_timeout_s=1)
    await serial_source.open()  # opening a line drops what waited on it: open before it talks
    ready = asyncio.Event()
    running.start(simulator.run(ready))
    await ready.wait()
    config = agent_config(broker, tmp_path, SourceConfig(kind="serial", device=simulator.path))
    agent = CabinetAgent(config, serial_source, Spool(tmp_path / "spool.db"))
    running.start(agent.run())
    try:
        await eventually(lambda: [e["type"] for e in fleet.of(DEVICE, "event")][:2]
                         == ["door_opened", "door_closed"], 20, "door events through the noise")
        await asyncio.sleep(2.5)  # past the noise window
        bad_sent = sum(n for kind, n in simulator.sent.items() if kind != "good")
        await eventually(lambda: serial_source.good_frames == simulator.sent["good"], 5,
                         "every good frame to be read")
        assert bad_sent > 10
        assert sum(serial_source.bad_frames.values()) == bad_sent
        assert agent.stats.source_faults == 0
    finally:
        await serial_source.close()
        simulator.close()


async def test_serial_unlock_is_confirmed_by_the_controller(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    simulator = SerialCabinetSimulator(load_scenario(SCENARIOS / "healthy.toml"),
                                       link=tmp_path / "ttyCABINET")
    ready = asyncio.Event()
    running.start(simulator.run(ready))
    await ready.wait()
    serial_source = SerialSource(str(tmp_path / "ttyCABINET"), reply_timeout_s=2)
    agent = CabinetAgent(agent_config(broker, tmp_path, SourceConfig(kind="serial")),
                         serial_source, Spool(tmp_path / "spool.db"))
    running.start(agent.run())
    try:
        await asyncio.wait_for(agent.connected.wait(), 15)
        async with aiomqtt.Client("127.0.0.1", broker.port, username="fleet",
                                  password=broker.credentials["fleet"]) as client:
            await client.publish(f"aed/{DEVICE}/cmd",
                                 b'{"v":1,"cmd_id":"open-1","cmd":"unlock","valid_s":120}', qos=1)
        await eventually(lambda: any(e.get("cmd_id") == "open-1"
                                     for e in fleet.of(DEVICE, "event")), 15, "the unlock result")
        result = next(e for e in fleet.of(DEVICE, "event") if e.get("cmd_id") == "open-1")
        assert result["detail"] == "ok: unlocked for 120 s"
        assert simulator.unlocks == 1
    finally:
        await serial_source.close()
        simulator.close()


async def test_an_unchanging_cabinet_sends_a_heartbeat_snapshot_every_interval(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path) -> None:
    _, source = await modbus_cabinet(running, load_scenario(SCENARIOS / "healthy.toml"))
    agent = CabinetAgent(agent_config(broker, tmp_path, source, heartbeat_s=1.0),
                         ModbusSource.tcp("127.0.0.1", source.port, RCC1, 0.5),
                         Spool(tmp_path / "spool.db"))
    running.start(agent.run())
    await eventually(lambda: len(fleet.of(DEVICE, "telemetry")) >= 4, 15, "four heartbeats")
    snapshots = fleet.of(DEVICE, "telemetry")
    assert all(s["battery_pct"] == 94 and s["door_open"] is False for s in snapshots)
    assert fleet.of(DEVICE, "event") == [], "no change, no event"


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals (socat), like a controller and an agent on one RS-485 line."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (apt-get install socat; .ci/run does)")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    process = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (a.exists() and b.exists()):
            assert time.monotonic() < deadline, "socat did not create the pty pair"
            time.sleep(0.02)
        yield str(a), str(b)
    finally:
        process.terminate()
        process.wait(10)


async def test_agent_reads_a_modbus_rtu_controller_over_a_serial_line(
        broker: Mosquitto, fleet: FleetReceiver, running: Running, tmp_path: Path,
        serial_pair: tuple[str, str]) -> None:
    controller_end, agent_end = serial_pair
    simulator = ModbusCabinetSimulator(load_scenario(SCENARIOS / "door_and_removal.toml"), RCC1,
                                       speed=10, serial_device=controller_end)
    ready = asyncio.Event()
    running.start(simulator.run(ready))
    await asyncio.wait_for(ready.wait(), 10)
    config = agent_config(broker, tmp_path, SourceConfig(kind="modbus-rtu", device=agent_end,
                                                         timeout_s=0.5))
    agent = CabinetAgent(config, ModbusSource.rtu(agent_end, 9600, RCC1, 0.5),
                         Spool(tmp_path / "spool.db"))
    running.start(agent.run())
    await eventually(lambda: [e["type"] for e in fleet.of(DEVICE, "event")][:2]
                     == ["door_opened", "aed_removed"], 20, "door and removal over RTU")
    assert fleet.of(DEVICE, "telemetry")[0]["pads_expiry"] == "2027-09-01"
    assert simulator.reads > 0


def make_certificates(folder: Path) -> TlsFiles:
    """A private CA and a broker certificate for 127.0.0.1, made with openssl."""
    folder.mkdir(parents=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=aedfleet test CA", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "broker.key", "-out", "broker.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem")
    return TlsFiles(folder / "broker.pem", folder / "broker.key", folder / "ca.pem")


async def test_agent_publishes_over_tls_and_refuses_a_broker_it_cannot_verify(
        running: Running, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    tls = make_certificates(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "broker", [DEVICE], tls=tls)
    broker.start()
    fleet = FleetReceiver("127.0.0.1", broker.port, broker.credentials["fleet"])
    try:
        await fleet.start()
        _, source = await modbus_cabinet(running, load_scenario(SCENARIOS / "healthy.toml"))
        tls_url = (f"mqtts://{DEVICE}:{broker.credentials[DEVICE]}"
                   f"@127.0.0.1:{broker.tls_port}")
        agent = CabinetAgent(
            agent_config(broker, tmp_path / "a", source, mqtt_url=tls_url,
                         tls_ca_file=tls.cafile),
            ModbusSource.tcp("127.0.0.1", source.port, RCC1, 0.5), Spool(tmp_path / "a.db"))
        running.start(agent.run())
        await eventually(lambda: fleet.of(DEVICE, "telemetry"), 15, "telemetry over TLS")

        # Without the private CA the broker's certificate is not trusted: nothing is sent.
        untrusting = CabinetAgent(
            agent_config(broker, tmp_path / "b", source, mqtt_url=tls_url),
            ModbusSource.tcp("127.0.0.1", source.port, RCC1, 0.5), Spool(tmp_path / "b.db"))
        running.start(untrusting.run())
        await asyncio.sleep(2)
        assert not untrusting.connected.is_set()
        assert untrusting.stats.connects == 0
    finally:
        await fleet.stop()
        broker.stop()
