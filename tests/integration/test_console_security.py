"""The console's defences: CSRF tokens on every form, session cookie flags, log-in throttling,
escaping of whatever people type, no open redirect after log-in, and the security headers.

The real application over the real database (both engines), one scene per module
(`console_support`); a browser is Flask's test client, which sends each form as the page
filled it in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import inspect
from sqlmodel import Session, col, select
from werkzeug.test import TestResponse

from alarm_core.models import Questionnaire, Responder
from fleet.accounts import create_account, disable_account
from fleet.models import Aed, ConsoleUser, ReadinessDeclaration

from .console_support import (
    DATABASES,
    PASSWORD,
    USERNAMES,
    Scene,
    client_as,
    csrf_token,
    form_on,
    login,
    make_app,
    module_scene,
    page_text,
    submit,
)
from .ingest_support import count_rows


@pytest.fixture(scope="module", params=DATABASES)
def scene(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from module_scene(request.param, tmp_path_factory.mktemp("console"))


@pytest.fixture
def app(scene: Scene) -> Flask:
    """A new application (its own log-in counts) with CSRF checks on, as deployed."""
    return make_app(scene)


# -- CSRF -----------------------------------------------------------------------------------------

def aed_name(scene: Scene, aed_id: str) -> str | None:
    with Session(scene.engine) as session:
        aed = session.get(Aed, aed_id)
        return None if aed is None else aed.name


def responder_row(scene: Scene, responder_id: str) -> Responder:
    with Session(scene.engine) as session:
        found = session.get(Responder, responder_id)
        assert found is not None
        return found


def answered(scene: Scene, token: str) -> bool:
    with Session(scene.engine) as session:
        found = session.get(Questionnaire, token)
        return found is not None and found.answered_at is not None


def registration(username: str, **changes: str) -> dict[str, str]:
    """A citizen's registration form: adult, certified 100 days ago, living in Utrecht."""
    values = {"name": "Anna de Vries", "email": "anna@example.org", "phone": "+31612345678",
              "date_of_birth": "1990-03-14", "certificate_date": "2026-08-17",
              "home_lat": "52.0920", "home_lon": "5.1200", "username": username,
              "password": PASSWORD}
    values.update(changes)
    return values


@dataclass(frozen=True)
class FormCase:
    """One form: who sends it from which page, what they fill in, and what it changes."""

    role: str
    page: str
    action: str | None
    changes: Mapping[str, str | None]
    observe: Callable[[Scene, FlaskClient], object]
    """Something the form changes (read before and after sending it)."""
    done: int = 303


FORMS = {
    "login": FormCase("anonymous", "/login", "/login",
                      {"username": USERNAMES["admin"], "password": PASSWORD},
                      lambda s, c: c.get("/fleet").status_code),
    "logout": FormCase("admin", "/fleet", "/logout", {},
                       lambda s, c: c.get("/fleet").status_code),
    "declare": FormCase("manager_a", "/fleet/aeds/a-3", "/fleet/aeds/a-3/declare",
                        {"checked": "yes", "note": "checked today"},
                        lambda s, c: count_rows(s.engine, ReadinessDeclaration,
                                                col(ReadinessDeclaration.aed_id) == "a-3")),
    "edit": FormCase("manager_a", "/fleet/aeds/a-3/edit", None, {"name": "Town hall"},
                     lambda s, c: aed_name(s, "a-3")),
    "new": FormCase("manager_a", "/fleet/aeds/new", None,
                    {"id": "csrf-new", "name": "Library", "lat": "52.0950", "lon": "5.1200"},
                    lambda s, c: aed_name(s, "csrf-new")),
    "register": FormCase("anonymous", "/responder/register", None,
                         registration("anna-csrf"),
                         lambda s, c: count_rows(s.engine, ConsoleUser,
                                                 col(ConsoleUser.username) == "anna-csrf")),
    "certificate": FormCase("responder", "/responder", "/responder/certificate",
                            {"certificate_date": "2026-11-01"},
                            lambda s, c: responder_row(s, "r-1").certificate_date),
    "availability": FormCase("responder", "/responder", "/responder/availability",
                             {"available": None, "quiet_from": "23:00",
                              "quiet_until": "07:00"},
                             lambda s, c: responder_row(s, "r-1").available),
    "questionnaire": FormCase("responder", "/responder/questionnaires/{token}", None,
                              {"arrived": "yes", "cpr": "yes", "aed_used": "no",
                               "aftercare": "yes"},
                              lambda s, c: answered(s, s.questionnaires["r-1"])),
}


