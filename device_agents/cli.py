"""`aedfleet agent`, `aedfleet simulate ...` and `aedfleet broker-config`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from device_agents.agent import CabinetAgent
from device_agents.broker_config import TlsFiles, read_credentials, write_broker_config
from device_agents.config import AgentConfig, load_agent_config
from device_agents.errors import AgentError
from device_agents.register_map import find_register_map
from device_agents.simulators.modbus_server import ModbusCabinetSimulator
from device_agents.simulators.scenario import load_scenario
from device_agents.simulators.serial_controller import SerialCabinetSimulator
from device_agents.sources import CabinetSource
from device_agents.sources.modbus import ModbusSource
from device_agents.sources.serial_line import SerialSource
from device_agents.spool import Spool

logger = logging.getLogger(__name__)


def make_source(config: AgentConfig) -> CabinetSource:
    source = config.source
    if source.kind == "serial":
        return SerialSource(source.device, source.baudrate, reply_timeout_s=source.timeout_s)
    register_map = find_register_map(source.register_map, source.register_map_dir)
    if source.kind == "modbus-tcp":
        return ModbusSource.tcp(source.host, source.port, register_map, source.timeout_s)
    return ModbusSource.rtu(source.device, source.baudrate, register_map, source.timeout_s)


async def run_until_signalled(main: asyncio.Future[None] | asyncio.Task[None]) -> None:
    """Run `main` until it ends or SIGTERM/SIGINT arrives, then cancel it cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await main


@click.command()
@click.option("--config", "config_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The agent's TOML file.")
def agent(config_path: Path) -> None:
    """Run a cabinet agent: read the controller, spool, publish over MQTT."""
    try:
        config = load_agent_config(config_path)
        source = make_source(config)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    spool = Spool(config.spool_path, config.spool_max_messages)
    cabinet_agent = CabinetAgent(config, source, spool)

    async def main() -> None:
        try:
            await run_until_signalled(asyncio.ensure_future(cabinet_agent.run()))
        finally:
            await source.close()
            spool.close()

    logging.getLogger("device_agents").setLevel(logging.INFO)
    asyncio.run(main())


@click.group()
def simulate() -> None:
    """Simulated RCC-1 cabinet controllers for demos and tests."""


@simulate.command("modbus")
@click.option("--scenario", "scenario_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5020, show_default=True)
@click.option("--register-map", default="rcc1", show_default=True)
@click.option("--serial", "serial_device", help="Serve Modbus RTU on this serial device instead "
              "of TCP (e.g. one end of a socat pty pair).")
@click.option("--speed", default=1.0, show_default=True,
              help="Scenario time runs this much faster.")
@click.option("--loop", is_flag=True, help="Start the scenario again after its duration.")
def simulate_modbus(scenario_path: Path, host: str, port: int, register_map: str,
                    serial_device: str | None, speed: float, loop: bool) -> None:
    """An RCC-1 controller as a Modbus TCP (or RTU) server, playing SCENARIO."""
    try:
        simulator = ModbusCabinetSimulator(load_scenario(scenario_path),
                                           find_register_map(register_map), host, port, speed,
                                           loop, serial_device)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    where = f"RTU on {serial_device}" if serial_device else f"TCP on {host}:{port}"
    click.echo(f"simulated RCC-1 Modbus controller, {where}", err=True)
    asyncio.run(_serve(simulator.run()))


@simulate.command("serial")
@click.option("--scenario", "scenario_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--link", type=click.Path(dir_okay=False, path_type=Path),
              help="Also make the line reachable at this path (a symlink to the pty).")
@click.option("--speed", default=1.0, show_default=True)
@click.option("--loop", is_flag=True)
def simulate_serial(scenario_path: Path, link: Path | None, speed: float, loop: bool) -> None:
    """An RCC-1 controller on a pseudo-terminal, playing SCENARIO."""
    try:
        simulator = SerialCabinetSimulator(load_scenario(scenario_path), speed, loop, link)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"simulated RCC-1 serial controller on {simulator.path}"
               + (f" (also {link})" if link else ""), err=True)
    try:
        asyncio.run(_serve(simulator.run()))
    finally:
        simulator.close()


