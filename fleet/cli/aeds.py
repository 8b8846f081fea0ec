"""`aedfleet aeds list|show` and `aedfleet declare`: readiness for operators."""

from __future__ import annotations

import click
from sqlmodel import Session

from fleet.cli import Context, parse_time, pass_context
from fleet.readiness import ReadinessState
from fleet.registry import (
    AedStatus,
    aed_status,
    aed_statuses,
    dumps,
    record_declaration,
    summarize,
)

STATES = [state.value for state in ReadinessState]


@click.group()
def aeds() -> None:
    """Registered AEDs and their readiness."""


@aeds.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only AEDs in this state.")
@click.option("--municipality", help="Only AEDs in this municipality.")
@click.option("--at", "at", help="Evaluate at this time (RFC 3339) instead of now.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout (contract §5).")
@pass_context
def list_aeds(ctx: Context, state: str | None, municipality: str | None, at: str | None,
              as_json: bool) -> None:
    """List AEDs with their readiness state and reasons."""
    now = parse_time(at, ctx.settings)
    with Session(ctx.engine) as session:
        statuses = aed_statuses(session, ctx.settings, now, municipality=municipality,
                                state=ReadinessState(state) if state else None)
    if as_json:
        click.echo(dumps([s.to_json() for s in statuses]))
        return
    for status in statuses:
        click.echo(_one_line(status))
    summary = summarize(statuses)
    counts = ", ".join(f"{n} {state}" for state, n in summary.by_state.items())
    click.echo(f"{summary.total} AEDs: {counts}", err=True)


def _one_line(status: AedStatus) -> str:
    reasons = ",".join(status.readiness.reasons) or "-"
    where = status.municipality or "?"
    access = "open" if status.access.accessible else status.access.reason
    state = status.readiness.state.value
    return f"{status.aed.id:<24} {state:<10} {where:<20} {access:<16} {reasons}"


@aeds.command("show")
@click.argument("aed_id")
@click.option("--at", "at", help="Evaluate at this time (RFC 3339) instead of now.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout (contract §5).")
@pass_context
def show(ctx: Context, aed_id: str, at: str | None, as_json: bool) -> None:
    """Show one AED: readiness, each reason in words, expiry dates, declaration."""
    now = parse_time(at, ctx.settings)
    with Session(ctx.engine) as session:
        status = aed_status(session, ctx.settings, aed_id, now)
    if as_json:
        click.echo(dumps(status.to_json()))
        return
    doc = status.to_json()
    click.echo(f"AED {doc['id']}  {doc['name'] or ''}".rstrip())
    click.echo(f"  readiness:     {doc['readiness']['state']}")
    for line in status.explain():
        click.echo(f"    - {line}")
    click.echo(f"  location:      {doc['lat']}, {doc['lon']}  {doc['address'] or ''}")
    click.echo(f"  municipality:  {doc['municipality'] or 'unknown'}")
    click.echo(f"  where exactly: {doc['location_hint'] or 'not given'}")
    hours = doc["opening_hours"] or "unknown"
    click.echo(f"  access:        {doc['access']}, opening hours {hours}")
    click.echo(f"  pads expiry:   {doc['pads_expiry'] or 'unknown'}")
    click.echo(f"  battery expiry:{' ' + (doc['battery_expiry'] or 'unknown')}")
    click.echo(f"  manager:       {doc['manager'] or 'unknown'}")
    click.echo(f"  cabinet agent: {doc['device_id'] or 'none'}")
    declaration = doc["declaration"]
    if declaration:
        click.echo(f"  declared ready {declaration['declared_at']} by {declaration['declared_by']}"
                   f", valid until {declaration['valid_until']}")
    else:
        click.echo("  declared ready: never")


@click.command()
@click.argument("aed_id")
@click.option("--by", "declared_by", required=True, help="Who declares (the AED's manager).")
@click.option("--at", "at", help="When the AED was checked (RFC 3339); default now.")
@click.option("--note", help="Free text, e.g. 'pads replaced'.")
@pass_context
def declare(ctx: Context, aed_id: str, declared_by: str, at: str | None,
            note: str | None) -> None:
    """Record a manager's declaration that AED_ID is ready for deployment."""
    now = parse_time(None, ctx.settings)
    declared_at = parse_time(at, ctx.settings) if at else now
    record_declaration(ctx.engine, aed_id, declared_by, declared_at, now, note,
                       actor=ctx.actor)
    with Session(ctx.engine) as session:
        status = aed_status(session, ctx.settings, aed_id, now)
    click.echo(f"declaration recorded for {aed_id}; readiness now {status.readiness.state.value}"
               + (f" ({', '.join(status.readiness.reasons)})" if status.readiness.reasons else ""),
               err=True)