@pytest.mark.parametrize("name", list(FORMS))
def test_every_form_is_refused_without_its_csrf_token_and_works_with_it(
        scene: Scene, app: Flask, name: str) -> None:
    case = FORMS[name]
    browser = client_as(app, case.role)
    page = case.page.format(token=scene.questionnaires["r-1"])
    form = form_on(browser, page, case.action)
    target = case.action or page
    sent = {key: value for key, value in {**form.fields, **case.changes}.items()
            if value is not None}
    assert sent.get("csrf_token"), f"the {name} form carries no CSRF token"
    before = case.observe(scene, browser)
    someone_elses = csrf_token(app.test_client())

    refusals = [browser.post(target, data={k: v for k, v in sent.items() if k != "csrf_token"}),
                browser.post(target, data={**sent, "csrf_token": "forged"}),
                browser.post(target, data={**sent, "csrf_token": someone_elses})]

    for refused in refusals:
        assert refused.status_code == 400, page_text(refused)[:300]
        assert "security token" in page_text(refused)
    assert case.observe(scene, browser) == before
    accepted = browser.post(target, data=sent)
    assert accepted.status_code == case.done, page_text(accepted)[:500]
    assert case.observe(scene, browser) != before


def test_logging_out_takes_a_form_not_a_link(app: Flask) -> None:
    browser = client_as(app, "admin")

    assert browser.get("/logout").status_code == 405
    assert browser.get("/fleet").status_code == 200


# -- the session cookie ---------------------------------------------------------------------------

