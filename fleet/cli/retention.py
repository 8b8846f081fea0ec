"""`aedfleet retention run`: remove personal data kept long enough (for a timer or cron)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from fleet.cli import Context, pass_context


@click.group()
def retention() -> None:
    """Retention of personal data ([retention] settings; docs/data-map.md)."""


@retention.command("run")
@click.option("--json", "as_json", is_flag=True, help="The counts as one JSON object.")
@pass_context
def run(ctx: Context, as_json: bool) -> None:
    """Apply every retention rule once, now. Safe to run every few minutes, on several
    nodes at once."""
    from fleet.retention import RetentionFailed, run_retention

    failure = None
    try:
        counts = run_retention(ctx.engine, ctx.settings, datetime.now(UTC))
    except RetentionFailed as exc:
        counts, failure = exc.counts, exc
    if as_json:
        click.echo(json.dumps(counts))
    else:
        for kind, count in counts.items():
            click.echo(f"{kind.replace('_', ' ')}: {count}")
    if failure is not None:
        raise click.ClickException(str(failure))
