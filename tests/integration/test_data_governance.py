"""Data governance on a real database (SQLite and PostgreSQL): the audit log, the retention of
personal data, and the anonymised export for the national resuscitation register.

The incident of these tests is the standard street (`alarm_support`) with one more responder
whose name, phone number and e-mail address are planted, called in with a planted address and
112 reference; two responders accept, one tracks her way there, the AED is picked up, two
answer their questionnaire (one with free text that repeats the planted data) and one asks for
aftercare. Every time is passed in: no test waits for a clock.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from alarm_core.models import (
    AftercareTask,
    Incident,
    IncidentAed,
    IncidentResponder,
    IncidentSummary,
    OutboxMessage,
    Questionnaire,
    Responder,
    ResponderLocation,
)
from alarm_core.service import AlarmCore
from fleet import audit, register_export, retention
from fleet.accounts import change_role, create_account, disable_account, set_password
from fleet.db import session_scope
from fleet.editing import AedNotSaved, declare_ready, save_aed
from fleet.models import Aed, AedCreate, AuditEntry, ConsoleUser, DeadLetter
from fleet.municipalities import Boundary
from fleet.population import pc4_locator
from fleet.register_export import COLUMNS, register_rows, write_csv
from fleet.registry import load_municipalities
from fleet.retention import KINDS, run_retention
from fleet.settings import Settings

from .alarm_support import (
    AED_1,
    NOW,
    VICTIM,
    add_responder,
    aed,
    alarm_settings,
    build_street,
    call,
    near,
    record_device_event,
)
from .console_support import (
    DATABASES,
    MANAGER_A,
    USERNAMES,
    Scene,
    client_as,
    make_app,
    module_scene,
    page_text,
)
from .ingest_support import count_rows

CALLER = "112-utrecht"
PLANTED_NAME = "Jan Pietersen"
PLANTED_PHONE = "+31 6 98765432"
PLANTED_EMAIL = "jan.pietersen@example.nl"
PLANTED_ADDRESS = "Kerkstraat 7, 3512 AB Utrecht"
PLANTED_REFERENCE = "MK-UTR-2026-000417"
PLANTED_REASON = "stopped: J. Pietersen"
PLANTED = (PLANTED_NAME, "Pietersen", PLANTED_PHONE, "98765432", PLANTED_EMAIL, "Kerkstraat",
           PLANTED_REFERENCE, PLANTED_REASON)
DAY = timedelta(days=1)


# -- the incident ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Called:
    """An incident that happened, closed, and was followed up."""

    incident_id: str
    closed_at: datetime
    settings: Settings


def called_and_closed(engine: Engine, settings: Settings, reference: str = PLANTED_REFERENCE,
                      core: AlarmCore | None = None, at: datetime = NOW) -> Called:
    """The planted incident, as described at the top of this module."""
    if core is None:
        build_street(engine)
        add_responder(engine, "r-jan", near(10, 5), NOW, name=PLANTED_NAME,
                      phone=PLANTED_PHONE, email=PLANTED_EMAIL)
        core = AlarmCore(engine, alarm_settings(settings))
        core.load(at)
    incident_id = core.intake(CALLER, call(reference, address=PLANTED_ADDRESS), at).incident.id
    core.answer(incident_id, "r-jan", "accept", at + timedelta(seconds=20))
    core.answer(incident_id, "r-2", "accept", at + timedelta(seconds=30))
    core.record_location(incident_id, "r-jan", *near(5, 2), ts=at + timedelta(minutes=1),
                         now=at + timedelta(minutes=1))
    core.report_position("r-1", *near(-30, 0), at + timedelta(minutes=2),
                         at + timedelta(minutes=2))
    record_device_event(engine, f"cab-{AED_1}", "door_opened", at + timedelta(minutes=3))
    closed_at = at + timedelta(minutes=20)
    core.close(incident_id, PLANTED_REASON, closed_at)
    answered_at = closed_at + timedelta(hours=2)
    core.answer_questionnaire(token_of(engine, incident_id, "r-jan"), {
        "arrived": "yes", "cpr": "yes", "aed_used": "no", "arrived_after_minutes": 3,
        "remarks": f"{PLANTED_NAME} here, call me at {PLANTED_PHONE}"}, True, answered_at)
    core.answer_questionnaire(token_of(engine, incident_id, "r-2"), {
        "arrived": "yes", "cpr": "no", "aed_used": "yes", "arrived_after_minutes": "6"},
        False, answered_at)
    return Called(incident_id, closed_at, settings)


def token_of(engine: Engine, incident_id: str, responder_id: str) -> str:
    with Session(engine) as session:
        return session.exec(select(Questionnaire.token).where(
            Questionnaire.incident_id == incident_id,
            Questionnaire.responder_id == responder_id)).one()


def stored_incident(engine: Engine, incident_id: str) -> Incident:
    with Session(engine) as session:
        found = session.get(Incident, incident_id)
    assert found is not None
    return found


def summary_of(engine: Engine, incident_id: str) -> IncidentSummary | None:
    with Session(engine) as session:
        return session.get(IncidentSummary, incident_id)


def everything_about(engine: Engine, incident_id: str) -> str:
    """Every stored value of an incident and what hangs on it, as one text."""
    parts: list[str] = []
    with Session(engine) as session:
        for model in (Incident, IncidentSummary):
            row = session.get(model, incident_id)
            parts.append(json.dumps(row.model_dump() if row else None, default=str))
        for model in (IncidentResponder, IncidentAed, ResponderLocation, OutboxMessage,
                      Questionnaire, AftercareTask):
            for row in session.exec(select(model).where(
                    model.incident_id == incident_id)).all():  # type: ignore[attr-defined]
                parts.append(json.dumps(row.model_dump(), default=str))
    return "\n".join(parts)


@pytest.fixture
def called(engine: Engine, settings: Settings) -> Called:
    return called_and_closed(engine, settings)


# -- the audit log --------------------------------------------------------------------------------

def audit_entries(engine: Engine, **where: str) -> list[audit.AuditView]:
    with Session(engine) as session:
        return list(reversed(audit.entries(session, limit=1000, **where)))


def registered_aed(engine: Engine, settings: Settings, **fields: Any) -> AedCreate:
    record = AedCreate(id="nl-ut-0001", lat=52.0907, lon=5.1214, name="Stadhuis",
                       address="Stadhuisbrug 1, Utrecht", opening_hours="24/7",
                       cabinet_code="1234", device_id="cab-0001", **fields)
    save_aed(engine, record, settings, NOW, "anna", new=True)
    return record


def test_registering_an_aed_is_audited_with_its_fields_and_the_access_code_hidden(
        engine: Engine, settings: Settings) -> None:
    registered_aed(engine, settings)

    [entry] = audit_entries(engine)
    assert (entry.at, entry.actor, entry.action, entry.object_id) == (
        NOW, "anna", "aed.created", "nl-ut-0001")
    assert entry.changes["name"] == [None, "Stadhuis"]
    assert entry.changes["device_id"] == [None, "cab-0001"]
    assert entry.changes["cabinet_code"] == [None, audit.SECRET]
    assert "1234" not in json.dumps(entry.changes)


def test_an_aed_edit_and_its_audit_entry_commit_together(
        engine: Engine, settings: Settings) -> None:
    record = registered_aed(engine, settings)
    edited = record.model_copy(update={"name": "Stadhuis, hal", "cabinet_code": "9876",
                                       "pads_expiry": NOW.date() + timedelta(days=400)})

    save_aed(engine, edited, settings, NOW + DAY, "bert")

    [_, entry] = audit_entries(engine)
    assert (entry.at, entry.actor, entry.action) == (NOW + DAY, "bert", "aed.edited")
    assert entry.changes == {
        "name": ["Stadhuis", "Stadhuis, hal"], "cabinet_code": [audit.SECRET, audit.SECRET],
        "pads_expiry": [None, (NOW.date() + timedelta(days=400)).isoformat()]}
    assert aed(engine, "nl-ut-0001").name == "Stadhuis, hal"


def test_an_aed_edit_whose_audit_entry_fails_is_not_stored_at_all(
        engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    record = registered_aed(engine, settings)

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record", refused)
    with pytest.raises(RuntimeError):
        save_aed(engine, record.model_copy(update={"name": "Changed"}), settings, NOW, "bert")
    with pytest.raises(RuntimeError):
        declare_ready(engine, settings, record.id, "bert", NOW, NOW)

    assert aed(engine, record.id).name == "Stadhuis"
    assert len(audit_entries(engine)) == 1
    with Session(engine) as session:
        assert session.exec(text("SELECT count(*) FROM readinessdeclaration")).one()[0] == 0


def test_a_refused_edit_leaves_neither_a_change_nor_an_entry(
        engine: Engine, settings: Settings) -> None:
    registered_aed(engine, settings)
    other = AedCreate(id="nl-ut-0002", lat=52.09, lon=5.12, device_id="cab-0001")

    with pytest.raises(AedNotSaved):
        save_aed(engine, other, settings, NOW, "bert", new=True)

    with Session(engine) as session:
        assert session.get(Aed, "nl-ut-0002") is None
    assert [e.object_id for e in audit_entries(engine)] == ["nl-ut-0001"]


def test_a_declaration_names_the_declarant_and_who_recorded_it(
        engine: Engine, settings: Settings) -> None:
    registered_aed(engine, settings)

    declare_ready(engine, settings, "nl-ut-0001", "J. Jansen", NOW - DAY, NOW, "pads replaced",
                  actor="cli:beheer")

    entry = audit_entries(engine)[-1]
    assert (entry.actor, entry.action, entry.object_id) == (
        "cli:beheer", "aed.readiness_declared", "nl-ut-0001")
    assert entry.changes == {"declared_by": [None, "J. Jansen"],
                             "declared_at": [None, (NOW - DAY).isoformat()],
                             "note": [None, "pads replaced"]}


def test_account_changes_are_audited_without_any_password_or_hash(
        engine: Engine, settings: Settings) -> None:
    password, second = "correct horse battery", "another long passphrase"
    create_account(engine, "zorg", password, "dispatcher", NOW, actor="cli:root")
    load_municipalities(engine, [Boundary("Utrecht", None, json.dumps(
        {"type": "Polygon", "coordinates": [[[5, 52], [5.2, 52], [5.2, 52.2], [5, 52]]]}))])
    change_role(engine, "zorg", "municipality", NOW + DAY, municipality="Utrecht",
                actor="admin")
    set_password(engine, "zorg", second, actor="admin", now=NOW + 2 * DAY)
    disable_account(engine, "zorg", NOW + 3 * DAY, actor="admin")

    entries = audit_entries(engine, object_id="zorg")
    assert [(e.actor, e.action) for e in entries] == [
        ("cli:root", "user.created"), ("admin", "user.role_changed"),
        ("admin", "user.password_set"), ("admin", "user.disabled")]
    assert entries[0].changes == {"role": [None, "dispatcher"]}
    assert entries[1].changes == {"role": ["dispatcher", "municipality"],
                                  "municipality": [None, "Utrecht"]}
    assert entries[2].changes == {}
    assert entries[3].changes == {"disabled_at": [None, (NOW + 3 * DAY).isoformat()]}
    with Session(engine) as session:
        user = session.exec(select(ConsoleUser).where(ConsoleUser.username == "zorg")).one()
        stored = session.exec(text("SELECT changes FROM audit_log")).all()
    written = " ".join(row[0] for row in stored)
    for secret in (password, second, user.password_hash, user.password_hash.split("$")[-1]):
        assert secret not in written


def test_an_audit_entry_cannot_be_changed_afterwards(
        engine: Engine, settings: Settings) -> None:
    registered_aed(engine, settings)

    with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as session:
        session.execute(update(AuditEntry).values(actor="someone else"))

    assert audit_entries(engine)[0].actor == "anna"


def test_the_audit_log_keeps_entries_for_audit_years_then_the_job_deletes_them(
        engine: Engine, settings: Settings) -> None:
    registered_aed(engine, settings)
    years = settings.retention.audit_years
    almost = NOW.replace(year=NOW.year + years) - timedelta(seconds=1)

    assert run_retention(engine, settings, almost)["audit_entries"] == 0
    assert run_retention(engine, settings, almost + timedelta(seconds=2))["audit_entries"] == 1
    assert audit_entries(engine) == []


# -- retention ------------------------------------------------------------------------------------

def test_retention_coarsens_an_incident_to_pc4_after_the_policy_period_and_not_before(
        engine: Engine, called: Called) -> None:
    settings = called.settings
    period = timedelta(days=settings.retention.incident_personal_days)

    before = run_retention(engine, settings, called.closed_at + period - timedelta(seconds=1))

    assert before["incidents_coarsened"] == 0
    kept = stored_incident(engine, called.incident_id)
    assert (kept.lat, kept.lon, kept.address) == (*VICTIM, PLANTED_ADDRESS)
    assert count_rows(engine, IncidentResponder) == 7

    after = run_retention(engine, settings, called.closed_at + period + timedelta(seconds=1))

    assert after["incidents_coarsened"] == 1
    area = pc4_locator().locate(*VICTIM)
    assert area is not None and area.postcode == "3512"
    coarse = stored_incident(engine, called.incident_id)
    assert (coarse.lat, coarse.lon) == (area.lat, area.lon) != VICTIM
    assert (coarse.address, coarse.close_reason) == (None, "other")
    assert coarse.reference == f"#{called.incident_id}" and coarse.request_sha256 == ""
    plan = json.loads(coarse.plan)
    assert plan["victim"] == {"lat": area.lat, "lon": area.lon}
    assert len(plan["responders"]) == 7 and all("id" not in r for r in plan["responders"])
    # The AEDs' public places and exact distances would give the victim's place back.
    assert plan["aeds"] and all(
        a["fetcher_id"] is None and not {"lat", "lon", "distance_m"} & set(a)
        for a in plan["aeds"])
    assert "skipped_aeds" not in plan
    summary = summary_of(engine, called.incident_id)
    assert summary is not None and summary.coarsened_at == called.closed_at + period \
        + timedelta(seconds=1)
    assert (summary.pc4, summary.municipality) == ("3512", "Utrecht")
    assert json.loads(summary.record or "{}")["responders_alerted"] == 7
    for model in (IncidentResponder, ResponderLocation, OutboxMessage):
        assert count_rows(engine, model) == 0, model.__name__
    with Session(engine) as session:
        [link] = session.exec(select(IncidentAed)).all()
        answers = [json.loads(q.answers) for q in session.exec(select(Questionnaire)).all()
                   if q.answers]
    assert (link.fetcher_id, link.tried, link.distance_m, link.picked_up_at is not None) == (
        None, "", 0.0, True)
    assert sorted(answers, key=lambda a: a["cpr"]) == [
        {"arrived": "yes", "cpr": "no", "aed_used": "yes", "arrived_after_minutes": 6},
        {"arrived": "yes", "cpr": "yes", "aed_used": "no", "arrived_after_minutes": 3}]
    text_left = everything_about(engine, called.incident_id)
    for planted in PLANTED:
        assert planted not in text_left


def test_retention_changes_nothing_when_run_again(engine: Engine, called: Called) -> None:
    later = called.closed_at + timedelta(days=called.settings.retention.incident_personal_days,
                                         minutes=1)
    run_retention(engine, called.settings, later)
    coarse = everything_about(engine, called.incident_id)

    again = run_retention(engine, called.settings, later + timedelta(minutes=5))

    assert set(again) == set(KINDS) and again["incidents_coarsened"] == 0
    assert everything_about(engine, called.incident_id) == coarse


def test_two_retention_runs_at_once_coarsen_each_incident_exactly_once(
        engine: Engine, settings: Settings) -> None:
    first = called_and_closed(engine, settings, "ref-0")
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW + DAY)
    incidents = [first.incident_id] + [
        called_and_closed(engine, settings, f"ref-{n}", core, NOW + n * DAY).incident_id
        for n in range(1, 6)]
    small = settings.model_copy(update={"retention": settings.retention.model_copy(
        update={"batch_size": 20})})  # two incidents a transaction
    moment = NOW + timedelta(days=60)
    results: list[dict[str, int]] = []
    start = threading.Barrier(2)

    def node() -> None:
        start.wait()
        results.append(run_retention(engine, small, moment))

    nodes = [threading.Thread(target=node) for _ in range(2)]
    for thread in nodes:
        thread.start()
    for thread in nodes:
        thread.join(timeout=120)

    assert len(results) == 2
    assert sum(r["incidents_coarsened"] for r in results) == len(incidents)
    for incident_id in incidents:
        summary = summary_of(engine, incident_id)
        assert summary is not None and summary.coarsened_at == moment
        # Summarised before the alerts went: a second pass would have found none.
        assert json.loads(summary.record or "{}")["responders_alerted"] == 7


def test_retention_works_through_more_rows_than_one_batch(
        engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        session.add_all([DeadLetter(received_at=NOW, topic="responders/x/location",
                                    reason="invalid_json", detail="-", payload=b"{",
                                    payload_size=1) for _ in range(7)])
    small = settings.model_copy(update={"retention": settings.retention.model_copy(
        update={"batch_size": 3})})
    period = timedelta(days=settings.retention.dead_letter_days)

    assert run_retention(engine, small, NOW + period - timedelta(seconds=1))["dead_letters"] == 0
    assert run_retention(engine, small, NOW + period + timedelta(seconds=1))["dead_letters"] == 7
    assert count_rows(engine, DeadLetter) == 0


def test_positions_are_purged_by_the_job_also_when_the_alarm_core_is_not_running(
        engine: Engine, called: Called) -> None:
    accepted_at = NOW + timedelta(seconds=20)
    until = accepted_at + timedelta(minutes=called.settings.dispatch.location_retention_minutes)
    # The incident is closed at NOW + 20 min, later than the tracking ended; its tick never
    # ran: the position is still there.
    assert count_rows(engine, ResponderLocation) == 1

    assert run_retention(engine, called.settings, until - timedelta(seconds=1))[
        "responder_locations"] == 0
    assert run_retention(engine, called.settings, until)["responder_locations"] == 1

    app_position_ends = NOW + timedelta(
        minutes=2 + called.settings.dispatch.app_location_max_age_minutes)
    run_retention(engine, called.settings, app_position_ends)
    with Session(engine) as session:
        last = session.get(Responder, "r-1")
    assert last is not None and (last.last_lat, last.last_location_at) == (None, None)


def test_questionnaires_and_aftercare_are_detached_after_questionnaire_days_and_not_before(
        engine: Engine, called: Called) -> None:
    settings = called.settings
    sent = called.closed_at
    requested = called.closed_at + timedelta(hours=2)
    period = timedelta(days=settings.retention.questionnaire_days)
    with session_scope(engine) as session:
        session.execute(update(AftercareTask).values(note=f"rang {PLANTED_PHONE}"))

    early = run_retention(engine, settings, sent + period - timedelta(seconds=1))
    due = run_retention(engine, settings, requested + period + timedelta(seconds=1))

    assert (early["questionnaires_detached"], early["aftercare_detached"]) == (0, 0)
    assert (due["questionnaires_detached"], due["aftercare_detached"]) == (7, 1)
    with Session(engine) as session:
        questionnaires = session.exec(select(Questionnaire)).all()
        [task] = session.exec(select(AftercareTask)).all()
    assert all(q.responder_id is None for q in questionnaires)
    assert sum(1 for q in questionnaires if q.answers) == 2, "the answers stay"
    assert (task.responder_id, task.note, task.incident_id) == (None, None, called.incident_id)


def test_messages_to_responders_go_after_outbox_days(
        engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        session.add(OutboxMessage(channel="mqtt", topic="responders/r-1/notice", payload="{}",
                                  urgent=False, created_at=NOW))
    period = timedelta(days=settings.retention.outbox_days)

    assert run_retention(engine, settings, NOW + period)["outbox_messages"] == 0
    assert run_retention(engine, settings, NOW + period + timedelta(seconds=1))[
        "outbox_messages"] == 1


def test_an_incident_still_open_is_never_coarsened_and_is_once_closed(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW)
    incident_id = core.intake(CALLER, call("open-1", address=PLANTED_ADDRESS), NOW).incident.id
    period = timedelta(days=settings.retention.incident_personal_days)

    assert run_retention(engine, settings, NOW + 2 * period)["incidents_coarsened"] == 0
    assert stored_incident(engine, incident_id).address == PLANTED_ADDRESS
    core.close(incident_id, "closed_by_operator", NOW + 2 * period)
    assert run_retention(engine, settings, NOW + 3 * period + timedelta(seconds=1))[
        "incidents_coarsened"] == 1
    assert stored_incident(engine, incident_id).address is None


def test_an_incident_that_cannot_be_coarsened_holds_up_neither_the_others_nor_other_rules(
        engine: Engine, called: Called, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = called.settings
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(called.closed_at)
    second = core.intake(CALLER, call("call-2", address=PLANTED_ADDRESS),
                         called.closed_at).incident.id
    core.close(second, "closed_by_operator", called.closed_at + timedelta(minutes=10))
    real = retention.live_record

    def broken_for_the_first(session: Any, incident: Any) -> Any:
        if incident.id == called.incident_id:
            raise ValueError("an answer no code foresaw")
        return real(session, incident)

    monkeypatch.setattr(retention, "live_record", broken_for_the_first)
    with Session(engine) as session:
        session.add(DeadLetter(received_at=NOW, topic="aed/x/telemetry", reason="not_json",
                               detail="", payload=b"x", payload_size=1))
        session.commit()
    later = called.closed_at + timedelta(days=400)

    with pytest.raises(retention.RetentionFailed) as failed:
        run_retention(engine, settings, later)

    assert failed.value.kinds == ["incidents_coarsened"]
    assert failed.value.counts["incidents_coarsened"] == 1
    assert failed.value.counts["dead_letters"] == 1
    assert stored_incident(engine, second).address is None
    assert stored_incident(engine, called.incident_id).address == PLANTED_ADDRESS


# -- the register's export ------------------------------------------------------------------------

def exported(engine: Engine, settings: Settings) -> tuple[str, list[dict[str, str]]]:
    handle = io.StringIO()
    write_csv(register_rows(engine, settings, NOW.date() - DAY, NOW.date() + 10 * DAY), handle,
              ZoneInfo(settings.timezone))
    return handle.getvalue(), list(csv.DictReader(io.StringIO(handle.getvalue())))


def test_export_never_contains_names_addresses_or_phone_numbers(
        engine: Engine, called: Called) -> None:
    document, rows = exported(engine, called.settings)

    assert len(rows) == 1
    for planted in PLANTED:
        assert planted.lower() not in document.lower(), planted
    with Session(engine) as session:
        responder_ids = session.exec(select(Responder.id)).all()
        incident = session.get(Incident, called.incident_id)
    assert incident is not None
    for secret in (called.incident_id, incident.reference, "Domplein", *responder_ids,
                   f"{VICTIM[0]}", f"{VICTIM[1]}", "52.09", "5.12"):
        assert secret not in document, secret
    assert list(rows[0]) == list(COLUMNS)


def test_export_rows_carry_the_register_figures(engine: Engine, called: Called) -> None:
    _, [row] = exported(engine, called.settings)

    assert (row["call_date"], row["call_hour"]) == ("2026-11-25", "15")  # 14:00 UTC
    assert (row["pc4"], row["municipality"]) == ("3512", "Utrecht")
    assert (row["outcome"], row["source"], row["alert_delay_s"]) == ("dispatched", "112", "0")
    assert (row["responders_alerted"], row["responders_accepted"],
            row["responders_on_scene"]) == ("7", "2", "2")
    assert (row["aeds_sent"], row["aeds_picked_up"], row["aed_brought"]) == ("1", "1", "yes")
    stored = stored_incident(engine, called.incident_id)
    assert row["expected_first_cpr_s"] == str(round(stored.expected_first_cpr_s or 0))
    assert row["expected_first_aed_s"] == str(round(stored.expected_first_aed_s or 0))
    assert (row["reported_first_cpr_s"], row["reported_first_aed_s"]) == ("180", "360")
    assert (row["questionnaires_sent"], row["questionnaires_answered"], row["reported_cpr"],
            row["reported_aed_attached"], row["aftercare_requested"]) == (
        "7", "2", "1", "1", "1")
    assert len(row["incident_number"]) == 12


def test_an_incident_exports_the_same_row_before_and_after_its_coarsening(
        engine: Engine, called: Called) -> None:
    _, before = exported(engine, called.settings)
    run_retention(engine, called.settings, called.closed_at + timedelta(days=90))

    _, after = exported(engine, called.settings)

    assert after == before


def test_the_export_reads_incidents_in_chunks_and_lists_each_once_oldest_first(
        engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    first = called_and_closed(engine, settings, "ref-0")
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW + DAY)
    for n in range(1, 5):
        called_and_closed(engine, settings, f"ref-{n}", core, NOW + n * DAY)
    run_retention(engine, settings, first.closed_at + timedelta(days=32))  # the first two
    monkeypatch.setattr(register_export, "CHUNK", 2)

    _, rows = exported(engine, settings)

    assert [row["call_date"] for row in rows] == [
        (NOW + n * DAY).date().isoformat() for n in range(5)]
    assert len({row["incident_number"] for row in rows}) == 5
    assert {row["responders_alerted"] for row in rows} == {"7"}


# -- the console ----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=DATABASES)
def scene(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from module_scene(request.param, tmp_path_factory.mktemp("governance"))


@pytest.fixture(scope="module")
def browsers(scene: Scene) -> dict[str, FlaskClient]:
    app = make_app(scene, csrf=False)
    return {role: client_as(app, role) for role in ("admin", "manager_a", "dispatcher")}


def test_a_console_edit_and_declaration_are_audited_as_the_signed_in_user(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    from .test_console_authorization import aed_form

    browsers["manager_a"].post("/fleet/aeds/a-3/edit",
                               data={**aed_form(scene, "a-3"), "name": "Sporthal De Rijn"})
    browsers["manager_a"].post("/fleet/aeds/a-3/declare", data={"checked": "yes"})

    edit, declaration = audit_entries(scene.engine, object_id="a-3")[-2:]
    who = USERNAMES["manager_a"]
    assert (edit.actor, edit.action, edit.at) == (who, "aed.edited", scene.now)
    assert edit.changes["name"][1] == "Sporthal De Rijn"
    assert (declaration.actor, declaration.action) == (who, "aed.readiness_declared")
    assert declaration.changes["declared_by"] == [None, who]


def test_the_audit_page_shows_the_admin_who_changed_what_filtered_and_paged(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    with session_scope(scene.engine) as session:
        for n in range(55):
            audit.record(session, scene.now, "cli:root", audit.AuditAction.USER_PASSWORD_SET,
                         f"bulk-{n:02d}")
    admin = browsers["admin"]

    everything = page_text(admin.get("/audit"))
    about = page_text(admin.get("/audit?object=a-3"))
    by_root = page_text(admin.get("/audit?user=cli:root"))
    second = page_text(admin.get("/audit?user=cli:root&page=2"))

    assert 'href="/audit"' in page_text(admin.get("/fleet")), "linked from the navigation"
    assert "bulk-54" in everything and "Next page" in everything
    assert "a-3" in about and "bulk-" not in about and "aed.edited" in about
    assert "bulk-54" in by_root and "bulk-04" not in by_root and "Next page" in by_root
    assert "bulk-04" in second and "bulk-54" not in second and "Previous page" in second
    assert 'href="/audit"' not in page_text(browsers["manager_a"].get("/fleet"))


def test_the_audit_page_refuses_a_page_number_that_is_not_one(
        browsers: dict[str, FlaskClient]) -> None:
    assert browsers["admin"].get("/audit?page=0").status_code == 400
    assert browsers["admin"].get("/audit?page=x").status_code == 400


def test_the_export_of_the_console_scene_names_nobody(scene: Scene) -> None:
    handle = io.StringIO()
    write_csv(register_rows(scene.engine, scene.settings, NOW.date(), NOW.date()), handle,
              ZoneInfo(scene.settings.timezone))

    rows = list(csv.DictReader(io.StringIO(handle.getvalue())))
    assert len(rows) == 1 and rows[0]["municipality"] == "Utrecht"
    assert "Responder" not in handle.getvalue() and MANAGER_A not in handle.getvalue()
