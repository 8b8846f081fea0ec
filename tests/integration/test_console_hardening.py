"""The console under conditions a calm day does not bring: a stopped sweep, odd input, a changed
password, a cabinet or position that changes hands, a second answer to a questionnaire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from pydantic import ValidationError
from sqlmodel import Session

from alarm_core.aftercall import answer_questionnaire
from alarm_core.errors import Conflict
from alarm_core.models import AftercareTask
from fleet.accounts import set_password
from fleet.models import Aed, Cabinet, Municipality
from fleet.settings import Settings, WebSettings
from web.auth import create_token

from .console_support import (
    DATABASES,
    PASSWORD,
    USERNAMES,
    Scene,
    client_as,
    make_app,
    module_scene,
    page_text,
)
from .ingest_support import count_rows


@pytest.fixture(scope="module", params=DATABASES)
def scene(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from module_scene(request.param, tmp_path_factory.mktemp("hardening"))


@pytest.fixture
def admin(scene: Scene) -> FlaskClient:
    return client_as(make_app(scene, csrf=False), "admin")


def later(scene: Scene, minutes: float) -> FlaskClient:
    """An admin's browser on a console whose clock runs `minutes` after the last sweep."""
    app = make_app(scene, csrf=False)
    app.config["CLOCK"] = lambda: scene.now + timedelta(minutes=minutes)
    return client_as(app, "admin")


def test_when_the_sweep_stops_no_aed_is_shown_ready_any_more(scene: Scene) -> None:
    fresh = later(scene, 2).get("/api/v1/aeds?limit=1000").get_json()
    stale = later(scene, 60).get("/api/v1/aeds?limit=1000").get_json()
    page = page_text(later(scene, 60).get("/fleet"))
    points = later(scene, 60).get("/api/v1/map/aeds").get_json()["features"]

    assert fresh["states_current"] and fresh["by_state"]["ready"] > 0
    assert not stale["states_current"] and stale["by_state"]["ready"] == 0
    assert stale["by_state"]["unknown"] == fresh["by_state"]["unknown"] + \
        fresh["by_state"]["ready"]
    assert stale["by_state"]["not_ready"] == fresh["by_state"]["not_ready"]
    assert all(item["state"] != "ready" for item in stale["items"])
    assert all(p["properties"]["state"] != "ready" for p in points)
    assert "its sweep is not running" in page


@pytest.mark.parametrize("url", [
    "/fleet?page=%C2%B2", "/fleet?page=abc", "/fleet?page=0", "/fleet?state=bogus",
    "/api/v1/aeds?limit=%C2%B2", "/api/v1/aeds?offset=-1", "/api/v1/aeds?limit=5000",
    "/fleet/aeds/x%00", "/api/v1/aeds/x%00", "/incidents/x%00", "/questionnaire/x%00",
    "/api/v1/incidents?state=%00",
], ids=repr)
def test_odd_paging_and_nul_characters_are_refused_with_400(admin: FlaskClient,
                                                            url: str) -> None:
    assert admin.get(url).status_code == 400


def test_a_nul_character_in_a_form_field_is_refused_and_nothing_is_stored(
        scene: Scene, admin: FlaskClient) -> None:
    response = admin.post("/fleet/aeds/new", data={
        "id": "nul-aed", "lat": "52.09", "lon": "5.12", "name": "Town\x00hall"})

    assert response.status_code == 400
    with Session(scene.engine) as session:
        assert session.get(Aed, "nul-aed") is None


def test_a_password_change_ends_the_sessions_made_before_it(scene: Scene) -> None:
    app = make_app(scene, csrf=False)
    browser = client_as(app, "dispatcher")
    assert browser.get("/incidents").status_code == 200

    set_password(scene.engine, USERNAMES["dispatcher"], PASSWORD + "-new")
    try:
        assert browser.get("/incidents").status_code == 302  # back to the log-in
    finally:
        set_password(scene.engine, USERNAMES["dispatcher"], PASSWORD)


def test_two_answers_at_once_store_one_and_refuse_the_other(scene: Scene) -> None:
    token = scene.questionnaires["r-2"]
    policy = scene.settings.dispatch
    before = count_rows(scene.engine, AftercareTask)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def answer(cpr: str) -> None:
        start.wait()
        try:
            answer_questionnaire(scene.engine, policy, token, {"cpr": cpr}, True, scene.now)
            outcomes.append("stored")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=answer, args=(cpr,)) for cpr in ("yes", "no")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["refused", "stored"]
    assert count_rows(scene.engine, AftercareTask) == before + 1


def test_the_questionnaire_link_opens_without_an_account(scene: Scene) -> None:
    visitor = make_app(scene, csrf=False).test_client()
    token = scene.questionnaires["r-1"]

    assert visitor.get(f"/questionnaire/{token}").status_code == 200
    assert visitor.get("/questionnaire/not-a-token").status_code == 404


def test_clearing_the_cabinet_field_unlinks_the_cabinet(scene: Scene,
                                                        admin: FlaskClient) -> None:
    fields = {"lat": "52.0900", "lon": "5.1200", "access": "public", "opening_hours": "24/7"}
    assert admin.post("/fleet/aeds/new", data={
        **fields, "id": "cabinet-aed", "device_id": "cab-fresh"}).status_code == 303

    response = admin.post("/fleet/aeds/cabinet-aed/edit", data={**fields, "device_id": ""})

    assert response.status_code == 303, page_text(response)[:400]
    with Session(scene.engine) as session:
        assert session.get(Cabinet, "cab-fresh").aed_id is None  # type: ignore[union-attr]


