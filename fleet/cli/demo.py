"""`aedfleet demo`: set up the database with the bundled registries, then run the whole system.

With `--setup-only` it stops after the setup (schema, boundaries and regions, the registries of
Utrecht and Cologne, declarations, and the fleet's readiness). Otherwise it goes on to run
broker, ingest, cabinets with their agents, the alarm core with the console, and simulated
112 centres, until Ctrl-C.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click
from sqlmodel import Session, select

from fleet import migrate
from fleet.cli import Context, parse_time, pass_context
from fleet.cli.alarm import _host_port
from fleet.demo.regions import DEMO_REGIONS, REGISTRY_SOURCE, load_regions, regions_folder
from fleet.ingest.sweep import sweep
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


@click.command()
@click.option("--setup-only", is_flag=True, help="Only set up the database and show the "
              "fleet's readiness; start nothing.")
@click.option("--http", "http", default=None, help="host:port of the console "
              "(default: the `http` setting).")
@click.option("--incident-every", "incident_every", type=click.FloatRange(min=0), default=3.0,
              show_default=True, help="Minutes between simulated 112 calls (0: none).")
@click.option("--incident-minutes", "incident_minutes", type=click.FloatRange(min=0.1),
              default=2.0, show_default=True, help="Minutes until the 112 centre closes a call.")
@click.option("--responders", default=300, show_default=True, type=click.IntRange(0, 5000),
              help="Synthetic citizen responders living in Utrecht (and a third as many in "
              "Cologne).")
@click.option("--cabinets/--no-cabinets", default=True, show_default=True,
              help="Simulated cabinets with agents, and the registry's other cabinets.")
@click.option("--seed", default=1, show_default=True, help="Seed of the simulated world.")
@pass_context
def demo(ctx: Context, setup_only: bool, http: str | None, incident_every: float,
         incident_minutes: float, responders: int, cabinets: bool, seed: int) -> None:
    """Run the whole system on this machine until Ctrl-C (database: the configured one,
    default SQLite under ./var)."""
    http = http or ctx.settings.http
    _host_port(http)
    _set_up(ctx)
    if setup_only:
        click.echo("\nNext (after `. .venv/bin/activate`): `aedfleet aeds list --state "
                   "unverified`, `aedfleet aeds show NL-UT-0001`, `aedfleet aeds show "
                   "DE-K-0018`, `aedfleet regions list`, `aedfleet declare NL-UT-0002 --by "
                   "'Your name'`, or `aedfleet demo` to run everything")
        return
    import asyncio

    from fleet.demo.run import DemoOptions, run_demo

    click.secho("6. the whole system", bold=True)
    options = DemoOptions(http=http, incident_every_s=incident_every * 60,
                          incident_open_s=incident_minutes * 60, responders=responders,
                          cabinets=cabinets, seed=seed)
    asyncio.run(run_demo(ctx.engine, ctx.settings, options, click.echo))
    click.echo("demo stopped")


def _set_up(ctx: Context) -> None:
    engine = ctx.unchecked_engine
    now = parse_time(None, ctx.settings)
    click.secho("1. database schema", bold=True)
    migrate.upgrade(engine)
    revision = migrate.current_revision(engine)
    click.echo(f"   at revision {revision} ({engine.url.render_as_string()})")

    click.secho("2. municipality boundaries (CBS, CC BY 4.0) and regions", bold=True)
    click.echo(f"   {load_municipalities(engine, read_boundaries())} Dutch municipalities loaded")
    folder = regions_folder()
    if folder is None:
        click.echo("   no config/regions/ here: one region everywhere")
    else:
        changed = load_regions(engine, ctx.settings, now, folder)
        click.echo(f"   regions {', '.join(r.code for r in DEMO_REGIONS)} from {folder} "
                   f"({len(changed)} changed)")

    click.secho("3. AED registries", bold=True)
    for region in DEMO_REGIONS:
        click.echo(f"   {region.name}: {region.registry_note}")
        with resources.as_file(resources.files("fleet.data") / region.registry) as path:
            parsed = read_registry_file(Path(path), source=REGISTRY_SOURCE)
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
    sweep(engine, ctx.settings, now)  # recorded, as the ingest does, for the console to show
    with Session(engine) as session:
        statuses = aed_statuses(session, ctx.settings, now)
    summary = summarize(statuses)
    for state, count in summary.by_state.items():
        click.echo(f"   {state:<11} {count:>5}")
    click.echo(f"   accessible now: {summary.accessible_now} of {summary.total}")
    click.echo("   why AEDs are not ready or not verified:")
    for code, count in summary.reasons.items():
        click.echo(f"   {count:>5}  {code}: {describe_reason(code)}")


def _declare_named_operators(ctx: Context, now: object) -> int:
    """The demo plays the managers whose organisation is named in the registry, once."""
    with Session(ctx.engine) as session:
        declared = set(session.exec(select(ReadinessDeclaration.aed_id)))
        pending = [aed.id for aed in session.exec(
            select(Aed).where(Aed.source == REGISTRY_SOURCE, Aed.manager_id.is_not(None)))  # type: ignore[union-attr]
            if aed.id not in declared]
    for aed_id in pending:
        record_declaration(ctx.engine, aed_id, "demo manager", now, now,  # type: ignore[arg-type]
                           note="declared by the demo")
    return len(declared) + len(pending)
