"""The system as it runs in production, on several hosts: Mosquitto, PostgreSQL, two ingest
workers, two console/API nodes and an active/standby pair of alarm cores, each in its own
network namespace. Under load (cabinets reporting, 112 calls, console readers) one process of
each kind is killed; afterwards nothing reported is lost or applied twice and every call is an
incident whose alerts reached the responders' topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from integration.ingest_support import event, register_fleet, telemetry
from integration.mqtt_support import mosquitto_binary
from sqlalchemy import Engine, create_engine, func, text
from sqlmodel import Session, col, select

from alarm_core.models import Incident, IncidentResponder, OutboxMessage
from alarm_core.policy import DispatchPolicy
from alarm_core.registry import register_responder
from device_agents.broker_config import read_credentials, write_broker_config
from fleet import migrate
from fleet.db import make_engine
from fleet.models import AppliedMessage, DeviceEvent
from web.auth import create_token

from .nodes import AEDFLEET, Network, Node, can_make_namespaces, postgres_binaries

ADDRESSES = {"broker": 10, "db": 11, "ingest1": 21, "ingest2": 22, "web1": 31, "web2": 32,
             "alarm1": 41, "alarm2": 42}
CABINETS = 300
RESPONDERS = 1_000
LOAD_S = 30.0
KILL_AT_S = 10.0
RESTART_AFTER_S = 3.0  # systemd's RestartSec
ROUND_S = 0.5
CALL_EVERY_S = 1.0
READ_EVERY_S = 0.2
BOX = (52.05, 5.05, 52.13, 5.19)  # south, west, north, east: Utrecht
ARTIFACT = Path(__file__).parents[1] / "artifacts" / "several_nodes.json"


@pytest.fixture
def network() -> Iterator[Network]:
    reason = can_make_namespaces()
    if reason is not None:
        pytest.skip(reason)
    if mosquitto_binary() is None or postgres_binaries() is None:
        pytest.skip("needs Debian's mosquitto and postgresql packages (.ci/run installs them)")
    net = Network(f"af{os.getpid() % 10_000}", 100 + os.getpid() % 100)
    try:
        net.up()
        for name, last in ADDRESSES.items():
            net.add(name, last)
        yield net
    finally:
        net.down()


@dataclass
class System:
    network: Network
    folder: Path
    database_url: str
    mqtt_password: str
    nodes: dict[str, Node] = field(default_factory=dict)

    def mqtt_url(self) -> str:
        return f"mqtt://fleet:{self.mqtt_password}@{self.network.hosts['broker']}:1883"

    def stop(self) -> None:
        for node in reversed(self.nodes.values()):
            node.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {name}\n{node.log()[-3000:]}" for name, node in
                         self.nodes.items())


def start_database(net: Network, folder: Path) -> tuple[Node, str]:
    binaries = postgres_binaries()
    assert binaries is not None
    data = folder / "pg"
    data.mkdir()
    shutil.chown(data, "postgres")
    subprocess.run(["runuser", "-u", "postgres", "--", str(binaries / "initdb"), "-D", str(data),
                    "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all 10.231.{net.subnet}.0/24 trust\n")
    node = Node("db", net, [str(binaries / "postgres"), "-D", str(data), "-p", "5432",
                            "-k", str(data), "-c", f"listen_addresses={net.hosts['db']}",
                            "-c", "fsync=off", "-c", "max_connections=200"],
                dict(os.environ), folder, user="postgres")
    node.start()
    node.wait_port(5432, 30)
    server = f"postgresql+psycopg://postgres@{net.hosts['db']}:5432"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE aedfleet"))
    admin.dispose()
    return node, f"{server}/aedfleet"


def seed(engine: Engine, now: datetime) -> tuple[list[str], str, str]:
    """The cabinets, responders spread over the city, and the 112 centre's and a console
    reader's API tokens."""
    migrate.upgrade(engine)
    devices = register_fleet(engine, CABINETS, now=now)
    rng = random.Random(7)
    south, west, north, east = BOX
    for i in range(RESPONDERS):
        register_responder(engine, {
            "id": f"r-{i}", "name": f"Responder {i}", "email": f"r{i}@example.org",
            "phone": "+31612345678", "date_of_birth": "1985-04-12",
            "certificate_date": (now.date() - timedelta(days=100)).isoformat(),
            "home_lat": rng.uniform(south, north), "home_lon": rng.uniform(west, east)},
            now - timedelta(days=30), DispatchPolicy())
    return (devices, create_token(engine, "112-utrecht", now),
            create_token(engine, "console-reader", now, scope="fleet"))


