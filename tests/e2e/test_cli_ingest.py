"""`aedfleet ingest` as an operator runs it: a real process, a real Mosquitto, both databases."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from device_agents.local_broker import LocalMosquitto, free_port, mosquitto_binary

from .cli import AEDFLEET, Cli

REGISTRY = """id,lat,lon,opening_hours,access,device_id
NL-I1,52.0907,5.1214,24/7,public,cab-i1
NL-I2,52.0800,5.1300,24/7,public,cab-i2
"""
CABINETS = {"cab-i1": "NL-I1", "cab-i2": "NL-I2"}
APPLIED_TELEMETRY = ("aedfleet_ingest_applied_total", (("kind", "telemetry"),))
DEAD_NOT_JSON = ("aedfleet_ingest_dead_letters_total", (("reason", "not_json"),))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    """Mosquitto with the generated ACL: each cabinet has its own account, the fleet its own."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    mosquitto = LocalMosquitto(tmp_path / "broker", list(CABINETS))
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def registered(cli: Cli, tmp_path: Path) -> Cli:
    """A database made with `aedfleet db upgrade`, two AEDs with cabinets, declared ready."""
    cli.ok("db", "upgrade")
    registry = tmp_path / "registry.csv"
    registry.write_text(REGISTRY, encoding="utf-8")
    cli.ok("import", str(registry))
    for aed_id in CABINETS.values():
        cli.ok("declare", aed_id, "--by", "J. Jansen")
    return cli


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def reading(device: str, seq: int, pads_expiry: date) -> bytes:
    now = stamp(datetime.now(UTC))
    return json.dumps({
        "v": 1, "device_id": device, "seq": seq, "ts": now, "battery_pct": 88,
        "pads_expiry": pads_expiry.isoformat(), "self_test": "pass", "self_test_ts": now,
        "door_open": False, "aed_present": True, "temperature_c": 14.5, "power": "mains"}).encode()


class IngestProcess:
    """`aedfleet -v ingest ...` in the background; its stderr goes to a file read while it runs."""

    def __init__(self, cli: Cli, *args: str, env: dict[str, str]) -> None:
        self.stderr_path = cli.cwd / "ingest.stderr"
        self.stdout_path = cli.cwd / "ingest.stdout"
        with self.stderr_path.open("wb") as stderr, self.stdout_path.open("wb") as stdout:
            self.process = subprocess.Popen(
                [str(AEDFLEET), "-v", "ingest", *args], cwd=cli.cwd,
                env={**cli.env, **env}, stdout=stdout, stderr=stderr)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def wait_for(condition: Any, timeout_s: float, what: str,
                   process: IngestProcess | None = None) -> None:
    """Poll `condition` until it holds; fail early if the ingest process has died."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process is not None and process.process.poll() is not None:
            raise AssertionError(f"aedfleet ingest exited ({process.process.returncode}) while "
                                 f"waiting for {what}:\n{process.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """Every sample on `/metrics`, keyed by name and labels; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            body = response.read().decode()
    except OSError:
        return None
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


class Cabinet:
    """One cabinet on its own MQTT account: publishes on its topics and collects its acks."""

    def __init__(self, broker: LocalMosquitto, device: str) -> None:
        self.device = device
        self.acks: list[int] = []
        self.client = aiomqtt.Client("127.0.0.1", broker.port, username=device,
                                     password=broker.credentials[device], identifier=device)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Cabinet:
        await self.client.__aenter__()
        await self.client.subscribe(f"aed/{self.device}/ack", qos=1)
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for message in self.client.messages:
            self.acks.append(json.loads(message.payload)["seq"])  # type: ignore[arg-type]

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def publish(self, leaf: str, payload: bytes) -> None:
        await self.client.publish(f"aed/{self.device}/{leaf}", payload, qos=1)

    def acked(self) -> int:
        return max(self.acks, default=0)


async def test_ingest_applies_telemetry_serves_metrics_and_stops_cleanly_on_sigterm(
        registered: Cli, broker: LocalMosquitto) -> None:
    port = free_port()
    ingest = IngestProcess(registered, "--metrics", f"127.0.0.1:{port}", env={
        "AEDFLEET_MQTT_URL": broker.url("fleet"), "AEDFLEET_INGEST__CLIENT_ID": "ingest-e2e"})
    try:
        await wait_for(lambda: "ingest connected to" in ingest.stderr, 20,
                       "the worker to connect and subscribe", ingest)
        fresh = date.today() + timedelta(days=300)
        expired = date.today() - timedelta(days=3)
        async with Cabinet(broker, "cab-i1") as first, Cabinet(broker, "cab-i2") as second:
            for seq in (1, 2, 3):
                await first.publish("telemetry", reading("cab-i1", seq, fresh))
            await second.publish("telemetry", reading("cab-i2", 1, fresh))
            await wait_for(lambda: second.acked() == 1, 20, "the first report of NL-I2", ingest)
            await second.publish("telemetry", reading("cab-i2", 2, expired))
            await second.publish("telemetry", b"{not json")
            await wait_for(lambda: first.acked() == 3 and second.acked() == 2, 20,
                           "both cabinets acked", ingest)

        def settled() -> bool:
            metrics = scrape(port) or {}
            return metrics.get(DEAD_NOT_JSON) == 1 and metrics.get(APPLIED_TELEMETRY) == 5

        await wait_for(settled, 20, "/metrics to count every message", ingest)
        metrics = scrape(port)
        assert metrics is not None
        assert metrics[("aedfleet_ingest_received_total", ())] == 6
        assert metrics[APPLIED_TELEMETRY] == 5
        assert metrics[DEAD_NOT_JSON] == 1
        assert metrics[("aedfleet_readiness_transitions_total", ())] == 3
        assert metrics[("aedfleet_notices_queued_total", ())] == 1  # NL-I2: readiness lost

        shown = {aed_id: json.loads(registered.ok("aeds", "show", aed_id, "--json").stdout)
                 for aed_id in CABINETS.values()}
        assert shown["NL-I1"]["readiness"]["state"] == "ready"
        assert shown["NL-I2"]["readiness"]["state"] == "not_ready"
        assert shown["NL-I2"]["readiness"]["reasons"] == ["pads_expired"]

        assert ingest.terminate() == 0, ingest.stderr
    finally:
        ingest.kill()
    lines = ingest.stderr.splitlines()
    assert f"metrics on http://127.0.0.1:{port}/metrics" in lines
    assert lines[-1].startswith("ingest worker stopped after "), lines[-3:]
    assert lines[-1].endswith(": 6 received"), lines[-1]
    assert "Traceback" not in ingest.stderr
    assert ingest.stdout_path.read_text() == ""


def test_ingest_without_a_broker_configured_fails_with_a_one_line_message(
        plain_cli: Cli) -> None:
    result = plain_cli("ingest", timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: no broker configured: set mqtt_url (AEDFLEET_MQTT_URL)"]
    assert result.stdout == ""


def test_ingest_sweep_json_prints_the_figures_of_one_sweep_as_one_json_object(
        registered: Cli) -> None:
    first = registered.json("ingest", "sweep")
    again = registered.json("ingest", "sweep")

    # The first sweep records a baseline readiness for both AEDs, which notifies nobody.
    assert first == {"transitions": 2, "notices": 0, "ledger_pruned": 0,
                     "dead_letters_pruned": 0}
    assert again == {"transitions": 0, "notices": 0, "ledger_pruned": 0,
                     "dead_letters_pruned": 0}
