"""Retention of personal data: `run_retention` removes what has been kept long enough.

Run by `aedfleet retention run` (a systemd timer or cron every few minutes). Every rule is
idempotent and works in batches of `[retention] batch_size` rows, each its own short
transaction, so the job never holds a national table for long; two nodes may run it at once
(each batch is claimed with a compare-and-set, or deletes what is still there).

- positions of responders on the way: deleted `[dispatch] location_retention_minutes` after
  they accepted; the app's last position: cleared once `app_location_max_age_minutes` old
  (both by the alarm core's own purge, which its tick runs too);
- an incident's personal data: summarised, then coarsened, `incident_personal_days` after it
  closed;
- questionnaires and aftercare requests: detached from the responder `questionnaire_days`
  after they were sent or made;
- messages to responders (the outbox): deleted after `outbox_days`;
- the responder inbox: a message to one responder, `inbox_days` after it was read or expired;
  region news (and who read it), `inbox_days` after it expired;
- dead letters: deleted after `dead_letter_days`;
- audit log entries: deleted after `audit_years`.

Coarsening an incident: the register's figures are stored first (`incident_summary`), then the
exact address goes, the place becomes its PC4 area's centroid (the PC4 code is kept in the
summary), the 112 reference and the call's hash go, a typed close reason becomes `other`, the
plan loses who was alerted, the alerts and remaining tracked positions and messages are
deleted, the AEDs lose their fetcher, and the questionnaires keep only their closed answers.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, delete, exists, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.anonymise import (
    answers_without_free_text,
    coarse_plan,
    coarse_point,
    reason_code,
)
from alarm_core.inbox import purge_batch as purge_inbox_batch
from alarm_core.models import (
    AftercareTask,
    Incident,
    IncidentAed,
    IncidentResponder,
    IncidentSummary,
    OutboxMessage,
    Questionnaire,
    ResponderLocation,
)
from fleet.db import session_scope
from fleet.errors import FleetError
from fleet.models import AuditEntry, DeadLetter
from fleet.register_export import ensure_summaries, live_record, place_of
from fleet.settings import Settings

logger = logging.getLogger(__name__)

KINDS = ("responder_locations", "incidents_coarsened", "questionnaires_detached",
         "aftercare_detached", "outbox_messages", "inbox_messages", "dead_letters",
         "audit_entries")
INCIDENT_SHARE = 10
"""An incident brings up to a few hundred rows: a batch coarsens batch_size / 10 of them."""


def run_retention(engine: Engine, settings: Settings, now: datetime) -> dict[str, int]:
    """Apply every retention rule at `now`; how many rows of each kind were removed,
    coarsened or detached."""
    rules = {
        "responder_locations": purge_responder_locations,
        "incidents_coarsened": coarsen_incidents,
        "questionnaires_detached": detach_questionnaires,
        "aftercare_detached": detach_aftercare,
        "outbox_messages": purge_outbox,
        "inbox_messages": purge_inbox,
        "dead_letters": purge_dead_letters,
        "audit_entries": purge_audit_log,
    }
    counts: dict[str, int] = {}
    failed: list[str] = []
    for kind, rule in rules.items():
        try:  # one failing rule never keeps the others from running
            counts[kind] = rule(engine, settings, now)
        except PartlyDone as exc:
            counts[kind] = exc.done
            failed.append(kind)
        except Exception:
            logger.exception("retention: %s failed", kind)
            counts[kind] = 0
            failed.append(kind)
    if failed:
        raise RetentionFailed(failed, counts)
    if any(counts.values()):
        logger.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return counts


class PartlyDone(Exception):
    """A rule passed over rows it could not handle (logged) and did the others."""

    def __init__(self, done: int) -> None:
        super().__init__(f"{done} done, some passed over")
        self.done = done


class RetentionFailed(FleetError):
    """Some rules failed (logged); the others ran. `counts` holds what was done."""

    def __init__(self, kinds: list[str], counts: dict[str, int]) -> None:
        super().__init__(f"retention failed for {', '.join(kinds)} (see the log); the other "
                         "rules ran")
        self.kinds, self.counts = kinds, counts


def purge_responder_locations(engine: Engine, settings: Settings, now: datetime) -> int:
    """The alarm core's purge of positions (also when the alarm core is not running)."""
    from alarm_core.service import AlarmCore  # the alarm core's heavier imports, when run

    return AlarmCore(engine, settings).purge_locations(now)


