"""What the alarm core promises, on a real database (SQLite and PostgreSQL).

Intake (what is stored and alerted, idempotency, refusals, the database as the last word on an
AED), answers and reassignment of AEDs, locations and their retention, closing with
questionnaires and aftercare, the return of AEDs to service, the clean-up of responders who
never answer, and the responder import. Every time is passed in: no test waits for a clock.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from alarm_core.errors import Conflict, NotFound, Refused
from alarm_core.models import (
    AftercareTask,
    Incident,
    IncidentResponder,
    Questionnaire,
    Responder,
    ResponderLocation,
)
from alarm_core.registry import confirm_profile, import_responders
from alarm_core.service import AlarmCore
from alarm_core.wire import rfc3339
from fleet.db import make_engine, session_scope
from fleet.models import AedReadiness
from fleet.settings import Settings

from .alarm_support import (
    ACCESS_CODE,
    AED_1,
    AED_1_AT,
    NOW,
    OUTSIDE,
    STREET,
    VICTIM,
    add_monitored_aed,
    add_responder,
    add_responders,
    aed,
    aed_links,
    alarm_settings,
    alerts,
    build_street,
    busy_responders,
    by_role,
    call,
    declare_ready,
    incident,
    near,
    outbox,
    record_device_event,
    report_cabinet,
    responder,
    set_aed,
)
from .ingest_support import count_rows

CALLER = "112-utrecht"
ALERT_KEYS = {"v", "incident_id", "role", "victim", "aed", "sent_at"}
CONTRACT_AED_KEYS = {"aed_id", "lat", "lon", "access_code", "location_hint"}


def loaded(engine: Engine, settings: Settings, **dispatch: Any) -> AlarmCore:
    core = AlarmCore(engine, alarm_settings(settings, **dispatch))
    core.load(NOW)
    return core


def street_incident(engine: Engine, settings: Settings, **dispatch: Any
                    ) -> tuple[AlarmCore, str]:
    """The standard street, a loaded core and one incident at the victim called in at NOW."""
    build_street(engine)
    core = loaded(engine, settings, **dispatch)
    return core, core.intake(CALLER, call("ref-1"), NOW).incident.id


def planned_responders(core: AlarmCore, at: tuple[float, float], moment: datetime) -> set[str]:
    """Who a dry run would alert: whom the core's pools hold as alertable."""
    return {a.responder_id for a in core.plan(at[0], at[1], moment).responders}


# -- intake ---------------------------------------------------------------------------------------

