"""What the console's pages show and do, as an AED manager, an administrator and a citizen
responder use them.

The real application over the real database (both engines) with a set clock; readiness is
recorded as the ingest records it (`ReadinessRecorder`). The telemetry chart reads a real
VictoriaMetrics.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from alarm_core.models import AftercareTask, Questionnaire, Responder
from device_agents.local_broker import free_port
from fleet.accounts import create_account
from fleet.db import session_scope
from fleet.models import Aed, ConsoleUser, ReadinessDeclaration, ReadinessTransition
from fleet.settings import Settings

from .alarm_support import (
    NOW,
    add_monitored_aed,
    add_unmonitored_aed,
    near,
    record_device_event,
    report_cabinet,
)
from .console_support import (
    DATABASES,
    PASSWORD,
    build_scene,
    client_as,
    console_app,
    csrf_token,
    form_on,
    login,
    make_app,
    module_engine,
    page_text,
    record_readiness,
    submit,
)
from .ingest_support import count_rows
from .mqtt_support import wait_until
from .victoria_support import VictoriaMetrics


@dataclass
class Console:
    """The application over a fleet, a browser (an administrator's, unless said otherwise),
    and the console's clock."""

    engine: Engine
    settings: Settings
    now: datetime = NOW
    app: Flask = field(init=False)
    browser: FlaskClient = field(init=False)


def open_console(engine: Engine, settings: Settings, now: datetime = NOW,
                 role: str = "admin", **web: Any) -> Console:
    if role == "admin":
        create_account(engine, "admin", PASSWORD, "admin", now)
    console = Console(engine, settings, now)
    console.app = console_app(engine, settings, lambda: console.now, **web)
    console.browser = client_as(console.app, role)
    return console


def fleet_order(html: str) -> list[str]:
    """The AED ids of the fleet table, top to bottom."""
    table = html.split('<table class="fleet"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<a href="/fleet/aeds/([^"]+)">', table)


def fleet_row(html: str, aed_id: str) -> str:
    table = html.split('<table class="fleet"', 1)[1].split("</table>", 1)[0]
    return next(row for row in table.split("<tr>") if f'href="/fleet/aeds/{aed_id}"' in row)


def state_counts(html: str) -> dict[str, int]:
    return {state: int(count) for state, count in re.findall(
        r'href="/fleet\?state=(\w+)".*?<strong class="count">(\d+)</strong>', html, re.S)}


# -- the fleet page -------------------------------------------------------------------------------

FLEET = {
    # id: what is wrong (None: nothing), pads expiry in days from NOW
    "ready-late": (None, 300),
    "ready-early": (None, 200),
    "expiring": (None, 20),  # ready with the warning that its pads expire soon
    "pads-gone": ("pads", -2),
    "battery-low": ("battery", 150),
    "no-cabinet": ("no cabinet", 100),
}


@pytest.fixture(scope="module", params=DATABASES)
def fleet(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Six recorded AEDs in every state and one the ingest has not evaluated yet (the tests
    of this fleet only read it)."""
    for engine, settings in module_engine(request.param, tmp_path_factory.mktemp("fleet")):
        yield fleet_of(engine, settings)


def fleet_of(engine: Engine, settings: Settings) -> Console:
    for number, (aed_id, (fault, days)) in enumerate(FLEET.items()):
        place = near(100 * number, 50)
        pads = NOW.date() + timedelta(days=days)
        if fault == "no cabinet":
            add_unmonitored_aed(engine, aed_id, place, NOW, pads_expiry=pads)
            continue
        device = add_monitored_aed(engine, aed_id, place, NOW)
        changes: dict[str, Any] = {"pads_expiry": pads}
        if fault == "battery":
            changes["battery_pct"] = 4
        report_cabinet(engine, device, NOW - timedelta(minutes=1), **changes)
    record_readiness(engine, settings, NOW)
    add_monitored_aed(engine, "fresh", near(-300), NOW)  # registered after the last sweep
    return open_console(engine, settings)


def test_the_fleet_page_lists_not_ready_first_then_by_soonest_expiry(fleet: Console) -> None:
    page = page_text(fleet.browser.get("/fleet"))

    assert fleet_order(page) == ["pads-gone", "battery-low", "no-cabinet", "fresh",
                                 "expiring", "ready-early", "ready-late"]


def test_the_fleet_page_says_why_an_aed_needs_action_in_words(fleet: Console) -> None:
    page = page_text(fleet.browser.get("/fleet"))

    assert "the electrode pads have expired" in fleet_row(page, "pads-gone")
    assert "the battery charge is below the threshold" in fleet_row(page, "battery-low")
    assert "no cabinet agent reports on this AED" in fleet_row(page, "no-cabinet")
    assert "the electrode pads expire within the warning period" in fleet_row(page, "expiring")
    assert "pads_expired" not in fleet_row(page, "pads-gone")  # words, not codes


def test_the_fleet_page_counts_aeds_by_state(fleet: Console) -> None:
    page = page_text(fleet.browser.get("/fleet"))

    assert state_counts(page) == {"not_ready": 2, "unverified": 1, "unknown": 1, "ready": 3}
    assert "7 AEDs" in page


def test_an_aed_without_a_recorded_state_shows_as_not_evaluated_never_as_ready(
        fleet: Console) -> None:
    page = page_text(fleet.browser.get("/fleet"))
    ready_only = page_text(fleet.browser.get("/fleet?state=ready"))
    unknown_only = page_text(fleet.browser.get("/fleet?state=unknown"))
    points = fleet.browser.get("/api/v1/map/aeds").get_json()["features"]

    row = fleet_row(page, "fresh")
    assert "Not evaluated yet" in row and "Ready" not in row
    assert "fresh" not in fleet_order(ready_only)
    assert fleet_order(unknown_only) == ["fresh"]
    assert {p["properties"]["id"]: p["properties"]["state"] for p in points}["fresh"] == \
        "unknown"


def test_the_fleet_page_filters_by_state_and_refuses_an_unknown_state(fleet: Console) -> None:
    not_ready = page_text(fleet.browser.get("/fleet?state=not_ready"))

    assert fleet_order(not_ready) == ["pads-gone", "battery-low"]
    assert fleet.browser.get("/fleet?state=broken").status_code == 400


def test_the_fleet_page_shows_fifty_aeds_a_page(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        for number in range(55):
            session.add(Aed(id=f"aed-{number:03d}", lat=52.09 + number / 10_000, lon=5.12,
                            pads_expiry=NOW.date() + timedelta(days=100 + number),
                            created_at=NOW, updated_at=NOW))
    record_readiness(engine, settings, NOW)
    console = open_console(engine, settings)

    first = page_text(console.browser.get("/fleet"))
    second = page_text(console.browser.get("/fleet?page=2"))
    beyond = page_text(console.browser.get("/fleet?page=3"))

    expected = [f"aed-{number:03d}" for number in range(55)]  # soonest pads expiry first
    assert fleet_order(first) == expected[:50] and fleet_order(second) == expected[50:]
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert fleet_order(beyond) == [] and "No AEDs here." in beyond


# -- one AED --------------------------------------------------------------------------------------

@pytest.fixture
def monitored(engine: Engine, settings: Settings) -> Console:
    """One ready AED in a cabinet that has reported a door opening."""
    device = add_monitored_aed(engine, "town-hall", near(100), NOW, name="Town hall")
    record_device_event(engine, device, "door_opened", NOW - timedelta(minutes=30))
    record_device_event(engine, device, "door_closed", NOW - timedelta(minutes=29))
    report_cabinet(engine, device, NOW - timedelta(minutes=1))
    record_readiness(engine, settings, NOW - timedelta(minutes=1))
    return open_console(engine, settings)


def test_the_aed_page_shows_its_state_event_log_and_readiness_changes(
        monitored: Console) -> None:
    response = monitored.browser.get("/fleet/aeds/town-hall")

    page = page_text(response)
    assert response.status_code == 200
    assert "AED town-hall: Town hall" in page
    assert "Nothing stands in the way: ready for deployment." in page
    events = page.split('id="events"', 1)[1].split("</table>", 1)[0]
    assert events.index("door_closed") < events.index("door_opened")  # newest first
    changes = page.split('id="transitions"', 1)[1].split("</table>", 1)[0]
    assert "Ready" in changes and "test scene" in changes
    assert "Last declared" in page and "by Beheer" in page



def test_the_aed_page_of_a_not_ready_aed_shows_its_reasons_in_words(monitored: Console) -> None:
    report_cabinet(monitored.engine, "cab-town-hall", NOW, battery_pct=3)
    record_readiness(monitored.engine, monitored.settings, NOW, cause="cabinet report")

    response = monitored.browser.get("/fleet/aeds/town-hall")

    page = page_text(response)
    assert response.status_code == 200
    why = page.split('id="why"', 1)[1].split("</section>", 1)[0]
    assert "the battery charge is below the threshold" in why
    changes = page.split('id="transitions"', 1)[1].split("</table>", 1)[0]
    assert "Not ready" in changes and "cabinet report" in changes
    assert "the battery charge is below the threshold" in changes


def test_a_newly_registered_aed_opens_on_its_own_page(monitored: Console) -> None:
    saved = submit(monitored.browser, "/fleet/aeds/new", id="library", name="Library",
                   lat="52.0950", lon="5.1200", opening_hours="Mo-Sa 10:00-18:00")

    assert saved.status_code == 303 and saved.location == "/fleet/aeds/library"
    page = monitored.browser.get(saved.location)
    assert page.status_code == 200
    assert "the manager has never declared the AED ready for deployment" in page_text(page)


@pytest.fixture
def undeclared(engine: Engine, settings: Settings) -> Console:
    """An AED in a healthy cabinet that its manager never declared ready."""
    device = add_monitored_aed(engine, "school", near(100), NOW)
    with session_scope(engine) as session:
        for row in session.exec(select(ReadinessDeclaration)):
            session.delete(row)
    report_cabinet(engine, device, NOW - timedelta(minutes=1))
    record_readiness(engine, settings, NOW - timedelta(minutes=1))
    return open_console(engine, settings)


def transitions_of(engine: Engine, aed_id: str) -> list[tuple[str | None, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(ReadinessTransition)
                            .where(ReadinessTransition.aed_id == aed_id)
                            .order_by(col(ReadinessTransition.id))).all()
        return [(row.from_state, row.to_state, row.cause) for row in rows]


def test_declaring_ready_records_the_declaration_and_the_change_it_makes(
        undeclared: Console) -> None:
    assert transitions_of(undeclared.engine, "school") == [(None, "not_ready", "test scene")]
    form = form_on(undeclared.browser, "/fleet/aeds/school/edit")  # any page: the token
    undeclared.now = NOW + timedelta(minutes=5)

    response = undeclared.browser.post("/fleet/aeds/school/declare", data={
        "checked": "yes", "note": "pads and battery checked",
        "csrf_token": form.fields["csrf_token"]})

    assert response.status_code == 303 and response.location == "/fleet/aeds/school"
    with Session(undeclared.engine) as session:
        [declaration] = session.exec(select(ReadinessDeclaration)).all()
    assert (declaration.aed_id, declaration.declared_by, declaration.note) == (
        "school", "admin", "pads and battery checked")
    assert declaration.declared_at == NOW + timedelta(minutes=5)
    assert transitions_of(undeclared.engine, "school")[-1] == (
        "not_ready", "ready", "declared ready by admin")


def test_declaring_without_ticking_the_box_records_nothing(undeclared: Console) -> None:
    form = form_on(undeclared.browser, "/fleet/aeds/school/edit")

    response = undeclared.browser.post("/fleet/aeds/school/declare",
                                       data={"csrf_token": form.fields["csrf_token"]})

    assert response.status_code == 303
    assert count_rows(undeclared.engine, ReadinessDeclaration) == 0
    assert len(transitions_of(undeclared.engine, "school")) == 1


def test_opening_hours_that_do_not_parse_are_shown_on_the_form_and_nothing_is_saved(
        monitored: Console) -> None:
    registered = submit(monitored.browser, "/fleet/aeds/new", id="gym", name="Gym",
                        lat="52.0950", lon="5.1200", opening_hours="Mo-Fr 25:00-99:00")
    edited = submit(monitored.browser, "/fleet/aeds/town-hall/edit",
                    opening_hours="weekdays at nine", name="Renamed")

    for response in (registered, edited):
        page = page_text(response)
        assert response.status_code == 422
        assert 'id="e-opening_hours"' in page and 'aria-invalid="true"' in page
        assert "The AED was not saved" in page
    assert 'value="Mo-Fr 25:00-99:00"' in page_text(registered)  # what was typed, kept
    with Session(monitored.engine) as session:
        assert session.get(Aed, "gym") is None
        town_hall = session.get(Aed, "town-hall")
        assert town_hall is not None
        assert (town_hall.name, town_hall.opening_hours) == ("Town hall", "24/7")


def test_two_people_editing_one_aed_never_overwrite_each_other_unseen(
        monitored: Console) -> None:
    colleague = client_as(monitored.app, "admin")
    mine = form_on(monitored.browser, "/fleet/aeds/town-hall/edit")
    theirs = form_on(colleague, "/fleet/aeds/town-hall/edit")

    first = colleague.post("/fleet/aeds/town-hall/edit",
                           data={**theirs.fields, "name": "Town hall (east door)"})
    second = monitored.browser.post("/fleet/aeds/town-hall/edit",
                                    data={**mine.fields, "opening_hours": "Mo-Fr 08:00-18:00"})

    assert first.status_code == 303
    assert second.status_code == 422
    assert "someone else changed this AED after you opened the form" in page_text(second)
    with Session(monitored.engine) as session:
        town_hall = session.get(Aed, "town-hall")
        assert town_hall is not None
        assert (town_hall.name, town_hall.opening_hours) == ("Town hall (east door)", "24/7")
    # Reloaded, the form carries the colleague's change and saves.
    again = submit(monitored.browser, "/fleet/aeds/town-hall/edit",
                   opening_hours="Mo-Fr 08:00-18:00")
    assert again.status_code == 303
    with Session(monitored.engine) as session:
        town_hall = session.get(Aed, "town-hall")
        assert town_hall is not None
        assert (town_hall.name, town_hall.opening_hours) == ("Town hall (east door)",
                                                             "Mo-Fr 08:00-18:00")


# -- telemetry history ----------------------------------------------------------------------------

@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    store = VictoriaMetrics(tmp_path)
    store.start()
    try:
        yield store
    finally:
        store.stop()


def test_the_aed_page_charts_a_week_of_cabinet_telemetry_from_the_store(
        engine: Engine, settings: Settings, victoria: VictoriaMetrics) -> None:
    # The store keeps recent samples only: this test runs on the wall clock.
    now = datetime.now(UTC).replace(microsecond=0)
    device = add_monitored_aed(engine, "station", near(100), now)
    record_readiness(engine, settings, now)
    hours = range(48, 0, -4)
    lines = "\n".join(
        f"aed_telemetry,device={device} battery_pct={100 - h / 2},temperature_c={10 + h % 7}"
        f" {int((now - timedelta(hours=h)).timestamp())}000000000" for h in hours)
    request = urllib.request.Request(f"{victoria.url}/write", data=lines.encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 204
    victoria.wait_for_points("aed_telemetry_battery_pct", len(hours))
    console = open_console(engine, settings, now, history_url=victoria.url)

    page = ""

    def charted() -> bool:
        nonlocal page
        page = page_text(console.browser.get("/fleet/aeds/station"))
        return page.count("<polyline") >= 2

    wait_until(charted, 15, "the AED page's telemetry charts")
    history = page.split('id="history"', 1)[1].split("</section>", 1)[0]
    assert "<svg" in history and "Battery charge" in history and "Cabinet temperature" in history
    battery = history.split("Battery charge", 1)[1].split("</figure>", 1)[0]
    points = re.search(r'<polyline points="([^"]+)"', battery)
    assert points is not None and len(points.group(1).split()) >= len(hours) - 1
    assert "No time-series store" not in history


def test_without_a_time_series_store_the_aed_page_says_so(monitored: Console) -> None:
    page = page_text(monitored.browser.get("/fleet/aeds/town-hall"))

    history = page.split('id="history"', 1)[1].split("</section>", 1)[0]
    assert "No time-series store is configured" in history and "<svg" not in history


def test_when_the_store_does_not_answer_the_aed_page_still_opens_and_says_so(
        engine: Engine, settings: Settings) -> None:
    add_monitored_aed(engine, "kiosk", near(100), NOW)
    record_readiness(engine, settings, NOW)
    console = open_console(engine, settings, history_url=f"http://127.0.0.1:{free_port()}")

    response = console.browser.get("/fleet/aeds/kiosk")

    assert response.status_code == 200
    assert "the time-series store did not answer" in page_text(response)


# -- responder self-service -----------------------------------------------------------------------

def registration(**changes: str) -> dict[str, str]:
    """A citizen's registration form: an adult certified 100 days ago, living in Utrecht."""
    values = {"name": "Anna de Vries", "email": "anna@example.org", "phone": "+31612345678",
              "date_of_birth": "1990-03-14",
              "certificate_date": (NOW.date() - timedelta(days=100)).isoformat(),
              "home_lat": "52.0920", "home_lon": "5.1200", "username": "anna",
              "password": PASSWORD}
    values.update(changes)
    return values


@pytest.fixture
def visitor(engine: Engine, settings: Settings) -> Console:
    """The console with nobody logged in (the browser is a citizen's)."""
    return open_console(engine, settings, role="anonymous")


def responders(engine: Engine) -> int:
    return count_rows(engine, Responder)


def seventeen_today() -> str:
    return date(NOW.year - 17, NOW.month, NOW.day).isoformat()


@pytest.mark.parametrize(("changes", "words"), [
    ({"date_of_birth": seventeen_today()}, "responders must be at least 18 years old"),
    ({"certificate_date": (NOW.date() + timedelta(days=3)).isoformat()},
     "certificate_date is in the future"),
    ({"home_lat": "", "home_lon": ""}, "a home or work location is required"),
    ({"password": "short"}, "a password needs at least 10 characters"),
    ({"username": ""}, "choose a user name"),
], ids=["under_18", "certificate_in_the_future", "no_location", "short_password",
        "no_user_name"])
def test_a_registration_that_breaks_a_rule_is_refused_with_the_reason(
        visitor: Console, changes: dict[str, str], words: str) -> None:
    response = submit(visitor.browser, "/responder/register", **registration(**changes))

    assert response.status_code == 422
    assert words in page_text(response)
    assert responders(visitor.engine) == 0 and count_rows(visitor.engine, ConsoleUser) == 0



@pytest.mark.parametrize("certificate", ["", (NOW.date() - timedelta(days=400)).isoformat()],
                         ids=["no_certificate", "expired_certificate"])
def test_a_registration_without_a_valid_certificate_is_refused(
        visitor: Console, certificate: str) -> None:
    response = submit(visitor.browser, "/responder/register",
                      **registration(certificate_date=certificate))

    assert response.status_code == 422
    assert responders(visitor.engine) == 0


def test_a_refused_account_leaves_no_responder_behind(visitor: Console) -> None:
    response = submit(visitor.browser, "/responder/register", **registration(username="a" * 65))

    assert response.status_code == 422
    assert responders(visitor.engine) == 0


def test_a_taken_user_name_is_refused_and_leaves_no_responder_behind(
        visitor: Console) -> None:
    create_account(visitor.engine, "anna", PASSWORD, "admin", NOW)

    response = submit(visitor.browser, "/responder/register", **registration())

    assert response.status_code == 422
    assert "user name &#39;anna&#39; is taken" in page_text(response)
    assert responders(visitor.engine) == 0


def test_a_registered_responder_renews_the_certificate_and_pauses_alerts(
        visitor: Console) -> None:
    browser = visitor.browser
    old = (NOW.date() - timedelta(days=300)).isoformat()
    registered = submit(browser, "/responder/register",
                        **registration(certificate_date=old))
    assert registered.status_code == 303 and registered.location == "/responder"
    profile = page_text(browser.get("/responder"))
    assert "valid until" in profile and "Anna de Vries" in profile

    renewed = submit(browser, "/responder", "/responder/certificate",
                     certificate_date=(NOW.date() - timedelta(days=2)).isoformat())
    paused = submit(browser, "/responder", "/responder/availability", available=None,
                    quiet_from="23:00", quiet_until="07:00")

    assert (renewed.status_code, paused.status_code) == (303, 303)
    with Session(visitor.engine) as session:
        [responder] = session.exec(select(Responder)).all()
    assert responder.certificate_date == NOW.date() - timedelta(days=2)
    assert responder.available is False
    assert (responder.quiet_from.isoformat() if responder.quiet_from else None,
            responder.quiet_until.isoformat() if responder.quiet_until else None) == (
        "23:00:00", "07:00:00")
    profile = page_text(browser.get("/responder"))
    # Renewed on 2026-11-23: valid for twelve months, up to the day before.
    assert 'valid until <strong><time datetime="2027-11-22">22 Nov 2027</time></strong>' in profile
    shown = form_on(browser, "/responder", "/responder/availability").fields
    assert "available" not in shown  # the box is unticked
    assert (shown["quiet_from"], shown["quiet_until"]) == ("23:00", "07:00")


def test_a_certificate_dated_in_the_future_is_not_saved(visitor: Console) -> None:
    browser = visitor.browser
    submit(browser, "/responder/register", **registration())

    response = submit(browser, "/responder", "/responder/certificate",
                      certificate_date=(NOW.date() + timedelta(days=1)).isoformat())

    assert response.status_code == 303
    with Session(visitor.engine) as session:
        [responder] = session.exec(select(Responder)).all()
    assert responder.certificate_date == NOW.date() - timedelta(days=100)
    assert "Not saved: certificate_date is in the future" in page_text(browser.get("/responder"))


def test_answering_the_questionnaire_with_aftercare_creates_a_task_due_within_a_day(
        engine: Engine, settings: Settings) -> None:
    scene = build_scene(engine, settings)
    browser = client_as(make_app(scene), "responder")
    token = scene.questionnaires["r-1"]
    page = f"/responder/questionnaires/{token}"

    answered = submit(browser, page, arrived="yes", cpr="yes", aed_used="I do not know",
                      remarks="The AED was where the app said.", aftercare="yes")
    again = browser.post(page, data={"arrived": "no", "aftercare": "yes",
                                     "csrf_token": csrf_token(browser, "/responder")})

    assert answered.status_code == 303
    with Session(engine) as session:
        [task] = session.exec(select(AftercareTask)).all()
        questionnaire = session.get(Questionnaire, token)
    assert (task.responder_id, task.incident_id) == ("r-1", scene.incident_id)
    assert task.requested_at == scene.now
    assert scene.now < task.due_at <= scene.now + timedelta(hours=24)
    assert questionnaire is not None and questionnaire.answered_at == scene.now
    assert questionnaire.answers is not None and '"aed_used": "I do not know"' in \
        questionnaire.answers
    assert again.status_code == 409
    assert "already answered" in page_text(again)
    assert count_rows(engine, AftercareTask) == 1
    assert "This questionnaire is answered." in page_text(browser.get(page))
    assert "the aftercare team will contact you before" in page_text(browser.get("/responder"))


# -- the API's description ------------------------------------------------------------------------

def test_the_openapi_document_is_valid_and_describes_every_api_route(
        engine: Engine, settings: Settings) -> None:
    app = console_app(engine, settings, lambda: NOW)

    spec = app.test_client().get("/api/v1/openapi.json").get_json()

    validate(spec)
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    described = {(path, method) for path, operations in spec["paths"].items()
                 for method in operations}
    # The document does not describe itself.
    assert described == routes - {("/api/v1/openapi.json", "get")}
    docs = page_text(app.test_client().get("/api/docs"))
    for path, _ in described:
        assert path in docs


def test_the_log_in_form_keeps_the_user_name_after_a_wrong_password(
        engine: Engine, settings: Settings) -> None:
    console = open_console(engine, settings)
    browser = console.app.test_client()

    response = login(browser, "admin", "not the password")

    assert response.status_code == 401
    assert 'value="admin"' in page_text(response)
