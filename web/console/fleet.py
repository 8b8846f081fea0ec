"""Fleet health for AED managers and administrators: overview, AED detail, declare, edit."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import ValidationError
from sqlmodel import Session
from werkzeug.wrappers import Response

from fleet.access import ACCESS_REASONS, opening_hours_error
from fleet.accounts import Role
from fleet.editing import (
    AedNotSaved,
    aed_version,
    cabinet_holder,
    cabinet_of,
    declare_ready,
    save_aed,
)
from fleet.errors import FleetError
from fleet.health import (
    STATE_WORDS,
    STATES,
    declarations,
    device_events,
    expiry_timeline,
    fleet_rows,
    manager_names,
    recorded_states,
    state_counts,
    state_counts_by_region,
    transitions,
)
from fleet.history import HistoryUnavailable, telemetry_history
from fleet.models import AedCreate, Manager
from fleet.readiness import describe_reason
from fleet.region_store import region_rows
from fleet.registry import aed_status
from web.authz import (
    AED_DETAIL_ROLES,
    FLEET_ROLES,
    account,
    aed_for,
    assigned_manager,
    fleet_scope,
    roles_required,
)
from web.charts import line_chart
from web.context import engine, now, settings, whole_number
from web.i18n import reader, tick_label

bp = Blueprint("fleet", __name__, url_prefix="/fleet")
PAGE_SIZE = 50


@bp.get("")
@roles_required(*FLEET_ROLES)
def overview() -> str:
    """Counts by state, the AEDs that need action first, and the expiry timeline (a
    municipality sees the counts and the timeline of its area, not single AEDs)."""
    who, moment = account(), now()
    scope = fleet_scope(who)
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        abort(400, f"unknown state {state!r}")
    page = whole_number("page", 1, 1, 100_000)
    local_today = moment.astimezone(ZoneInfo(reader().timezone)).date()
    listed = who.role in AED_DETAIL_ROLES
    region = request.args.get("region") or None
    with Session(engine()) as session:
        checked_at, trusted = recorded_states(session, moment, settings())
        # The platform's administrators see the regions side by side and may narrow to one.
        regions = region_rows(session) if who.role == Role.ADMIN and who.region is None \
            else []
        if region is not None:
            if region not in {r.code for r in regions}:
                abort(404)
            scope = replace(scope, region=region)
        counted = state_counts_by_region(session, trusted) if regions else {}
        by_region = [(r, counted.get(r.code, dict.fromkeys(STATES, 0))) for r in regions]
        counts = state_counts(session, scope, trusted)
        rows = fleet_rows(session, scope, state=state, limit=PAGE_SIZE + 1,
                          offset=(page - 1) * PAGE_SIZE, trusted=trusted) if listed else []
        timeline = expiry_timeline(session, scope, local_today)
    return render_template(
        "fleet.html", counts=counts, rows=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE,
        page=page, state=state, state_words=STATE_WORDS, timeline=timeline,
        total=sum(counts.values()), listed=listed, trusted=trusted, checked_at=checked_at,
        region=region, by_region=by_region)


@bp.get("/aeds/<aed_id>")
@roles_required(*AED_DETAIL_ROLES)
def aed_detail(aed_id: str) -> str:
    """Live readiness with reasons, telemetry chart, event log, transitions, declarations."""
    who, moment = account(), now()
    with Session(engine()) as session:
        aed_for(who, session, aed_id)
        status = aed_status(session, settings(), aed_id, moment)
        history = transitions(session, aed_id)
        events = device_events(session, status.device_id)
        declared = declarations(session, aed_id)
    charts, history_note = _charts(status.device_id, moment)
    return render_template(
        "aed.html", status=status, aed=status.aed, transitions=history, events=events,
        declarations=declared, charts=charts, history_note=history_note,
        describe=_describe, access_words=ACCESS_REASONS[status.access.reason],
        state_words=STATE_WORDS)


def _describe(code: str) -> str:
    """A reason code in the reader's words."""
    return _(describe_reason(code))


def _charts(device_id: str | None, moment: datetime) -> tuple[list[Any], str | None]:
    if device_id is None:
        return [], _("No cabinet agent reports on this AED: there is no telemetry history.")
    try:
        found = telemetry_history(settings(), device_id, moment)
    except HistoryUnavailable as exc:
        return [], str(exc)
    if found is None:
        return [], _("No time-series store is configured: only the latest report is shown.")
    tz = ZoneInfo(reader().timezone)
    start = moment - timedelta(days=7)
    specs = {"battery_pct": (_("Battery charge"), "%", 0.0, 100.0),
             "temperature_c": (_("Cabinet temperature"), "°C", None, None),
             "door_open": (_("Door open (1) or closed (0)"), "", 0.0, 1.0)}
    charts = [line_chart(specs[s.field][0], specs[s.field][1], s.points, specs[s.field][2],
                         specs[s.field][3], start, moment, tz, tick_label)
              for s in found]
    return charts, None if any(c.points for c in charts) else _("No telemetry in the last 7 days.")


