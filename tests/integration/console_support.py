"""A scene for the console's tests: two AED managers, two municipalities, a closed incident with
its questionnaires, and one account for each role, all with the same password.

    manager A "Beheer Noord": aed-1 (Utrecht, sent to the incident), a-2 (Utrecht, pads
                              expired: not ready), a-3 (Utrecht, ready all along)
    manager B "Beheer Zuid":  b-1 (Zeist, ready), b-2 (Utrecht, no cabinet: unverified),
                              b-3 (Zeist, no cabinet)

The street of `alarm_support` (six responders around the victim) went through one incident,
closed ten minutes later; r-1 and r-2 log in as responders. The application under test is the
real one (`web.create_app`) over a real database; a browser is played by Flask's test client,
which fills in forms the way a browser does: from the page's own HTML.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from databases import fresh_postgres_database
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import make_url
from sqlmodel import Session, col
from werkzeug.test import TestResponse

from alarm_core.models import Questionnaire
from alarm_core.service import AlarmCore
from fleet import migrate
from fleet.accounts import create_account
from fleet.db import make_engine, session_scope
from fleet.ingest.readiness import ReadinessRecorder, mark_sweep
from fleet.models import Aed, AedReadiness, Manager, Municipality
from fleet.settings import Settings
from web import create_app

from .alarm_support import (
    NOW,
    add_monitored_aed,
    add_unmonitored_aed,
    alarm_settings,
    build_street,
    call,
    near,
    report_cabinet,
    set_aed,
)

PASSWORD = "correct horse battery"
MANAGER_A, MANAGER_B = "Beheer Noord", "Beheer Zuid"
UTRECHT, ZEIST = "Utrecht", "Zeist"
ZEIST_PLACE = (52.0894, 5.2330)
BOUNDARIES = {UTRECHT: (52.05, 5.05, 52.13, 5.17), ZEIST: (52.05, 5.20, 52.13, 5.30)}
"""Two squares (south, west, north, east) standing in for the municipalities' outlines."""
A_AEDS = ("aed-1", "a-2", "a-3")
B_AEDS = ("b-1", "b-2", "b-3")
UTRECHT_AEDS = ("aed-1", "a-2", "a-3", "b-2")
ROLES = ("admin", "manager_a", "manager_b", "municipality", "dispatcher", "responder",
         "anonymous")
USERNAMES = {"admin": "admin", "manager_a": "noord", "manager_b": "zuid",
             "municipality": "gemeente-utrecht", "dispatcher": "meldkamer", "responder": "r-1",
             "responder_2": "r-2"}
SECRET_KEY = "console-tests-" + "k" * 40
POSTGRES_URL_VARIABLE = "AEDFLEET_TEST_POSTGRES_URL"
DATABASES = [pytest.param("sqlite", id="sqlite"),
             pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)]


# -- settings and the database --------------------------------------------------------------------

def console_settings(settings: Settings, **web: Any) -> Settings:
    """The test's settings with a fixed session key and cookies a http:// client sends back."""
    values: dict[str, Any] = {"secret_key": SECRET_KEY, "secure_cookies": False, **web}
    return settings.model_copy(update={"web": settings.web.model_copy(update=values)})


def module_database(kind: str, folder: Path) -> Iterator[str]:
    """An empty database for a whole test module (the scene is expensive: password hashes)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'aedfleet.db'}"
        return
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set: no PostgreSQL server to test against")
    yield from fresh_postgres_database(make_url(server_url))


def module_engine(kind: str, folder: Path) -> Iterator[tuple[Engine, Settings]]:
    """An engine on a fresh, migrated database of `kind`, and settings naming it."""
    for url in module_database(kind, folder):
        engine = make_engine(url)
        migrate.upgrade(engine)
        try:
            yield engine, Settings(database_url=url)
        finally:
            engine.dispose()


def module_scene(kind: str, folder: Path) -> Iterator[Scene]:
    """The whole scene on a fresh database of `kind`, for a module-scoped fixture."""
    for engine, settings in module_engine(kind, folder):
        yield build_scene(engine, settings)


# -- the scene ------------------------------------------------------------------------------------

@dataclass
class Scene:
    engine: Engine
    settings: Settings
    core: AlarmCore
    incident_id: str
    questionnaires: dict[str, str]
    """Responder id -> the token of their questionnaire of the incident."""
    now: datetime = NOW + timedelta(hours=1)
    """The console's clock: an hour after the call."""
    managers: dict[str, int] = field(default_factory=dict)
    municipalities: dict[str, int] = field(default_factory=dict)


