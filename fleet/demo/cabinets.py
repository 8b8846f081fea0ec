"""The demo's connected cabinets: simulated RCC-1 controllers, each read by a real agent.

Two controllers speak Modbus TCP on loopback ports, two the serial line protocol on real pty
pairs; each plays a scenario from `config/scenarios/demo_*.toml`. The cabinets are those of the
registry manager with the most cabinets, so that manager's log-in shows them changing.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from device_agents.local_broker import free_port, tcp_accepts
from fleet.demo.processes import Supervisor, aedfleet_command, wait_until
from fleet.models import Aed, Cabinet, Manager

# (line, scenario file) of each connected cabinet, in the order cabinets are assigned.
LINES = (("modbus", "demo_healthy.toml"), ("modbus", "demo_door.toml"),
         ("serial", "demo_battery.toml"), ("serial", "demo_pads.toml"))
LINE_NAMES = {"modbus": "Modbus TCP", "serial": "serial line"}
READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class DemoCabinet:
    device_id: str
    aed_id: str
    line: str  # "modbus" or "serial"
    scenario: Path

    def describe(self) -> str:
        return (f"{self.device_id} (AED {self.aed_id}) over {LINE_NAMES[self.line]}: "
                f"{self.scenario.stem.removeprefix('demo_')}")


def config_folder() -> Path | None:
    """`config/` of the current folder if it holds the demo scenarios, else the source tree's."""
    for folder in (Path("config"), Path(__file__).resolve().parents[2] / "config"):
        if (folder / "scenarios" / LINES[0][1]).is_file() and (folder / "cabinets").is_dir():
            return folder.resolve()
    return None


def registry_cabinets(engine: Engine, source: str) -> list[tuple[str, str, str | None]]:
    """(device id, AED id, manager name) of every cabinet of the registry `source`."""
    with Session(engine) as session:
        rows = session.exec(
            select(Cabinet.device_id, Aed.id, Manager.name)
            .join(Aed, col(Aed.id) == Cabinet.aed_id)
            .outerjoin(Manager, col(Manager.id) == Aed.manager_id)
            .where(Aed.source == source).order_by(col(Cabinet.device_id))).all()
    return [(device_id, aed_id, manager) for device_id, aed_id, manager in rows]


def busiest_manager(cabinets: list[tuple[str, str, str | None]]) -> str | None:
    """The manager with the most cabinets (the first by name on a tie); None if none has one."""
    counts: dict[str, int] = {}
    for _, _, manager in cabinets:
        if manager:
            counts[manager] = counts.get(manager, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda name: (-counts[name], name))


def choose_cabinets(cabinets: list[tuple[str, str, str | None]], manager: str | None,
                    scenarios: Path) -> list[DemoCabinet]:
    """The connected cabinets: the manager's first, then any others, one per line in LINES."""
    ordered = sorted(cabinets, key=lambda c: (c[2] != manager, c[0]))
    return [DemoCabinet(device_id, aed_id, line, scenarios / scenario)
            for (device_id, aed_id, _), (line, scenario) in zip(ordered, LINES, strict=False)]


def agent_config(cabinet: DemoCabinet, mqtt_url: str, spool: Path, source: dict[str, object]
                 ) -> str:
    """The agent's TOML file; a short heartbeat and ack timeout suit a demo."""
    def value(item: object) -> str:
        return json.dumps(str(item) if isinstance(item, Path) else item)

    lines = [f"device_id = {value(cabinet.device_id)}", f"mqtt_url = {value(mqtt_url)}",
             f"spool_path = {value(spool)}", "heartbeat_s = 60", "ack_timeout_s = 10",
             "", "[source]"]
    lines += [f"{key} = {value(item)}" for key, item in source.items()]
    return "\n".join(lines) + "\n"


async def start_cabinets(cabinets: list[DemoCabinet], supervisor: Supervisor, mqtt_url: str,
                         run_dir: Path, spool_dir: Path, config: Path,
                         stop: asyncio.Event) -> None:
    """Start each cabinet's simulated controller, wait until it answers, then its agent."""
    aedfleet = aedfleet_command()
    env = dict(os.environ)
    sources: dict[str, dict[str, object]] = {}
    for cabinet in cabinets:
        name = f"controller-{cabinet.device_id}"
        if cabinet.line == "modbus":
            port = free_port()
            supervisor.spawn(name, [*aedfleet, "simulate", "modbus", "--scenario",
                                    str(cabinet.scenario), "--port", str(port), "--loop"], env)
            sources[cabinet.device_id] = {
                "kind": "modbus-tcp", "host": "127.0.0.1", "port": port,
                "register_map": "rcc1", "register_map_dir": config / "cabinets"}
        else:
            link = run_dir / f"{cabinet.device_id}.tty"
            supervisor.spawn(name, [*aedfleet, "simulate", "serial", "--scenario",
                                    str(cabinet.scenario), "--link", str(link), "--loop"], env)
            sources[cabinet.device_id] = {"kind": "serial", "device": link}
    for cabinet in cabinets:
        await wait_until(_controller_answers(sources[cabinet.device_id]), READY_TIMEOUT_S,
                         f"the controller of {cabinet.device_id}", supervisor, stop)
    for cabinet in cabinets:
        path = run_dir / f"agent-{cabinet.device_id}.toml"
        path.write_text(agent_config(cabinet, mqtt_url, spool_dir / f"{cabinet.device_id}.spool",
                                     sources[cabinet.device_id]), encoding="utf-8")
        supervisor.spawn(f"agent-{cabinet.device_id}", [*aedfleet, "agent", "--config",
                                                         str(path)], env)


def _controller_answers(source: dict[str, object]) -> Callable[[], bool]:
    if source["kind"] == "serial":
        return Path(str(source["device"])).exists
    port = int(str(source["port"]))
    return lambda: tcp_accepts("127.0.0.1", port)
