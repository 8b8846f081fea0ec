"""The pure rules of data governance: what the audit log records of a change, what stays of an
incident once its personal data goes, and the register's figures of it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarm_core.aftercall import minutes_answer, structured_answers
from alarm_core.anonymise import (
    answers_without_free_text,
    coarse_plan,
    coarse_point,
    reason_code,
    register_record,
)
from alarm_core.models import Incident, IncidentAed, IncidentResponder, Questionnaire
from fleet.audit import SECRET, changed_fields
from fleet.population import Pc4Place, pc4_locator

CALL = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


# -- the audit log --------------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "expected"), [
    ({}, {"name": "Stadhuis", "address": None}, {"name": [None, "Stadhuis"]}),
    ({"name": "A"}, {"name": "A"}, {}),
    ({"lat": 52.0}, {"lat": 52.1}, {"lat": [52.0, 52.1]}),
    ({"pads_expiry": date(2027, 1, 31)}, {"pads_expiry": None},
     {"pads_expiry": ["2027-01-31", None]}),
    ({"at": None}, {"at": CALL}, {"at": [None, "2026-11-25T14:00:00+00:00"]}),
    ({"cabinet_code": "1234"}, {"cabinet_code": "9876"}, {"cabinet_code": [SECRET, SECRET]}),
    ({"cabinet_code": None}, {"cabinet_code": "1234"}, {"cabinet_code": [None, SECRET]}),
    ({"cabinet_code": "1234"}, {"cabinet_code": "1234"}, {}),
])
def test_an_audit_entry_holds_each_changed_field_old_and_new_and_hides_secrets(
        old: dict[str, Any], new: dict[str, Any], expected: dict[str, Any]) -> None:
    assert changed_fields(old, new, secret=("cabinet_code",)) == expected


@given(st.none() | st.text(), st.none() | st.text())
def test_a_secret_field_shows_only_whether_it_was_set_changed_or_cleared(
        before: str | None, after: str | None) -> None:
    changes = changed_fields({"code": before}, {"code": after}, secret=("code",))

    assert all(value in (None, SECRET) for pair in changes.values() for value in pair)
    assert bool(changes) == (before != after)


# -- what stays of an incident --------------------------------------------------------------------

@pytest.mark.parametrize(("reason", "kept"), [
    (None, None), ("timeout", "timeout"), ("closed_by_dispatch", "closed_by_dispatch"),
    ("stopped: J. Pietersen", "other"), ("Caller hung up", "other"), ("", "other"),
])
def test_a_close_reason_stays_only_when_it_is_a_code(reason: str | None,
                                                      kept: str | None) -> None:
    assert reason_code(reason) == kept


def test_a_coarse_place_is_the_pc4_centroid_or_a_kilometre_grid_outside_every_area() -> None:
    area = Pc4Place("3512", "Utrecht", 52.0907, 5.12403)

    assert coarse_point(52.09123, 5.12187, area) == (52.0907, 5.12403)
    assert coarse_point(48.85661, 2.35222, None) == (48.86, 2.35)


def test_the_pc4_of_a_point_is_the_bundled_cbs_area_it_lies_in() -> None:
    locator = pc4_locator()

    utrecht = locator.locate(52.0907, 5.1214)
    dam = locator.locate(52.3731, 4.8926)

    assert utrecht is not None and (utrecht.postcode, utrecht.municipality) == ("3512",
                                                                                 "Utrecht")
    assert dam is not None and (dam.postcode, dam.municipality) == ("1012", "Amsterdam")
    assert locator.locate(48.8566, 2.3522) is None  # Paris
    assert utrecht == locator.locate(utrecht.lat, utrecht.lon), "its centroid lies in it"


PLAN: dict[str, Any] = {
    "victim": {"lat": 52.0907, "lon": 5.1214}, "at": "2026-11-25T14:00:00Z", "radius_m": 1000,
    "responders": [
        {"id": "r-1", "role": "cpr", "aed_id": None, "distance_m": 20.0, "eta_s": 39.0,
         "designated_fetcher": False},
        {"id": "r-2", "role": "fetch_aed", "aed_id": "aed-1", "distance_m": 160.0,
         "eta_s": 160.0, "designated_fetcher": True}],
    "aeds": [{"id": "aed-1", "lat": 52.092, "lon": 5.1214, "fetcher_id": "r-2", "eta_s": 160.0}],
    "counts": {"alerted": 2, "cpr": 1, "fetch_aed": 1, "aeds": 1},
    "expected_first_cpr_s": 39.0, "expected_first_aed_s": 160.0, "skipped_aeds": {},
}


def test_a_coarse_plan_keeps_roles_and_times_but_not_who_or_where() -> None:
    coarse = coarse_plan(PLAN, (52.09, 5.12))

    assert coarse["victim"] == {"lat": 52.09, "lon": 5.12}
    assert [r["role"] for r in coarse["responders"]] == ["cpr", "fetch_aed"]
    assert coarse["counts"] == PLAN["counts"]
    assert coarse["aeds"][0]["fetcher_id"] is None
    assert '"r-1"' not in json.dumps(coarse) and '"r-2"' not in json.dumps(coarse)
    # An AED's public place with its distance to the victim would give the victim's place back.
    assert not {"lat", "lon", "distance_m"} & set(coarse["aeds"][0])
    assert "skipped_aeds" not in coarse


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=3,
                        max_size=20), max_size=20, unique=True))
def test_no_responder_id_survives_a_coarse_plan(ids: list[str]) -> None:
    plan = {**PLAN, "responders": [{"id": f"R{rid}", "role": "cpr"} for rid in ids],
            "aeds": [{"id": "aed-1", "fetcher_id": f"R{rid}"} for rid in ids[:3]]}

    written = json.dumps(coarse_plan(plan, (52.09, 5.12)))

    assert not any(f'"R{rid}"' in written for rid in ids)


@pytest.mark.parametrize(("value", "minutes"), [
    (3, 3), ("6", 6), (" 12 ", 12), (0, 0), (240, 240), (241, None), (-1, None), ("-1", None),
    ("3.5", None), (3.5, None), (True, None), (None, None), ("soon", None),
    ("\u00b2", None), ("\u0663", None), ("9" * 5000, None),  # digits int() refuses or reads
])
def test_a_minutes_answer_is_a_whole_number_up_to_four_hours(value: object,
                                                             minutes: int | None) -> None:
    assert minutes_answer(value) == minutes


def test_only_closed_answers_survive_and_free_text_never_does() -> None:
    answers = {"arrived": "yes", "cpr": "maybe", "aed_used": "I do not know",
               "arrived_after_minutes": "4", "remarks": "Jan, 06-12345678",
               "went": True, "notes": "Kerkstraat 7"}

    assert structured_answers(answers) == {"arrived": "yes", "aed_used": "I do not know",
                                           "arrived_after_minutes": 4}
    assert json.loads(answers_without_free_text(json.dumps(answers)) or "") == \
        structured_answers(answers)
    assert answers_without_free_text("not json") == "{}"
    assert answers_without_free_text(None) is None


# -- the register's figures -----------------------------------------------------------------------

def incident(**fields: Any) -> Incident:
    values: dict[str, Any] = {
        "id": "inc-1", "caller": "112", "reference": "ref", "request_sha256": "", "lat": 52.09,
        "lon": 5.12, "called_at": CALL - timedelta(seconds=40), "received_at": CALL,
        "source": "112", "state": "closed", "outcome": "dispatched",
        "expected_first_cpr_s": 39.4, "expected_first_aed_s": 160.6}
    values.update(fields)
    return Incident(**values)


def alert(rid: str, role: str, status: str, after_s: float = 0) -> IncidentResponder:
    return IncidentResponder(incident_id="inc-1", responder_id=rid, role=role, distance_m=10,
                             eta_s=60, status=status,
                             alerted_at=CALL + timedelta(seconds=after_s))


def answered(rid: str | None, **answers: Any) -> Questionnaire:
    return Questionnaire(token=f"t-{rid}", incident_id="inc-1", responder_id=rid,
                         sent_at=CALL, expires_at=CALL + timedelta(days=3),
                         answered_at=CALL + timedelta(hours=1), answers=json.dumps(answers))


def unanswered(rid: str) -> Questionnaire:
    return Questionnaire(token=f"t-{rid}", incident_id="inc-1", responder_id=rid,
                         sent_at=CALL, expires_at=CALL + timedelta(days=3))


def test_the_register_record_counts_answers_and_takes_the_earliest_reported_arrivals() -> None:
    alerts = [alert("r-1", "cpr", "accepted"), alert("r-2", "fetch_aed", "accepted"),
              alert("r-3", "cpr", "declined"), alert("r-4", "fetch_aed", "accepted", 90),
              alert("r-5", "cpr", "cancelled")]
    links = [IncidentAed(incident_id="inc-1", aed_id="aed-1", distance_m=150,
                         picked_up_at=CALL + timedelta(minutes=2)),
             IncidentAed(incident_id="inc-1", aed_id="aed-2", distance_m=900)]
    questionnaires = [
        answered("r-1", arrived="yes", cpr="yes", aed_used="no", arrived_after_minutes=4),
        answered("r-2", arrived="yes", cpr="no", aed_used="yes", arrived_after_minutes=7),
        answered("r-4", arrived="yes", cpr="yes", aed_used="yes", arrived_after_minutes=5),
        answered(None, arrived="yes", cpr="yes", arrived_after_minutes=1),  # detached
        unanswered("r-3"), unanswered("r-5")]

    record = register_record(incident(), alerts, links, questionnaires, aftercare_requested=1)

    assert record.to_json() == {
        "outcome": "dispatched", "source": "112", "alert_delay_s": 40,
        "responders_alerted": 5, "responders_accepted": 3, "responders_on_scene": 4,
        "aeds_sent": 2, "aeds_picked_up": 1, "aed_brought": True,
        "expected_first_cpr_s": 39, "expected_first_aed_s": 161,
        "reported_first_cpr_s": 240,  # r-1 at 4 minutes (r-4: 90 s + 5 minutes)
        "reported_first_aed_s": 390,  # r-4, alerted 90 s late, 5 minutes (r-2: 7 minutes)
        "questionnaires_sent": 6, "questionnaires_answered": 4, "reported_cpr": 3,
        "reported_aed_attached": 2, "aftercare_requested": 1}


def test_a_call_nobody_answered_has_no_reported_times_and_no_aed_brought() -> None:
    record = register_record(incident(outcome="no_responders", expected_first_cpr_s=None,
                                      expected_first_aed_s=None), [], [], [], 0)

    assert (record.responders_alerted, record.aed_brought, record.reported_first_cpr_s,
            record.expected_first_aed_s) == (0, False, None, None)


def test_a_responder_who_did_not_reach_the_patient_gives_no_arrival_time() -> None:
    record = register_record(incident(), [alert("r-1", "cpr", "accepted")], [],
                             [answered("r-1", arrived="no", cpr="yes",
                                       arrived_after_minutes=3)], 0)

    assert (record.responders_on_scene, record.reported_first_cpr_s) == (0, None)