def test_intake_stores_the_incident_alerts_each_responder_once_and_claims_the_aed(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    core = loaded(engine, settings)

    result = core.intake(CALLER, call("ref-1"), NOW)

    assert result.created and result.plan is not None
    stored = incident(engine, result.incident.id)
    assert (stored.caller, stored.reference, stored.state, stored.outcome) == (
        CALLER, "ref-1", "dispatched", "dispatched")
    assert (stored.lat, stored.lon) == VICTIM
    assert stored.called_at == stored.received_at == NOW
    alerted = alerts(engine, stored.id)
    assert set(alerted) == set(STREET)
    assert all((a.status, a.alerted_at) == ("alerted", NOW) for a in alerted.values())
    assert by_role(engine, stored.id) == {"cpr": ["r-1", "r-3"], "fetcher": ["r-2"],
                                          "backup": ["r-5", "r-4", "r-6"]}
    [link] = aed_links(engine, stored.id).values()
    assert (link.aed_id, link.fetcher_id, link.fetcher_since, link.fetcher_accepted) == (
        AED_1, "r-2", NOW, False)
    assert aed(engine, AED_1).in_use_incident == stored.id
    assert busy_responders(engine) == dict.fromkeys(STREET, stored.id)
    sent = outbox(engine)
    assert sorted((m.responder_id, m.kind, m.channel) for m in sent) == [
        (rid, "alert", "mqtt") for rid in sorted(STREET)]
    with Session(engine) as session:
        readiness = session.get(AedReadiness, AED_1)
    assert readiness is not None and (readiness.state, readiness.reasons) == ("not_ready",
                                                                              "in_use")


def test_every_alert_follows_the_contract_and_only_fetchers_are_told_the_aed(
        engine: Engine, settings: Settings) -> None:
    _core, incident_id = street_incident(engine, settings)
    alerted = alerts(engine, incident_id)

    for message in outbox(engine, "alert"):
        payload = message.payload
        assert set(payload) == ALERT_KEYS
        assert (payload["v"], payload["incident_id"], payload["sent_at"]) == (
            1, incident_id, "2026-11-25T14:00:00Z")
        assert payload["victim"] == {"lat": VICTIM[0], "lon": VICTIM[1],
                                     "address": "Domplein 29, Utrecht"}
        assert payload["role"] == alerted[message.responder_id].role
        if payload["role"] == "cpr":
            assert payload["aed"] is None
        else:
            assert payload["role"] == "fetch_aed"
            assert set(payload["aed"]) >= CONTRACT_AED_KEYS
            assert payload["aed"]["aed_id"] == AED_1
            assert (payload["aed"]["lat"], payload["aed"]["lon"]) == AED_1_AT
            assert payload["aed"]["access_code"] == ACCESS_CODE
            assert payload["aed"]["location_hint"] == f"next to the entrance of {AED_1}"


def test_sms_responders_are_never_chosen_without_an_sms_gateway(
        engine: Engine, settings: Settings) -> None:
    add_monitored_aed(engine, AED_1, AED_1_AT, NOW)
    add_responder(engine, "app-1", near(0, 10), NOW)
    add_responder(engine, "sms-1", near(150, 5), NOW, channel="sms")
    core = loaded(engine, settings)

    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id

    assert set(alerts(engine, incident_id)) == {"app-1"}
    assert outbox(engine, responder_id="sms-1") == []
    assert responder(engine, "sms-1").busy_incident is None


def test_an_sms_fetcher_is_alerted_by_sms_without_the_access_code(
        engine: Engine, settings: Settings) -> None:
    add_monitored_aed(engine, AED_1, AED_1_AT, NOW)
    add_responder(engine, "app-1", near(0, 10), NOW)
    add_responder(engine, "sms-1", near(150, 5), NOW, channel="sms")
    core = loaded(engine, settings, sms_gateway_url="http://127.0.0.1:9/sms")

    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id

    assert by_role(engine, incident_id) == {"cpr": ["app-1"], "fetcher": ["sms-1"],
                                            "backup": []}
    [by_sms] = outbox(engine, "alert", "sms-1")
    assert by_sms.channel == "sms"
    assert set(by_sms.payload) == ALERT_KEYS
    assert by_sms.payload["aed"]["aed_id"] == AED_1
    assert by_sms.payload["aed"]["access_code"] is None
    [by_app] = outbox(engine, "alert", "app-1")
    assert (by_app.channel, by_app.payload["aed"]) == ("mqtt", None)


def test_the_same_reference_twice_is_one_incident_alerted_once(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    messages = len(outbox(engine))

    again = core.intake(CALLER, call("ref-1"), NOW + timedelta(seconds=20))

    assert (again.created, again.incident.id, again.plan) == (False, incident_id, None)
    assert count_rows(engine, Incident) == 1
    assert count_rows(engine, IncidentResponder) == len(STREET)
    assert len(outbox(engine)) == messages


def test_the_same_reference_with_other_content_is_a_conflict_and_changes_nothing(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    messages = len(outbox(engine))

    for changed in (call("ref-1", at=near(300)), call("ref-1", address="Neude 1, Utrecht"),
                    call("ref-1", exclusions=("trauma",))):
        with pytest.raises(Conflict) as refused:
            core.intake(CALLER, changed, NOW + timedelta(seconds=20))
        assert (refused.value.code, refused.value.status) == ("reference_conflict", 409)

    assert count_rows(engine, Incident) == 1
    assert len(outbox(engine)) == messages
    assert (incident(engine, incident_id).lat, incident(engine, incident_id).lon) == VICTIM
    # A reference is the caller's own: another centre may use the same one.
    other = core.intake("112-amsterdam", call("ref-1", at=near(300)), NOW)
    assert other.created and other.incident.id != incident_id


@pytest.mark.parametrize("exclusion", ["victim_under_one_year", "unsafe_scene", "trauma"])
def test_an_excluded_call_is_stored_but_nobody_is_alerted_and_no_aed_taken(
        engine: Engine, settings: Settings, exclusion: str) -> None:
    build_street(engine)
    core = loaded(engine, settings)

    result = core.intake(CALLER, call("ref-1", exclusions=(exclusion,)), NOW)

    stored = incident(engine, result.incident.id)
    assert (stored.state, stored.outcome, stored.exclusions) == ("excluded", "excluded",
                                                                 exclusion)
    assert result.plan is None
    assert alerts(engine, stored.id) == {} and aed_links(engine, stored.id) == {}
    assert outbox(engine) == []
    assert busy_responders(engine) == {}
    assert aed(engine, AED_1).in_use_incident is None
    # Nothing was held back: the next call gets the AED and everyone.
    following = core.intake(CALLER, call("ref-2"), NOW + timedelta(minutes=1)).incident.id
    assert set(aed_links(engine, following)) == {AED_1}
    assert set(alerts(engine, following)) == set(STREET)


def test_a_call_outside_the_service_area_is_refused_and_nothing_is_stored(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    add_responder(engine, "r-paris", near(0, 30, origin=OUTSIDE), NOW)
    core = loaded(engine, settings)

    with pytest.raises(Refused) as refused:
        core.intake(CALLER, call("ref-1", at=OUTSIDE), NOW)

    assert (refused.value.code, refused.value.status) == ("outside_service_area", 422)
    assert count_rows(engine, Incident) == 0
    assert outbox(engine) == []
    assert busy_responders(engine) == {}


def test_a_call_from_the_future_or_older_than_the_incident_timeout_is_refused(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    core = loaded(engine, settings, incident_timeout_minutes=60)

    for called_at, code in ((NOW + timedelta(minutes=6), "invalid_field"),
                            (NOW - timedelta(minutes=61), "call_too_old")):
        with pytest.raises(Refused) as refused:
            core.intake(CALLER, call(f"ref-{code}", called_at=called_at), NOW)
        assert refused.value.code == code

    assert count_rows(engine, Incident) == 0
    assert outbox(engine) == []


def test_an_aed_the_pool_thinks_ready_but_the_database_does_not_is_never_dispatched(
        engine: Engine, settings: Settings) -> None:
    add_monitored_aed(engine, "aed-near", near(100), NOW)
    add_monitored_aed(engine, "aed-far", near(-200), NOW)
    add_responders(engine, STREET, NOW)
    core = loaded(engine, settings)
    set_aed(engine, "aed-near", out_of_service=True)  # after the load, no refresh
    dry_run = core.plan(VICTIM[0], VICTIM[1], NOW)
    assert "aed-near" in {chosen.id for chosen in dry_run.aeds}, "set-up: the pool is stale"

    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id

    assert set(aed_links(engine, incident_id)) == {"aed-far"}
    assert aed(engine, "aed-near").in_use_incident is None
    assert aed(engine, "aed-far").in_use_incident == incident_id
    assert {m.payload["aed"]["aed_id"] for m in outbox(engine, "alert")
            if m.payload["aed"] is not None} == {"aed-far"}


@pytest.mark.parametrize("restarted", [False, True], ids=["same_core", "restarted_core"])
def test_a_second_incident_nearby_gets_neither_the_aed_nor_the_responders_of_the_first(
        engine: Engine, settings: Settings, restarted: bool) -> None:
    add_monitored_aed(engine, AED_1, AED_1_AT, NOW)
    add_monitored_aed(engine, "aed-2", near(-150), NOW)
    add_responders(engine, STREET, NOW)
    core = loaded(engine, settings, max_alerted=3, max_aeds=1)
    first = core.intake(CALLER, call("ref-1"), NOW).incident.id
    if restarted:  # a new process reads who and what is taken from the database
        core = AlarmCore(engine, core.settings)
        core.load(NOW + timedelta(minutes=1))

    second = core.intake(CALLER, call("ref-2", at=near(50)),
                         NOW + timedelta(minutes=1)).incident.id

    first_alerted, second_alerted = set(alerts(engine, first)), set(alerts(engine, second))
    assert len(first_alerted) == len(second_alerted) == 3
    assert not first_alerted & second_alerted
    first_aeds, second_aeds = set(aed_links(engine, first)), set(aed_links(engine, second))
    assert first_aeds and second_aeds and not first_aeds & second_aeds
    busy = busy_responders(engine)
    assert {rid for rid, held in busy.items() if held == first} == first_alerted
    assert {rid for rid, held in busy.items() if held == second} == second_alerted
    for aed_id in first_aeds:
        assert aed(engine, aed_id).in_use_incident == first


def test_two_alarm_cores_taking_calls_at_the_same_moment_never_share_an_aed_or_a_responder(
        engine: Engine, settings: Settings) -> None:
    """Two nodes (as during a takeover, or a core and `aedfleet dispatch`), each with its own
    engine and pools, race for one AED and six responders, round after round."""
    add_monitored_aed(engine, AED_1, AED_1_AT, NOW)
    add_responders(engine, STREET, NOW)
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(2)]
    try:
        cores = [loaded(each, settings, max_alerted=3, max_aeds=1) for each in engines]
        for round_ in range(5):
            moment = NOW + timedelta(minutes=round_)
            start = threading.Barrier(2)

            def take(index: int, moment: datetime = moment, start: threading.Barrier = start,
                     round_: int = round_) -> str:
                start.wait()
                return cores[index].intake(CALLER, call(f"ref-{round_}-{index}", at=near(index)),
                                           moment).incident.id

            with ThreadPoolExecutor(2) as pool:
                first, second = pool.map(take, range(2))

            taken = [set(aed_links(engine, first)), set(aed_links(engine, second))]
            assert sorted(len(each) for each in taken) == [0, 1], taken
            winner = first if taken[0] else second
            assert aed(engine, AED_1).in_use_incident == winner
            first_alerted, second_alerted = set(alerts(engine, first)), set(alerts(engine, second))
            assert len(first_alerted) == len(second_alerted) == 3
            assert not first_alerted & second_alerted
            for core, incident_id in zip(cores, (first, second), strict=True):
                core.close(incident_id, "closed_by_operator", moment + timedelta(seconds=30))
            for core in cores:
                core.refresh(moment + timedelta(seconds=40))
            set_aed(engine, AED_1, in_use_incident=None)  # back in its cabinet
    finally:
        for each in engines:
            each.dispose()


def test_responders_freed_by_a_close_in_another_process_are_alerted_again(
        engine: Engine, settings: Settings) -> None:
    service, first = street_incident(engine, settings, accept_target_cpr=len(STREET))
    for rid in STREET:  # everyone answered: no clean-up counts are involved
        service.answer(first, rid, "accept", NOW + timedelta(seconds=20))
    command_line = AlarmCore(engine, service.settings)  # what `aedfleet incidents close` runs
    command_line.close(first, "closed_by_operator", NOW + timedelta(minutes=5))
    assert busy_responders(engine) == {}
    for minutes in (6, 7, 16, 27):  # as the runner does, with two full refreshes among them
        service.refresh(NOW + timedelta(minutes=minutes))

    second = service.intake(CALLER, call("ref-2"), NOW + timedelta(minutes=28)).incident.id

    assert set(alerts(engine, second)) == set(STREET)


# -- answers --------------------------------------------------------------------------------------

def test_the_designated_fetcher_accepting_marks_the_aed_as_on_its_way(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    messages = len(outbox(engine))

    result = core.answer(incident_id, "r-2", "accept", NOW + timedelta(seconds=20))

    assert (result.status, result.role, result.aed_id, result.cancelled) == (
        "accepted", "fetch_aed", AED_1, [])
    link = aed_links(engine, incident_id)[AED_1]
    assert (link.fetcher_id, link.fetcher_accepted) == ("r-2", True)
    alert = alerts(engine, incident_id)["r-2"]
    assert (alert.status, alert.answered_at, alert.designated) == (
        "accepted", NOW + timedelta(seconds=20), True)
    assert responder(engine, "r-2").busy_incident == incident_id
    assert len(outbox(engine)) == messages


def test_a_fetcher_who_declines_hands_the_aed_to_the_fastest_backup_without_a_new_alert(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    messages = len(outbox(engine))
    declined_at = NOW + timedelta(seconds=20)

    result = core.answer(incident_id, "r-2", "decline", declined_at)

    assert result.status == "declined"
    link = aed_links(engine, incident_id)[AED_1]
    assert (link.fetcher_id, link.fetcher_since, link.fetcher_accepted) == (
        "r-5", declined_at, False)
    alerted = alerts(engine, incident_id)
    assert (alerted["r-2"].status, alerted["r-2"].designated) == ("declined", False)
    assert alerted["r-5"].designated
    assert responder(engine, "r-2").busy_incident is None
    assert len(outbox(engine)) == messages  # r-5 already has the AED in its alert
    assert planned_responders(core, VICTIM, declined_at) == {"r-2"}, "free for other calls"


def test_a_backup_who_already_accepted_takes_over_the_aed_when_the_fetcher_declines(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    core.answer(incident_id, "r-6", "accept", NOW + timedelta(seconds=10))

    core.answer(incident_id, "r-2", "decline", NOW + timedelta(seconds=20))

    link = aed_links(engine, incident_id)[AED_1]
    assert (link.fetcher_id, link.fetcher_accepted) == ("r-6", True)


def test_a_fetcher_who_declines_without_backups_hands_the_aed_to_another_with_a_new_alert(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings, cpr_share=1.0)
    assert by_role(engine, incident_id)["backup"] == [], "set-up: nobody else via the AED"
    before = {rid: len(outbox(engine, "alert", rid)) for rid in STREET}

    core.answer(incident_id, "r-2", "decline", NOW + timedelta(seconds=20))

    link = aed_links(engine, incident_id)[AED_1]
    assert link.fetcher_id not in (None, "r-2")
    newly = {rid for rid in STREET if len(outbox(engine, "alert", rid)) > before[rid]}
    assert newly == {link.fetcher_id}
    second_alert = outbox(engine, "alert", link.fetcher_id)[-1].payload
    assert (second_alert["role"], second_alert["incident_id"]) == ("fetch_aed", incident_id)
    assert second_alert["aed"]["aed_id"] == AED_1
    assert second_alert["aed"]["access_code"] == ACCESS_CODE
    new_fetcher = alerts(engine, incident_id)[link.fetcher_id]
    assert (new_fetcher.role, new_fetcher.aed_id, new_fetcher.designated) == (
        "fetch_aed", AED_1, True)


def test_a_fetcher_who_does_not_answer_in_time_is_replaced_at_the_next_tick(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings, fetcher_timeout_s=90)
    messages = len(outbox(engine))

    core.tick(NOW + timedelta(seconds=89))
    assert aed_links(engine, incident_id)[AED_1].fetcher_id == "r-2"

    core.tick(NOW + timedelta(seconds=90))
    link = aed_links(engine, incident_id)[AED_1]
    assert (link.fetcher_id, link.fetcher_since) == ("r-5", NOW + timedelta(seconds=90))
    alerted = alerts(engine, incident_id)
    assert (alerted["r-2"].status, alerted["r-2"].designated) == ("alerted", False)
    assert alerted["r-5"].designated
    assert len(outbox(engine)) == messages


def test_enough_acceptances_stand_the_unanswered_down(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings, accept_target_cpr=2)

    for rid, seconds in (("r-1", 10), ("r-3", 20)):
        assert core.answer(incident_id, rid, "accept", NOW + timedelta(seconds=seconds)
                           ).cancelled == []
    assert outbox(engine, "cancel") == [], "the AED has no accepted fetcher yet"
    result = core.answer(incident_id, "r-2", "accept", NOW + timedelta(seconds=30))

    assert sorted(result.cancelled) == ["r-4", "r-5", "r-6"]
    cancels = outbox(engine, "cancel")
    assert sorted(m.responder_id for m in cancels) == ["r-4", "r-5", "r-6"]
    assert all(m.payload == {"v": 1, "incident_id": incident_id, "reason": "enough_responders"}
               for m in cancels)
    alerted = alerts(engine, incident_id)
    assert {rid: a.status for rid, a in alerted.items()} == {
        "r-1": "accepted", "r-2": "accepted", "r-3": "accepted",
        "r-4": "cancelled", "r-5": "cancelled", "r-6": "cancelled"}
    assert incident(engine, incident_id).enough_at == NOW + timedelta(seconds=30)
    assert set(busy_responders(engine)) == {"r-1", "r-2", "r-3"}
    assert planned_responders(core, VICTIM, NOW + timedelta(minutes=1)) == {"r-4", "r-5", "r-6"}
    late = core.answer(incident_id, "r-5", "accept", NOW + timedelta(seconds=40))
    assert late.status == "cancelled"
    assert alerts(engine, incident_id)["r-5"].status == "cancelled"


def test_a_responder_who_declines_and_then_accepts_is_busy_with_the_incident(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    core.answer(incident_id, "r-3", "decline", NOW + timedelta(seconds=10))

    result = core.answer(incident_id, "r-3", "accept", NOW + timedelta(seconds=30))

    assert result.status == "accepted"
    assert alerts(engine, incident_id)["r-3"].status == "accepted"
    assert responder(engine, "r-3").busy_incident == incident_id
    nearby = core.intake(CALLER, call("ref-2", at=near(-250)),
                         NOW + timedelta(minutes=1)).incident.id
    assert "r-3" not in alerts(engine, nearby)


def test_answers_for_unknown_incidents_strangers_or_closed_incidents_are_refused(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    add_responder(engine, "r-elsewhere", near(9000), NOW)
    later = NOW + timedelta(seconds=30)

    with pytest.raises(NotFound) as unknown:
        core.answer("inc-000000000000", "r-1", "accept", later)
    assert unknown.value.code == "unknown_incident"
    with pytest.raises(NotFound) as stranger:
        core.answer(incident_id, "r-elsewhere", "accept", later)
    assert stranger.value.code == "not_alerted"
    core.close(incident_id, "closed_by_dispatch", later)
    with pytest.raises(Conflict) as closed:
        core.answer(incident_id, "r-1", "accept", later + timedelta(seconds=1))
    assert closed.value.code == "incident_closed"


# -- locations ------------------------------------------------------------------------------------

def test_an_accepted_responders_location_is_kept_fifteen_minutes_after_acceptance_then_purged(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    accepted_at = NOW + timedelta(seconds=10)
    core.answer(incident_id, "r-1", "accept", accepted_at)
    on_the_way = near(0, 10)

    core.record_location(incident_id, "r-1", *on_the_way, ts=NOW + timedelta(minutes=5),
                         now=NOW + timedelta(minutes=1))

    with Session(engine) as session:
        [stored] = session.exec(select(ResponderLocation)).all()
    expires = accepted_at + timedelta(minutes=15)
    assert (stored.responder_id, (stored.lat, stored.lon)) == ("r-1", on_the_way)
    assert stored.expires_at == expires
    assert stored.ts == NOW + timedelta(minutes=1), "a time ahead of the clock is not kept"
    core.tick(expires - timedelta(seconds=1))
    assert count_rows(engine, ResponderLocation) == 1
    core.tick(expires)
    assert count_rows(engine, ResponderLocation) == 0


def test_a_location_from_a_responder_who_has_not_accepted_is_refused(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    core.answer(incident_id, "r-3", "decline", NOW + timedelta(seconds=10))

    for rid in ("r-1", "r-3"):  # not answered, declined
        with pytest.raises(Conflict) as refused:
            core.record_location(incident_id, rid, *VICTIM, ts=NOW + timedelta(seconds=30),
                                 now=NOW + timedelta(seconds=30))
        assert refused.value.code == "not_accepted"
    assert count_rows(engine, ResponderLocation) == 0


def test_locations_after_fifteen_minutes_of_tracking_are_refused(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    accepted_at = NOW + timedelta(seconds=10)
    core.answer(incident_id, "r-1", "accept", accepted_at)
    last_moment = accepted_at + timedelta(minutes=15) - timedelta(seconds=1)

    core.record_location(incident_id, "r-1", *VICTIM, ts=last_moment, now=last_moment)
    with pytest.raises(Conflict) as refused:
        ended = accepted_at + timedelta(minutes=15)
        core.record_location(incident_id, "r-1", *VICTIM, ts=ended, now=ended)

    assert refused.value.code == "tracking_ended"
    assert count_rows(engine, ResponderLocation) == 1


# -- closing --------------------------------------------------------------------------------------

def test_closing_stands_everyone_down_and_sends_each_alerted_responder_a_questionnaire(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    core.answer(incident_id, "r-1", "accept", NOW + timedelta(seconds=10))
    core.answer(incident_id, "r-3", "decline", NOW + timedelta(seconds=20))
    closed_at = NOW + timedelta(minutes=10)

    core.close(incident_id, "closed_by_dispatch", closed_at)

    stored = incident(engine, incident_id)
    assert (stored.state, stored.closed_at, stored.close_reason) == (
        "closed", closed_at, "closed_by_dispatch")
    cancels = outbox(engine, "cancel")
    assert sorted(m.responder_id for m in cancels) == sorted(set(STREET) - {"r-3"})
    assert all(m.payload == {"v": 1, "incident_id": incident_id, "reason": "incident_closed"}
               for m in cancels)
    statuses = {rid: a.status for rid, a in alerts(engine, incident_id).items()}
    assert statuses == {"r-1": "accepted", "r-2": "cancelled", "r-3": "declined",
                        "r-4": "cancelled", "r-5": "cancelled", "r-6": "cancelled"}
    assert busy_responders(engine) == {}
    assert planned_responders(core, VICTIM, closed_at) == set(STREET)

    with Session(engine) as session:
        questionnaires = {q.responder_id: q for q in session.exec(select(Questionnaire))}
    assert set(questionnaires) == set(STREET)
    expires = closed_at + timedelta(hours=72)
    for rid, questionnaire in questionnaires.items():
        assert (questionnaire.incident_id, questionnaire.sent_at, questionnaire.expires_at) == (
            incident_id, closed_at, expires)
        [message] = outbox(engine, "questionnaire", rid)
        assert message.payload["incident_id"] == incident_id
        assert questionnaire.token in message.payload["url"]
        assert message.payload["url"] == core.settings.alarm.questionnaire_url.replace(
            "{token}", questionnaire.token)
        assert message.payload["expires_at"] == rfc3339(expires)
    assert len({q.token for q in questionnaires.values()}) == len(STREET)


def test_closing_twice_sends_nothing_more(engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    core.close(incident_id, "closed_by_dispatch", NOW + timedelta(minutes=10))
    messages = len(outbox(engine))

    again = core.close(incident_id, "closed_again", NOW + timedelta(minutes=20))

    assert (again.close_reason, again.closed_at) == ("closed_by_dispatch",
                                                     NOW + timedelta(minutes=10))
    assert len(outbox(engine)) == messages
    assert count_rows(engine, Questionnaire) == len(STREET)


def questionnaire_token(engine: Engine, responder_id: str) -> str:
    with Session(engine) as session:
        return session.exec(select(Questionnaire.token)
                            .where(Questionnaire.responder_id == responder_id)).one()


def test_a_responder_asking_for_aftercare_gets_a_task_due_within_a_day(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    closed_at = NOW + timedelta(minutes=10)
    core.close(incident_id, "closed_by_dispatch", closed_at)
    answered_at = closed_at + timedelta(hours=3)

    core.answer_questionnaire(questionnaire_token(engine, "r-1"), {"went": True},
                              aftercare=True, now=answered_at)
    core.answer_questionnaire(questionnaire_token(engine, "r-2"), {"went": False},
                              aftercare=False, now=answered_at)

    with Session(engine) as session:
        [task] = session.exec(select(AftercareTask)).all()
        answered = session.get(Questionnaire, questionnaire_token(engine, "r-1"))
    assert (task.incident_id, task.responder_id, task.requested_at, task.due_at) == (
        incident_id, "r-1", answered_at, answered_at + timedelta(hours=24))
    assert task.done_at is None
    assert answered is not None and answered.answered_at == answered_at
    assert answered.answers == '{"went": true}'


def test_a_questionnaire_is_answered_once_and_closes_after_72_hours(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings)
    closed_at = NOW + timedelta(minutes=10)
    core.close(incident_id, "closed_by_dispatch", closed_at)
    last_moment = closed_at + timedelta(hours=72) - timedelta(seconds=1)

    core.answer_questionnaire(questionnaire_token(engine, "r-1"), {}, True, last_moment)
    with pytest.raises(Conflict) as twice:
        core.answer_questionnaire(questionnaire_token(engine, "r-1"), {}, True, last_moment)
    with pytest.raises(Conflict) as late:
        core.answer_questionnaire(questionnaire_token(engine, "r-2"), {}, True,
                                  closed_at + timedelta(hours=72))
    with pytest.raises(NotFound) as unknown:
        core.answer_questionnaire("no-such-token", {}, True, last_moment)

    assert twice.value.code == "already_answered"
    assert late.value.code == "questionnaire_closed"
    assert unknown.value.code == "unknown_questionnaire"
    assert count_rows(engine, AftercareTask) == 1


def test_an_incident_is_closed_by_the_tick_once_the_incident_timeout_has_passed(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings, incident_timeout_minutes=60)
    excluded = core.intake(CALLER, call("ref-x", at=near(40), exclusions=("trauma",)),
                           NOW).incident.id

    core.tick(NOW + timedelta(minutes=59))
    assert incident(engine, incident_id).state == "dispatched"
    assert incident(engine, excluded).state == "excluded"

    core.tick(NOW + timedelta(minutes=60))
    for closed in (incident(engine, incident_id), incident(engine, excluded)):
        assert (closed.state, closed.close_reason, closed.closed_at) == (
            "closed", "timeout", NOW + timedelta(minutes=60))
    assert sorted(m.responder_id for m in outbox(engine, "cancel")) == sorted(STREET)
    assert busy_responders(engine) == {}


# -- AEDs back in service -------------------------------------------------------------------------

def test_a_monitored_aed_is_released_after_close_once_its_cabinet_reports_it_present(
        engine: Engine, settings: Settings) -> None:
    device = build_street(engine)
    assert device is not None
    core = loaded(engine, settings)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    report_cabinet(engine, device, NOW + timedelta(minutes=3), aed_present=False)
    closed_at = NOW + timedelta(minutes=20)

    core.close(incident_id, "closed_by_dispatch", closed_at)
    core.tick(closed_at + timedelta(minutes=1))
    assert aed_links(engine, incident_id)[AED_1].released_at is None
    assert aed(engine, AED_1).in_use_incident == incident_id

    back = closed_at + timedelta(minutes=5)
    report_cabinet(engine, device, back, aed_present=True)
    core.tick(back + timedelta(seconds=1))

    assert aed_links(engine, incident_id)[AED_1].released_at == back + timedelta(seconds=1)
    assert aed(engine, AED_1).in_use_incident is None
    following = core.intake(CALLER, call("ref-2"), back + timedelta(minutes=1)).incident.id
    assert set(aed_links(engine, following)) == {AED_1}


def test_a_monitored_aed_never_taken_from_its_cabinet_is_released_at_close(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    core = loaded(engine, settings)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    closed_at = NOW + timedelta(minutes=10)

    core.close(incident_id, "closed_by_dispatch", closed_at)

    assert aed_links(engine, incident_id)[AED_1].released_at == closed_at
    assert aed(engine, AED_1).in_use_incident is None


def test_after_a_pick_up_the_aed_waits_for_a_cabinet_report_newer_than_the_pick_up(
        engine: Engine, settings: Settings) -> None:
    device = build_street(engine)
    assert device is not None
    record_device_event(engine, device, "door_opened", NOW - timedelta(hours=2))  # before
    core = loaded(engine, settings)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    core.tick(NOW + timedelta(seconds=30))
    assert aed_links(engine, incident_id)[AED_1].picked_up_at is None

    picked_up = NOW + timedelta(minutes=2)
    record_device_event(engine, device, "door_opened", picked_up)
    core.tick(picked_up + timedelta(seconds=1))
    assert aed_links(engine, incident_id)[AED_1].picked_up_at == picked_up

    core.close(incident_id, "closed_by_dispatch", NOW + timedelta(minutes=20))
    core.tick(NOW + timedelta(minutes=21))
    assert aed_links(engine, incident_id)[AED_1].released_at is None, \
        "the cabinet's report from before the pick-up says nothing about its return"
    report_cabinet(engine, device, NOW + timedelta(minutes=30), aed_present=False)
    core.tick(NOW + timedelta(minutes=31))
    assert aed_links(engine, incident_id)[AED_1].released_at is None

    report_cabinet(engine, device, NOW + timedelta(minutes=40), aed_present=True)
    core.tick(NOW + timedelta(minutes=41))

    assert aed_links(engine, incident_id)[AED_1].released_at == NOW + timedelta(minutes=41)
    assert aed(engine, AED_1).in_use_incident is None


def test_a_close_before_the_tick_has_seen_a_pick_up_does_not_release_the_aed(
        engine: Engine, settings: Settings) -> None:
    device = build_street(engine)
    assert device is not None
    core = loaded(engine, settings)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    record_device_event(engine, device, "aed_removed", NOW + timedelta(minutes=2))

    core.close(incident_id, "closed_by_dispatch", NOW + timedelta(minutes=2, seconds=30))

    assert aed_links(engine, incident_id)[AED_1].released_at is None
    assert aed(engine, AED_1).in_use_incident == incident_id


def test_an_unmonitored_aed_nobody_went_for_is_released_at_close(
        engine: Engine, settings: Settings) -> None:
    build_street(engine, monitored=False)
    core = loaded(engine, settings, allow_unverified_aeds=True)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    link = aed_links(engine, incident_id)[AED_1]
    assert link.unverified
    assert all(m.payload["aed"]["unverified"] for m in outbox(engine, "alert")
               if m.payload["aed"] is not None)
    closed_at = NOW + timedelta(minutes=10)

    core.close(incident_id, "closed_by_dispatch", closed_at)

    assert aed_links(engine, incident_id)[AED_1].released_at == closed_at
    assert aed(engine, AED_1).in_use_incident is None


def test_an_unmonitored_aed_that_was_fetched_waits_for_a_declaration_after_the_close(
        engine: Engine, settings: Settings) -> None:
    build_street(engine, monitored=False)
    core = loaded(engine, settings, allow_unverified_aeds=True)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    core.answer(incident_id, "r-2", "accept", NOW + timedelta(seconds=20))
    closed_at = NOW + timedelta(minutes=10)

    core.close(incident_id, "closed_by_dispatch", closed_at)
    declare_ready(engine, AED_1, closed_at - timedelta(minutes=1))  # from before the close
    core.tick(closed_at + timedelta(minutes=30))
    assert aed_links(engine, incident_id)[AED_1].released_at is None
    assert aed(engine, AED_1).in_use_incident == incident_id

    declare_ready(engine, AED_1, closed_at + timedelta(hours=1))
    core.tick(closed_at + timedelta(hours=1, seconds=1))

    assert aed_links(engine, incident_id)[AED_1].released_at == closed_at + timedelta(
        hours=1, seconds=1)
    assert aed(engine, AED_1).in_use_incident is None


# -- responders who never answer ------------------------------------------------------------------

def ignored_alarm(core: AlarmCore, reference: str, at: datetime, answers: dict[str, str],
                  open_for: timedelta = timedelta(minutes=2)) -> str:
    """One incident at the victim called in at `at`: `answers` given ten seconds later,
    everyone else silent, closed `open_for` after the call. Returns the incident id."""
    incident_id = core.intake(CALLER, call(reference), at).incident.id
    for rid, answer in answers.items():
        core.answer(incident_id, rid, answer, at + timedelta(seconds=10))
    core.close(incident_id, "closed_by_dispatch", at + open_for)
    return incident_id


def test_a_responder_who_ignores_alarms_in_a_row_is_not_alerted_until_they_confirm(
        engine: Engine, settings: Settings) -> None:
    add_responders(engine, {"silent": near(0, 30), "keen": near(0, -30)}, NOW)
    core = loaded(engine, settings, inactive_after_ignored=3, fetcher_timeout_s=90)
    for i in range(3):
        incident_id = ignored_alarm(core, f"ref-{i}", NOW + timedelta(minutes=10 * i),
                                    {"keen": "accept"})
        assert "silent" in alerts(engine, incident_id)
        assert responder(engine, "silent").active == (i < 2)

    silent = responder(engine, "silent")
    assert (silent.ignored_in_row, silent.inactive_since) == (3, NOW + timedelta(minutes=22))
    assert responder(engine, "keen").active and responder(engine, "keen").ignored_in_row == 0
    fourth = ignored_alarm(core, "ref-3", NOW + timedelta(minutes=40), {})
    assert set(alerts(engine, fourth)) == {"keen"}

    confirmed_at = NOW + timedelta(minutes=50)
    confirm_profile(engine, "silent", confirmed_at)
    core.refresh(confirmed_at)
    fifth = core.intake(CALLER, call("ref-4"), confirmed_at + timedelta(minutes=1)).incident.id

    assert set(alerts(engine, fifth)) == {"silent", "keen"}
    silent = responder(engine, "silent")
    assert (silent.active, silent.ignored_in_row, silent.inactive_since) == (True, 0, None)


def test_any_answer_resets_the_count_of_ignored_alarms(
        engine: Engine, settings: Settings) -> None:
    add_responders(engine, {"sometimes": near(0, 30)}, NOW)
    core = loaded(engine, settings, inactive_after_ignored=3)
    answers: list[dict[str, str]] = [{}, {}, {"sometimes": "decline"}, {}, {}]

    for i, given in enumerate(answers):
        ignored_alarm(core, f"ref-{i}", NOW + timedelta(minutes=10 * i), given)

    found = responder(engine, "sometimes")
    assert (found.active, found.ignored_in_row) == (True, 2)


def test_alarms_closed_within_the_fetcher_timeout_do_not_count_as_ignored(
        engine: Engine, settings: Settings) -> None:
    add_responders(engine, {"busy-person": near(0, 30)}, NOW)
    core = loaded(engine, settings, inactive_after_ignored=2, fetcher_timeout_s=90)

    for i in range(3):
        ignored_alarm(core, f"ref-{i}", NOW + timedelta(minutes=10 * i), {},
                      open_for=timedelta(seconds=89))

    found = responder(engine, "busy-person")
    assert (found.active, found.ignored_in_row) == (True, 0)


# -- responder import -----------------------------------------------------------------------------

RESPONDER_CSV = """\
id,name,phone,date_of_birth,certificate_date,training,channel,available,home_lat,home_lon
imp-1,Anna de Vries,,1980-02-03,2026-06-01,medical,app,yes,52.0910,5.1220
imp-2,Bram Smit,+31611111111,1975-09-30,2026-03-15,non_medical,sms,ja,52.0900,5.1200
imp-kid,Cas Jong,,2012-01-01,2026-06-01,non_medical,app,yes,52.0900,5.1200
imp-nodob,Dirk Leeg,,,2026-06-01,non_medical,app,yes,52.0900,5.1200
imp-pager,Eva Pieper,,1990-01-01,2026-06-01,non_medical,pager,yes,52.0900,5.1200
imp-1,Anna de Vries (again),,1980-02-03,2026-06-01,medical,app,yes,52.0910,5.1220
imp-maybe,Fenna Twijfel,,1990-01-01,2026-06-01,non_medical,app,maybe,52.0900,5.1200
"""


def test_a_responder_csv_stores_the_good_rows_and_reports_each_bad_one_by_line(
        engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "responders.csv"
    path.write_text(RESPONDER_CSV, encoding="utf-8")

    report = import_responders(engine, path, NOW, settings.dispatch)

    assert (report.rows, report.created, report.updated) == (7, 2, 0)
    reasons = dict(report.rejected)
    assert sorted(reasons) == [4, 5, 6, 7, 8]
    assert "18 years" in reasons[4]
    assert "date_of_birth" in reasons[5]
    assert "channel" in reasons[6]
    assert "imp-1" in reasons[7] and "twice" in reasons[7]
    assert "available" in reasons[8]
    assert report.to_json()["rejected"][0] == {"line": 4, "reason": reasons[4]}
    first, second = responder(engine, "imp-1"), responder(engine, "imp-2")
    assert (first.name, first.training, first.channel) == ("Anna de Vries", "medical", "app")
    assert (second.channel, second.phone, second.active) == ("sms", "+31611111111", True)
    assert count_rows(engine, Responder) == 2


def test_re_importing_a_responder_csv_updates_instead_of_duplicating(
        engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "responders.csv"
    path.write_text(RESPONDER_CSV, encoding="utf-8")
    import_responders(engine, path, NOW, settings.dispatch)
    path.write_text(RESPONDER_CSV.replace("Bram Smit", "Bram Smit-Jansen"), encoding="utf-8")

    again = import_responders(engine, path, NOW + timedelta(days=1), settings.dispatch)

    assert (again.created, again.updated, len(again.rejected)) == (0, 2, 5)
    with Session(engine) as session:
        ids = sorted(session.exec(select(Responder.id)).all())
    assert ids == ["imp-1", "imp-2"]
    updated = responder(engine, "imp-2")
    assert updated.name == "Bram Smit-Jansen"
    assert updated.updated_at > NOW, "stamped when written, so a running alarm core sees it"


def test_a_re_import_without_a_column_keeps_what_the_responders_registered(
        engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "responders.csv"
    path.write_text("id,name,date_of_birth,home_lat,home_lon,quiet_from,quiet_until\n"
                    "q-1,Quiet One,1980-02-02,52.09,5.12,22:00,07:00\n", encoding="utf-8")
    import_responders(engine, path, NOW, settings.dispatch)
    path.write_text("id,name,date_of_birth,home_lat,home_lon\n"
                    "q-1,Quiet One,1980-02-02,52.10,5.12\n", encoding="utf-8")

    import_responders(engine, path, NOW + timedelta(days=1), settings.dispatch)

    kept = responder(engine, "q-1")
    assert (kept.home_lat, str(kept.quiet_from), str(kept.quiet_until)) == (
        52.10, "22:00:00", "07:00:00")


# -- found in review ------------------------------------------------------------------------------

def test_an_aed_the_pools_think_ready_goes_out_flagged_when_the_database_says_unverified(
        engine: Engine, settings: Settings) -> None:
    build_street(engine, now=NOW - timedelta(minutes=2))  # its cabinet reported 2 min before
    core = loaded(engine, settings, allow_unverified_aeds=True)
    later = NOW + timedelta(minutes=40)  # telemetry now stale: unverified, still allowed

    incident_id = core.intake(CALLER, call("ref-1"), later).incident.id

    assert aed_links(engine, incident_id)[AED_1].unverified
    assert all(m.payload["aed"]["unverified"] for m in outbox(engine, "alert")
               if m.payload["aed"] is not None)


def test_quiet_hours_with_seconds_never_make_a_call_fail(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    add_responder(engine, "r-quiet", near(30), NOW,
                  quiet_from=time(22, 0, 0), quiet_until=time(15, 0, 30))
    core = loaded(engine, settings)

    result = core.intake(CALLER, call("ref-1"), NOW + timedelta(seconds=10))  # 15:00:10 local

    assert result.plan is not None and result.plan.responders
    assert responder(engine, "r-quiet").quiet_until == time(15, 0), "kept to the minute"
    assert "r-quiet" in alerts(engine, result.incident.id), "its quiet hours end at 15:00"


def test_a_responder_refuted_by_the_database_is_left_out_and_the_others_are_alerted(
        engine: Engine, settings: Settings) -> None:
    build_street(engine)
    core = loaded(engine, settings)
    with session_scope(engine) as session:  # behind the pools' back, no updated_at change
        session.execute(update(Responder).where(col(Responder.id) == "r-1")
                        .values(available=False))

    result = core.intake(CALLER, call("ref-1"), NOW)

    assert "r-1" not in alerts(engine, result.incident.id)
    assert set(alerts(engine, result.incident.id)) == set(STREET) - {"r-1"}


def test_fetchers_who_let_the_aed_go_are_not_given_it_back(
        engine: Engine, settings: Settings) -> None:
    core, incident_id = street_incident(engine, settings, fetcher_timeout_s=90)
    holders = [aed_links(engine, incident_id)[AED_1].fetcher_id]

    for minute in range(1, 6):
        core.tick(NOW + timedelta(minutes=2 * minute))
        holders.append(aed_links(engine, incident_id)[AED_1].fetcher_id)

    held = [h for h in holders if h is not None]
    assert len(held) == len(set(held)), f"nobody holds it twice: {holders}"
    assert "r-1" not in held, "the nearest responder stays on CPR"


def test_a_picked_up_aed_is_not_reassigned_when_its_fetcher_never_pressed_accept(
        engine: Engine, settings: Settings) -> None:
    device = build_street(engine)
    assert device is not None
    core = loaded(engine, settings, fetcher_timeout_s=90)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id
    record_device_event(engine, device, "door_opened", NOW + timedelta(seconds=60))
    fetcher = aed_links(engine, incident_id)[AED_1].fetcher_id

    core.tick(NOW + timedelta(seconds=61))
    core.tick(NOW + timedelta(minutes=5))

    link = aed_links(engine, incident_id)[AED_1]
    assert (link.fetcher_id, link.fetcher_accepted) == (fetcher, True)
