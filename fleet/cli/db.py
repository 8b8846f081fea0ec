"""`aedfleet db ...` and `aedfleet municipalities ...`: schema and reference data."""

from __future__ import annotations

from pathlib import Path

import click

from fleet import migrate
from fleet.cli import Context, pass_context
from fleet.municipalities import read_boundaries
from fleet.registry import load_municipalities


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command()
@click.argument("revision", default="head")
@pass_context
def upgrade(ctx: Context, revision: str) -> None:
    """Bring the database schema up to REVISION (default: the newest)."""
    engine = ctx.unchecked_engine
    migrate.upgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}", err=True)


@db.command()
@click.argument("revision")
@pass_context
def downgrade(ctx: Context, revision: str) -> None:
    """Take the schema down to REVISION (`base` drops every table)."""
    engine = ctx.unchecked_engine
    migrate.downgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}", err=True)


@db.command()
@pass_context
def current(ctx: Context) -> None:
    """Print the schema revision of the database and the newest one known."""
    click.echo(f"current: {migrate.current_revision(ctx.unchecked_engine)}")
    click.echo(f"head:    {migrate.head_revision(ctx.unchecked_engine)}")


@click.group()
def municipalities() -> None:
    """Municipality boundaries, used to assign AEDs to municipalities."""


@municipalities.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path))
@pass_context
def load(ctx: Context, file: Path | None) -> None:
    """Load boundaries from a GeoJSON FILE (default: the bundled Dutch municipalities, CBS)."""
    count = load_municipalities(ctx.engine, read_boundaries(file))
    click.echo(f"{count} municipality boundaries loaded", err=True)