@pytest.fixture
def system(network: Network) -> Iterator[System]:
    folder = Path(tempfile.mkdtemp(prefix="aedfleet-nodes-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user in here
    nodes: dict[str, Node] = {}
    running = System(network, folder, "", "", nodes)
    try:
        database, running.database_url = start_database(network, folder)
        nodes["db"] = database
        write_broker_config(folder / "broker", [], ["fleet"], port=1883,
                            host=network.hosts["broker"], run_as_root=True)
        running.mqtt_password = read_credentials(folder / "broker")["fleet"]
        nodes["broker"] = Node("broker", network, [
            "mosquitto", "-c", str(folder / "broker" / "mosquitto.conf")], dict(os.environ),
            folder)
        nodes["broker"].start()
        nodes["broker"].wait_port(1883, 15)
        yield running
    finally:
        running.stop()
        shutil.rmtree(folder, ignore_errors=True)


def start_services(system: System) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AEDFLEET_")}
    environment.update(AEDFLEET_DATABASE_URL=system.database_url,
                       AEDFLEET_MQTT_URL=system.mqtt_url(),
                       AEDFLEET_ALARM__CLIENT_ID="alarm-core",
                       AEDFLEET_INGEST__SWEEP_INTERVAL_S="3600")
    hosts = system.network.hosts
    commands = {
        "ingest1": [str(AEDFLEET), "ingest", "--client-id", "ingest-1"],
        "ingest2": [str(AEDFLEET), "ingest", "--client-id", "ingest-2"],
        "web1": [str(AEDFLEET), "serve", "--http", f"{hosts['web1']}:5000"],
        "web2": [str(AEDFLEET), "serve", "--http", f"{hosts['web2']}:5000"],
        "alarm1": [str(AEDFLEET), "alarm", "--http", f"{hosts['alarm1']}:5080"],
    }
    for name, command in commands.items():
        system.nodes[name] = Node(name, system.network, command, environment, system.folder)
        system.nodes[name].start()
        if name == "alarm1":  # the first one becomes the active node
            wait(lambda: http_status(hosts["alarm1"], 5080, "/healthz") == 200, 60,
                 "the first alarm core to be active", system)
    system.nodes["alarm2"] = Node("alarm2", system.network, [
        str(AEDFLEET), "alarm", "--http", f"{hosts['alarm2']}:5080"], environment, system.folder)
    system.nodes["alarm2"].start()
    for name in ("web1", "web2"):
        system.nodes[name].wait_port(5000, 60)
    wait(lambda: http_status(hosts["alarm2"], 5080, "/healthz") == 503, 60,
         "the second alarm core to stand by", system)


def wait(condition: Any, timeout_s: float, what: str, system: System) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{system.logs()}")
        time.sleep(0.1)


def http(host: str, port: int, method: str, path: str, body: Any = None,
         token: str | None = None, timeout_s: float = 3.0) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://{host}:{port}{path}", method=method,
                                     headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def http_status(host: str, port: int, path: str) -> int:
    try:
        return http(host, port, "GET", path, timeout_s=1.0)[0]
    except OSError:
        return 0


@dataclass
class Figures:
    messages_sent: int = 0
    messages_applied: int = 0
    messages_duplicated: int = 0
    messages_lost: int = 0
    calls: int = 0
    incidents: int = 0
    incidents_missed: int = 0
    incidents_duplicated: int = 0
    alerts_stored: int = 0
    alerts_heard: int = 0
    alerts_heard_twice: int = 0
    calls_sent_to_a_second_node: int = 0
    reads: int = 0
    reads_failed_over: int = 0
    reads_failed: int = 0
    alarm_takeover_s: float = 0.0
    killed: list[str] = field(default_factory=list)


class Load:
    """Cabinets, the 112 centre and console readers, as clients that know every node and
    try the next when one does not answer (a load balancer's health check does the same)."""

    def __init__(self, system: System, devices: list[str], dispatch_token: str,
                 fleet_token: str) -> None:
        self.system, self.devices = system, devices
        self.dispatch_token, self.fleet_token = dispatch_token, fleet_token
        self.sent: set[tuple[str, int]] = set()
        self.events: set[tuple[str, int]] = set()
        self.references: list[str] = []
        self.heard: Counter[tuple[str, str]] = Counter()
        self.figures = Figures()
        self.stop = asyncio.Event()

    def _client(self, identifier: str) -> aiomqtt.Client:
        return aiomqtt.Client(self.system.network.hosts["broker"], 1883, username="fleet",
                              password=self.system.mqtt_password, identifier=identifier,
                              max_inflight_messages=1000)

    async def cabinets(self) -> None:
        async with self._client("cabinets") as client:
            client.pending_calls_threshold = 100_000
            seq = 0
            while not self.stop.is_set():
                seq += 1
                started = time.monotonic()
                kind = "door_opened" if seq % 10 == 5 else "door_closed" if seq % 10 == 0 \
                    else None

                async def one(device: str, seq: int = seq, kind: str | None = kind) -> None:
                    if kind is None:
                        await client.publish(f"aed/{device}/telemetry",
                                             telemetry(device, seq, battery_pct=90), qos=1)
                    else:
                        await client.publish(f"aed/{device}/event", event(device, seq, kind),
                                             qos=1)
                        self.events.add((device, seq))
                    self.sent.add((device, seq))  # the broker has it (PUBACK)

                await asyncio.gather(*(one(device) for device in self.devices))
                await asyncio.sleep(max(0.0, ROUND_S - (time.monotonic() - started)))

    async def responder_apps(self, subscribed: asyncio.Event) -> None:
        async with self._client("responder-apps") as client:
            await client.subscribe("responders/+/alert", qos=1)
            subscribed.set()
            async for message in client.messages:
                responder_id = message.topic.value.split("/")[1]
                payload = json.loads(message.payload)  # type: ignore[arg-type]
                self.heard[(payload["incident_id"], responder_id)] += 1

    async def dispatch_centre(self) -> None:
        rng = random.Random(112)
        south, west, north, east = BOX
        hosts = [self.system.network.hosts["alarm1"], self.system.network.hosts["alarm2"]]
        number = 0
        while not self.stop.is_set():
            number += 1
            reference = f"call-{number}"
            body = {"reference": reference, "lat": round(rng.uniform(south, north), 6),
                    "lon": round(rng.uniform(west, east), 6), "source": "112",
                    "called_at": datetime.now(UTC).isoformat(timespec="seconds")}
            self.references.append(reference)
            await asyncio.to_thread(self._call, hosts, body)
            await asyncio.sleep(CALL_EVERY_S)

    def _call(self, hosts: list[str], body: dict[str, Any]) -> None:
        """Send until a node takes it; the same body again on a retry (the reference makes
        it idempotent)."""
        deadline = time.monotonic() + 60
        tries = 0
        while time.monotonic() < deadline:
            for host in hosts:
                tries += 1
                try:
                    status, _ = http(host, 5080, "POST", "/api/v1/incidents", body,
                                     self.dispatch_token)
                except OSError:
                    continue
                if status in (200, 201):
                    self.figures.calls += 1
                    self.figures.calls_sent_to_a_second_node += tries > 1
                    return
            time.sleep(0.2)
        raise AssertionError(f"no alarm core took call {body['reference']}")

    async def console_readers(self) -> None:
        hosts = [self.system.network.hosts["web1"], self.system.network.hosts["web2"]]
        turn = 0
        while not self.stop.is_set():
            turn += 1
            await asyncio.to_thread(self._read, hosts[turn % 2:] + hosts[:turn % 2])
            await asyncio.sleep(READ_EVERY_S)

    def _read(self, hosts: list[str]) -> None:
        self.figures.reads += 1
        for index, host in enumerate(hosts):
            try:
                status, body = http(host, 5000, "GET", "/api/v1/aeds?limit=20",
                                    token=self.fleet_token)
            except OSError:
                continue
            if status == 200 and len(body["items"]) == 20:
                self.figures.reads_failed_over += index > 0
                return
        self.figures.reads_failed += 1

    async def chaos(self) -> None:
        """Kill one process of each kind; restart each as systemd would, a little later."""
        await asyncio.sleep(KILL_AT_S)
        hosts = self.system.network.hosts
        active = next(name for name in ("alarm1", "alarm2")
                      if http_status(hosts[name], 5080, "/healthz") == 200)
        standby = "alarm2" if active == "alarm1" else "alarm1"
        victims = ["ingest1", "web1", active]
        for name in victims:
            self.system.nodes[name].kill()
        killed_at = time.monotonic()
        self.figures.killed = victims
        while http_status(hosts[standby], 5080, "/healthz") != 200:
            await asyncio.sleep(0.05)
            assert time.monotonic() - killed_at < 30, "the standby never took over"
        self.figures.alarm_takeover_s = round(time.monotonic() - killed_at, 2)
        await asyncio.sleep(max(0.0, RESTART_AFTER_S - (time.monotonic() - killed_at)))
        for name in victims:
            self.system.nodes[name].start()


def applied(engine: Engine, sent: set[tuple[str, int]]) -> set[tuple[str, int]]:
    with Session(engine) as session:
        ledger = {(d, s) for d, s in session.exec(
            select(AppliedMessage.device_id, AppliedMessage.seq))}
    return ledger & sent


async def test_killing_one_node_of_each_kind_under_load_loses_nothing_and_misses_no_call(
        system: System) -> None:
    now = datetime.now(UTC)
    engine = make_engine(system.database_url)
    try:
        devices, dispatch_token, fleet_token = await asyncio.to_thread(seed, engine, now)
        await asyncio.to_thread(start_services, system)
        load = Load(system, devices, dispatch_token, fleet_token)
        subscribed = asyncio.Event()
        apps = asyncio.create_task(load.responder_apps(subscribed))
        await asyncio.wait_for(subscribed.wait(), 15)
        clients = [asyncio.create_task(job()) for job in (
            load.cabinets, load.dispatch_centre, load.console_readers)]
        chaos = asyncio.create_task(load.chaos())
        await asyncio.sleep(LOAD_S)
        load.stop.set()
        await asyncio.gather(*clients, chaos)

        # Everything the broker took is applied once the restarted worker has caught up.
        deadline = time.monotonic() + 90
        while len(await asyncio.to_thread(applied, engine, load.sent)) < len(load.sent):
            assert time.monotonic() < deadline, (
                f"{len(load.sent) - len(applied(engine, load.sent))} messages never applied\n"
                f"{system.logs()}")
            await asyncio.sleep(0.5)
        figures = load.figures
        figures.messages_sent = len(load.sent)
        figures.messages_applied = len(applied(engine, load.sent))
        figures.messages_lost = figures.messages_sent - figures.messages_applied
        with Session(engine) as session:
            per_event = Counter((d, s) for d, s in session.exec(
                select(DeviceEvent.device_id, DeviceEvent.seq)))
            figures.messages_duplicated = sum(n - 1 for n in per_event.values() if n > 1)
            assert set(per_event) >= load.events
            incidents = session.exec(select(Incident)).all()

        # Every call is one incident, and every alert stored reached the responders' topics.
        figures.incidents = len(incidents)
        by_reference = Counter(incident.reference for incident in incidents)
        figures.incidents_duplicated = sum(n - 1 for n in by_reference.values())
        deadline = time.monotonic() + 30
        while True:
            with Session(engine) as session:
                unsent = session.exec(select(func.count()).select_from(OutboxMessage).where(
                    col(OutboxMessage.sent_at).is_(None),
                    col(OutboxMessage.topic).endswith("/alert"))).one()
                stored_alerts = {(i, r) for i, r in session.exec(
                    select(IncidentResponder.incident_id, IncidentResponder.responder_id))}
            if not unsent and stored_alerts <= set(load.heard):
                break
            assert time.monotonic() < deadline, (
                f"{unsent} alerts unsent, {len(stored_alerts - set(load.heard))} not heard\n"
                f"{system.logs()}")
            await asyncio.sleep(0.5)
        apps.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await apps
        figures.alerts_stored = len(stored_alerts)
        figures.alerts_heard = len(stored_alerts & set(load.heard))
        figures.alerts_heard_twice = sum(1 for key in stored_alerts if load.heard[key] > 1)
        dispatched = {i.reference for i in incidents if i.state in ("dispatched",
                                                                     "no_responders")}
        figures.incidents_missed = len(set(load.references) - dispatched)

        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT.write_text(json.dumps(figures.__dict__, indent=2) + "\n")
        print(json.dumps(figures.__dict__))

        assert figures.killed and figures.alarm_takeover_s < 5
        assert figures.messages_sent > 10_000
        assert (figures.messages_lost, figures.messages_duplicated) == (0, 0)
        assert figures.calls == len(load.references) == figures.incidents
        assert (figures.incidents_missed, figures.incidents_duplicated) == (0, 0)
        assert figures.alerts_heard == figures.alerts_stored > 0
        assert figures.reads_failed == 0 and figures.reads_failed_over > 0
        for name, node in system.nodes.items():
            assert node.alive(), f"{name} is down:\n{node.log()[-3000:]}"
            assert "Traceback" not in node.log(), f"{name}:\n{node.log()[-3000:]}"
    finally:
        engine.dispose()
