"""Who may see and change what in the console and the /api/v1 JSON API, role by role.

One table: every role (and a visitor who is not logged in) against every page and resource.
Another manager's AED answers 404 as if it did not exist; a page the role has no business with
403; a visitor is sent to the log-in page (pages) or gets 401 (API). The API takes a log-in
session for reading only: a form-less POST with the session cookie is refused.

The application is the real one over the real database (both engines), one scene per module
(`console_support`). CSRF is switched off here so that every refusal seen is authorization's;
`test_console_security` checks CSRF on every form.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from alarm_core.models import InboxMessage, Incident, Questionnaire
from fleet.models import Aed, Cabinet
from fleet.settings import Settings

from .alarm_support import NOW, add_unmonitored_aed
from .console_support import (
    A_AEDS,
    B_AEDS,
    DATABASES,
    MANAGER_A,
    MANAGER_B,
    ROLES,
    UTRECHT,
    UTRECHT_AEDS,
    ZEIST,
    ZEIST_PLACE,
    Scene,
    client_as,
    located_in,
    make_app,
    module_scene,
    owned_by,
    page_text,
    states_of,
)
from .ingest_support import count_rows
from .test_alarm_api import call_body


@pytest.fixture(scope="module", params=DATABASES)
def scene(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from module_scene(request.param, tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def browsers(scene: Scene) -> dict[str, FlaskClient]:
    """One logged-in browser per role, over an application without CSRF checks."""
    app = make_app(scene, csrf=False)
    return {role: client_as(app, role) for role in ROLES}


# -- the table ------------------------------------------------------------------------------------

OK, SEE_OTHER, TO_LOGIN = 200, 303, 302
UNAUTHORIZED, FORBIDDEN, NOT_FOUND, UNAVAILABLE = 401, 403, 404, 503


def every(status: int) -> tuple[int, ...]:
    return (status,) * len(ROLES)


#    method, path, body name,
#    admin, manager A, manager B, municipality, dispatcher, responder, anonymous
TABLE: list[tuple[str, str, str | None, tuple[int, ...]]] = [
    # fleet health
    ("GET", "/fleet", None, (OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet?state=not_ready", None, (OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet/aeds/a-3", None,
     (OK, OK, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet/aeds/b-1", None,
     (OK, NOT_FOUND, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet/aeds/no-such-aed", None,
     (NOT_FOUND, NOT_FOUND, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("POST", "/fleet/aeds/a-3/declare", "declare",
     (SEE_OTHER, SEE_OTHER, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("POST", "/fleet/aeds/b-1/declare", "declare",
     (SEE_OTHER, NOT_FOUND, SEE_OTHER, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet/aeds/a-3/edit", None,
     (OK, OK, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("POST", "/fleet/aeds/a-3/edit", "edit a-3",
     (SEE_OTHER, SEE_OTHER, NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet/aeds/b-1/edit", None,
     (OK, NOT_FOUND, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("POST", "/fleet/aeds/b-1/edit", "edit b-1",
     (SEE_OTHER, NOT_FOUND, SEE_OTHER, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/fleet/aeds/new", None, (OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("POST", "/fleet/aeds/new", "new aed",
     (SEE_OTHER, SEE_OTHER, SEE_OTHER, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    # maps (this application serves no live coverage: see the coverage table below)
    ("GET", "/map", None, (OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/coverage", None,
     (UNAVAILABLE, FORBIDDEN, FORBIDDEN, UNAVAILABLE, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", f"/coverage/{UTRECHT}", None,
     (UNAVAILABLE, FORBIDDEN, FORBIDDEN, UNAVAILABLE, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", f"/coverage/{ZEIST}", None,
     (UNAVAILABLE, FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    # incidents
    ("GET", "/incidents", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, TO_LOGIN)),
    ("GET", "/incidents?open=1", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, TO_LOGIN)),
    ("GET", "/incidents/{incident}", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, TO_LOGIN)),
    ("GET", "/incidents/{incident}?part=live", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, TO_LOGIN)),
    ("GET", "/incidents/inc-000000000000", None,
     (NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, TO_LOGIN)),
    # the audit log: administrators only
    ("GET", "/audit", None, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("GET", "/audit?object=a-3&user=noord&page=2", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    # responder self-service (the responder is r-1)
    ("GET", "/responder/register", None, every(OK)),
    ("GET", "/responder", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, TO_LOGIN)),
    ("POST", "/responder/availability", "availability",
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, SEE_OTHER, TO_LOGIN)),
    ("POST", "/responder/certificate", "certificate",
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, SEE_OTHER, TO_LOGIN)),
    ("GET", "/responder/questionnaires/{own_token}", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, TO_LOGIN)),
    ("GET", "/responder/questionnaires/{other_token}", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, TO_LOGIN)),
    ("POST", "/responder/questionnaires/{other_token}", "answers",
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, TO_LOGIN)),
    ("GET", "/responder/questionnaires/no-such-token", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, TO_LOGIN)),
    # the responder's inbox (r-1's questionnaire message is theirs, r-2's is not)
    ("GET", "/responder/inbox", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, TO_LOGIN)),
    ("GET", "/responder/inbox/{own_message}", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, TO_LOGIN)),
    ("GET", "/responder/inbox/{other_message}", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, TO_LOGIN)),
    ("POST", "/responder/inbox/{own_message}/read", "empty",
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, SEE_OTHER, TO_LOGIN)),
    ("POST", "/responder/inbox/{other_message}/read", "empty",
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, TO_LOGIN)),
    ("GET", "/responder/inbox/999999", None,
     (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, NOT_FOUND, TO_LOGIN)),
    # region news: administrators post it (no region is loaded here: 404 for the region)
    ("GET", "/news", None, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    ("POST", "/news", "news",
     (NOT_FOUND, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, TO_LOGIN)),
    # the AED API and the maps' layers, read with a log-in session
    ("GET", "/api/v1/aeds", None,
     (OK, OK, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", "/api/v1/aeds/a-3", None,
     (OK, OK, NOT_FOUND, NOT_FOUND, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", "/api/v1/aeds/b-1", None,
     (OK, NOT_FOUND, OK, NOT_FOUND, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", "/api/v1/aeds/no-such-aed", None,
     (NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", "/api/v1/map/aeds", None,
     (OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", "/api/v1/map/boundaries", None,
     (OK, OK, OK, OK, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    # the incidents API: a dispatcher's session reads, but never writes
    ("GET", "/api/v1/incidents", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, UNAUTHORIZED)),
    ("GET", "/api/v1/incidents/{incident}", None,
     (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, UNAUTHORIZED)),
    ("POST", "/api/v1/incidents", "incident", every(UNAUTHORIZED)),
    ("POST", "/api/v1/incidents/{incident}/close", "close", every(UNAUTHORIZED)),
    ("POST", "/api/v1/incidents/{incident}/responses", "response", every(UNAUTHORIZED)),
    ("PUT", "/api/v1/responders/r-1/position", "position", every(UNAUTHORIZED)),
    # the coverage API (not served by this application)
    ("GET", "/api/v1/coverage", None,
     (UNAVAILABLE, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", f"/api/v1/coverage/municipalities/{UTRECHT}", None,
     (UNAVAILABLE, FORBIDDEN, FORBIDDEN, UNAVAILABLE, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    ("GET", f"/api/v1/coverage/municipalities/{ZEIST}", None,
     (UNAVAILABLE, FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, UNAUTHORIZED)),
    # public
    ("GET", "/api/v1/openapi.json", None, every(OK)),
    ("GET", "/api/docs", None, every(OK)),
    ("GET", "/login", None, every(OK)),
]

CASES = [pytest.param(role, method, path, body, statuses[ROLES.index(role)],
                      id=f"{role}:{method} {path}")
         for method, path, body, statuses in TABLE for role in ROLES]


def inbox_messages(scene: Scene) -> dict[str, int]:
    """Responder id -> the id of their inbox message about the scene's questionnaire."""
    with Session(scene.engine) as session:
        return {str(responder_id): int(message_id) for responder_id, message_id in
                session.exec(select(InboxMessage.responder_id, InboxMessage.id)).all()}


