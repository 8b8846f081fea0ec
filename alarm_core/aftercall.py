"""After a call: a responder's questionnaire answers and their request for aftercare."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col

from alarm_core.errors import Conflict, NotFound
from alarm_core.models import AftercareTask, Questionnaire
from alarm_core.policy import DispatchPolicy
from fleet.db import session_scope
from fleet.i18n import N_, translator

QUESTIONS = (
    ("arrived", N_("Did you reach the patient?"), (N_("yes"), N_("no"),
                                                   N_("cancelled on the way"))),
    ("cpr", N_("Did you give chest compressions?"), (N_("yes"), N_("no"))),
    ("aed_used", N_("Was an AED attached?"), (N_("yes"), N_("no"), N_("I do not know"))),
)
"""The questionnaire's closed questions: key, question, the answers it takes. The answers are
stored as these English words whatever language the responder reads (`questions_in`)."""
ARRIVED_AFTER_MINUTES = "arrived_after_minutes"
"""An optional whole number: about how many minutes after their alert the responder reached
the patient (the register's reported times come from it)."""
MAX_MINUTES = 240
REMARKS = "remarks"
"""The one free-text answer; free text goes with the incident's personal data."""


def questions_in(locale: str | None) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The closed questions worded in `locale`: key, question, (answer as stored, its words)."""
    words = translator(locale).gettext
    return [(key, words(question), [(choice, words(choice)) for choice in choices])
            for key, question, choices in QUESTIONS]


def minutes_answer(value: object) -> int | None:
    """A minutes answer as a whole number from 0 to 240, else None (not answered)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}", value.strip()):
        value = int(value.strip())
    return value if isinstance(value, int) and 0 <= value <= MAX_MINUTES else None


def structured_answers(answers: dict[str, Any]) -> dict[str, Any]:
    """Only the closed answers (a listed question with one of its choices, the minutes): no
    free text, no key an app made up."""
    kept: dict[str, Any] = {key: answers[key] for key, _, choices in QUESTIONS
                            if answers.get(key) in choices}
    minutes = minutes_answer(answers.get(ARRIVED_AFTER_MINUTES))
    if minutes is not None:
        kept[ARRIVED_AFTER_MINUTES] = minutes
    return kept


def answer_questionnaire(engine: Any, policy: DispatchPolicy, token: str,
                         answers: dict[str, Any], aftercare: bool,
                         now: datetime) -> Questionnaire:
    """Store a responder's answers; asking for aftercare creates a task due within 24 h."""
    with session_scope(engine) as session:
        questionnaire = session.get(Questionnaire, token)
        if questionnaire is None:
            raise NotFound("unknown_questionnaire", "no questionnaire with this link")
        if now >= questionnaire.expires_at:
            raise Conflict("questionnaire_closed", "this questionnaire is closed")
        # One answer only, also when two arrive at once (a double click, two nodes): the
        # update takes the row only while it is still unanswered.
        taken = session.execute(
            update(Questionnaire)
            .where(col(Questionnaire.token) == token, col(Questionnaire.answered_at).is_(None))
            .values(answered_at=now, answers=json.dumps(answers)))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("already_answered", "this questionnaire was already answered")
        if aftercare:
            session.add(AftercareTask(
                incident_id=questionnaire.incident_id,
                responder_id=questionnaire.responder_id, requested_at=now,
                due_at=now + timedelta(hours=policy.aftercare_due_hours)))
        session.flush()
        session.refresh(questionnaire)
        return questionnaire


def questionnaires_of(session: Session, responder_id: str) -> list[Questionnaire]:
    """A responder's questionnaires, newest first."""
    return list(session.execute(
        sa_select(Questionnaire).where(col(Questionnaire.responder_id) == responder_id)
        .order_by(col(Questionnaire.sent_at).desc()).limit(50)).scalars())


def aftercare_of(session: Session, responder_id: str) -> list[AftercareTask]:
    return list(session.execute(
        sa_select(AftercareTask).where(col(AftercareTask.responder_id) == responder_id)
        .order_by(col(AftercareTask.requested_at).desc()).limit(50)).scalars())