def add_named(engine: Engine, model: Any, name: str, **values: Any) -> int:
    """A manager or municipality row; returns its id."""
    with session_scope(engine) as session:
        row = model(name=name, **values)
        session.add(row)
        session.flush()
        return int(row.id)


def square(south: float, west: float, north: float, east: float) -> str:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def record_readiness(engine: Engine, settings: Settings, now: datetime,
                     aed_ids: list[str] | None = None, cause: str = "test scene") -> None:
    """Evaluate the AEDs and record their state, and mark the sweep as done, as the ingest's
    sweep does (recorded states count only while sweeps keep coming)."""
    with session_scope(engine) as session:
        ReadinessRecorder(session, settings, now).refresh(aed_ids, cause)
        mark_sweep(session, now)


def build_scene(engine: Engine, settings: Settings, accounts: bool = True) -> Scene:
    settings = console_settings(settings)
    build_street(engine)
    # The call comes first: only aed-1 is sent to it (the AEDs added later have a history
    # without `in_use`).
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW)
    incident_id = core.intake("112-utrecht", call("ref-1"), NOW).incident.id
    core.close(incident_id, "closed_by_dispatch", NOW + timedelta(minutes=10))
    with Session(engine) as session:
        tokens = {q.responder_id: q.token for q in session.execute(
            sa_select(Questionnaire)).scalars()}
    managers = {name: add_named(engine, Manager, name) for name in (MANAGER_A, MANAGER_B)}
    places = {name: add_named(engine, Municipality, name, boundary_geojson=square(*corners))
              for name, corners in BOUNDARIES.items()}
    a, b = managers[MANAGER_A], managers[MANAGER_B]
    set_aed(engine, "aed-1", manager_id=a, municipality_id=places[UTRECHT])
    add_monitored_aed(engine, "a-2", near(600), NOW, manager_id=a,
                      municipality_id=places[UTRECHT])
    add_monitored_aed(engine, "a-3", near(-200, 300), NOW, manager_id=a,
                      municipality_id=places[UTRECHT])
    add_monitored_aed(engine, "b-1", ZEIST_PLACE, NOW, manager_id=b,
                      municipality_id=places[ZEIST])
    add_unmonitored_aed(engine, "b-2", near(-900), NOW, manager_id=b,
                        municipality_id=places[UTRECHT])
    add_unmonitored_aed(engine, "b-3", near(-500, 9000), NOW, manager_id=b,
                        municipality_id=places[ZEIST])

    scene = Scene(engine, settings, core, incident_id, tokens, managers=managers,
                  municipalities=places)
    for aed_id in ("aed-1", "a-2", "a-3", "b-1"):
        report_cabinet(engine, f"cab-{aed_id}", scene.now - timedelta(minutes=1))
    report_cabinet(engine, "cab-a-2", scene.now - timedelta(seconds=30),
                   pads_expiry=NOW.date() - timedelta(days=3))
    record_readiness(engine, settings, scene.now)
    if accounts:
        add_accounts(scene)
    return scene


def add_accounts(scene: Scene) -> None:
    engine, now = scene.engine, scene.now
    create_account(engine, USERNAMES["admin"], PASSWORD, "admin", now)
    create_account(engine, USERNAMES["manager_a"], PASSWORD, "manager", now, manager=MANAGER_A)
    create_account(engine, USERNAMES["manager_b"], PASSWORD, "manager", now, manager=MANAGER_B)
    create_account(engine, USERNAMES["municipality"], PASSWORD, "municipality", now,
                   municipality=UTRECHT)
    create_account(engine, USERNAMES["dispatcher"], PASSWORD, "dispatcher", now)
    create_account(engine, USERNAMES["responder"], PASSWORD, "responder", now,
                   responder_id="r-1")
    create_account(engine, USERNAMES["responder_2"], PASSWORD, "responder", now,
                   responder_id="r-2")


def make_app(scene: Scene, *, csrf: bool = True, coverage: Any = None,
             **web: Any) -> Flask:
    """The console over the scene; `web` changes `[web]` settings (e.g. secure_cookies)."""
    return console_app(scene.engine, scene.settings, lambda: scene.now, alarm_core=scene.core,
                       csrf=csrf, coverage=coverage, **web)