@simulate.command("fleet")
@click.option("--mqtt-url", required=True,
              help="mqtt://user@host:port of a service account (password: "
                   "AEDFLEET_AGENT_PASSWORD or in the URL).")
@click.option("--cabinets", default=1_000, show_default=True, help="Virtual cabinets.")
@click.option("--messages", default=10_000, show_default=True, help="Messages to publish.")
@click.option("--rate", type=float, help="Messages per second (default: as fast as possible).")
@click.option("--prefix", default="sim", show_default=True, help="Device ids are PREFIX-00000...")
def simulate_fleet(mqtt_url: str, cabinets: int, messages: int, rate: float | None,
                   prefix: str) -> None:
    """Many virtual cabinets in one process publishing contract v1 traffic (load tests)."""
    import os
    from urllib.parse import quote

    from device_agents.config import parse_mqtt_url
    from device_agents.simulators.fleet import drive_fleet, virtual_fleet

    try:
        endpoint = parse_mqtt_url(mqtt_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    password = os.environ.get("AEDFLEET_AGENT_PASSWORD")
    if password and endpoint.username and not endpoint.password:
        mqtt_url = mqtt_url.replace(f"{endpoint.username}@",
                                    f"{endpoint.username}:{quote(password, safe='')}@", 1)
    run = asyncio.run(drive_fleet(mqtt_url, virtual_fleet(cabinets, prefix), messages, rate))
    click.echo(f"{run.messages} messages from {run.cabinets} cabinets in {run.seconds:.2f} s "
               f"({run.messages_per_s:.0f}/s)", err=True)


async def _serve(coroutine: Coroutine[Any, Any, None]) -> None:
    await run_until_signalled(asyncio.ensure_future(coroutine))


@click.command("broker-config")
@click.option("--out", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for mosquitto.conf, passwords, acl and credentials.csv.")
@click.option("--device", "devices", multiple=True, help="A cabinet's device id (repeatable).")
@click.option("--from-registry", is_flag=True,
              help="Every cabinet in the registry database gets an account.")
@click.option("--service", "services", multiple=True, default=["fleet"], show_default=True,
              help="A fleet service account (ingest, alarm core); repeatable.")
@click.option("--port", default=1883, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--run-as-root", is_flag=True, help="Add `user root` (for tests and demos).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Broker certificate (PEM): adds a TLS listener on --tls-port.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tls-port", default=8883, show_default=True)
@click.pass_context
def broker_config(ctx: click.Context, folder: Path, devices: tuple[str, ...], from_registry: bool,
                  services: tuple[str, ...], port: int, host: str, run_as_root: bool,
                  tls_cert: Path | None, tls_key: Path | None, tls_ca: Path | None,
                  tls_port: int) -> None:
    """Write a Mosquitto configuration with per-device credentials and the contract's ACL."""
    tls_given = [tls_cert, tls_key, tls_ca]
    if any(tls_given) and not all(tls_given):
        raise click.UsageError("TLS needs all of --tls-cert, --tls-key and --tls-ca")
    tls = TlsFiles(tls_cert, tls_key, tls_ca) if tls_cert and tls_key and tls_ca else None
    users = list(devices)
    if from_registry:
        from sqlmodel import Session, select

        from fleet.models import Cabinet

        with Session(ctx.obj.engine) as session:
            users += list(session.exec(select(Cabinet.device_id)))
    credentials = write_broker_config(folder, sorted(set(users)), list(services), port, host,
                                      read_credentials(folder), run_as_root, tls, tls_port)
    click.echo(f"{len(credentials)} accounts written to {folder} "
               f"(start: mosquitto -c {folder / 'mosquitto.conf'})", err=True)
