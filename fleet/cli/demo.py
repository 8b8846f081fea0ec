"""`aedfleet demo`: set up the embedded database, import the bundled registry, show readiness."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click
from sqlmodel import Session, select

from fleet import migrate
from fleet.cli import Context, parse_time, pass_context
from fleet.models import Aed, ReadinessDeclaration
from fleet.municipalities import read_boundaries
from fleet.readiness import describe_reason
from fleet.registry import (
    aed_statuses,
    import_registry,
    load_municipalities,
    record_declaration,
    summarize,
)
from fleet.registry_file import read_registry_file

DEMO_REGISTRY = "demo_registry_utrecht.csv"


@click.command()
@pass_context
def demo(ctx: Context) -> None:
    """Run the demo on the configured database (default: SQLite under ./var)."""
    engine = ctx.unchecked_engine
    now = parse_time(None, ctx.settings)
    click.secho("1. database schema", bold=True)
    migrate.upgrade(engine)
    revision = migrate.current_revision(engine)
    click.echo(f"   at revision {revision} ({engine.url.render_as_string()})")

    click.secho("2. municipality boundaries (CBS, CC BY 4.0)", bold=True)
    click.echo(f"   {load_municipalities(engine, read_boundaries())} Dutch municipalities loaded")

    click.secho("3. AED registry: real OpenStreetMap attributes, relocated into Utrecht "
                "(© OpenStreetMap contributors, ODbL)", bold=True)
    with resources.as_file(resources.files("fleet.data") / DEMO_REGISTRY) as path:
        parsed = read_registry_file(Path(path), source="demo")
    report = import_registry(engine, parsed)
    click.echo(f"   {report.rows} rows: {report.created} new, {report.updated} updated, "
               f"{report.unchanged} unchanged, {len(report.rejections)} rejected")
    for rejection in report.rejections:
        click.echo(f"   rejected {rejection}")

    click.secho("4. managers' 'ready for deployment' declarations", bold=True)
    declared = _declare_named_operators(ctx, now)
    click.echo(f"   {declared} AEDs declared ready by their named operator (the rest have no "
               "declaration yet)")

    click.secho("5. fleet readiness now", bold=True)
    with Session(engine) as session:
        statuses = aed_statuses(session, ctx.settings, now)
    summary = summarize(statuses)
    for state, count in summary.by_state.items():
        click.echo(f"   {state:<11} {count:>5}")
    click.echo(f"   accessible now: {summary.accessible_now} of {summary.total}")
    click.echo("   why AEDs are not ready or not verified:")
    for code, count in summary.reasons.items():
        click.echo(f"   {count:>5}  {code}: {describe_reason(code)}")
    click.echo("\nNext (after `. .venv/bin/activate`): `aedfleet aeds list --state unverified`, "
               "`aedfleet aeds show NL-UT-0001`, `aedfleet declare NL-UT-0002 --by 'Your name'`")


def _declare_named_operators(ctx: Context, now: object) -> int:
    """The demo plays the managers whose organisation is named in the registry, once."""
    with Session(ctx.engine) as session:
        declared = set(session.exec(select(ReadinessDeclaration.aed_id)))
        pending = [aed.id for aed in session.exec(
            select(Aed).where(Aed.source == "demo", Aed.manager_id.is_not(None)))  # type: ignore[union-attr]
            if aed.id not in declared]
    for aed_id in pending:
        record_declaration(ctx.engine, aed_id, "demo manager", now, now,  # type: ignore[arg-type]
                           note="declared by the demo")
    return len(declared) + len(pending)
