"""`aedfleet demo` as a newcomer runs it: the whole system comes up, lives, and Ctrl-C stops it.

Run once with Mosquitto on PATH and once without it, where the demo embeds amqtt instead (the
path of a newcomer who has installed nothing but the Python packages).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from alarm_core.models import ApiToken, Incident, IncidentResponder
from device_agents.local_broker import free_port
from fleet.db import make_engine
from fleet.models import DeviceEvent, TelemetryState

from .cli import AEDFLEET, Cli

CABINET_LINE = re.compile(r"(cab-\S+) \(AED \S+\) over (Modbus TCP|serial line): (\w+)")


def path_without_mosquitto() -> str:
    """PATH less every folder that holds a `mosquitto` executable."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if not (Path(f) / "mosquitto").exists())


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest) -> str:
    if request.param == "mosquitto" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not on PATH (apt-get install mosquitto; .ci/run does)")
    return str(request.param)


class Demo:
    """`aedfleet demo` running in the background; its output goes to a file read while it runs."""

    def __init__(self, cli: Cli, path: str, *options: str) -> None:
        port = free_port()
        self.output_path = cli.cwd / "demo.out"
        self.url = f"http://127.0.0.1:{port}"
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                [str(AEDFLEET), "demo", "--http", f"127.0.0.1:{port}", *options], cwd=cli.cwd,
                env={**cli.env, "PATH": path}, stdout=output, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, condition: Callable[[], object], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self.process.poll() is None, f"the demo exited while waiting for {what}:\n" \
                                                f"{self.output}"
            assert time.monotonic() < deadline, f"no {what} after {timeout_s} s:\n{self.output}"
            time.sleep(0.25)

    def health(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def page(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as answer:
            return str(answer.read().decode("utf-8"))

    def kill(self) -> None:
        """Whatever a failed test left running."""
        if self.process.poll() is None:
            for pid in children_of(self.process.pid):
                os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def demo(plain_cli: Cli, broker: str) -> Iterator[Demo]:
    path = path_without_mosquitto() if broker == "amqtt" else os.environ["PATH"]
    running = Demo(plain_cli, path, "--incident-every", "0.25", "--incident-minutes", "1")
    try:
        yield running
    finally:
        running.kill()


def children_of(pid: int) -> list[int]:
    """The running child processes of `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def telemetry_of(engine: Engine, devices: list[str]) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(TelemetryState.device_id).where(
            col(TelemetryState.device_id).in_(devices))))


def alerted_incidents(engine: Engine, caller: str = "demo-112") -> int:
    with Session(engine) as session:
        return len(session.exec(
            select(Incident.id).join(IncidentResponder,
                                     col(IncidentResponder.incident_id) == Incident.id)
            .where(Incident.caller == caller).group_by(col(Incident.id))
            .having(func.count() > 0)).all())


def live_tokens(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        return sorted(session.exec(select(ApiToken.caller, ApiToken.region).where(
            col(ApiToken.revoked_at).is_(None))).all())


def removed_aeds(engine: Engine, device: str) -> int:
    with Session(engine) as session:
        return len(session.exec(select(DeviceEvent.seq).where(
            DeviceEvent.device_id == device, DeviceEvent.type == "aed_removed")).all())


def test_demo_runs_the_whole_system_and_ctrl_c_stops_every_part(
        demo: Demo, plain_cli: Cli, broker: str) -> None:
    started = time.monotonic()
    demo.wait_for(lambda: "Ctrl-C stops everything" in demo.output, 60, "banner")
    banner = demo.output
    assert demo.health()
    assert "<h1>Log in</h1>" in demo.page("/login")
    assert ("amqtt, embedded" in banner) == (broker == "amqtt")
    assert re.search(r"admin +demo-admin / \S{10,}", banner)
    dutch, german = banner.split(" region NL:", 1)[1].split(" region DE-NW-KOELN:", 1)
    assert re.search(r"dispatcher +demo-dispatcher / \S{10,}", dutch)
    assert re.search(r"manager +demo-koeln-manager / \S{10,} +\(Stadt Köln – Feuerwehr\)",
                     german)
    assert re.search(r"responder +demo-koeln-responder / \S{10,} +\(demo-rk-0001\)", german)
    assert "in turn in Utrecht and Köln" in banner
    cabinets = {device: (line, scenario)
                for device, line, scenario in CABINET_LINE.findall(banner)}
    assert sorted(line for line, _ in cabinets.values()) == [
        "Modbus TCP", "Modbus TCP", "serial line", "serial line"]
    engine = make_engine(f"sqlite:///{plain_cli.cwd / 'var' / 'aedfleet.db'}")
    try:
        demo.wait_for(lambda: telemetry_of(engine, list(cabinets)) == set(cabinets), 30,
                      "telemetry from every simulated cabinet")
        demo.wait_for(lambda: alerted_incidents(engine) >= 1, 45,
                      "a 112 call with alerted responders")
        demo.wait_for(lambda: alerted_incidents(engine, "demo-112-koeln") >= 1, 45,
                      "a 112 call in Cologne with alerted responders")
        assert live_tokens(engine) == [("demo-112", "NL"), ("demo-112-koeln", "DE-NW-KOELN")]
        door = next(device for device, (_, scenario) in cabinets.items() if scenario == "door")
        demo.wait_for(lambda: removed_aeds(engine, door) >= 1, 60,
                      "the AED taken from the door scenario's cabinet")
    finally:
        engine.dispose()
    up_s = time.monotonic() - started
    children = children_of(demo.process.pid)
    # ingest, alarm core, console, 4 controllers, 4 agents, and maybe more
    assert len(children) >= 11
    serial = next(device for device, (line, _) in cabinets.items() if line == "serial line")
    controller_log = plain_cli.cwd / "var" / "demo" / "logs" / f"controller-{serial}.log"
    found = re.search(r"\(also (\S+)\)", controller_log.read_text(encoding="utf-8"))
    assert found, controller_log.read_text(encoding="utf-8")
    run_dir = Path(found.group(1)).parent
    assert run_dir.is_dir()

    demo.process.send_signal(signal.SIGINT)

    assert demo.process.wait(20) == 0, demo.output
    assert [pid for pid in children if running(pid)] == []
    output = demo.output
    assert "Traceback" not in output
    assert "demo stopped" in output
    assert not run_dir.exists()
    print(f"demo alive and checked after {up_s:.0f} s, stopped after "
          f"{time.monotonic() - started - up_s:.1f} s")


def test_a_part_that_dies_stops_the_demo_with_its_last_lines_and_exit_status_1(
        plain_cli: Cli) -> None:
    demo = Demo(plain_cli, path_without_mosquitto(), "--no-cabinets", "--incident-every", "0",
                "--responders", "20")
    try:
        demo.wait_for(lambda: "Ctrl-C stops everything" in demo.output, 60, "banner")
        children = children_of(demo.process.pid)
        ingest = next(pid for pid in children
                      if b"ingest" in Path(f"/proc/{pid}/cmdline").read_bytes())

        os.kill(ingest, signal.SIGKILL)

        assert demo.process.wait(30) == 1
        output = demo.output
        assert "Error: ingest was killed by SIGKILL; its last lines" in output
        assert "ingest worker" in output.split("its last lines", 1)[1]
        assert [pid for pid in children if running(pid)] == []
    finally:
        demo.kill()
