"""The `aedfleet` command line: one entry point for operators, the demo and benchmarks.

Subcommands are imported only when run (click's lazy-loading pattern), so that `aedfleet agent`
on a cabinet's small computer loads the agent, not the registry, web and database stack.
"""

from __future__ import annotations

import getpass
import importlib
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from alarm_core.errors import AlarmError
from fleet.errors import FleetError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from fleet.settings import Settings

# command name -> "module:attribute"
COMMANDS = {
    "aeds": "fleet.cli.aeds:aeds",
    "agent": "device_agents.cli:agent",
    "bench": "fleet.cli.bench:bench",
    "broker-config": "device_agents.cli:broker_config",
    "aftercare": "fleet.cli.alarm:aftercare",
    "alarm": "fleet.cli.alarm:alarm",
    "audit": "fleet.cli.audit:audit",
    "coverage": "fleet.cli.coverage:coverage",
    "db": "fleet.cli.db:db",
    "declare": "fleet.cli.aeds:declare",
    "demo": "fleet.cli.demo:demo",
    "dispatch": "fleet.cli.alarm:dispatch",
    "import": "fleet.cli.registry_import:import_file",
    "incidents": "fleet.cli.alarm:incidents",
    "ingest": "fleet.cli.ingest:ingest",
    "managers": "fleet.cli.managers:managers",
    "municipalities": "fleet.cli.db:municipalities",
    "notify": "fleet.cli.notify:notify",
    "regions": "fleet.cli.regions:regions",
    "responders": "fleet.cli.responders:responders",
    "retention": "fleet.cli.retention:retention",
    "serve": "fleet.cli.serve:serve",
    "simulate": "device_agents.cli:simulate",
    "tokens": "fleet.cli.alarm:tokens",
    "users": "fleet.cli.users:users",
}


class Context:
    """What every command needs: the settings, and an engine made on first use."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self._checked = False

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from fleet.settings import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def actor(self) -> str:
        """Who the audit log names for a change made with this command: `cli:<os user>`."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no user name known for this uid
            user = f"uid-{os.getuid()}"
        return f"cli:{user}"

    @property
    def unchecked_engine(self) -> Engine:
        """The engine, whatever revision its schema is at (for `db` commands and the demo)."""
        if self._engine is None:
            from fleet.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    @property
    def engine(self) -> Engine:
        """The engine of a database whose schema is at the newest revision."""
        engine = self.unchecked_engine
        if not self._checked:
            from fleet import migrate

            migrate.require_head(engine)
            self._checked = True
        return engine


pass_context = click.make_pass_decorator(Context)


class FleetGroup(click.Group):
    """Loads subcommands on demand; turns every `FleetError` into a one-line message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (FleetError, AlarmError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=FleetGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """aedfleet: keep a region's AEDs ready and send them to cardiac arrests."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context()


def parse_time(value: str | None, settings: Settings) -> datetime:
    """An RFC 3339 time; without a zone it is read in the configured time zone; None: now."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time like 2026-11-27T14:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(settings.timezone))
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise click.BadParameter(f"{value!r} lies outside the years 1-9999") from None


def progress_bar(length: int, label: str):  # type: ignore[no-untyped-def]
    """A progress bar on stderr (shown only on a terminal)."""
    return click.progressbar(length=length, label=label, file=sys.stderr)
