"""Responder self-service: register, certificate, availability, questionnaires, aftercare."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user
from sqlmodel import Session
from werkzeug.wrappers import Response

from alarm_core.aftercall import (
    ARRIVED_AFTER_MINUTES,
    MAX_MINUTES,
    QUESTIONS,
    REMARKS,
    aftercare_of,
    answer_questionnaire,
    minutes_answer,
    questionnaires_of,
    questions_in,
)
from alarm_core.errors import Refused, RegistrationError
from alarm_core.models import Questionnaire, Responder, ResponderCreate
from alarm_core.registry import register_responder, register_with_account, validate_responder
from alarm_core.responders import certificate_valid_until
from fleet.accounts import (
    Role,
    password_problem,
)
from web.authz import account, own_responder, questionnaire_for, roles_required
from web.context import engine, now, settings
from web.i18n import LANGUAGE_NAMES, reader
from web.security import SessionUser

bp = Blueprint("responder", __name__, url_prefix="/responder")

PROFILE_FIELDS = ("name", "email", "phone", "date_of_birth", "certificate_date", "training",
                  "channel", "home_lat", "home_lon", "work_lat", "work_lon")


def competence_words() -> dict[str, str]:
    """The competences a responder may hold (`alarm_core.policy.COMPETENCES`), in the page's
    language."""
    return {"paediatric_life_support": _("paediatric life support (infants and children)"),
            "advanced_life_support": _("advanced life support"),
            "water_rescue": _("water rescue")}


def _form(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: request.form.get(name, "").strip() or None for name in names}


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    """A citizen registers as a responder and gets a responder log-in."""
    values: dict[str, Any] = {"training": "non_medical", "channel": "app"}
    problems: list[str] = []
    if request.method == "POST":
        values = _form(PROFILE_FIELDS + ("username",))
        password = request.form.get("password", "")
        # Age and certificate are judged by the local calendar day (the UTC date lags at night).
        moment = now().astimezone(ZoneInfo(settings().timezone))
        raw = {k: v for k, v in values.items() if k in PROFILE_FIELDS and v is not None}
        raw["id"] = "R-" + secrets.token_hex(6)
        try:
            validate_responder(raw, moment.date(), settings().dispatch)
        except RegistrationError as exc:
            problems += exc.problems
        if not values.get("username"):
            problems.append(_("choose a user name"))
        if problem := password_problem(password):
            problems.append(problem)
        if not problems:
            try:
                found = register_with_account(engine(), raw, values.get("username") or "",
                                              password, moment, settings().dispatch)
            except RegistrationError as exc:
                problems += exc.problems
            else:
                login_user(SessionUser(found))
                flash(_("Welcome: you are registered as a citizen responder."), "success")
                return redirect(url_for("responder.profile"), code=303)
    return render_template("responder_register.html", values=values,
                           problems=problems), 422 if problems else 200


@bp.get("")
@roles_required(Role.RESPONDER)
def profile() -> str:
    responder_id = own_responder(account())
    policy = settings().dispatch
    with Session(engine()) as session:
        responder = session.get(Responder, responder_id)
        questionnaires = questionnaires_of(session, responder_id)
        aftercare = aftercare_of(session, responder_id)
    valid_until = (certificate_valid_until(responder.certificate_date, policy)
                   if responder and responder.certificate_date else None)
    return render_template("responder_profile.html", responder=responder,
                           valid_until=valid_until, questionnaires=questionnaires,
                           aftercare=aftercare, moment=now(), competences=competence_words(),
                           held=set((responder.competences or "").split(",")) if responder
                           else set(), alert_languages=LANGUAGE_NAMES)


def _update(changes: dict[str, Any], done: str) -> Response:
    """Re-register the profile with these changes: every registration rule applies again."""
    responder_id = own_responder(account())
    with Session(engine()) as session:
        responder = session.get(Responder, responder_id)
        assert responder is not None
        raw = ResponderCreate.model_validate(responder.model_dump()).model_dump()
    raw.update(changes)
    try:
        register_responder(engine(), raw, now(), settings().dispatch)
    except RegistrationError as exc:
        flash(_("Not saved: %(problems)s", problems="; ".join(exc.problems)), "error")
    else:
        flash(done, "success")
    return redirect(url_for("responder.profile"), code=303)


@bp.post("/certificate")
@roles_required(Role.RESPONDER)
def certificate() -> Response:
    value = request.form.get("certificate_date", "")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        flash(_("%(value)s is not a date (YYYY-MM-DD).", value=repr(value)), "error")
        return redirect(url_for("responder.profile"), code=303)
    return _update({"certificate_date": day}, _("Certificate updated."))


@bp.post("/availability")
@roles_required(Role.RESPONDER)
def availability() -> Response:
    quiet_from, quiet_until = (request.form.get("quiet_from") or None,
                               request.form.get("quiet_until") or None)
    try:
        changes = {"available": request.form.get("available") == "yes",
                   "quiet_from": datetime.strptime(quiet_from, "%H:%M").time()
                   if quiet_from else None,
                   "quiet_until": datetime.strptime(quiet_until, "%H:%M").time()
                   if quiet_until else None}
    except ValueError:
        flash(_("Quiet hours are times like 23:00."), "error")
        return redirect(url_for("responder.profile"), code=303)
    return _update(changes, _("Availability saved."))


@bp.post("/skills")
@roles_required(Role.RESPONDER)
def skills() -> Response:
    """Training, competences and the language of alerts and messages."""
    language = request.form.get("language") or None
    if language is not None and language not in LANGUAGE_NAMES:
        flash(_("Choose one of the languages offered."), "error")
        return redirect(url_for("responder.profile"), code=303)
    return _update({"training": request.form.get("training", ""),
                    "competences": ",".join(request.form.getlist("competences")),
                    "language": language}, _("Training and language saved."))


@bp.route("/questionnaires/<token>", methods=["GET", "POST"])
@roles_required(Role.RESPONDER)
def questionnaire(token: str) -> Any:
    """The questions after a call, and the aftercare request, for the logged-in responder."""
    with Session(engine()) as session:
        found = questionnaire_for(account(), session, token)
    return _questionnaire(found, url_for("responder.profile"))


links = Blueprint("questionnaire_link", __name__)


@links.route("/questionnaire/<token>", methods=["GET", "POST"])
def questionnaire_link(token: str) -> Any:
    """The same, opened from the link sent after the call: the link's secret token is the
    authorisation (a responder need not have a console account), as for the API."""
    with Session(engine()) as session:
        found = session.get(Questionnaire, token)
    if found is None:
        abort(404)
    return _questionnaire(found, url_for("questionnaire_link.questionnaire_link", token=token))


def _questionnaire(found: Questionnaire, done_url: str) -> Any:
    problem = None
    if request.method == "POST":
        answers: dict[str, Any] = {key: request.form.get(key, "") for key, _, choices in QUESTIONS
                                   if request.form.get(key, "") in choices}
        minutes = minutes_answer(request.form.get(ARRIVED_AFTER_MINUTES, ""))
        if minutes is not None:
            answers[ARRIVED_AFTER_MINUTES] = minutes
        answers[REMARKS] = (request.form.get(REMARKS) or "")[:2000]
        wants_aftercare = request.form.get("aftercare") == "yes"
        try:
            answer_questionnaire(engine(), settings().dispatch, found.token, answers,
                                 wants_aftercare, now())
        except Refused as exc:
            problem = exc.message
        else:
            flash(_("Thank you. Your answers are saved: the aftercare team will contact you "
                    "within 24 hours.") if wants_aftercare
                  else _("Thank you. Your answers are saved."), "success")
            return redirect(done_url, code=303)
    return render_template("questionnaire.html", questionnaire=found,
                           questions=questions_in(reader().language),
                           max_minutes=MAX_MINUTES, problem=problem,
                           moment=now()), 409 if problem else 200
