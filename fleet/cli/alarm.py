"""`aedfleet alarm` (the service), `dispatch` (dry run), `incidents`, `tokens`, `aftercare`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import click
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.policy import INCIDENT_TYPES
from fleet.cli import Context, parse_time, pass_context, register_export


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not host:port")
    return host, int(port)


@click.command()
@click.option("--http", "http", default=None, help="host:port of the HTTP API "
              "(default: [alarm] http).")
@pass_context
def alarm(ctx: Context, http: str | None) -> None:
    """Run the alarm core: incident intake over HTTP, alerts and answers over MQTT.

    Several nodes on one database run active/standby: one is active, the others answer 503
    (`standby`) until the active one is gone, and the first to notice takes over within
    about a second.
    """
    import waitress

    from alarm_core.leader import CHECK_TIMEOUT_S, leadership_for
    from alarm_core.metrics import AlarmMetrics
    from alarm_core.runner import AlarmRunner
    from alarm_core.service import AlarmCore
    from web import create_app

    logging.getLogger("alarm_core").setLevel(logging.INFO)
    settings = ctx.settings
    core = AlarmCore(ctx.engine, settings)
    metrics = AlarmMetrics()
    try:
        runner = AlarmRunner(core, settings, metrics)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    leadership = leadership_for(ctx.engine)
    active = threading.Event()
    host, port = _host_port(http or settings.alarm.http)
    app = create_app(ctx.engine, alarm_core=core, metrics=metrics, active=active.is_set,
                     ready=lambda: active.is_set() and runner.started.is_set())
    server = waitress.create_server(app, host=host, port=port, threads=8)
    web = threading.Thread(target=server.run, name="alarm-http", daemon=True)
    web.start()
    address = f"http://{host}:{server.effective_port}"  # type: ignore[union-attr]

    def loaded() -> tuple[int, int]:
        counts = core.load(datetime.now(UTC))
        # The pools and the registry make a large, long-lived heap: leave it out of the
        # garbage collector's full passes, which would otherwise pause an intake for 100 ms.
        gc.collect()
        gc.freeze()
        return counts

    async def lead(stop: asyncio.Event) -> bool:
        """Wait to be the active node, keeping the pools current meanwhile so that a
        takeover needs one refresh, not a full load; False when stopped first."""
        announced = False
        while not stop.is_set():
            if await asyncio.to_thread(leadership.try_acquire):
                return True
            if not announced:
                click.echo(f"alarm core standby (another node is active); API on {address}",
                           err=True)
                announced = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            try:
                await asyncio.to_thread(core.refresh, datetime.now(UTC))
            except Exception:  # the next round tries again
                logging.getLogger("alarm_core").exception("standby: refresh failed")
        return False

    # The lock check has a thread of its own: busy shared threads (a slow SMS gateway, a
    # long refresh) must never make a healthy active node believe it lost its lock.
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadership")

    async def watch(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                held = await asyncio.wait_for(
                    loop.run_in_executor(checker, leadership.still_held), CHECK_TIMEOUT_S)
            except TimeoutError:
                held = False
            if not held:
                # Fenced: stop at once. A clean shutdown could hang on threads blocked on
                # the lost database; the service manager starts this node again as standby.
                active.clear()
                click.echo("alarm core stopped: it can no longer confirm that it is the "
                           "active node (database connection lost)", err=True)
                sys.stderr.flush()
                os._exit(3)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        responders, aeds = await asyncio.to_thread(loaded)
        if not await lead(stop):
            return
        await asyncio.to_thread(core.refresh, datetime.now(UTC))
        active.set()
        click.echo(f"alarm core active: {responders} responders, {aeds} AEDs; API on "
                   f"{address}", err=True)
        watcher = asyncio.create_task(watch(stop))
        try:
            await runner.run(stop)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        active.clear()
        server.close()
        leadership.release()
    click.echo("alarm core stopped", err=True)


@click.command()
@click.option("--lat", type=float, required=True)
@click.option("--lon", type=float, required=True)
@click.option("--at", "at", default=None, help="Time of the call (default now).")
@click.option("--incident-type", type=click.Choice(list(INCIDENT_TYPES)), default=None,
              help="What the call is (default cardiac_arrest).")
@click.option("--infant", is_flag=True,
              help="The victim is under one year (only where the region alerts for infants).")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def dispatch(ctx: Context, lat: float, lon: float, at: str | None, incident_type: str | None,
             infant: bool, as_json: bool) -> None:
    """Dry run: print the plan for a cardiac arrest here, without alerting anyone."""
    from alarm_core.service import AlarmCore

    moment = parse_time(at, ctx.settings)
    core = AlarmCore(ctx.engine, ctx.settings)
    core.load(moment)
    region = core.check_location(lat, lon)
    if infant and not region.dispatch.paediatric_under_one:
        raise click.ClickException(f"{region.code} raises no citizen alarm for a victim "
                                   "under one year")
    plan = core.plan(lat, lon, moment, incident_type, infant)
    if as_json:
        click.echo(json.dumps(plan.to_json(), indent=2))
        return
    document = plan.to_json()
    counts = document["counts"]
    click.echo(f"cardiac arrest at {lat:.5f},{lon:.5f}, {document['at']}: "
               f"{counts['alerted']} responders within {plan.radius_m:g} m "
               f"({counts['cpr']} CPR, {counts['fetch_aed']} via an AED), {counts['aeds']} AEDs")
    for aed in plan.aeds:
        click.echo(f"  AED {aed.id}: {aed.distance_m:.0f} m from the victim, {aed.readiness}, "
                   f"fetched by {aed.fetcher_id} (on scene in {aed.eta_s:.0f} s)")
    for aed_id, reason in plan.skipped_aeds.items():
        click.echo(f"  AED {aed_id} passed over: {reason}")
    for a in plan.responders[:20]:
        via = f" via {a.aed_id}" if a.aed_id else ""
        click.echo(f"  {a.responder_id:<16} {a.role:<9}{via} {a.distance_m:.0f} m, "
                   f"{a.eta_s:.0f} s ({', '.join(a.reasons)})")
    if len(plan.responders) > 20:
        click.echo(f"  ... and {len(plan.responders) - 20} more")
    for label, value in (("first CPR", plan.first_cpr_s), ("first AED", plan.first_aed_s)):
        click.echo(f"expected {label}: " + ("-" if value is None else f"{value:.0f} s after "
                                            "the alert"))


@click.group()
def incidents() -> None:
    """Incidents: list, show, close, and the anonymised export for the register."""


@incidents.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only incidents not yet closed.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def incidents_list(ctx: Context, only_open: bool, as_json: bool) -> None:
    from alarm_core.models import Incident
    from alarm_core.reports import incident_document

    with Session(ctx.engine) as session:
        query = sa_select(Incident).order_by(col(Incident.received_at).desc()).limit(500)
        if only_open:
            query = query.where(col(Incident.state) != "closed")
        found = [incident_document(session, i, ctx.settings.dispatch, with_plan=False)
                 for i in session.execute(query).scalars()]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for doc in found:
        counts = doc["counts"]
        click.echo(f"{doc['id']}  {doc['received_at']}  {doc['state']:<13} {doc['outcome']:<13}"
                   f" alerted {counts['alerted']}, accepted {counts['accepted']}")


@incidents.command("show")
@click.argument("incident_id")
@pass_context
def incidents_show(ctx: Context, incident_id: str) -> None:
    from alarm_core.models import Incident
    from alarm_core.reports import incident_document

    with Session(ctx.engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise click.ClickException(f"no incident {incident_id}")
        click.echo(json.dumps(incident_document(session, incident, ctx.settings.dispatch),
                              indent=2))


@incidents.command("close")
@click.argument("incident_id")
@click.option("--reason", default="closed_by_operator")
@pass_context
def incidents_close(ctx: Context, incident_id: str, reason: str) -> None:
    """Close an incident (responders stand down, questionnaires go out via the alarm core)."""
    from alarm_core.service import AlarmCore

    core = AlarmCore(ctx.engine, ctx.settings)
    incident = core.close(incident_id, reason, datetime.now(UTC))
    click.echo(f"{incident.id} closed ({incident.close_reason})")


@click.group()
def tokens() -> None:
    """API tokens of machine callers such as the 112 centre."""


@tokens.command("create")
@click.argument("caller")
@click.option("--scope", type=click.Choice(["dispatch", "responders", "coverage", "fleet"]),
              default="dispatch", show_default=True, help="dispatch: a 112 centre "
              "(incidents); responders: a responder-app backend (answers); coverage: a "
              "map that reads coverage.")
@click.option("--region", help="A dispatch centre's region (see `aedfleet regions list`): "
              "its calls must lie in that region.")
@pass_context
def tokens_create(ctx: Context, caller: str, scope: str, region: str | None) -> None:
    """Print a new token for CALLER (shown once; only its digest is stored)."""
    from web.auth import create_token

    try:
        click.echo(create_token(ctx.engine, caller, datetime.now(UTC), scope, region))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@tokens.command("revoke")
@click.argument("caller")
@pass_context
def tokens_revoke(ctx: Context, caller: str) -> None:
    """Revoke every token of CALLER."""
    from web.auth import revoke_tokens

    click.echo(f"{revoke_tokens(ctx.engine, caller, datetime.now(UTC))} tokens revoked")


@click.group()
def aftercare() -> None:
    """Aftercare requests of responders after a call (for the care team)."""


@aftercare.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include tasks already done.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def aftercare_list(ctx: Context, show_all: bool, as_json: bool) -> None:
    """Open aftercare tasks, the most urgent first."""
    from alarm_core.models import AftercareTask, Responder
    from alarm_core.wire import rfc3339

    now = datetime.now(UTC)
    with Session(ctx.engine) as session:
        query = (sa_select(AftercareTask, Responder)
                 .join(Responder, col(Responder.id) == AftercareTask.responder_id)
                 .order_by(col(AftercareTask.due_at)))
        if not show_all:
            query = query.where(col(AftercareTask.done_at).is_(None))
        found = [{"id": task.id, "incident_id": task.incident_id, "responder_id": who.id,
                  "name": who.name, "phone": who.phone, "email": who.email,
                  "requested_at": rfc3339(task.requested_at), "due_at": rfc3339(task.due_at),
                  "overdue": task.done_at is None and task.due_at < now,
                  "done_at": None if task.done_at is None else rfc3339(task.done_at)}
                 for task, who in session.execute(query)]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for item in found:
        flag = "OVERDUE " if item["overdue"] else ""
        click.echo(f"#{item['id']} {flag}due {item['due_at']}: call {item['name']} "
                   f"({item['phone'] or item['email'] or 'no contact'}) about "
                   f"{item['incident_id']}")


@aftercare.command("done")
@click.argument("task_id", type=int)
@click.option("--note", default=None)
@pass_context
def aftercare_done(ctx: Context, task_id: int, note: str | None) -> None:
    from alarm_core.models import AftercareTask
    from fleet.db import session_scope

    with session_scope(ctx.engine) as session:
        task = session.get(AftercareTask, task_id)
        if task is None:
            raise click.ClickException(f"no aftercare task {task_id}")
        task.done_at, task.note = datetime.now(UTC), note
        session.add(task)
    click.echo(f"aftercare task {task_id} done")


incidents.add_command(register_export.export)
