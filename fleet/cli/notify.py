"""`aedfleet notify`: e-mail the manager notices waiting in the outbox."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import click
from sqlalchemy.exc import OperationalError

from fleet.cli import Context, pass_context
from fleet.mailer import make_mailer
from fleet.notifications import deliver_pending
from fleet.registry import dumps

logger = logging.getLogger(__name__)


@click.command()
@click.option("--once", is_flag=True, help="One delivery round, then exit.")
@click.option("--interval", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds between rounds when running until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True,
              help="With --once: the round's report as one JSON object on stdout.")
@pass_context
def notify(ctx: Context, once: bool, interval: float, as_json: bool) -> None:
    """Deliver pending manager notices by e-mail (once, or every INTERVAL seconds)."""
    if as_json and not once:
        raise click.UsageError("--json needs --once")
    mailer = make_mailer(ctx.settings)
    if mailer is None:
        raise click.ClickException(
            "no SMTP server configured: set smtp_url in the [notify] table of the configuration "
            "or AEDFLEET_NOTIFY__SMTP_URL (smtp://host:port); until then notices stay in the "
            "outbox")
    engine = ctx.engine
    if once:
        report = deliver_pending(engine, mailer, datetime.now(UTC), ctx.settings)
        if as_json:
            click.echo(dumps(report.to_json()))
        click.echo(f"notify: {report.summary()}", err=True)
        return
    try:
        while True:
            try:
                report = deliver_pending(engine, mailer, datetime.now(UTC), ctx.settings)
                click.echo(f"notify: {report.summary()}", err=True)
            except OperationalError as exc:  # database unreachable: try again next round
                logger.warning("notification round failed: %s", exc)
                click.echo(f"notify: round failed, database unreachable: {exc.orig}", err=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("notify: stopped", err=True)
