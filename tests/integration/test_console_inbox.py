"""The responder inbox and region news in the console, on both databases.

The console scene (`console_support`): the street went through one call, closed, so r-1 and r-2
each have a questionnaire in their inbox. Regions NL-UT and DE-NW are loaded here; r-1 and r-2
live in NL-UT. A region administrator of DE-NW posts only to DE-NW; the platform admin anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlmodel import Session, select

from alarm_core.models import InboxMessage, InboxRead, Responder
from fleet.accounts import create_account
from fleet.cli import main
from fleet.db import session_scope

from .console_support import (
    DATABASES,
    PASSWORD,
    Scene,
    client_as,
    csrf_token,
    form_on,
    login,
    make_app,
    module_scene,
    page_text,
)
from .test_responder_inbox import COLOGNE, UTRECHT, add_region

REGION_ADMIN = "admin-koeln"


@pytest.fixture(scope="module", params=DATABASES)
def scene(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    for found in module_scene(request.param, tmp_path_factory.mktemp("inbox")):
        add_region(found.engine, UTRECHT, "nl,en", (4.9, 51.95, 5.3, 52.2))
        add_region(found.engine, COLOGNE, "de", (6.8, 50.8, 7.1, 51.1), country="DE")
        with session_scope(found.engine) as session:
            session.execute(update(Responder).values(region=UTRECHT))
        create_account(found.engine, REGION_ADMIN, PASSWORD, "admin", found.now,
                       region=COLOGNE)
        yield found


@pytest.fixture(scope="module")
def app(scene: Scene) -> Flask:
    return make_app(scene)


def browser_of(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, username).status_code == 303
    return client


def own_messages(scene: Scene, responder_id: str) -> list[int]:
    with Session(scene.engine) as session:
        return list(session.exec(select(InboxMessage.id).where(
            InboxMessage.responder_id == responder_id)).all())  # type: ignore[arg-type]


def unread_in_nav(html: str) -> str | None:
    found = re.search(r'href="/responder/inbox">Inbox(?: <span class="badge">([^<]*)</span>)?',
                      html)
    assert found, "no inbox link in the navigation"
    return found.group(1)


def post_news(client: FlaskClient, region: str, subject: str, **fields: Any) -> Any:
    form = form_on(client, "/news", "/news")
    return client.post("/news", data={**form.fields, "region": region, "subject": subject,
                                      "body": "A refresher course in the town hall.", **fields})


def test_a_responder_sees_their_unread_messages_marked_and_counted_in_the_navigation(
        scene: Scene, app: Flask) -> None:
    [message_id] = own_messages(scene, "r-2")
    browser = client_as(app, "responder_2")

    page = page_text(browser.get("/responder/inbox"))
    profile = page_text(browser.get("/responder"))

    assert 'class="unread"' in page and f'href="/responder/inbox/{message_id}"' in page
    assert unread_in_nav(profile) == "1 unread"
    # Only their own message: r-1's is not listed.
    for other in own_messages(scene, "r-1"):
        assert f"/responder/inbox/{other}\"" not in page


def test_opening_a_message_marks_it_read_and_another_responders_stays_out_of_reach(
        scene: Scene, app: Flask) -> None:
    [own] = own_messages(scene, "r-2")
    [others] = own_messages(scene, "r-1")
    browser = client_as(app, "responder_2")

    opened = browser.get(f"/responder/inbox/{own}")
    foreign = browser.get(f"/responder/inbox/{others}")
    foreign_read = browser.post(f"/responder/inbox/{others}/read",
                                data={"csrf_token": csrf_token(browser, "/responder/inbox")})

    assert opened.status_code == 200
    assert "/responder/questionnaires/" in page_text(opened)  # the questionnaire's link
    assert (foreign.status_code, foreign_read.status_code) == (404, 404)
    assert unread_in_nav(page_text(browser.get("/responder"))) is None
    with Session(scene.engine) as session:
        assert {(r.message_id, r.responder_id) for r in session.exec(select(InboxRead))} >= {
            (own, "r-2")}
        assert session.get(InboxRead, (others, "r-2")) is None


def test_marking_read_from_the_list_needs_the_forms_csrf_token(
        scene: Scene, app: Flask) -> None:
    [message_id] = own_messages(scene, "r-1")
    browser = client_as(app, "responder")
    form = form_on(browser, "/responder/inbox", f"/responder/inbox/{message_id}/read")

    forged = browser.post(f"/responder/inbox/{message_id}/read", data={"csrf_token": "forged"})
    sent = browser.post(f"/responder/inbox/{message_id}/read", data=form.fields)

    assert (forged.status_code, sent.status_code) == (400, 303)
    with Session(scene.engine) as session:
        assert session.get(InboxRead, (message_id, "r-1")) is not None


def test_a_message_number_beyond_any_stored_one_is_not_found_rather_than_an_error(
        scene: Scene, app: Flask) -> None:
    browser = client_as(app, "responder")
    token = csrf_token(browser, "/responder/inbox")

    for number in ("2147483648", "9223372036854775808", "99999999999999999999"):
        opened = browser.get(f"/responder/inbox/{number}")
        marked = browser.post(f"/responder/inbox/{number}/read", data={"csrf_token": token})

        assert (opened.status_code, marked.status_code) == (404, 404), number


def test_the_platform_admin_posts_news_to_a_region_and_its_responders_see_it(
        scene: Scene, app: Flask) -> None:
    admin = client_as(app, "admin")

    sent = post_news(admin, UTRECHT, "Course in Utrecht", days="14")

    assert sent.status_code == 303
    assert "Course in Utrecht" in page_text(admin.get("/news"))
    inbox = page_text(client_as(app, "responder").get("/responder/inbox"))
    assert "Course in Utrecht" in inbox and "news of your region" in inbox


def test_a_region_admin_posts_only_to_their_own_region(scene: Scene, app: Flask) -> None:
    koeln = browser_of(app, REGION_ADMIN)

    form_page = page_text(koeln.get("/news"))
    elsewhere = post_news(koeln, UTRECHT, "Not for Utrecht")
    own = post_news(koeln, COLOGNE, "Kurs in Köln")

    assert 'value="DE-NW"' in form_page and 'value="NL-UT"' not in form_page
    assert (elsewhere.status_code, own.status_code) == (404, 303)
    with Session(scene.engine) as session:
        subjects = set(session.exec(select(InboxMessage.subject).where(
            InboxMessage.kind == "news")).all())
    assert "Kurs in Köln" in subjects and "Not for Utrecht" not in subjects
    assert "Kurs in Köln" not in page_text(client_as(app, "responder").get("/responder/inbox"))


def test_news_that_cannot_be_sent_is_shown_again_with_the_reason(
        scene: Scene, app: Flask) -> None:
    admin = client_as(app, "admin")

    empty = post_news(admin, UTRECHT, "")
    forever = post_news(admin, UTRECHT, "Too long", days="99999")
    superscript = post_news(admin, UTRECHT, "Squared", days="\u00b2")
    full_width = post_news(admin, UTRECHT, "Full width", days="\uff11\uff12")

    assert (empty.status_code, forever.status_code) == (422, 422)
    assert (superscript.status_code, full_width.status_code) == (422, 422)
    assert "1 to 3650 days" in page_text(superscript)
    assert "subject" in page_text(empty)


def test_the_cli_sends_news_to_a_region(scene: Scene) -> None:
    result = CliRunner().invoke(main, [
        "responders", "news", "--region", UTRECHT, "--subject", "From the command line",
        "--body", "A course on Friday.", "--days", "7"],
        env={"AEDFLEET_DATABASE_URL": scene.settings.database_url})

    assert result.exit_code == 0, result.output
    with Session(scene.engine) as session:
        [message] = session.exec(select(InboxMessage).where(
            InboxMessage.subject == "From the command line")).all()
    assert (message.region, message.kind, message.responder_id) == (UTRECHT, "news", None)
    assert message.expires_at is not None and message.author and message.author.startswith(
        "cli:")
    assert f"news {message.id}" in result.output
