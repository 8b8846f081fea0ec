"""Accounts of one region: a regional administrator sees that region's AEDs only, a regional
dispatcher that region's incidents only; a platform administrator sees every region.

The console scene's AEDs lie in two made-up regions split at 5.2 E: Utrecht's (aed-1, a-2,
a-3, b-2) in NL-UTR, Zeist's (b-1, b-3) in NL-ZST. One call is made in each region.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import Session

from alarm_core.service import AlarmCore
from fleet import audit
from fleet.accounts import AccountError, change_role, create_account
from fleet.db import session_scope
from fleet.models import Aed
from fleet.region_store import assign_aed_regions, save_region
from fleet.regions import RegionSpec

from .alarm_support import add_responder, alarm_settings, call, near
from .console_support import (
    DATABASES,
    PASSWORD,
    UTRECHT_AEDS,
    ZEIST_PLACE,
    Scene,
    login,
    make_app,
    module_scene,
    square,
)

REGION_AEDS = {"NL-UTR": set(UTRECHT_AEDS), "NL-ZST": {"b-1", "b-3"}}


def _spec(code: str, west: float, east: float) -> RegionSpec:
    return RegionSpec(code=code, name=code, timezone="Europe/Amsterdam", country="NL",
                      languages=("nl", "en"), area_geojson=square(51.9, west, 52.3, east),
                      dispatch={}, readiness={})


@pytest.fixture(scope="module", params=DATABASES)
def regional(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Scene, dict[str, str]]]:
    folder: Path = tmp_path_factory.mktemp(f"regions-{request.param}")
    for scene in module_scene(request.param, folder):
        with session_scope(scene.engine) as session:
            for spec in (_spec("NL-UTR", 4.9, 5.2), _spec("NL-ZST", 5.2, 5.5)):
                save_region(session, spec, scene.settings, scene.now, "test")
            assign_aed_regions(session)
        add_responder(scene.engine, "z-1", near(100, 0, ZEIST_PLACE), scene.now)
        core = AlarmCore(scene.engine, alarm_settings(scene.settings))
        core.load(scene.now)
        incidents = {
            "NL-UTR": core.intake("112-utrecht", call("utr-1", near(30)), scene.now,
                                  "NL-UTR").incident.id,
            "NL-ZST": core.intake("112-zeist", call("zst-1", ZEIST_PLACE),
                                  scene.now + timedelta(seconds=1), "NL-ZST").incident.id}
        for username, role, region in (("admin-utr", "admin", "NL-UTR"),
                                       ("meldkamer-zst", "dispatcher", "NL-ZST")):
            create_account(scene.engine, username, PASSWORD, role, scene.now, region=region)
        yield scene, incidents


@pytest.fixture()
def app(regional: tuple[Scene, dict[str, str]]) -> Flask:
    return make_app(regional[0])


def _client(app: Flask, username: str) -> object:
    client = app.test_client()
    assert login(client, username).status_code == 303
    return client


def test_every_aed_records_the_region_it_stands_in(
        regional: tuple[Scene, dict[str, str]]) -> None:
    scene, _ = regional
    with Session(scene.engine) as session:
        for code, aed_ids in REGION_AEDS.items():
            for aed_id in aed_ids:
                aed = session.get(Aed, aed_id)
                assert aed is not None and aed.region == code, aed_id


def test_a_regional_admin_lists_and_opens_only_the_aeds_of_their_region(app: Flask) -> None:
    client = _client(app, "admin-utr")
    listed = client.get("/api/v1/aeds?limit=1000").get_json()  # type: ignore[attr-defined]
    assert {item["id"] for item in listed["items"]} == REGION_AEDS["NL-UTR"]
    assert client.get("/api/v1/aeds/a-2").status_code == 200  # type: ignore[attr-defined]
    assert client.get("/api/v1/aeds/b-1").status_code == 404  # type: ignore[attr-defined]
    assert client.get("/fleet/aeds/b-1").status_code == 404  # type: ignore[attr-defined]
    page = client.get("/fleet").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "a-2" in page and "b-1" not in page


def test_the_platform_admin_still_sees_every_region(app: Flask) -> None:
    client = _client(app, "admin")
    listed = client.get("/api/v1/aeds?limit=1000").get_json()  # type: ignore[attr-defined]
    assert {item["id"] for item in listed["items"]} == REGION_AEDS["NL-UTR"] | \
        REGION_AEDS["NL-ZST"]


def test_a_regional_dispatcher_sees_only_the_incidents_of_their_region(
        app: Flask, regional: tuple[Scene, dict[str, str]]) -> None:
    _, incidents = regional
    client = _client(app, "meldkamer-zst")
    page = client.get("/incidents").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "zst-1" in page and "utr-1" not in page
    assert client.get(  # type: ignore[attr-defined]
        f"/incidents/{incidents['NL-ZST']}").status_code == 200
    assert client.get(  # type: ignore[attr-defined]
        f"/incidents/{incidents['NL-UTR']}").status_code == 404
    listed = client.get("/api/v1/incidents").get_json()  # type: ignore[attr-defined]
    assert [i["reference"] for i in listed] == ["zst-1"]
    assert client.get(  # type: ignore[attr-defined]
        f"/api/v1/incidents/{incidents['NL-UTR']}").status_code == 404


def test_an_account_can_be_bound_only_to_a_stored_region(
        regional: tuple[Scene, dict[str, str]]) -> None:
    scene, _ = regional
    with pytest.raises(AccountError, match="no region 'NL-XX'"):
        create_account(scene.engine, "admin-xx", PASSWORD, "admin", scene.now, region="NL-XX")
    moved = change_role(scene.engine, "admin-utr", "admin", scene.now, region="NL-ZST")
    assert moved.region == "NL-ZST"
    change_role(scene.engine, "admin-utr", "admin", scene.now, region="NL-UTR")


def test_a_responder_records_training_competences_and_language_on_their_page(
        app: Flask, regional: tuple[Scene, dict[str, str]]) -> None:
    from alarm_core.policy import COMPETENCES
    from web.console.responder import competence_words

    from .alarm_support import responder
    from .console_support import form_on

    scene, _ = regional
    client = app.test_client()
    assert login(client, "r-1").status_code == 303
    form = form_on(client, "/responder", "/responder/skills")
    with app.test_request_context():
        assert set(competence_words()) == set(COMPETENCES)

    saved = client.post("/responder/skills", data={
        "csrf_token": form.fields["csrf_token"], "training": "medical", "language": "de",
        "competences": ["paediatric_life_support", "water_rescue"]})
    after = responder(scene.engine, "r-1")
    refused = client.post("/responder/skills", data={
        "csrf_token": form.fields["csrf_token"], "training": "medical", "language": "de",
        "competences": ["juggling"]}, follow_redirects=True)
    unchanged = responder(scene.engine, "r-1")

    assert saved.status_code == 303
    assert (after.training, after.language, after.competences) == (
        "medical", "de", "paediatric_life_support,water_rescue")
    assert "unknown competence(s) juggling" in refused.get_data(as_text=True)
    assert unchanged.competences == "paediatric_life_support,water_rescue"
    page = client.get("/responder").get_data(as_text=True)
    assert 'value="water_rescue" checked' in page


def test_the_platform_admin_sees_the_regions_side_by_side_and_can_narrow_to_one(
        app: Flask) -> None:
    client = _client(app, "admin")
    page = client.get("/fleet").get_data(as_text=True)  # type: ignore[attr-defined]
    zeist = client.get("/fleet?region=NL-ZST").get_data(as_text=True)  # type: ignore[attr-defined]

    assert 'href="/fleet?region=NL-UTR"' in page and 'href="/fleet?region=NL-ZST"' in page
    assert "a-2" in page and "b-1" in page
    assert "b-1" in zeist and "a-2" not in zeist
    assert client.get("/fleet?region=NL-XX").status_code == 404  # type: ignore[attr-defined]
    regional = _client(app, "admin-utr")
    assert "NL-ZST" not in regional.get("/fleet").get_data(  # type: ignore[attr-defined]
        as_text=True)
    assert regional.get("/fleet?region=NL-ZST").status_code == 404  # type: ignore[attr-defined]


def test_a_regional_admin_cannot_place_an_aed_in_another_region(
        regional: tuple[Scene, dict[str, str]]) -> None:
    scene, _ = regional
    client = _client(make_app(scene, csrf=False), "admin-utr")
    utrecht = {"name": "Bibliotheek", "lat": "52.0950", "lon": "5.1200", "access": "public",
               "opening_hours": "24/7"}
    zeist = {"lat": str(ZEIST_PLACE[0]), "lon": str(ZEIST_PLACE[1])}

    registered_there = client.post(  # type: ignore[attr-defined]
        "/fleet/aeds/new", data={**utrecht, **zeist, "id": "utr-in-zeist"})
    registered_here = client.post(  # type: ignore[attr-defined]
        "/fleet/aeds/new", data={**utrecht, "id": "utr-own"})
    moved_there = client.post(  # type: ignore[attr-defined]
        "/fleet/aeds/utr-own/edit", data={**utrecht, **zeist})

    assert registered_there.status_code == 422
    assert "outside your region NL-UTR" in registered_there.get_data(as_text=True)
    assert registered_here.status_code == 303
    assert moved_there.status_code == 422
    with Session(scene.engine) as session:
        assert session.get(Aed, "utr-in-zeist") is None
        kept = session.get(Aed, "utr-own")
        assert kept is not None and kept.region == "NL-UTR" and kept.lat == 52.0950


def test_a_regional_admin_reads_the_audit_log_of_their_regions_aeds_only(
        app: Flask, regional: tuple[Scene, dict[str, str]]) -> None:
    scene, _ = regional
    with session_scope(scene.engine) as session:
        for aed_id in ("a-2", "b-1"):
            audit.record(session, scene.now, "beheer", audit.AuditAction.AED_EDITED, aed_id,
                         {"name": [f"old {aed_id}", f"new {aed_id}"]})

    regional_page = _client(app, "admin-utr").get(  # type: ignore[attr-defined]
        "/audit").get_data(as_text=True)
    platform_page = _client(app, "admin").get(  # type: ignore[attr-defined]
        "/audit").get_data(as_text=True)

    assert "new a-2" in regional_page
    assert "new b-1" not in regional_page and "meldkamer-zst" not in regional_page
    assert "new b-1" in platform_page and "meldkamer-zst" in platform_page


def test_the_incident_page_and_api_say_why_each_responder_was_chosen(
        app: Flask, regional: tuple[Scene, dict[str, str]]) -> None:
    _, incidents = regional
    client = _client(app, "meldkamer-zst")
    page = client.get(f"/incidents/{incidents['NL-ZST']}").get_data(  # type: ignore[attr-defined]
        as_text=True)
    document = client.get(  # type: ignore[attr-defined]
        f"/api/v1/incidents/{incidents['NL-ZST']}").get_json()

    assert [(r["id"], r["why"]) for r in document["responders"]] == [("z-1", ["nearest"])]
    # The dispatcher's region speaks Dutch first: the page does, the API's codes do not.
    assert "Waarom gekozen" in page and "<td>dichtstbij</td>" in page