def console_app(engine: Engine, settings: Settings, clock: Callable[[], datetime], *,
                alarm_core: Any = None, csrf: bool = True, coverage: Any = None,
                **web: Any) -> Flask:
    """The real application over `engine`, with the console's clock and test settings."""
    return create_app(engine, settings=console_settings(settings, **web),
                      alarm_core=alarm_core, clock=clock, coverage=coverage,
                      config={"TESTING": True, "WTF_CSRF_ENABLED": csrf})


# -- reading the database back --------------------------------------------------------------------

def aed_ids_where(engine: Engine, *conditions: Any) -> set[str]:
    with Session(engine) as session:
        return set(session.execute(sa_select(col(Aed.id)).where(*conditions)).scalars())


def owned_by(scene: Scene, manager: str) -> set[str]:
    return aed_ids_where(scene.engine, col(Aed.manager_id) == scene.managers[manager])


def located_in(scene: Scene, municipality: str) -> set[str]:
    return aed_ids_where(scene.engine,
                         col(Aed.municipality_id) == scene.municipalities[municipality])


def states_of(engine: Engine, aed_ids: set[str]) -> dict[str, int]:
    """How many of these AEDs have each recorded state (`unknown`: none recorded)."""
    with Session(engine) as session:
        found = dict(session.execute(
            sa_select(col(AedReadiness.state), func.count())
            .where(col(AedReadiness.aed_id).in_(aed_ids)).group_by(col(AedReadiness.state))
        ).all())
    counts = {state: int(found.get(state, 0))
              for state in ("not_ready", "unverified", "unknown", "ready")}
    counts["unknown"] = len(aed_ids) - sum(counts.values())
    return counts


# -- a browser's view of the pages ----------------------------------------------------------------

@dataclass
class Form:
    """One <form> of a page: where it posts and what a browser sends without any change."""

    action: str | None
    method: str
    fields: dict[str, str]
    names: list[str]
    """Every named control, sent or not (an unchecked box is not sent)."""


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._form = Form(a.get("action") or None, a.get("method", "get").lower(), {}, [])
            self.forms.append(self._form)
            return
        if self._form is None or not a.get("name"):
            return
        name = a["name"]
        self._form.names.append(name)
        if tag == "textarea":
            self._textarea = name
            self._form.fields[name] = ""
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "reset", "file"):
                self._form.fields[name] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._form = None


def forms_of(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def form_on(client: FlaskClient, page: str, action: str | None = None,
            **environ: Any) -> Form:
    """The form on `page` that posts to `action` (None: to the page itself)."""
    response = client.get(page, **environ)
    assert response.status_code == 200, (page, response.status_code)
    html = response.get_data(as_text=True)
    for form in forms_of(html):
        if form.method == "post" and (form.action or None) == action:
            return form
    raise AssertionError(f"no form posting to {action or page} on {page}")


def csrf_token(client: FlaskClient, page: str = "/login") -> str:
    """The CSRF token a page carries (the session's: any form of it takes it)."""
    html = client.get(page).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, f"no csrf_token on {page}"
    return found.group(1)


def submit(client: FlaskClient, page: str, action: str | None = None,
           **changes: str | None) -> TestResponse:
    """Fill in the form as a browser shows it, change some fields (None: leave one out), send."""
    form = form_on(client, page, action)
    data = {**form.fields, **changes}
    return client.post(action or page, data={k: v for k, v in data.items() if v is not None})


def login(client: FlaskClient, username: str, password: str = PASSWORD,
          next_page: str | None = None, **request_args: Any) -> TestResponse:
    """Log in through the log-in page's form, as a browser does (`next_page`: the already
    URL-encoded `next` of the page's address)."""
    page = "/login" if next_page is None else f"/login?next={next_page}"
    html = client.get(page, **request_args).get_data(as_text=True)
    [form] = [f for f in forms_of(html) if "username" in f.names]
    assert form.action is not None
    if request_args.get("base_url", "").startswith("https:"):
        # Over HTTPS, flask-wtf also wants the Referer a browser sends (same-origin policy).
        request_args.setdefault("headers", {"Referer": request_args["base_url"] + page})
    return client.post(form.action, data={**form.fields, "username": username,
                                          "password": password}, **request_args)


def client_as(app: Flask, role: str, **client_args: Any) -> FlaskClient:
    """A browser logged in as the scene's account of `role` (`anonymous`: not logged in)."""
    client = app.test_client(**client_args)
    if role != "anonymous":
        response = login(client, USERNAMES[role])
        assert response.status_code == 303, (role, response.status_code)
    return client


def page_text(response: TestResponse) -> str:
    return response.get_data(as_text=True)
