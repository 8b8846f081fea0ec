"""Start every part of the demo in order, watch them, and stop them all on a signal or a failure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from device_agents.local_broker import free_port
from fleet.demo import cabinets as cabinet_parts
from fleet.demo.broker import start_broker
from fleet.demo.calls import CallCentre, CallPlan, IncidentApi, play_calls
from fleet.demo.errors import Interrupted, PartFailed
from fleet.demo.people import (
    DemoLogin,
    dispatch_token,
    ensure_logins,
    municipality_area,
    seed_responders,
)
from fleet.demo.phones import play_phones
from fleet.demo.processes import Supervisor, wait_until
from fleet.demo.regions import KOELN, NL, REGISTRY_SOURCE, koeln_activity_area, stored_area
from fleet.demo.services import (
    check_console_port,
    start_alarm_core,
    start_console,
    start_ingest,
    start_victoria_metrics,
    timeseries_env,
)
from fleet.demo.virtual_fleet import last_seqs, play_fleet, virtual_fleet
from fleet.settings import Settings

MUNICIPALITY = "Utrecht"
DEMO_FOLDER = Path("var/demo")
KOELN_RESPONDER_SHARE = 1 / 3
"""Cologne's responders, as a share of `--responders` (Utrecht's)."""
PLAYER_STOP_S = 20.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    http: str
    incident_every_s: float
    incident_open_s: float
    responders: int
    cabinets: bool
    seed: int


class Players:
    """The simulated world's tasks in this process (cabinets, phones, the 112 centre)."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, coroutine: Coroutine[Any, Any, None]) -> None:
        self.tasks[name] = asyncio.create_task(coroutine, name=name)

    def check(self) -> None:
        for name, task in self.tasks.items():
            if task.done():
                error = None if task.cancelled() else task.exception()
                raise PartFailed(f"{name} stopped: {error!r}" if error else f"{name} stopped")

    async def stop(self) -> None:
        """Wait for the players to wind down (they watch the stop event), then cancel."""
        if self.tasks:
            _, late = await asyncio.wait(self.tasks.values(), timeout=PLAYER_STOP_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def run_demo(engine: Engine, settings: Settings, options: DemoOptions, say: Say) -> None:
    """Run the demo until SIGINT or SIGTERM; raise `PartFailed` if a part dies on its own."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    run_dir = Path(tempfile.mkdtemp(prefix="aedfleet-demo-"))
    supervisor = Supervisor(DEMO_FOLDER / "logs")
    players = Players()
    try:
        await _start(engine, settings, options, say, supervisor, players, run_dir, stop)
        while not stop.is_set():
            supervisor.check()
            players.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        say("stopping ...")
    except Interrupted:
        say("stopped while starting")
    finally:
        stop.set()
        await players.stop()
        await asyncio.to_thread(supervisor.stop_all)
        shutil.rmtree(run_dir, ignore_errors=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _start(engine: Engine, settings: Settings, options: DemoOptions, say: Say,
                 supervisor: Supervisor, players: Players, run_dir: Path,
                 stop: asyncio.Event) -> None:
    check_console_port(options.http)
    now = datetime.now(UTC)
    area = municipality_area(engine, MUNICIPALITY)
    nl_loaded = stored_area(engine, NL.code) is not None
    responders = seed_responders(engine, settings, area, options.responders, now, options.seed,
                                 NL, nl_loaded)
    registry = cabinet_parts.registry_cabinets(engine, REGISTRY_SOURCE)
    # The connected cabinets and the manager log-in are Utrecht's; Cologne's manager has its own.
    manager = cabinet_parts.busiest_manager([c for c in registry if c[2] != KOELN.manager])
    logins = ensure_logins(engine, now, manager, MUNICIPALITY,
                           responders[0] if responders else None, NL, nl_loaded)
    tokens = {NL.name: dispatch_token(engine, now, NL.caller, NL.code if nl_loaded else None)}
    areas = {NL.name: area}
    koeln_area = koeln_activity_area(engine)
    koeln_responders: list[str] = []
    if koeln_area is not None:
        koeln_responders = seed_responders(
            engine, settings, koeln_area, round(options.responders * KOELN_RESPONDER_SHARE),
            now, options.seed, KOELN, True)
        logins += ensure_logins(engine, now, KOELN.manager, KOELN.municipality,
                                koeln_responders[0] if koeln_responders else None, KOELN, True)
        tokens[KOELN.name] = dispatch_token(engine, now, KOELN.caller, KOELN.code)
        areas[KOELN.name] = koeln_area
    config = cabinet_parts.config_folder()
    connected = cabinet_parts.choose_cabinets(registry, manager, config / "scenarios") \
        if options.cabinets and config else []
    connected_ids = {c.device_id for c in connected}
    others = [device_id for device_id, _, _ in registry if device_id not in connected_ids] \
        if options.cabinets else []
    fleet = virtual_fleet(others, last_seqs(engine, others), now.date(),
                          random.Random(options.seed))

    broker = start_broker(supervisor, run_dir, free_port())
    await wait_until(broker.ready, 15, "the MQTT broker", supervisor, stop)
    history = await start_victoria_metrics(supervisor, run_dir, stop)
    env = {**os.environ, "AEDFLEET_DATABASE_URL": settings.database_url,
           "AEDFLEET_MQTT_URL": broker.url}
    metrics = await start_ingest(supervisor, {**env, **timeseries_env(history)},
                                 broker.shared_subscriptions, stop)
    if config is not None:
        await cabinet_parts.start_cabinets(connected, supervisor, broker.url, run_dir,
                                           (DEMO_FOLDER / "spool").resolve(), config, stop)
    console = await start_console(supervisor, env, options.http, history, stop)
    alarm = await start_alarm_core(supervisor, env, f"127.0.0.1:{free_port()}", console, stop)

    phones_ready = asyncio.Event()
    players.start("the responders' phones", play_phones(
        broker.url, settings.alarm.topic_root, options.seed, phones_ready, stop))
    await wait_until(phones_ready.is_set, 15, "the responders' phones", supervisor, stop)
    if fleet:
        players.start("the virtual cabinets", play_fleet(
            fleet, broker.url, settings.ingest.topic_root, options.seed, stop))
    plan = CallPlan(options.incident_every_s, options.incident_open_s,
                    min(30.0, options.incident_every_s))
    if plan.every_s > 0:
        centres = [CallCentre(name, IncidentApi(alarm, token), areas[name])
                   for name, token in tokens.items()]
        players.start("the 112 centres", play_calls(centres, plan, options.seed, say, stop))

    lines = _banner(console, alarm, logins, broker.description, broker.url, metrics, history,
                    connected, len(fleet), {NL.name: len(responders),
                                            KOELN.name: len(koeln_responders)}, plan,
                    list(tokens))
    say("\n".join(lines))


def _banner(console: str, alarm: str, logins: list[DemoLogin], broker: str, broker_url: str,
            metrics: str, history: str | None, connected: list[cabinet_parts.DemoCabinet],
            virtual: int, responders: dict[str, int], plan: CallPlan,
            centres: list[str]) -> list[str]:
    lines = ["", f"aedfleet demo is running. Console: {console}/", "",
             "Demo log-ins (new passwords on every run):"]
    for region in dict.fromkeys(login.region for login in logins):
        if region is not None:
            lines.append(f" region {region}:")
        lines += [f"  {login.role:<13} {login.username} / {login.password}   ({login.scope})"
                  for login in logins if login.region == region]
        if region == KOELN.code:
            lines.append("  (no municipality log-in: coverage needs population per postcode "
                         "area, which the demo has for the Netherlands only)")
    lines += ["", "Running:", f"  broker        {broker} on {broker_url}",
              f"  ingest        aedfleet ingest (metrics {metrics})",
              "  time series   " + (f"VictoriaMetrics on {history}" if history else
                                    "victoria-metrics is not installed: no telemetry history")]
    for number, cabinet in enumerate(connected):
        lines.append(("  cabinets      " if number == 0 else " " * 16) + cabinet.describe())
    if not connected:
        lines.append("  cabinets      none with an agent (--no-cabinets, or no "
                     "config/scenarios/demo_*.toml here)")
    if virtual:
        lines.append(f"  virtual       {virtual} more cabinets of the registry, played in this "
                     "process (a heartbeat a minute, a door now and then)")
    people = ", ".join(f"{count} in {name}" for name, count in responders.items() if count)
    lines.append(f"  alarm core    citizen responders: {people or 'none'}; the 112 centres' API "
                 f"on {alarm}/api/v1/incidents")
    lines.append(f"  console       aedfleet serve on {console}/ (fleet, maps, coverage, "
                 "incidents)")
    if plan.every_s > 0:
        lines.append(f"  112 centres   a cardiac arrest every {plan.every_s / 60:g} min "
                     f"(the first in {plan.first_after_s:.0f} s), in turn in "
                     f"{' and '.join(centres)}, closed after {plan.open_s / 60:g} min; "
                     "responders' phones answer some alerts")
    lines += ["", f"Logs in {DEMO_FOLDER / 'logs'}/. Ctrl-C stops everything.", ""]
    return lines
