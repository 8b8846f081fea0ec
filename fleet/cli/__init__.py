"""The `aedfleet` command line: one entry point for operators, the demo and benchmarks."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy import Engine

from fleet import migrate
from fleet.db import make_engine
from fleet.errors import FleetError
from fleet.settings import Settings, load_settings


class Context:
    """What every command needs: the settings, and an engine made on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._checked = False

    @property
    def unchecked_engine(self) -> Engine:
        """The engine, whatever revision its schema is at (for `db` commands and the demo)."""
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    @property
    def engine(self) -> Engine:
        """The engine of a database whose schema is at the newest revision."""
        engine = self.unchecked_engine
        if not self._checked:
            migrate.require_head(engine)
            self._checked = True
        return engine


pass_context = click.make_pass_decorator(Context)


class FleetGroup(click.Group):
    """Turns every `FleetError` into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FleetError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=FleetGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """aedfleet: keep a region's AEDs ready and send them to cardiac arrests."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ctx.obj = Context(load_settings())
    except FleetError as exc:
        raise click.ClickException(str(exc)) from exc


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
    return moment.astimezone(UTC)


def progress_bar(length: int, label: str):  # type: ignore[no-untyped-def]
    """A progress bar on stderr (shown only on a terminal)."""
    return click.progressbar(length=length, label=label, file=sys.stderr)


from device_agents import cli as device_cli  # noqa: E402
from fleet.cli import aeds, bench, db, demo, registry_import  # noqa: E402

for module in (db, registry_import, aeds, bench, demo, device_cli):
    module.register(main)
