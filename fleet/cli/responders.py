"""`aedfleet responders`: the citizen responder registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from fleet.cli import Context, pass_context, progress_bar


@click.group()
def responders() -> None:
    """Citizen responders: import, list, show, confirm."""


@responders.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@pass_context
def import_command(ctx: Context, file: Path, as_json: bool) -> None:
    """Import responders from a CSV (columns in docs/alarm.md); re-importing updates.

    Every rejected row is reported with its line and reason; the good rows are stored.
    """
    from alarm_core.registry import import_responders, read_responder_csv

    rows, bad = read_responder_csv(file)
    with progress_bar(len(rows), f"importing {file.name}") as bar:
        # Dates are checked against the local calendar (a certificate dated today is valid).
        local_now = datetime.now(ZoneInfo(ctx.settings.timezone))
        report = import_responders(ctx.engine, file, local_now, ctx.settings.dispatch,
                                   progress=bar)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line, reason in report.rejected:
            click.echo(f"{file.name}: line {line} rejected: {reason}", err=True)
        click.echo(f"{file.name}: {report.rows} rows, {report.created} new, "
                   f"{report.updated} updated, {len(report.rejected)} rejected")
    if report.created + report.updated == 0:
        raise click.ClickException(f"nothing imported from {file}")


@responders.command("list")
@click.option("--inactive", is_flag=True, help="Only profiles flagged inactive.")
@click.option("--certificate-expiring", is_flag=True,
              help="Only those whose certificate runs out within the reminder window.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_command(ctx: Context, inactive: bool, certificate_expiring: bool,
                 as_json: bool) -> None:
    """Responders with whether they can be alerted now, and why not."""
    from alarm_core.loading import local, responder_facts
    from alarm_core.models import Responder
    from alarm_core.responders import (
        NOT_ALERTABLE,
        certificate_reminder_due,
        certificate_valid_until,
        not_alertable_reason,
    )

    now = datetime.now(UTC)
    policy = ctx.settings.dispatch
    here = local(ctx.settings, now)
    with Session(ctx.engine) as session:
        query = sa_select(Responder).order_by(col(Responder.id))
        if inactive:
            query = query.where(col(Responder.active).is_(False))
        found = []
        for responder in session.execute(query).scalars():
            if certificate_expiring and not certificate_reminder_due(
                    responder.certificate_date, here.date(), policy):
                continue
            reason = not_alertable_reason(responder_facts(responder), here, policy)
            found.append({
                "id": responder.id, "name": responder.name, "training": responder.training,
                "channel": responder.channel, "active": responder.active,
                "certificate_valid_until": None if responder.certificate_date is None else
                certificate_valid_until(responder.certificate_date, policy).isoformat(),
                "alertable": reason is None, "not_alertable": reason,
                "ignored_in_row": responder.ignored_in_row})
        total = session.execute(sa_select(func.count()).select_from(Responder)).scalar_one()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for item in found:
        why = "alertable" if item["alertable"] else NOT_ALERTABLE[str(item["not_alertable"])]
        click.echo(f"{item['id']:<20} {item['training']:<12} {item['channel']:<4} {why}")
    click.echo(f"{len(found)} shown of {total} responders", err=True)


@responders.command("confirm")
@click.argument("responder_id")
@pass_context
def confirm_command(ctx: Context, responder_id: str) -> None:
    """A responder flagged inactive confirms their profile: alerted again."""
    from alarm_core.registry import confirm_profile

    confirm_profile(ctx.engine, responder_id, datetime.now(UTC))
    click.echo(f"{responder_id} is active again")


@responders.command("news")
@click.option("--region", required=True, help="The region's code (aedfleet regions list).")
@click.option("--subject", required=True)
@click.option("--body", required=True)
@click.option("--language", default=None, help="One of the region's languages (default: its "
              "first).")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Shown for this many days (default: until removed).")
@pass_context
def news_command(ctx: Context, region: str, subject: str, body: str, language: str | None,
                 days: int | None) -> None:
    """Send news to every responder of a region: their inbox, and once to their apps."""
    from datetime import timedelta

    from alarm_core.errors import Refused
    from alarm_core.inbox import post_news
    from fleet.db import session_scope

    now = datetime.now(UTC)
    try:
        with session_scope(ctx.engine) as session:
            message = post_news(session, region, subject, body, ctx.actor, now,
                                None if days is None else now + timedelta(days=days), language)
    except Refused as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"news {message.id} sent to the responders of {region}")
