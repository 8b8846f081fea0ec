"""Incident intake for the 112 centre, responders' answers, and questionnaires."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.errors import NotFound, Refused
from alarm_core.metrics import AlarmMetrics
from alarm_core.models import Incident
from alarm_core.reports import incident_document
from alarm_core.service import AlarmCore
from alarm_core.wire import parse_answer, parse_incident, parse_position, rfc3339
from device_agents.payloads import load_json
from web.auth import token_required
from web.context import served

bp = Blueprint("incidents", __name__, url_prefix="/api/v1")


def _core() -> AlarmCore:
    return served("ALARM_CORE", "alarm_core_unavailable",  # type: ignore[no-any-return]
                  "this server does not run the alarm core")


def _metrics() -> AlarmMetrics:
    return current_app.config["ALARM_METRICS"]  # type: ignore[no-any-return]


def _body() -> Any:
    """The JSON body, decoded as strictly as responder apps' MQTT payloads (no unpaired
    surrogates, which no database can store)."""
    try:
        body = load_json(request.get_data()) if request.is_json else None
    except ValueError:
        body = None
    if body is None:
        raise Refused("invalid_body", "send a JSON object (Content-Type: application/json)",
                      status=400)
    return body


def _now() -> datetime:
    clock = current_app.config.get("CLOCK")
    return clock() if clock is not None else datetime.now(UTC)


@bp.post("/incidents")
@token_required("dispatch")
def create_incident() -> tuple[Response, int]:
    """A cardiac-arrest call: 201 with the incident when new, 200 when the reference is known."""
    core = _core()
    started = time.perf_counter()
    try:
        parsed = parse_incident(_body(), core.known_exclusions())
        result = core.intake(g.caller, parsed, _now(), g.caller_region)
    except Refused as exc:
        _metrics().rejected.labels(exc.code).inc()
        raise
    _metrics().intake_seconds.observe(time.perf_counter() - started)
    if result.created:
        _metrics().incidents.labels(result.incident.outcome).inc()
    with Session(core.engine) as session:
        incident = session.get(Incident, result.incident.id)
        assert incident is not None
        document = incident_document(session, incident, core.policy)
    return jsonify(document), 201 if result.created else 200


@bp.get("/incidents")
@token_required("dispatch")
def list_incidents() -> Response:
    core = _core()
    state = request.args.get("state")
    with Session(core.engine) as session:
        query = sa_select(Incident)
        if g.account is None:  # a 112 centre sees its own incidents; a dispatcher all
            query = query.where(col(Incident.caller) == g.caller)
        elif g.account.region is not None:  # (of their region)
            query = query.where(col(Incident.region) == g.account.region)
        if state:
            query = query.where(col(Incident.state) == state)
        rows = session.execute(query.order_by(col(Incident.received_at).desc()).limit(200))
        return jsonify([incident_document(session, i, core.policy, with_plan=False)
                        for i in rows.scalars()])


def _own_incident(session: Session, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id)
    account = g.get("account")
    if incident is None or (account is None and incident.caller != g.caller) or (
            account is not None and account.region not in (None, incident.region)):
        raise NotFound("unknown_incident", f"no incident {incident_id}")
    return incident


@bp.get("/incidents/<incident_id>")
@token_required("dispatch")
def show_incident(incident_id: str) -> Response:
    core = _core()
    with Session(core.engine) as session:
        return jsonify(incident_document(session, _own_incident(session, incident_id),
                                         core.policy))


@bp.post("/incidents/<incident_id>/close")
@token_required("dispatch")
def close_incident(incident_id: str) -> Response:
    """The dispatch centre's word that the citizen alarm is over."""
    core = _core()
    # No body closes with the default reason; a body must be a JSON object.
    body = _body() if request.get_data().strip() else {}
    if not isinstance(body, dict):
        raise Refused("invalid_body", "the body must be a JSON object", status=400)
    reason = body.get("reason", "closed_by_dispatch")
    if not isinstance(reason, str) or not 0 < len(reason) <= 40:
        raise Refused("invalid_field", "reason must be a string of at most 40 characters")
    with Session(core.engine) as session:
        _own_incident(session, incident_id)
    core.close(incident_id, reason, _now())
    with Session(core.engine) as session:
        return jsonify(incident_document(session, _own_incident(session, incident_id),
                                         core.policy))


@bp.post("/incidents/<incident_id>/responses")
@token_required("responders")
def respond(incident_id: str) -> Response:
    """A responder's accept or decline, relayed by a responder-app backend."""
    core = _core()
    body = _body()
    if not isinstance(body, dict):
        raise Refused("invalid_body", "the body must be a JSON object", status=400)
    responder_id = body.get("responder_id")
    if not isinstance(responder_id, str) or not 0 < len(responder_id) <= 64:
        raise Refused("invalid_field", "responder_id is required")
    answer = parse_answer({**body, "incident_id": incident_id})
    result = core.answer(incident_id, responder_id, answer.answer, _now())
    _metrics().answers.labels(answer.answer).inc()
    return jsonify({"incident_id": incident_id, "responder_id": responder_id,
                    "status": result.status, "role": result.role, "aed_id": result.aed_id,
                    "cancelled": len(result.cancelled)})


@bp.put("/responders/<responder_id>/position")
@token_required("responders")
def report_position(responder_id: str) -> Response:
    """A responder app's current position (relayed by its backend), for dispatch only."""
    report = parse_position(_body())
    _core().report_position(responder_id, report.lat, report.lon, report.ts, _now())
    return jsonify({"responder_id": responder_id, "lat": report.lat, "lon": report.lon,
                    "ts": rfc3339(report.ts)})


@bp.post("/questionnaires/<token>")
def answer_questionnaire(token: str) -> tuple[Response, int]:
    """A responder's answers after a call; the link's token is the authorisation."""
    body = _body()
    if not isinstance(body, dict):
        raise Refused("invalid_body", "the body must be a JSON object", status=400)
    answers = body.get("answers", {})
    aftercare = body.get("aftercare", False)
    if not isinstance(answers, dict) or len(str(answers)) > 8_000:
        raise Refused("invalid_field", "answers must be an object of at most 8,000 characters")
    if not isinstance(aftercare, bool):
        raise Refused("invalid_field", "aftercare must be true or false")
    questionnaire = _core().answer_questionnaire(token, answers, aftercare, _now())
    return jsonify({"incident_id": questionnaire.incident_id, "aftercare": aftercare}), 201
