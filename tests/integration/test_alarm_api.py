"""The alarm core's HTTP API as the 112 centre and a responder-app backend use it.

Flask's test client against the real application, the real alarm core and a real database (both
engines). Every refusal has the body `{"error": code, "message": words}` and alerts nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from werkzeug.test import TestResponse

from alarm_core.models import AftercareTask, Incident, Questionnaire, Responder
from alarm_core.service import AlarmCore
from alarm_core.wire import rfc3339
from fleet.settings import Settings
from web import create_app
from web.auth import create_token, revoke_tokens

from .alarm_support import (
    AED_1,
    NOW,
    OUTSIDE,
    STREET,
    VICTIM,
    alarm_settings,
    alerts,
    build_street,
    incident,
    near,
    outbox,
)
from .ingest_support import count_rows

CALLER = "112-utrecht"


@dataclass
class Api:
    """The application around a loaded alarm core, with a settable clock and tokens."""

    engine: Engine
    client: FlaskClient
    token: str
    """The 112 centre's."""
    other_token: str
    """Another dispatch centre's."""
    app_backend_token: str
    """A responder-app backend's: it relays answers."""
    now: datetime = NOW

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def post(self, path: str, body: Any = None, token: str | None = None) -> TestResponse:
        return self.client.post(path, json=body, headers=self.headers(token))

    def get(self, path: str, token: str | None = None) -> TestResponse:
        return self.client.get(path, headers=self.headers(token))

    def create(self, reference: str = "ref-1", **fields: Any) -> TestResponse:
        return self.post("/api/v1/incidents", call_body(reference, **fields))


def call_body(reference: str = "ref-1", at: tuple[float, float] = VICTIM, **fields: Any
              ) -> dict[str, Any]:
    body: dict[str, Any] = {"reference": reference, "lat": at[0], "lon": at[1],
                            "address": "Domplein 29, Utrecht",
                            "called_at": "2026-11-25T13:59:00Z", "source": "112"}
    body.update(fields)
    return body


@pytest.fixture
def api(engine: Engine, settings: Settings) -> Api:
    build_street(engine)
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW)
    holder: dict[str, Api] = {}
    app = create_app(engine, alarm_core=core, clock=lambda: holder["api"].now)
    app.config["TESTING"] = True
    api = Api(engine, app.test_client(), create_token(engine, CALLER, NOW),
              create_token(engine, "112-amsterdam", NOW),
              create_token(engine, "responder-app", NOW, "responders"))
    holder["api"] = api
    return api


def assert_error(response: TestResponse, status: int, code: str) -> None:
    """The response is the refusal `code` with `status`, in the one error shape."""
    body = response.get_json()
    assert response.status_code == status, body
    assert isinstance(body, dict) and set(body) == {"error", "message"}, body
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


def assert_nothing_alerted(api: Api) -> None:
    assert outbox(api.engine) == []
    assert count_rows(api.engine, Incident) == 0


def created(api: Api, reference: str = "ref-1") -> str:
    response = api.create(reference)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


# -- authorisation --------------------------------------------------------------------------------

ENDPOINTS = [("post", "/api/v1/incidents"), ("get", "/api/v1/incidents"),
             ("get", "/api/v1/incidents/inc-000000000000"),
             ("post", "/api/v1/incidents/inc-000000000000/close"),
             ("post", "/api/v1/incidents/inc-000000000000/responses")]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Bearer ", "Basic x",
                                           "revoked"],
                         ids=["no_header", "wrong_token", "empty_token", "not_bearer",
                              "revoked_token"])
def test_requests_without_a_valid_token_are_unauthorized_and_alert_nobody(
        api: Api, authorization: str | None) -> None:
    if authorization == "revoked":
        assert revoke_tokens(api.engine, CALLER, NOW) == 1
        authorization = f"Bearer {api.token}"
    headers = {} if authorization is None else {"Authorization": authorization}

    for method, path in ENDPOINTS:
        response = getattr(api.client, method)(path, json=call_body(), headers=headers)
        assert_error(response, 401, "unauthorized")

    assert_nothing_alerted(api)


# -- refusals of a call ---------------------------------------------------------------------------