def coarsen_incidents(engine: Engine, settings: Settings, now: datetime) -> int:
    """Remove the personal data of incidents closed `incident_personal_days` ago (an open one
    waits for its close, which the alarm core's timeout makes); returns how many were
    coarsened. An incident that cannot be coarsened is logged and passed over; the others go
    on."""
    cutoff = now - timedelta(days=settings.retention.incident_personal_days)
    batch = max(1, settings.retention.batch_size // INCIDENT_SHARE)
    done_already = exists().where(col(IncidentSummary.incident_id) == Incident.id,
                                  col(IncidentSummary.coarsened_at).is_not(None))
    coarsened = 0
    passed_over: set[str] = set()
    while True:
        due = sa_select(col(Incident.id)).where(
            col(Incident.closed_at) < cutoff, ~done_already,
            col(Incident.id).not_in(passed_over)).order_by(col(Incident.id)).limit(batch)
        with Session(engine) as session:
            candidates = list(session.execute(due).scalars())
        if not candidates:
            break
        try:
            done = _claim_and_coarsen(engine, candidates, now)
        except Exception:  # one bad incident must not hold up the rest: one at a time
            done = []
            for incident_id in candidates:
                try:
                    done += _claim_and_coarsen(engine, [incident_id], now)
                except Exception:
                    logger.exception("retention: incident %s not coarsened", incident_id)
                    passed_over.add(incident_id)
        coarsened += len(done)
        if len(candidates) < batch:
            break
    if passed_over:
        raise PartlyDone(coarsened)
    return coarsened


def _claim_and_coarsen(engine: Engine, candidates: list[str], now: datetime) -> list[str]:
    with session_scope(engine) as session:
        ensure_summaries(session, candidates)
        # The claim: of two nodes, only one coarsens an incident (the other's update waits
        # for the first's commit and then finds it done).
        claimed = list(session.execute(
            update(IncidentSummary)
            .where(col(IncidentSummary.incident_id).in_(candidates),
                   col(IncidentSummary.coarsened_at).is_(None))
            .values(coarsened_at=now)
            .returning(col(IncidentSummary.incident_id))).scalars())
        _coarsen(session, claimed)
    return claimed


def _coarsen(session: Session, incident_ids: list[str]) -> None:
    """Summarise, then strip, the claimed incidents (inside the claim's transaction)."""
    if not incident_ids:
        return
    for incident_id in incident_ids:
        incident = session.get(Incident, incident_id)
        summary = session.get(IncidentSummary, incident_id)
        assert incident is not None and summary is not None
        place = place_of(incident)
        summary.pc4 = place.postcode if place else None
        summary.municipality = place.municipality if place else None
        summary.record = json.dumps(live_record(session, incident).to_json())
        lat, lon = coarse_point(incident.lat, incident.lon, place)
        incident.plan = json.dumps(coarse_plan(_json(incident.plan), (lat, lon)))
        incident.lat, incident.lon, incident.address = lat, lon, None
        incident.close_reason = reason_code(incident.close_reason)
        # The 112 centre's key to its own files goes; "#" is in no reference a centre sends.
        incident.reference = f"#{incident.id}"
        incident.request_sha256 = ""  # a hash of the call: with a guessed address, a check
        session.add_all([incident, summary])
    for questionnaire in session.execute(sa_select(Questionnaire).where(
            col(Questionnaire.incident_id).in_(incident_ids),
            col(Questionnaire.answers).is_not(None))).scalars():
        questionnaire.answers = answers_without_free_text(questionnaire.answers)
        session.add(questionnaire)
    # Exact distances from AEDs whose places are public would give the victim's place back.
    session.execute(update(IncidentAed).where(col(IncidentAed.incident_id).in_(incident_ids))
                    .values(fetcher_id=None, tried="", distance_m=0.0))
    for model in (IncidentResponder, ResponderLocation, OutboxMessage):
        session.execute(delete(model).where(
            col(model.incident_id).in_(incident_ids)))  # type: ignore[attr-defined]


def _json(text: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def detach_questionnaires(engine: Engine, settings: Settings, now: datetime) -> int:
    """Questionnaires sent `questionnaire_days` ago lose their responder (the answers stay)."""
    cutoff = now - timedelta(days=settings.retention.questionnaire_days)
    due = sa_select(col(Questionnaire.token)).where(
        col(Questionnaire.responder_id).is_not(None), col(Questionnaire.sent_at) < cutoff)
    return _in_batches(engine, settings, lambda chosen: update(Questionnaire).where(
        col(Questionnaire.token).in_(chosen), col(Questionnaire.responder_id).is_not(None))
        .values(responder_id=None), due.order_by(col(Questionnaire.token)))


def detach_aftercare(engine: Engine, settings: Settings, now: datetime) -> int:
    """Aftercare requests made `questionnaire_days` ago lose their responder and note."""
    cutoff = now - timedelta(days=settings.retention.questionnaire_days)
    due = sa_select(col(AftercareTask.id)).where(
        col(AftercareTask.responder_id).is_not(None), col(AftercareTask.requested_at) < cutoff)
    return _in_batches(engine, settings, lambda chosen: update(AftercareTask).where(
        col(AftercareTask.id).in_(chosen), col(AftercareTask.responder_id).is_not(None))
        .values(responder_id=None, note=None), due.order_by(col(AftercareTask.id)))


def purge_outbox(engine: Engine, settings: Settings, now: datetime) -> int:
    """Messages to responders written `outbox_days` ago, sent or not."""
    cutoff = now - timedelta(days=settings.retention.outbox_days)
    due = sa_select(col(OutboxMessage.id)).where(col(OutboxMessage.created_at) < cutoff)
    return _in_batches(engine, settings, lambda chosen: delete(OutboxMessage).where(
        col(OutboxMessage.id).in_(chosen)), due.order_by(col(OutboxMessage.id)))


def purge_inbox(engine: Engine, settings: Settings, now: datetime) -> int:
    """Inbox messages to one responder read or expired `inbox_days` ago; region news expired
    that long ago; each with who read it."""
    cutoff = now - timedelta(days=settings.retention.inbox_days)
    total = 0
    while True:
        with session_scope(engine) as session:
            deleted = purge_inbox_batch(session, cutoff, settings.retention.batch_size)
        total += deleted
        if deleted < settings.retention.batch_size:
            return total


def purge_dead_letters(engine: Engine, settings: Settings, now: datetime) -> int:
    """Dead letters received `dead_letter_days` ago (also done by the ingest's sweep)."""
    cutoff = now - timedelta(days=settings.retention.dead_letter_days)
    due = sa_select(col(DeadLetter.id)).where(col(DeadLetter.received_at) < cutoff)
    return _in_batches(engine, settings, lambda chosen: delete(DeadLetter).where(
        col(DeadLetter.id).in_(chosen)), due.order_by(col(DeadLetter.id)))


def purge_audit_log(engine: Engine, settings: Settings, now: datetime) -> int:
    """Audit entries older than `audit_years`: the one code path that deletes them."""
    cutoff = now - relativedelta(years=settings.retention.audit_years)
    due = sa_select(col(AuditEntry.id)).where(col(AuditEntry.at) < cutoff)
    return _in_batches(engine, settings, lambda chosen: delete(AuditEntry).where(
        col(AuditEntry.id).in_(chosen)), due.order_by(col(AuditEntry.id)))


def _in_batches(engine: Engine, settings: Settings, statement: Any, due: Any) -> int:
    """Run `statement(chosen)` over `due` rows, `batch_size` at a time, one transaction each
    (the batch is chosen inside the statement, so it is one atomic step)."""
    batch = settings.retention.batch_size
    total = 0
    while True:
        with session_scope(engine) as session:
            result = session.execute(statement(due.limit(batch)))
            changed = int(result.rowcount or 0)  # type: ignore[attr-defined]
        total += changed
        if changed < batch:
            return total