def test_a_refused_registration_leaves_the_id_free(scene: Scene, admin: FlaskClient) -> None:
    fields = {"lat": "52.0900", "lon": "5.1200", "access": "public", "id": "held-aed"}

    refused = admin.post("/fleet/aeds/new", data={**fields, "device_id": "cab-b-1"})
    stored = admin.post("/fleet/aeds/new", data=fields)

    assert refused.status_code == 422 and "already holds AED b-1" in page_text(refused)
    assert stored.status_code == 303


def test_a_manager_cannot_link_a_cabinet_that_is_registered_already(scene: Scene) -> None:
    manager = client_as(make_app(scene, csrf=False), "manager_a")
    with Session(scene.engine) as session:
        session.add(Cabinet(device_id="cab-spare"))  # unlinked, its history someone else's
        session.commit()

    response = manager.post("/fleet/aeds/new", data={
        "id": "a-new", "lat": "52.0900", "lon": "5.1200", "access": "public",
        "device_id": "cab-spare"})

    assert response.status_code == 422
    assert "ask an administrator" in page_text(response)
    with Session(scene.engine) as session:
        assert session.get(Aed, "a-new") is None
        assert session.get(Cabinet, "cab-spare").aed_id is None  # type: ignore[union-attr]


def test_an_aed_moved_outside_every_boundary_leaves_its_municipality(
        scene: Scene, admin: FlaskClient) -> None:
    assert admin.post("/fleet/aeds/new", data={
        "id": "moving", "lat": "52.0900", "lon": "5.1200", "access": "public",
        "opening_hours": "24/7"}).status_code == 303
    with Session(scene.engine) as session:
        assert session.get(Aed, "moving").municipality_id is not None  # type: ignore[union-attr]

    moved = admin.post("/fleet/aeds/moving/edit", data={
        "lat": "53.40", "lon": "6.90", "access": "public", "opening_hours": "24/7"})

    assert moved.status_code == 303
    with Session(scene.engine) as session:
        assert session.get(Aed, "moving").municipality_id is None  # type: ignore[union-attr]


def test_an_edit_keeps_a_municipality_that_has_no_boundary(scene: Scene,
                                                          admin: FlaskClient) -> None:
    # Outside every loaded boundary: only the municipality's name says where it belongs.
    fields = {"lat": "53.4000", "lon": "6.9000", "access": "public", "opening_hours": "24/7"}
    assert admin.post("/fleet/aeds/new", data={**fields, "id": "named-place"}).status_code == 303
    with Session(scene.engine) as session:
        place = Municipality(name="Without a boundary")
        session.add(place)
        session.flush()
        session.get(Aed, "named-place").municipality_id = place.id  # type: ignore[union-attr]
        session.commit()
        kept = place.id

    admin.post("/fleet/aeds/named-place/edit", data={**fields, "pads_expiry": "2027-06-01"})

    with Session(scene.engine) as session:
        assert session.get(Aed, "named-place").municipality_id == kept  # type: ignore[union-attr]


def test_an_intake_with_a_nul_character_is_refused_with_400(scene: Scene) -> None:
    token = create_token(scene.engine, "112-nul", scene.now, "dispatch")
    api = make_app(scene, csrf=False).test_client()

    response = api.post("/api/v1/incidents", headers={"Authorization": f"Bearer {token}"},
                        json={"reference": "nul-1", "lat": 52.09, "lon": 5.12,
                              "address": "Main street\u0000 1"})

    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_a_tile_url_that_would_bend_the_content_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        WebSettings(tile_url="https://a.example; script-src 'unsafe-inline' x/{z}/{x}/{y}.png")
    with pytest.raises(ValidationError):
        WebSettings(tile_url="https://user:secret@tiles.example/{z}/{x}/{y}.png")


def test_a_municipality_user_gets_no_single_coverage_cells(scene: Scene) -> None:
    from fleet.coverage.live import LiveCoverage

    coarse: Settings = scene.settings.model_copy(update={
        "coverage": scene.settings.coverage.model_copy(update={"cell_m": 1000.0})})
    app = make_app(scene, csrf=False, coverage=LiveCoverage(scene.engine, coarse,
                                                            clock=lambda: scene.now))
    municipality = client_as(app, "municipality")
    url = "/api/v1/coverage/municipalities/Utrecht/geojson"

    assert municipality.get(url).status_code == 200
    assert municipality.get(url + "?cells=1").status_code == 403
    assert municipality.get(
        "/api/v1/coverage/municipalities/Utrecht?at=9999-12-31T23:59:59-01:00").status_code == 400


@pytest.mark.parametrize(("tile_url", "source"), [
    ("http://tiles.internal:8080/{z}/{x}/{y}.png", "http://tiles.internal:8080"),
    ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
])
def test_images_may_come_from_the_configured_tile_server_only(scene: Scene, tile_url: str,
                                                              source: str) -> None:
    app = make_app(scene, csrf=False, tile_url=tile_url)
    policy = app.test_client().get("/login").headers["Content-Security-Policy"]

    assert f"img-src 'self' data: {source};" in policy
    assert "https:;" not in policy and "https: " not in policy