@pytest.mark.parametrize("data, content_type", [
    (b"{not json", "application/json"),
    (b"", "application/json"),
    (b"null", "application/json"),
    (b'{"reference": "ref-1"}', "text/plain"),
], ids=["malformed", "empty", "null", "not_declared_json"])
def test_a_body_that_is_not_json_is_refused_as_invalid_body(
        api: Api, data: bytes, content_type: str) -> None:
    response = api.client.post("/api/v1/incidents", data=data, content_type=content_type,
                               headers=api.headers())

    assert_error(response, 400, "invalid_body")
    assert_nothing_alerted(api)


@pytest.mark.parametrize("path", [
    "/api/v1/incidents",
    "/api/v1/incidents/{id}/responses",
    "/api/v1/questionnaires/some-token",
])
def test_a_json_body_that_is_not_an_object_is_a_400_invalid_body(api: Api, path: str) -> None:
    incident_id = created(api) if "{id}" in path else ""
    messages = len(outbox(api.engine))

    token = api.app_backend_token if "responses" in path else None
    response = api.post(path.replace("{id}", incident_id), ["reference", "ref-2"], token)

    assert_error(response, 400, "invalid_body")
    assert len(outbox(api.engine)) == messages


@pytest.mark.parametrize("changes, code", [
    ({"reference": None}, "invalid_field"),
    ({"reference": "ref 1 with spaces"}, "invalid_field"),
    ({"reference": "x" * 101}, "invalid_field"),
    ({"lat": 91.0}, "invalid_field"),
    ({"lon": -180.5}, "invalid_field"),
    ({"lat": "52.09"}, "invalid_field"),
    ({"lat": True}, "invalid_field"),
    ({"lon": None}, "invalid_field"),
    ({"lat": None, "lon": None, "address": None}, "missing_location"),
    ({"lat": None, "lon": None}, "address_not_geocoded"),
    ({"address": ""}, "invalid_field"),
    ({"called_at": "2026-11-25T13:59:00"}, "invalid_field"),
    ({"called_at": "yesterday"}, "invalid_field"),
    ({"called_at": "2026-11-25T14:10:00Z"}, "invalid_field"),
    ({"called_at": "2026-11-25T12:00:00Z"}, "call_too_old"),
    ({"source": "fax"}, "invalid_field"),
    ({"exclusions": "trauma"}, "invalid_field"),
    ({"exclusions": ["trauma", 7]}, "invalid_field"),
    ({"exclusions": ["stubbed_toe"]}, "unknown_exclusion"),
], ids=lambda value: str(value)[:40])
def test_a_call_with_an_invalid_field_is_refused_with_its_code_and_alerts_nobody(
        api: Api, changes: dict[str, Any], code: str) -> None:
    body = {k: v for k, v in {**call_body(), **changes}.items() if v is not None}

    response = api.post("/api/v1/incidents", body)

    assert_error(response, 422, code)
    assert_nothing_alerted(api)


def test_a_call_outside_the_service_area_is_refused_and_alerts_nobody(api: Api) -> None:
    response = api.create(at=OUTSIDE)

    assert_error(response, 422, "outside_service_area")
    assert_nothing_alerted(api)


