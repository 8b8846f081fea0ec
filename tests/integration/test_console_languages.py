"""The console in the reader's language and time zone, on both databases: an account's own
language, its region's, the header's switcher (an account's and an anonymous visitor's), the
browser's Accept-Language; and a manager's e-mail in the language of their console account.

The scene of `console_support` (Utrecht, 25 November 2026, an hour after the call); aed-1 and
b-1 last reported at 14:59 UTC, which is 15:59 in Amsterdam and 14:59 in Dublin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from alarm_core.models import Questionnaire
from fleet.accounts import create_account
from fleet.db import session_scope
from fleet.models import Aed, ConsoleUser, Manager, Notification, Region, TelemetryState
from fleet.notifications import enqueue_notice

from .console_support import (
    DATABASES,
    PASSWORD,
    USERNAMES,
    Scene,
    add_named,
    client_as,
    form_on,
    login,
    make_app,
    module_scene,
    page_text,
    square,
)

REPORTED = 'datetime="2026-11-25T14:59:00Z"'
"""The last cabinet report of aed-1 and b-1, as the `<time>` element carries it."""


@pytest.fixture(scope="module", params=DATABASES)
def scene(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    for scene in module_scene(request.param, tmp_path_factory.mktemp("languages")):
        # Areas far from the scene's AEDs: their own rules apply to none of them.
        add_region(scene, "DE-NW", "Köln", "Europe/Berlin", "DE", "de,en",
                   square(50.8, 6.8, 51.1, 7.2))
        add_region(scene, "IE-D", "Dublin", "Europe/Dublin", "IE", "en,ga",
                   square(53.2, -6.5, 53.5, -6.0))
        yield scene


@pytest.fixture(scope="module")
def app(scene: Scene) -> Flask:
    return make_app(scene)


def add_region(scene: Scene, code: str, name: str, timezone: str, country: str,
               languages: str, area: str) -> None:
    with session_scope(scene.engine) as session:
        session.add(Region(code=code, name=name, timezone=timezone, country=country,
                           languages=languages, area_geojson=area))


def set_account(scene: Scene, role: str, **values: str | None) -> None:
    with session_scope(scene.engine) as session:
        user = session.exec(select(ConsoleUser).where(
            ConsoleUser.username == USERNAMES[role])).one()
        for name, value in values.items():
            setattr(user, name, value)


def saved_locale(scene: Scene, role: str) -> str | None:
    with Session(scene.engine) as session:
        return session.exec(select(ConsoleUser.locale).where(
            ConsoleUser.username == USERNAMES[role])).one()


def switch_language(client: FlaskClient, page: str, language: str) -> str:
    """Choose `language` in the header of `page`, as a browser sends the form; the page the
    switcher leads back to, followed."""
    form = form_on(client, page, "/language")
    assert form.fields["next"] == page
    response = client.post("/language", data={**form.fields, "language": language})
    assert response.status_code == 303 and response.location == page
    return page_text(client.get(page))


# -- an account's own language and its region's ---------------------------------------------------

def test_a_dutch_account_sees_dutch_pages_with_dutch_local_times(
        scene: Scene, app: Flask) -> None:
    set_account(scene, "manager_a", locale="nl")
    browser = client_as(app, "manager_a")

    fleet = page_text(browser.get("/fleet"))
    detail = page_text(browser.get("/fleet/aeds/aed-1"))

    assert '<html lang="nl">' in fleet
    assert "<h1>Vlootstatus</h1>" in fleet and "Uitloggen" in fleet
    assert "AED&#39;s van Beheer Noord." in fleet or "AED's van Beheer Noord." in fleet
    assert "Laatste melding van de kast" in detail
    # 14:59 UTC is 15:59 in Amsterdam, written the Dutch way; the attribute stays ISO in UTC.
    assert f"<time {REPORTED}>25 nov 2026, 15:59:00</time>" in detail


def test_an_account_without_a_language_reads_its_region_first_language_and_time_zone(
        scene: Scene, app: Flask) -> None:
    set_account(scene, "municipality", locale=None, region="DE-NW")
    set_account(scene, "manager_b", locale=None, region="IE-D")

    german = page_text(client_as(app, "municipality").get("/fleet"))
    irish = page_text(client_as(app, "manager_b").get("/fleet/aeds/b-1"))

    assert '<html lang="de">' in german and "<h1>Zustand der Geräte</h1>" in german
    assert "Einsatzbereit" in german  # the state badges, worded where they are shown
    # Dublin is on UTC in November; Irish English writes the day first, on a 24-hour clock.
    assert '<html lang="en">' in irish
    assert f"<time {REPORTED}>25 Nov 2026, 14:59:00</time>" in irish


def test_the_account_language_wins_over_the_browser_and_the_region(
        scene: Scene, app: Flask) -> None:
    set_account(scene, "admin", locale="fr", region="DE-NW")
    browser = client_as(app, "admin")
    page = page_text(browser.get("/fleet", headers={"Accept-Language": "nl, de;q=0.5"}))
    assert '<html lang="fr">' in page and "<h1>État du parc</h1>" in page
    set_account(scene, "admin", locale=None, region=None)


# -- the switcher ---------------------------------------------------------------------------------

def test_a_logged_in_user_switches_language_in_the_header_and_it_is_saved_to_the_account(
        scene: Scene, app: Flask) -> None:
    browser = client_as(app, "dispatcher")
    assert saved_locale(scene, "dispatcher") is None

    page = switch_language(browser, "/incidents", "fr")

    assert '<html lang="fr">' in page and "<h1>Interventions</h1>" in page
    assert saved_locale(scene, "dispatcher") == "fr"
    # Another browser (no cookie) logging in to the same account reads French too.
    elsewhere = client_as(app, "dispatcher")
    assert "<h1>Interventions</h1>" in page_text(elsewhere.get("/incidents"))


def test_an_anonymous_visitor_reads_the_browser_language_until_choosing_one(
        scene: Scene, app: Flask) -> None:
    visitor = app.test_client()
    german = page_text(visitor.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}))
    ranked = page_text(visitor.get("/login", headers={"Accept-Language": "es, fr;q=0.4, nl"}))
    unknown = page_text(visitor.get("/login", headers={"Accept-Language": "es, it"}))
    assert '<html lang="de">' in german and "<h1>Anmelden</h1>" in german
    assert '<html lang="nl">' in ranked and "<h1>Inloggen</h1>" in ranked
    assert '<html lang="en">' in unknown and "<h1>Log in</h1>" in unknown

    chosen = switch_language(visitor, "/login", "nl")

    assert "<h1>Inloggen</h1>" in chosen
    kept = page_text(visitor.get("/login", headers={"Accept-Language": "de"}))
    assert "<h1>Inloggen</h1>" in kept  # the cookie outranks the browser


def test_the_switcher_needs_the_form_token_and_goes_back_only_to_this_site(
        scene: Scene, app: Flask) -> None:
    visitor = app.test_client()
    form = form_on(visitor, "/login", "/language")

    forged = visitor.post("/language", data={"language": "de", "next": "/login"})
    away = visitor.post("/language", data={**form.fields, "language": "de",
                                           "next": "//elsewhere.example/"})
    nonsense = visitor.post("/language", data={**form.fields, "language": "xx"})

    assert forged.status_code == 400
    assert away.status_code == 303 and away.location == "/"
    assert nonsense.status_code == 303
    assert "<h1>Anmelden</h1>" in page_text(visitor.get("/login"))  # "xx" changed nothing


def test_a_cabinet_time_at_the_end_of_the_calendar_is_shown_in_utc_and_the_page_still_opens(
        scene: Scene, app: Flask) -> None:
    last = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)  # past the calendar in Amsterdam
    with session_scope(scene.engine) as session:
        state = session.get(TelemetryState, "cab-aed-1")
        assert state is not None
        kept, state.self_test_ts = state.self_test_ts, last
    try:
        page = client_as(app, "admin").get("/fleet/aeds/aed-1")
    finally:
        with session_scope(scene.engine) as session:
            state = session.get(TelemetryState, "cab-aed-1")
            assert state is not None
            state.self_test_ts = kept

    assert page.status_code == 200
    assert '<time datetime="9999-12-31T23:30:00Z">9999-12-31T23:30:00Z</time>' in page_text(page)


def test_a_logged_in_user_who_chose_a_language_anonymously_keeps_it_until_saving_another(
        scene: Scene, app: Flask) -> None:
    browser = app.test_client()
    switch_language(browser, "/login", "de")
    assert login(browser, USERNAMES["responder_2"]).status_code == 303
    assert "<h1>Mein Ersthelfer-Profil</h1>" in page_text(browser.get("/responder"))
    assert saved_locale(scene, "responder_2") is None  # a cookie, not the account's choice


# -- the questionnaire ----------------------------------------------------------------------------

def test_the_questionnaire_is_worded_in_french_and_stores_the_same_answer_keys(
        scene: Scene, app: Flask) -> None:
    token = scene.questionnaires["r-3"]
    visitor = app.test_client()
    page = f"/questionnaire/{token}"
    french = page_text(visitor.get(page, headers={"Accept-Language": "fr-BE"}))
    assert "Avez-vous atteint la victime ?" in french
    assert 'value="cancelled on the way"> annulé en route' in french

    form = form_on(visitor, page, None, headers={"Accept-Language": "fr-BE"})
    sent = visitor.post(page, data={**form.fields, "arrived": "cancelled on the way",
                                    "cpr": "no"}, headers={"Accept-Language": "fr-BE"})

    assert sent.status_code == 303
    with Session(scene.engine) as session:
        stored = session.get(Questionnaire, token)
        assert stored is not None and stored.answers is not None
    assert json.loads(stored.answers)["arrived"] == "cancelled on the way"
    thanks = page_text(visitor.get(sent.location, headers={"Accept-Language": "fr-BE"}))
    assert "Merci. Vos réponses sont enregistrées." in thanks


# -- a manager's e-mail ---------------------------------------------------------------------------

def test_a_manager_e_mail_is_written_in_the_language_of_their_console_account(
        scene: Scene) -> None:
    manager_id = add_named(scene.engine, Manager, "Betreiber West", email="west@example.org")
    create_account(scene.engine, "west", PASSWORD, "manager", scene.now,
                   manager="Betreiber West")
    with session_scope(scene.engine) as session:
        user = session.exec(select(ConsoleUser).where(ConsoleUser.username == "west")).one()
        user.locale, user.region = "de", "IE-D"
        session.add(Aed(id="de-1", name="Rathaus", lat=52.09, lon=5.12, manager_id=manager_id))
    with session_scope(scene.engine) as session:
        aed = session.get(Aed, "de-1")
        assert aed is not None
        notice = enqueue_notice(session, aed=aed, kind="pads_expiring",
                                detail="pads expire on 2026-12-20",
                                now=scene.now + timedelta(days=1), settings=scene.settings)
        assert isinstance(notice, Notification)
        subject, body = notice.subject, notice.body

    assert subject == "AED Rathaus (de-1): Elektroden laufen bald ab"
    assert "Was geschah: pads expire on 2026-12-20" in body  # the ingest's detail as given
    assert "Wann:        2026-11-26 15:00 GMT" in body  # the account's region: Dublin
    assert "Was zu tun ist: Bestellen Sie neue Elektroden" in body