def aed_form(scene: Scene, aed_id: str) -> dict[str, str]:
    """The edit form of an AED as its page fills it in, unchanged."""
    with Session(scene.engine) as session:
        aed = session.get(Aed, aed_id)
        assert aed is not None
        cabinet = session.get(Cabinet, f"cab-{aed_id}")
    return {"name": aed.name or "", "address": aed.address or "", "lat": str(aed.lat),
            "lon": str(aed.lon), "location_hint": aed.location_hint or "",
            "access": aed.access, "indoor": "", "opening_hours": aed.opening_hours or "",
            "pads_expiry": str(aed.pads_expiry or ""), "battery_expiry": "",
            "serial": aed.serial or "", "make": aed.make or "", "model": aed.model or "",
            "device_id": cabinet.device_id if cabinet else ""}


def body_of(scene: Scene, name: str | None, role: str) -> dict[str, Any]:
    """Keyword arguments of the test client's request: the form or JSON body named `name`."""
    earlier = (scene.now - timedelta(days=30)).date().isoformat()
    forms: dict[str, dict[str, str]] = {
        "declare": {"checked": "yes", "note": f"checked by {role}"},
        "new aed": {"id": f"new-{role}", "name": f"Registered by {role}", "lat": "52.0907",
                    "lon": "5.1214", "access": "public", "opening_hours": "24/7"},
        "availability": {"available": "yes"},
        "certificate": {"certificate_date": earlier},
        "answers": {"arrived": "yes", "cpr": "yes", "aed_used": "no", "remarks": role},
        "empty": {},
        "news": {"region": "NL-XX", "subject": f"From {role}", "body": "A course."},
    }
    if name is None:
        return {}
    if name.startswith("edit "):
        return {"data": aed_form(scene, name.removeprefix("edit "))}
    if name in forms:
        return {"data": forms[name]}
    documents: dict[str, Any] = {
        "incident": call_body("ref-session"), "close": {"reason": "by a session"},
        "response": {"responder_id": "r-1", "answer": "accept"},
        "position": {"lat": 52.09, "lon": 5.12, "ts": "2026-11-25T15:00:00Z"}}
    return {"json": documents[name]}


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), CASES)
def test_each_role_reaches_exactly_the_pages_and_resources_of_its_work(
        scene: Scene, browsers: dict[str, FlaskClient], role: str, method: str, path: str,
        body: str | None, expected: int) -> None:
    messages = inbox_messages(scene)
    url = path.format(incident=scene.incident_id, own_token=scene.questionnaires["r-1"],
                      other_token=scene.questionnaires["r-2"], own_message=messages["r-1"],
                      other_message=messages["r-2"])

    response = browsers[role].open(url, method=method, **body_of(scene, body, role))

    assert response.status_code == expected, page_text(response)[:500]
    if expected == TO_LOGIN:
        assert urlsplit(response.location).path == "/login"
    if url.startswith("/api/") and expected >= 400:
        document = response.get_json()
        assert set(document) == {"error", "message"}, document


