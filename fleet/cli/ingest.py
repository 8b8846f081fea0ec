"""`aedfleet ingest`: the telemetry ingest worker, and `aedfleet ingest sweep`."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from datetime import UTC, datetime

import click

from fleet.cli import Context, pass_context

logger = logging.getLogger(__name__)


@click.group(invoke_without_command=True)
@click.option("--client-id", help="Stable MQTT client id of this worker "
              "(default: [ingest] client_id, else aedfleet-ingest-<host name>).")
@click.option("--metrics", "metrics_http", help="host:port to serve Prometheus /metrics on "
              "(default: [ingest] metrics_http; empty: off).")
@click.pass_context
def ingest(click_ctx: click.Context, client_id: str | None, metrics_http: str | None) -> None:
    """Apply what cabinets publish: state, events, readiness, time series, acks.

    Runs until SIGTERM or Ctrl-C. Start several (each with its own client id) to share the
    load through the broker's shared subscription.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Context = click_ctx.obj
    settings = ctx.settings
    if not settings.mqtt_url:
        raise click.ClickException("no broker configured: set mqtt_url (AEDFLEET_MQTT_URL)")
    from fleet.ingest.metrics import IngestMetrics
    from fleet.ingest.worker import IngestWorker
    from fleet.timeseries import make_sink

    engine = ctx.engine
    metrics = IngestMetrics()
    metrics_http = settings.ingest.metrics_http if metrics_http is None else metrics_http
    if metrics_http:
        metrics.serve(metrics_http)
        click.echo(f"metrics on http://{metrics_http}/metrics", err=True)
    from fleet.mailer import make_mailer

    mailer = make_mailer(settings)
    sink = make_sink(settings)
    try:
        worker = IngestWorker(settings, engine, sink=sink, metrics=metrics, client_id=client_id,
                              mailer=mailer)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"ingest worker {worker.client_id} subscribing to "
                   f"{', '.join(worker.topics())}", err=True)
        await worker.run(stop)

    try:
        asyncio.run(main())
    finally:
        sink.close()
    click.echo(f"ingest worker stopped after {worker.stats.batches} batches: "
               f"{int(metrics.value('aedfleet_ingest_received_total'))} received", err=True)


@ingest.command("sweep")
@click.option("--json", "as_json", is_flag=True, help="The sweep's figures as JSON on stdout.")
@pass_context
def sweep_once(ctx: Context, as_json: bool) -> None:
    """Re-evaluate every AED once now (stale cabinets, expiries) and prune old ingest data."""
    from fleet.ingest.sweep import sweep

    report = sweep(ctx.engine, ctx.settings, datetime.now(UTC))
    figures = {"transitions": report.transitions, "notices": report.notices,
               "ledger_pruned": report.ledger_pruned,
               "dead_letters_pruned": report.dead_letters_pruned}
    if as_json:
        click.echo(json.dumps(figures))
    else:
        click.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in figures.items()))


@ingest.command("dead-letters")
@click.option("--reason", help="Only this rejection reason (e.g. out_of_range, unknown_device).")
@click.option("--device", help="Only messages on this device's topics.")
@click.option("--limit", default=50, show_default=True, help="Newest first, at most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
@pass_context
def dead_letters(ctx: Context, reason: str | None, device: str | None, limit: int,
                 as_json: bool) -> None:
    """Messages the ingest rejected, with their reason: counts by reason, then the newest."""
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from fleet.models import DeadLetter

    with Session(ctx.engine) as session:
        counts = session.exec(select(DeadLetter.reason, func.count())
                              .group_by(col(DeadLetter.reason))).all()
        query = select(DeadLetter).order_by(col(DeadLetter.id).desc()).limit(limit)
        if reason:
            query = query.where(DeadLetter.reason == reason)
        if device:
            query = query.where(DeadLetter.device_id == device)
        letters = session.exec(query).all()
    documents = [{
        "id": letter.id, "received_at": letter.received_at.isoformat().replace("+00:00", "Z"),
        "topic": letter.topic, "device_id": letter.device_id, "reason": letter.reason,
        "detail": letter.detail, "payload_size": letter.payload_size,
        "payload": letter.payload[:300].decode("utf-8", "replace")} for letter in letters]
    if as_json:
        click.echo(json.dumps(documents, ensure_ascii=False, indent=2))
        return
    click.echo("dead letters by reason: " + (", ".join(
        f"{code} {n}" for code, n in sorted(counts, key=lambda c: -c[1])) or "none"))
    for doc in documents:
        click.echo(f"{doc['received_at']} {doc['topic']} {doc['reason']}: {doc['detail']}")