@bp.post("/aeds/<aed_id>/declare")
@roles_required(*AED_DETAIL_ROLES)
def declare(aed_id: str) -> Response:
    """The manager states the AED was checked and is ready for deployment."""
    who, moment = account(), now()
    with Session(engine()) as session:
        aed_for(who, session, aed_id)
    if request.form.get("checked") != "yes":
        flash(_("Tick the box to confirm you checked the AED, its pads and battery."), "error")
        return redirect(url_for("fleet.aed_detail", aed_id=aed_id), code=303)
    note = (request.form.get("note") or "").strip()[:500] or None
    try:
        declare_ready(engine(), settings(), aed_id, who.username, moment, moment, note)
    except FleetError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Declared ready for deployment."), "success")
    return redirect(url_for("fleet.aed_detail", aed_id=aed_id), code=303)


FIELD_LABELS = {
    "id": lazy_gettext("AED id"), "name": lazy_gettext("Name"),
    "address": lazy_gettext("Address"), "lat": lazy_gettext("Latitude"),
    "lon": lazy_gettext("Longitude"), "location_hint": lazy_gettext("Where exactly"),
    "access": lazy_gettext("Access"), "indoor": lazy_gettext("Indoors"),
    "opening_hours": lazy_gettext("Opening hours"), "pads_expiry": lazy_gettext("Pads expire"),
    "battery_expiry": lazy_gettext("Battery expires"),
    "serial": lazy_gettext("Serial number"), "make": lazy_gettext("Make"),
    "model": lazy_gettext("Model"), "device_id": lazy_gettext("Connected cabinet id"),
    "manager": lazy_gettext("Manager")}
FIELDS = ("name", "address", "location_hint", "opening_hours", "serial", "make", "model",
          "pads_expiry", "battery_expiry", "device_id")


@bp.route("/aeds/new", methods=["GET", "POST"])
@roles_required(*AED_DETAIL_ROLES)
def register() -> Any:
    return _edit(None)


@bp.route("/aeds/<aed_id>/edit", methods=["GET", "POST"])
@roles_required(*AED_DETAIL_ROLES)
def edit(aed_id: str) -> Any:
    return _edit(aed_id)


def _edit(aed_id: str | None) -> Any:
    who = account()
    with Session(engine()) as session:
        values: dict[str, Any] = {"access": "public", "indoor": ""}
        if aed_id is not None:
            aed = aed_for(who, session, aed_id)
            values = aed.model_dump()
            values["device_id"] = cabinet_of(engine(), aed_id) or ""
            owner = session.get(Manager, aed.manager_id) if aed.manager_id else None
            values["manager"] = owner.name if owner else ""
            for key in ("indoor", "out_of_service"):
                values[key] = {True: "yes", False: "no"}.get(values[key], "")
            values["version"] = aed_version(engine(), aed_id, str(current_app.secret_key)) or ""
        managers = manager_names(session) if who.role == Role.ADMIN else []
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {key: request.form.get(key, "").strip() for key in request.form}
        if aed_id is not None:
            values["id"] = aed_id
        record, errors = _validate(values, assigned_manager(who, values.get("manager")))
        if record is not None and record.device_id and who.role != Role.ADMIN:
            known, holder = cabinet_holder(engine(), record.device_id)
            if known and holder != record.id:
                # A known cabinet's history belongs to whoever it served: an admin links it.
                errors["device_id"] = _("this cabinet is registered already: ask an "
                                        "administrator to link it")
                record = None
        if record is not None:
            try:
                save_aed(engine(), record, settings(), now(), who.username, new=aed_id is None,
                         version=values.get("version") if aed_id is not None else None,
                         version_key=str(current_app.secret_key), region=who.region)
            except AedNotSaved as exc:
                # A cabinet's reason names the AED holding it: only a platform admin sees it.
                errors[exc.field] = (str(exc) if exc.field != "device_id"
                                     or (who.role == Role.ADMIN and who.region is None)
                                     else _("this cabinet is already linked to another AED"))
            else:
                flash(_("AED %(id)s saved.", id=record.id), "success")
                return redirect(url_for("fleet.aed_detail", aed_id=record.id), code=303)
    status = 422 if errors else 200
    return render_template("aed_form.html", values=values, errors=errors, aed_id=aed_id,
                           managers=managers, is_admin=who.role == Role.ADMIN,
                           fields=FIELD_LABELS if aed_id is None else
                           {k: v for k, v in FIELD_LABELS.items() if k != "id"}), status


def _validate(values: dict[str, Any], manager: str | None) -> tuple[AedCreate | None,
                                                                      dict[str, str]]:
    """The form as an AED record, or the problem with each field in words."""
    errors: dict[str, str] = {}
    raw: dict[str, Any] = {key: (values.get(key) or None) for key in FIELDS}
    raw.update(id=values.get("id", ""), lat=values.get("lat", ""), lon=values.get("lon", ""),
               access=values.get("access") or "public", manager=manager,
               indoor={"yes": True, "no": False}.get(values.get("indoor", "")),
               out_of_service=values.get("out_of_service") == "yes",
               municipality=None)  # found from the position by the municipality boundaries
    if raw["access"] not in ("public", "private"):
        errors["access"] = _("choose public or private")
    hours = raw["opening_hours"]
    if hours and (problem := opening_hours_error(hours)):
        errors["opening_hours"] = problem
    try:
        record = AedCreate.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(field, _words(field, error["msg"]))
        return None, errors
    return (None, errors) if errors else (record, errors)


def _words(field: str, message: str) -> str:
    if field == "id":
        return _("1 to 64 letters, digits, '-' or '_'")
    if field in ("lat", "lon"):
        return _("a decimal number of degrees (WGS84), e.g. 52.0907 and 5.1214")
    return message