def test_a_refused_session_write_to_the_api_changes_nothing(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    incidents = count_rows(scene.engine, Incident)

    created = browsers["dispatcher"].post("/api/v1/incidents", json=call_body("ref-csrf"))
    closed = browsers["dispatcher"].post(f"/api/v1/incidents/{scene.incident_id}/close",
                                         json={"reason": "forged"})

    assert (created.status_code, closed.status_code) == (UNAUTHORIZED, UNAUTHORIZED)
    assert created.get_json()["error"] == "unauthorized"
    assert count_rows(scene.engine, Incident) == incidents
    with Session(scene.engine) as session:
        incident = session.get(Incident, scene.incident_id)
        assert incident is not None and incident.close_reason == "closed_by_dispatch"


def test_another_responders_questionnaire_stays_unanswered(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    token = scene.questionnaires["r-3"]

    response = browsers["responder"].post(f"/responder/questionnaires/{token}",
                                          data={"arrived": "no", "aftercare": "yes"})

    assert response.status_code == NOT_FOUND
    with Session(scene.engine) as session:
        questionnaire = session.get(Questionnaire, token)
        assert questionnaire is not None and questionnaire.answered_at is None


@pytest.mark.parametrize(("role", "start"), [
    ("admin", "/fleet"), ("manager_a", "/fleet"), ("municipality", "/coverage"),
    ("dispatcher", "/incidents"), ("responder", "/responder"), ("anonymous", "/login")])
def test_the_home_page_leads_each_role_to_its_start_page(
        browsers: dict[str, FlaskClient], role: str, start: str) -> None:
    response = browsers[role].get("/")

    assert response.status_code == TO_LOGIN
    assert urlsplit(response.location).path == start


# -- what a manager and a municipality see of the fleet -------------------------------------------

def api_ids(client: FlaskClient, query: str = "") -> tuple[list[str], dict[str, Any]]:
    response = client.get(f"/api/v1/aeds{query}")
    assert response.status_code == OK, response.get_json()
    document = response.get_json()
    return [item["id"] for item in document["items"]], document


def test_a_manager_sees_only_its_own_aeds_in_the_api_items_and_counts(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    own = owned_by(scene, MANAGER_A)
    assert set(A_AEDS) <= own and not own & set(B_AEDS)

    ids, document = api_ids(browsers["manager_a"])
    not_ready, filtered = api_ids(browsers["manager_a"], "?state=not_ready")
    first, paged = api_ids(browsers["manager_a"], "?limit=1&offset=1")

    assert set(ids) == own and len(ids) == len(own)
    assert document["total"] == len(own)
    assert document["by_state"] == states_of(scene.engine, own)
    assert set(not_ready) <= own and "a-2" in not_ready
    assert filtered["total"] == states_of(scene.engine, own)["not_ready"]
    assert len(first) == 1 and first[0] in own and paged["total"] == len(own)


def test_the_admin_sees_every_aed_in_the_api(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    ids, document = api_ids(browsers["admin"], "?limit=1000")

    assert set(A_AEDS + B_AEDS) <= set(ids)
    assert document["total"] == sum(document["by_state"].values()) == len(ids)


def test_a_manager_map_shows_only_its_own_aeds_with_links_to_them(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    response = browsers["manager_b"].get("/api/v1/map/aeds")

    features = response.get_json()["features"]
    assert {f["properties"]["id"] for f in features} == owned_by(scene, MANAGER_B)
    assert all(f["properties"]["detail"] for f in features)


def test_a_municipality_sees_counts_and_points_of_its_own_municipality_only(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    own = located_in(scene, UTRECHT)
    assert set(UTRECHT_AEDS) <= own and not own & located_in(scene, ZEIST)
    municipality = browsers["municipality"]

    points = municipality.get("/api/v1/map/aeds").get_json()["features"]
    page = page_text(municipality.get("/fleet"))

    assert len(points) == len(own)
    assert not any(p["properties"]["detail"] or p["properties"]["id"] for p in points)
    assert f"{len(own)} AEDs in {UTRECHT}" in page
    for state, count in states_of(scene.engine, own).items():
        assert count == 0 or f'href="/fleet?state={state}"' in page
    # Aggregated only: no single AED, no link to one.
    assert not any(aed in page for aed in own) and "/fleet/aeds/" not in page


def test_a_municipality_reads_no_list_of_single_aeds(browsers: dict[str, FlaskClient]) -> None:
    assert browsers["municipality"].get("/api/v1/aeds").status_code == 403


def test_a_municipality_gets_only_its_own_outline_whichever_it_asks_for(
        browsers: dict[str, FlaskClient]) -> None:
    asked = browsers["municipality"].get(f"/api/v1/map/boundaries?municipality={ZEIST}")
    everything = browsers["admin"].get("/api/v1/map/boundaries")

    assert [f["properties"]["name"] for f in asked.get_json()["features"]] == [UTRECHT]
    assert {f["properties"]["name"] for f in everything.get_json()["features"]} == {
        UTRECHT, ZEIST}


def test_a_manager_fleet_page_lists_only_its_own_aeds(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    page = page_text(browsers["manager_a"].get("/fleet"))

    assert f"{len(owned_by(scene, MANAGER_A))} AEDs of {MANAGER_A}" in page
    for aed_id in A_AEDS:
        assert f'href="/fleet/aeds/{aed_id}"' in page
    for aed_id in B_AEDS:
        assert aed_id not in page


# -- changes keep an AED with its manager ---------------------------------------------------------

def manager_of(scene: Scene, aed_id: str) -> int | None:
    with Session(scene.engine) as session:
        aed = session.get(Aed, aed_id)
        assert aed is not None
        return aed.manager_id


def test_a_manager_editing_its_aed_cannot_hand_it_to_another_manager(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    form = {**aed_form(scene, "a-3"), "manager": MANAGER_B, "name": "Sporthal Noord"}

    response = browsers["manager_a"].post("/fleet/aeds/a-3/edit", data=form)

    assert response.status_code == SEE_OTHER
    assert manager_of(scene, "a-3") == scene.managers[MANAGER_A]
    assert "a-3" in owned_by(scene, MANAGER_A)
    assert browsers["manager_a"].get("/fleet/aeds/a-3").status_code == OK
    assert browsers["manager_b"].get("/fleet/aeds/a-3").status_code == NOT_FOUND


def test_a_manager_registering_an_aed_gets_it_even_when_naming_another_manager(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    form = {"id": "a-new", "name": "Bibliotheek", "lat": "52.0950", "lon": "5.1200",
            "access": "public", "opening_hours": "Mo-Sa 10:00-18:00", "manager": MANAGER_B}

    response = browsers["manager_a"].post("/fleet/aeds/new", data=form)

    assert response.status_code == SEE_OTHER
    assert manager_of(scene, "a-new") == scene.managers[MANAGER_A]
    assert browsers["manager_b"].get("/fleet/aeds/a-new").status_code == NOT_FOUND


def test_the_admin_may_move_an_aed_to_another_manager(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    browsers["admin"].post("/fleet/aeds/new", data={
        "id": "moved", "name": "Moved", "lat": "52.0950", "lon": "5.1200", "access": "public",
        "manager": MANAGER_A})
    form = {**aed_form(scene, "moved"), "manager": MANAGER_B}

    response = browsers["admin"].post("/fleet/aeds/moved/edit", data=form)

    assert response.status_code == SEE_OTHER
    assert manager_of(scene, "moved") == scene.managers[MANAGER_B]


def test_a_manager_cannot_take_over_another_managers_aed_by_registering_its_id(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    add_unmonitored_aed(scene.engine, "b-taken", ZEIST_PLACE, NOW,
                        manager_id=scene.managers[MANAGER_B])
    form = {"id": "b-taken", "name": "Mine now", "lat": "52.0950", "lon": "5.1200",
            "access": "public", "opening_hours": "24/7"}

    response = browsers["manager_a"].post("/fleet/aeds/new", data=form)

    assert manager_of(scene, "b-taken") == scene.managers[MANAGER_B]
    with Session(scene.engine) as session:
        aed = session.get(Aed, "b-taken")
        assert aed is not None and aed.name == "AED b-taken"
    assert response.status_code in (404, 409, 422)


# -- live coverage --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def coverage_browsers(scene: Scene) -> dict[str, FlaskClient]:
    """Browsers of an application that serves live coverage (coarse cells: fast)."""
    from fleet.coverage.live import LiveCoverage

    coarse: Settings = scene.settings.model_copy(update={"coverage": scene.settings.coverage
                                                         .model_copy(update={"cell_m": 1000.0})})
    live = LiveCoverage(scene.engine, coarse, clock=lambda: NOW)
    app = make_app(scene, csrf=False, coverage=live)
    return {role: client_as(app, role)
            for role in ("admin", "manager_a", "municipality", "dispatcher", "anonymous")}


@pytest.mark.parametrize(("role", "path", "expected"), [
    ("admin", "/coverage", OK),
    ("admin", f"/coverage/{ZEIST}", OK),
    ("admin", "/coverage/Atlantis", NOT_FOUND),
    ("municipality", "/coverage", OK),
    ("municipality", f"/coverage/{UTRECHT}", OK),
    ("municipality", "/coverage/utrecht", OK),
    ("municipality", f"/coverage/{ZEIST}", NOT_FOUND),
    ("municipality", f"/coverage?municipality={ZEIST}", NOT_FOUND),
    ("manager_a", "/coverage", FORBIDDEN),
    ("dispatcher", "/coverage", FORBIDDEN),
    ("anonymous", "/coverage", TO_LOGIN),
    ("admin", "/api/v1/coverage", OK),
    ("admin", f"/api/v1/coverage/municipalities/{ZEIST}", OK),
    ("municipality", "/api/v1/coverage", FORBIDDEN),
    ("municipality", f"/api/v1/coverage/municipalities/{UTRECHT}", OK),
    ("municipality", f"/api/v1/coverage/municipalities/{UTRECHT}/csv", OK),
    ("municipality", f"/api/v1/coverage/municipalities/{ZEIST}", NOT_FOUND),
    ("municipality", f"/api/v1/coverage/municipalities/{ZEIST}/geojson", NOT_FOUND),
    ("manager_a", f"/api/v1/coverage/municipalities/{UTRECHT}", FORBIDDEN),
    ("dispatcher", "/api/v1/coverage", FORBIDDEN),
    ("anonymous", "/api/v1/coverage", UNAUTHORIZED),
], ids=lambda value: str(value))
def test_coverage_is_served_to_the_admin_and_to_a_municipality_for_its_own_area(
        coverage_browsers: dict[str, FlaskClient], role: str, path: str,
        expected: int) -> None:
    response = coverage_browsers[role].get(path)

    assert response.status_code == expected, page_text(response)[:500]


def test_a_municipality_coverage_page_is_about_its_own_municipality(
        coverage_browsers: dict[str, FlaskClient]) -> None:
    page = page_text(coverage_browsers["municipality"].get("/coverage"))
    document = coverage_browsers["municipality"].get(
        f"/api/v1/coverage/municipalities/{UTRECHT.lower()}").get_json()

    assert UTRECHT in page and ZEIST not in page
    assert document["municipality"] == UTRECHT


def test_a_manager_does_not_learn_another_managers_aed_from_a_taken_cabinet(
        scene: Scene, browsers: dict[str, FlaskClient]) -> None:
    form = {**aed_form(scene, "a-3"), "device_id": "cab-b-1"}

    response = browsers["manager_a"].post("/fleet/aeds/a-3/edit", data=form)

    assert response.status_code == 422
    with Session(scene.engine) as session:
        cabinet = session.get(Cabinet, "cab-b-1")
        assert cabinet is not None and cabinet.aed_id == "b-1"
    assert "b-1" not in page_text(response).replace("cab-b-1", "")  # but what was typed