def session_cookie(response: TestResponse) -> tuple[str, str]:
    """The Set-Cookie header of the session cookie: (value, attributes in lower case)."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("aedfleet_session="):
            cookie = SimpleCookie()
            cookie.load(header)
            return cookie["aedfleet_session"].value, header.lower()
    raise AssertionError(f"no session cookie in {response.headers.getlist('Set-Cookie')}")


def test_the_session_cookie_is_http_only_and_same_site_lax(scene: Scene) -> None:
    app = make_app(scene, secure_cookies=False)
    browser = app.test_client()

    response = login(browser, USERNAMES["manager_a"])

    assert response.status_code == 303
    value, attributes = session_cookie(response)
    assert value and "; httponly" in attributes and "; samesite=lax" in attributes
    assert "; secure" not in attributes
    assert browser.get("/fleet").status_code == 200


def test_with_secure_cookies_the_session_cookie_is_marked_secure(scene: Scene) -> None:
    app = make_app(scene, secure_cookies=True)
    browser = app.test_client()

    response = login(browser, USERNAMES["manager_a"], base_url="https://localhost")

    assert response.status_code == 303
    _, attributes = session_cookie(response)
    assert "; secure" in attributes and "; httponly" in attributes
    assert "; samesite=lax" in attributes
    assert browser.get("/fleet", base_url="https://localhost").status_code == 200


# -- log-in throttling ----------------------------------------------------------------------------

def attempt(browser: FlaskClient, username: str, password: str, address: str) -> int:
    response = browser.post("/login", data={"username": username, "password": password},
                            environ_base={"REMOTE_ADDR": address})
    return response.status_code


@pytest.fixture
def unguarded(scene: Scene) -> FlaskClient:
    """A browser of a new application without CSRF checks: only the throttle is in the way."""
    return make_app(scene, csrf=False).test_client()


def test_the_sixth_failed_log_in_within_a_minute_is_refused_even_with_the_right_password(
        unguarded: FlaskClient) -> None:
    failed = [attempt(unguarded, "noord", "wrong password", "192.0.2.10") for _ in range(5)]

    assert failed == [401] * 5
    assert attempt(unguarded, "noord", "wrong password", "192.0.2.10") == 429
    assert attempt(unguarded, "noord", PASSWORD, "192.0.2.10") == 429


def test_failed_log_ins_count_per_address_whichever_user_name_they_try(
        unguarded: FlaskClient) -> None:
    failed = [attempt(unguarded, f"guess-{n}", "wrong password", "192.0.2.20")
              for n in range(5)]

    assert failed == [401] * 5
    assert attempt(unguarded, "guess-6", "wrong password", "192.0.2.20") == 429
    assert attempt(unguarded, "zuid", PASSWORD, "192.0.2.21") == 303


def test_failed_log_ins_count_per_user_name_from_any_address(scene: Scene) -> None:
    unguarded = make_app(scene, csrf=False, login_limit_per_user="5 per minute").test_client()
    failed = [attempt(unguarded, "Zuid", "wrong password", f"198.51.100.{n}")
              for n in range(1, 6)]

    assert failed == [401] * 5
    assert attempt(unguarded, " zuid ", "wrong password", "198.51.100.77") == 429
    assert attempt(unguarded, "zuid", PASSWORD, "198.51.100.78") == 429
    assert attempt(unguarded, "noord", PASSWORD, "198.51.100.78") == 303


def test_by_default_a_few_failures_from_other_addresses_do_not_lock_a_user_out(
        unguarded: FlaskClient) -> None:
    failed = [attempt(unguarded, "meldkamer", "wrong password", f"198.51.100.{n}")
              for n in range(101, 121)]

    assert failed == [401] * 20
    assert attempt(unguarded, "meldkamer", PASSWORD, "198.51.100.200") == 303


def test_a_successful_log_in_does_not_count_against_the_limit(unguarded: FlaskClient) -> None:
    statuses = [attempt(unguarded, "meldkamer", "wrong password", "203.0.113.5")
                for _ in range(4)]
    statuses.append(attempt(unguarded, "meldkamer", PASSWORD, "203.0.113.5"))
    statuses.append(attempt(unguarded, "meldkamer", "wrong password", "203.0.113.5"))

    assert statuses == [401, 401, 401, 401, 303, 401]
    assert attempt(unguarded, "meldkamer", "wrong password", "203.0.113.5") == 429


def test_an_unknown_user_a_wrong_password_and_a_disabled_account_get_the_same_answer(
        scene: Scene, unguarded: FlaskClient) -> None:
    create_account(scene.engine, "left-the-job", PASSWORD, "dispatcher", scene.now)
    disable_account(scene.engine, "left-the-job", scene.now)
    answers = {}
    for address, username, password in (("192.0.2.31", "no-such-user", PASSWORD),
                                         ("192.0.2.32", "meldkamer", "not the password"),
                                         ("192.0.2.33", "left-the-job", PASSWORD)):
        response = unguarded.post("/login", data={"username": username, "password": password},
                                  environ_base={"REMOTE_ADDR": address})
        text = page_text(response).replace(f'value="{username}"', 'value="NAME"')
        answers[username] = (response.status_code, without_tokens(text))

    assert len(set(answers.values())) == 1, answers
    status, text = answers["no-such-user"]
    assert status == 401 and "Unknown user name or wrong password." in text


def without_tokens(html: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', html)
    return re.sub(r'name="csrf-token" content="[^"]*"', 'name="csrf-token"', html)


# -- what people type is stored as typed and shown as text ----------------------------------------

PAYLOADS = ["<script>alert(1)</script>", "'; DROP TABLE aed; --", '" onmouseover="x',
            "</textarea><img src=x onerror=alert(1)>"]
AED_TEXT_FIELDS = ("name", "address", "location_hint", "serial", "make", "model")


def assert_shown_as_text(html: str, payload: str) -> None:
    assert payload not in html
    assert str(escape(payload)) in html


@pytest.mark.parametrize("number", range(len(PAYLOADS)))
def test_text_typed_into_the_aed_form_is_stored_literally_and_shown_escaped(
        scene: Scene, app: Flask, number: int) -> None:
    payload, aed_id = PAYLOADS[number], f"typed-{number}"
    typed = dict.fromkeys(AED_TEXT_FIELDS, payload)
    browser = client_as(app, "manager_a")

    registered = submit(browser, "/fleet/aeds/new", id=aed_id, lat="52.0950", lon="5.1200",
                        **typed)
    edited = submit(browser, "/fleet/aeds/a-3/edit", **typed)
    refused = submit(browser, "/fleet/aeds/new", id=payload, lat=payload, lon="5.12",
                     opening_hours=payload, device_id=payload, name=payload)

    assert (registered.status_code, edited.status_code) == (303, 303)
    with Session(scene.engine) as session:
        for stored in (session.get(Aed, aed_id), session.get(Aed, "a-3")):
            assert stored is not None
            assert {name: getattr(stored, name) for name in AED_TEXT_FIELDS} == typed
        assert session.get(Aed, payload) is None
    assert inspect(scene.engine).has_table("aed") and count_rows(scene.engine, Aed) > 5
    assert refused.status_code == 422
    assert_shown_as_text(page_text(refused), payload)
    for page in ("/fleet/aeds/a-3", f"/fleet/aeds/{aed_id}/edit", "/fleet"):
        response = browser.get(page)
        assert response.status_code == 200, page
        assert_shown_as_text(page_text(response), payload)
    assert browser.get(f"/api/v1/aeds/{aed_id}").get_json()["name"] == payload


@pytest.mark.parametrize("number", range(len(PAYLOADS)))
def test_text_typed_into_the_responder_registration_is_stored_literally_and_shown_escaped(
        scene: Scene, app: Flask, number: int) -> None:
    payload = PAYLOADS[number]
    browser = app.test_client()

    response = submit(browser, "/responder/register", **registration(
        payload, name=payload, email=payload, phone=payload))
    refused = submit(app.test_client(), "/responder/register", **registration(
        payload + "-2", name=payload, date_of_birth=payload))

    assert response.status_code == 303, page_text(response)[:800]
    with Session(scene.engine) as session:
        user = session.exec(select(ConsoleUser).where(ConsoleUser.username == payload)).one()
        responder = session.get(Responder, user.responder_id)
        assert responder is not None
        assert (responder.name, responder.email, responder.phone) == (payload,) * 3
    assert inspect(scene.engine).has_table("aed")
    profile = page_text(browser.get("/responder"))
    assert_shown_as_text(profile, payload)
    assert refused.status_code == 422
    assert_shown_as_text(page_text(refused), payload)


# -- after log-in: only pages of this site --------------------------------------------------------


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "http:/evil.example", " //evil.example",
    "/\t/evil.example", "/\n/evil.example",
], ids=repr)
def test_log_in_never_redirects_to_another_site(app: Flask, target: str) -> None:
    browser = app.test_client()

    response = login(browser, USERNAMES["admin"], next_page=quote(target, safe=""))

    assert response.status_code == 303
    location = response.headers["Location"]
    # A browser drops tabs and newlines from a URL and reads a backslash as a slash.
    seen = "".join(c for c in location if c not in "\t\r\n").replace("\\", "/").strip()
    assert not seen.startswith("//"), location
    assert urlsplit(seen).netloc in ("", "localhost"), location
    assert urlsplit(seen).scheme in ("", "http", "https"), location


def test_log_in_returns_to_the_page_on_this_site_that_asked_for_it(app: Flask) -> None:
    browser = app.test_client()

    sent_away = browser.get("/fleet/aeds/a-3")
    response = login(browser, USERNAMES["manager_a"],
                     next_page=urlsplit(sent_away.location).query.removeprefix("next="))

    assert sent_away.status_code == 302
    assert response.status_code == 303 and response.headers["Location"] == "/fleet/aeds/a-3"


# -- headers --------------------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(scene: Scene, unguarded: FlaskClient,
                                                   app: Flask) -> None:
    browser = app.test_client()
    answers = {
        "page": browser.get("/login"),
        "json error": browser.get("/api/v1/aeds"),
        "not found": browser.get("/no-such-page"),
        "static": browser.get("/static/console.css"),
        "csrf refusal": browser.post("/login", data={"username": "x", "password": "y"}),
        "redirect": browser.get("/fleet"),
        "docs": browser.get("/api/docs"),
    }
    for _ in range(6):
        answers["throttled"] = unguarded.post("/login", data={
            "username": "nobody", "password": "x"}, environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert answers["throttled"].status_code == 429

    for what, response in answers.items():
        headers = response.headers
        assert headers.get("X-Content-Type-Options") == "nosniff", what
        assert headers.get("X-Frame-Options") == "DENY", what
        policy = headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, what
        assert "script-src" not in policy or "'unsafe-inline'" not in policy.split(
            "script-src", 1)[1].split(";")[0], what
        response.close()


def test_the_throttled_answer_says_when_to_try_again(unguarded: FlaskClient) -> None:
    for _ in range(6):
        response = unguarded.post("/login", data={"username": "nobody", "password": "x"},
                                  environ_base={"REMOTE_ADDR": "192.0.2.98"})

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
