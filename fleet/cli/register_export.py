"""`aedfleet incidents export --anonymised`: incidents for the national resuscitation register
(a command of the `incidents` group of `fleet.cli.alarm`)."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from fleet.cli import Context, pass_context


@click.command("export")
@click.option("--anonymised", is_flag=True, help="Required: the export carries no personal "
              "data (the only export there is).")
@click.option("--since", "since", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day of calls (local date), e.g. 2026-11-01.")
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day of calls, inclusive (default: today).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CSV file to write ('-': stdout).")
@pass_context
def export(ctx: Context, anonymised: bool, since: datetime, until: datetime | None,
           out: Path) -> None:
    """The anonymised CSV for the national resuscitation register.

    One row per incident called in from --since to --until: a pseudonymous number, date and
    hour, PC4 area, municipality, outcome, responders and AEDs, times to first CPR and first
    AED (expected and reported), questionnaire counts. No names, phone numbers, addresses,
    coordinates, responder ids or free text."""
    from fleet.register_export import register_rows, write_csv

    if not anonymised:
        raise click.UsageError("only the anonymised export exists: add --anonymised")
    tz = ZoneInfo(ctx.settings.timezone)
    last = until.date() if until else datetime.now(tz).date()
    first: date = since.date()
    if last < first:
        raise click.BadParameter("--until is before --since")
    rows = register_rows(ctx.engine, ctx.settings, first, last)
    if str(out) == "-":
        count = write_csv(rows, sys.stdout, tz)
    else:
        partial = out.with_name(out.name + ".partial")  # no half file under the name asked
        with partial.open("w", encoding="utf-8", newline="") as handle:
            count = write_csv(rows, handle, tz)
        partial.replace(out)
    click.echo(f"{count} incidents from {first} to {last} exported"
               + ("" if str(out) == "-" else f" to {out}"), err=True)