def test_unknown_paths_and_methods_answer_in_the_same_error_shape(api: Api) -> None:
    assert_error(api.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(api.client.delete("/api/v1/incidents", headers=api.headers()), 405,
                 "method_not_allowed")


def test_without_an_alarm_core_the_api_is_unavailable(engine: Engine) -> None:
    token = create_token(engine, CALLER, NOW)
    client = create_app(engine, clock=lambda: NOW).test_client()

    response = client.post("/api/v1/incidents", json=call_body(),
                           headers={"Authorization": f"Bearer {token}"})

    assert_error(response, 503, "alarm_core_unavailable")


# -- creating and reading incidents ---------------------------------------------------------------

def test_a_new_call_is_201_with_its_incident_document_and_alerts_every_responder(
        api: Api) -> None:
    response = api.create("ref-1", exclusions=[])

    assert response.status_code == 201
    document = response.get_json()
    assert document["id"].startswith("inc-")
    assert (document["reference"], document["state"], document["outcome"],
            document["source"], document["citizen_alarm"]) == (
        "ref-1", "dispatched", "dispatched", "112", True)
    assert document["victim"] == {"lat": VICTIM[0], "lon": VICTIM[1],
                                  "address": "Domplein 29, Utrecht"}
    assert (document["called_at"], document["received_at"], document["closed_at"]) == (
        "2026-11-25T13:59:00Z", "2026-11-25T14:00:00Z", None)
    assert document["counts"] == {"alerted": 6, "waiting": 6, "accepted": 0, "declined": 0,
                                  "cancelled": 0}
    assert {r["id"] for r in document["responders"]} == set(STREET)
    assert [(a["id"], a["fetcher_id"], a["fetcher_accepted"]) for a in document["aeds"]] == [
        (AED_1, "r-2", False)]
    assert document["plan"]["counts"]["alerted"] == 6
    assert sorted(m.responder_id for m in outbox(api.engine, "alert")) == sorted(STREET)
    shown = api.get(f"/api/v1/incidents/{document['id']}")
    assert shown.status_code == 200 and shown.get_json() == document


def test_an_excluded_call_is_201_without_a_citizen_alarm(api: Api) -> None:
    response = api.create("ref-1", exclusions=["unsafe_scene"])

    assert response.status_code == 201
    document = response.get_json()
    assert (document["state"], document["citizen_alarm"], document["responders"]) == (
        "excluded", False, [])
    assert document["exclusions"] == [{"code": "unsafe_scene", "reason":
                                       "the scene is not safe for citizen responders"}]
    assert outbox(api.engine) == []


def test_the_identical_call_again_is_200_with_the_same_incident_and_alerts_nobody_more(
        api: Api) -> None:
    first = api.create("ref-1")
    messages = len(outbox(api.engine))
    api.now = NOW + timedelta(seconds=30)

    again = api.create("ref-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(outbox(api.engine)) == messages
    assert count_rows(api.engine, Incident) == 1


def test_the_same_reference_with_other_content_is_a_409_conflict(api: Api) -> None:
    incident_id = created(api, "ref-1")
    messages = len(outbox(api.engine))

    response = api.create("ref-1", at=near(400))

    assert_error(response, 409, "reference_conflict")
    assert len(outbox(api.engine)) == messages
    assert (incident(api.engine, incident_id).lat, incident(api.engine, incident_id).lon) == (
        VICTIM)


def test_a_caller_sees_and_closes_only_its_own_incidents(api: Api) -> None:
    incident_id = created(api)

    assert_error(api.get(f"/api/v1/incidents/{incident_id}", api.other_token), 404,
                 "unknown_incident")
    assert_error(api.post(f"/api/v1/incidents/{incident_id}/close", {}, api.other_token), 404,
                 "unknown_incident")
    assert api.get("/api/v1/incidents", api.other_token).get_json() == []

    assert incident(api.engine, incident_id).state == "dispatched"
    assert outbox(api.engine, "cancel") == []
    assert [d["id"] for d in api.get("/api/v1/incidents").get_json()] == [incident_id]
    assert [d["id"] for d in api.get("/api/v1/incidents?state=dispatched").get_json()] == [
        incident_id]
    assert api.get("/api/v1/incidents?state=closed").get_json() == []
    assert_error(api.get("/api/v1/incidents/inc-000000000000"), 404, "unknown_incident")


# -- answers, closing, questionnaires -------------------------------------------------------------

def test_a_responder_app_backend_relays_accepts_and_declines(api: Api) -> None:
    incident_id = created(api)
    path = f"/api/v1/incidents/{incident_id}/responses"
    api.now = NOW + timedelta(seconds=20)

    accepted = api.post(path, {"responder_id": "r-2", "answer": "accept"}, api.app_backend_token)
    declined = api.post(path, {"responder_id": "r-3", "answer": "decline",
                               "ts": "2026-11-25T14:00:15Z"}, api.app_backend_token)

    assert accepted.status_code == declined.status_code == 200
    assert accepted.get_json() == {"incident_id": incident_id, "responder_id": "r-2",
                                   "status": "accepted", "role": "fetch_aed", "aed_id": AED_1,
                                   "cancelled": 0}
    assert declined.get_json()["status"] == "declined"
    stored = alerts(api.engine, incident_id)
    assert (stored["r-2"].status, stored["r-3"].status) == ("accepted", "declined")
    assert stored["r-2"].answered_at == NOW + timedelta(seconds=20)
    document = api.get(f"/api/v1/incidents/{incident_id}").get_json()
    assert document["aeds"][0]["fetcher_accepted"] is True


def test_the_incident_document_counts_everyone_alerted_after_answers(api: Api) -> None:
    incident_id = created(api)
    for rid, answer in (("r-1", "accept"), ("r-3", "decline")):
        api.post(f"/api/v1/incidents/{incident_id}/responses",
                 {"responder_id": rid, "answer": answer}, api.app_backend_token)

    counts = api.get(f"/api/v1/incidents/{incident_id}").get_json()["counts"]

    assert (counts["alerted"], counts["accepted"], counts["declined"]) == (6, 1, 1)


@pytest.mark.parametrize("body, status, code", [
    ({"answer": "accept"}, 422, "invalid_field"),
    ({"responder_id": "", "answer": "accept"}, 422, "invalid_field"),
    ({"responder_id": "r-1", "answer": "maybe"}, 422, "invalid_field"),
    ({"responder_id": "r-1", "answer": "accept", "ts": "soon"}, 422, "invalid_field"),
    ({"responder_id": "stranger", "answer": "accept"}, 404, "not_alerted"),
])
def test_an_invalid_answer_is_refused_and_changes_nothing(
        api: Api, body: dict[str, Any], status: int, code: str) -> None:
    incident_id = created(api)
    messages = len(outbox(api.engine))

    response = api.post(f"/api/v1/incidents/{incident_id}/responses", body,
                        api.app_backend_token)

    assert_error(response, status, code)
    assert {a.status for a in alerts(api.engine, incident_id).values()} == {"alerted"}
    assert len(outbox(api.engine)) == messages


def test_an_answer_for_an_unknown_incident_is_404(api: Api) -> None:
    response = api.post("/api/v1/incidents/inc-000000000000/responses",
                        {"responder_id": "r-1", "answer": "accept"}, api.app_backend_token)

    assert_error(response, 404, "unknown_incident")
    assert_nothing_alerted(api)


def test_closing_an_incident_returns_it_closed_and_stands_everyone_down(api: Api) -> None:
    incident_id = created(api)
    api.now = NOW + timedelta(minutes=12)

    response = api.post(f"/api/v1/incidents/{incident_id}/close",
                        {"reason": "patient_transported"})

    assert response.status_code == 200
    document = response.get_json()
    assert (document["state"], document["close_reason"], document["closed_at"]) == (
        "closed", "patient_transported", "2026-11-25T14:12:00Z")
    assert sorted(m.responder_id for m in outbox(api.engine, "cancel")) == sorted(STREET)
    assert sorted(m.responder_id for m in outbox(api.engine, "questionnaire")) == sorted(STREET)
    late = api.post(f"/api/v1/incidents/{incident_id}/responses",
                    {"responder_id": "r-1", "answer": "accept"}, api.app_backend_token)
    assert_error(late, 409, "incident_closed")


def test_a_dispatch_token_cannot_answer_for_responders_nor_an_app_token_post_calls(
        api: Api) -> None:
    incident_id = created(api)

    answered = api.post(f"/api/v1/incidents/{incident_id}/responses",
                        {"responder_id": "r-2", "answer": "accept"})
    posted = api.post("/api/v1/incidents", call_body("ref-9"), api.app_backend_token)

    assert_error(answered, 403, "forbidden")
    assert_error(posted, 403, "forbidden")
    assert {a.status for a in alerts(api.engine, incident_id).values()} == {"alerted"}


def test_closing_without_a_body_uses_the_dispatch_reason_and_a_bad_reason_is_refused(
        api: Api) -> None:
    incident_id = created(api)
    path = f"/api/v1/incidents/{incident_id}/close"

    assert_error(api.post(path, {"reason": "x" * 41}), 422, "invalid_field")
    assert_error(api.post(path, {"reason": 7}), 422, "invalid_field")
    assert incident(api.engine, incident_id).state == "dispatched"
    assert outbox(api.engine, "cancel") == []
    response = api.client.post(path, headers=api.headers())

    assert response.status_code == 200
    assert response.get_json()["close_reason"] == "closed_by_dispatch"


def test_a_questionnaire_link_takes_answers_once_and_asks_for_aftercare(api: Api) -> None:
    incident_id = created(api)
    api.now = NOW + timedelta(minutes=10)
    api.post(f"/api/v1/incidents/{incident_id}/close", {})
    with Session(api.engine) as session:
        tokens = {q.responder_id: q.token for q in session.exec(select(Questionnaire))}
    api.now = NOW + timedelta(hours=2)

    answered = api.client.post(f"/api/v1/questionnaires/{tokens['r-1']}",
                               json={"answers": {"arrived": True}, "aftercare": True})
    twice = api.client.post(f"/api/v1/questionnaires/{tokens['r-1']}",
                            json={"answers": {}, "aftercare": False})

    assert answered.status_code == 201
    assert answered.get_json() == {"incident_id": incident_id, "aftercare": True}
    assert_error(twice, 409, "already_answered")
    assert_error(api.client.post("/api/v1/questionnaires/no-such-token", json={}), 404,
                 "unknown_questionnaire")
    assert_error(api.client.post(f"/api/v1/questionnaires/{tokens['r-2']}",
                                 json={"aftercare": "yes"}), 422, "invalid_field")
    assert_error(api.client.post(f"/api/v1/questionnaires/{tokens['r-2']}",
                                 json={"answers": ["a"]}), 422, "invalid_field")
    api.now = NOW + timedelta(minutes=10, hours=72)
    assert_error(api.client.post(f"/api/v1/questionnaires/{tokens['r-3']}",
                                 json={"answers": {}}), 409, "questionnaire_closed")
    with Session(api.engine) as session:
        [task] = session.exec(select(AftercareTask)).all()
    assert (task.responder_id, task.due_at) == ("r-1", NOW + timedelta(hours=26))


# -- the app's current position -------------------------------------------------------------------

def put_position(api: Api, responder_id: str, at: tuple[float, float], ts: datetime,
                 token: str | None = None) -> TestResponse:
    return api.client.put(f"/api/v1/responders/{responder_id}/position",
                          json={"lat": at[0], "lon": at[1], "ts": rfc3339(ts)},
                          headers=api.headers(token or api.app_backend_token))


def test_a_fresh_app_position_places_the_responder_there_until_it_is_too_old_and_forgotten(
        api: Api) -> None:
    core: AlarmCore = api.client.application.config["ALARM_CORE"]
    far_call = near(5_000)  # nobody of the street lives within reach of it
    assert not core.plan(far_call[0], far_call[1], NOW).responders

    response = put_position(api, "r-3", near(5_050), NOW)

    assert response.status_code == 200, response.get_json()
    assert [a.responder_id for a in core.plan(far_call[0], far_call[1], NOW).responders] == [
        "r-3"]
    core.tick(NOW + timedelta(minutes=31))  # the app position counts 30 minutes
    stored = responder_row(api.engine, "r-3")
    assert (stored.last_lat, stored.last_lon, stored.last_location_at) == (None, None, None)
    core.refresh(NOW + timedelta(minutes=31, seconds=2))
    assert not core.plan(far_call[0], far_call[1], NOW + timedelta(minutes=32)).responders


def test_an_old_or_misplaced_position_is_refused(api: Api) -> None:
    old = put_position(api, "r-3", near(10), NOW - timedelta(minutes=31))
    unknown = put_position(api, "nobody", near(10), NOW)
    by_dispatch = put_position(api, "r-3", near(10), NOW, api.token)

    assert_error(old, 422, "position_too_old")
    assert_error(unknown, 404, "unknown_responder")
    assert_error(by_dispatch, 403, "forbidden")
    assert responder_row(api.engine, "r-3").last_location_at is None


def responder_row(engine: Engine, responder_id: str) -> Responder:
    with Session(engine) as session:
        found = session.get(Responder, responder_id)
        assert found is not None
        return found
