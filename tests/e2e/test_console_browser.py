"""The console as people use it: Debian's Chromium, headless, driven by Playwright.

One seeded database and one console (waitress in a thread) serve the whole module: the
registry of Utrecht with recorded readiness, the municipality boundaries, two regions (Utrecht,
and Köln with two AEDs of its own), an incident with alerted responders and a dispatched AED,
and an account of each role. Each test opens a fresh browser context (no cookies), fails on
any script error or console error it did not expect, and saves screenshots of the pages it saw
under `AEDFLEET_ARTIFACTS` (default `tests/artifacts/screenshots`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import waitress
from integration.alarm_support import (
    STREET,
    VICTIM,
    add_monitored_aed,
    add_responders,
    add_unmonitored_aed,
    build_street,
    near,
)
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright
from sqlalchemy import func
from sqlmodel import Session, col, select

from alarm_core.models import Responder
from alarm_core.registry import register_responder
from alarm_core.service import AlarmCore
from alarm_core.wire import parse_incident
from fleet import migrate
from fleet.accounts import create_account
from fleet.coverage.live import LiveCoverage
from fleet.db import make_engine, session_scope
from fleet.editing import refresh_readiness
from fleet.ingest.readiness import mark_sweep
from fleet.models import Aed, Manager, Municipality
from fleet.municipalities import read_boundaries
from fleet.region_store import assign_aed_regions, assign_responder_regions, save_region
from fleet.regions import RegionSpec, read_region_file
from fleet.registry import import_registry, load_municipalities, record_declaration
from fleet.registry_file import read_registry_file
from fleet.settings import load_settings
from web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("AEDFLEET_ARTIFACTS")
                 or Path(__file__).parents[1] / "artifacts" / "screenshots")
PASSWORD = "correct horse battery"
MUNICIPALITY = "Utrecht"
TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run installs it)")


@dataclass(frozen=True)
class Console:
    """The served console and what the seed put in it."""

    url: str
    manager: str
    """the AED manager of the `manager` account"""
    unevaluated: tuple[str, str]
    """two AEDs of that manager whose readiness was never recorded (no readiness changes)"""
    incident_id: str
    database: str
    """the seeded database's URL, to check what the console stored"""


USERS = {"admin": "ada", "manager": "mark", "municipality": "mia", "dispatcher": "dirk",
         "responder": "rosa"}
START_PAGES = {"admin": "/fleet", "manager": "/fleet", "municipality": "/coverage",
               "dispatcher": "/incidents", "responder": "/responder"}
NAV = {"admin": ["Fleet health", "AED map", "Coverage", "Incidents", "Region news", "Audit log",
                 "API"],
       "manager": ["Fleet health", "AED map", "API"],
       "municipality": ["Fleet health", "AED map", "Coverage", "API"],
       "dispatcher": ["Incidents", "API"],
       "responder": ["My profile", "Inbox", "API"]}
STATE_WORDS = ("Not ready", "Unverified", "Not evaluated yet", "Ready")
# Monitored, ready AEDs with two responders each, beyond the incident's search radii, so that
# the coverage map has covered areas and AEDs the zone leans on.
COVERING_AEDS = {"NL-UT-C1": near(-2500), "NL-UT-C2": near(0, 3000), "NL-UT-C3": near(2500, -2000)}
COVERING_RESPONDERS = {f"r-{aed_id[-2:].lower()}-{n}": near(*offset, origin=place)
                       for aed_id, place in COVERING_AEDS.items()
                       for n, offset in enumerate(((60, 0), (-40, 80)))}
# Two regions side by side: Utrecht (a box around the registry's AEDs, the settings' dispatch
# rules) and Köln from its shipped region file, with one ready and one unverified AED there.
UTRECHT = RegionSpec(
    code="NL-UT", name="Utrecht", timezone="Europe/Amsterdam", country="NL",
    languages=("nl", "en"), dispatch={}, readiness={}, area_geojson=json.dumps(
        {"type": "Polygon", "coordinates": [[[4.9, 51.95], [5.35, 51.95], [5.35, 52.2],
                                             [4.9, 52.2], [4.9, 51.95]]]}))
KOELN_FILE = Path(__file__).parents[2] / "config" / "regions" / "de-nw-koeln.toml"
KOELN_AEDS = {"DE-K-DOM": ((50.9413, 6.9583), "Domkloster 4, 50667 Köln"),
              "DE-K-HEUMARKT": ((50.9359, 6.9601), "Heumarkt 1, 50667 Köln")}


# -- the seeded console ---------------------------------------------------------------------------

def _seed(url: str, now: datetime) -> dict[str, Any]:
    """Boundaries; the bundled Utrecht registry, every other managed AED declared ready; the
    alarm tests' street around Domplein (a monitored AED, six responders) and three more
    monitored AEDs; two AEDs in Köln and the regions Utrecht and Köln; readiness recorded for
    all but two AEDs of the chosen manager; one account per role; and an incident at Domplein.
    Returns the `Console` fields it decided."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    settings = load_settings(database_url=url)
    load_municipalities(engine, read_boundaries())
    with resources.as_file(resources.files("fleet.data") / "demo_registry_utrecht.csv") as path:
        report = import_registry(engine, read_registry_file(Path(path), source="demo"))
    assert report.created > 500, report  # a few rows of real data are rejected on purpose
    build_street(engine, now)
    with Session(engine) as session:
        utrecht = session.exec(select(Municipality.id).where(
            Municipality.name == MUNICIPALITY)).one()
    for aed_id, place in COVERING_AEDS.items():
        add_monitored_aed(engine, aed_id, place, now, municipality_id=utrecht)
    add_responders(engine, COVERING_RESPONDERS, now)
    (dom, dom_address), (heumarkt, heumarkt_address) = KOELN_AEDS.values()
    add_monitored_aed(engine, "DE-K-DOM", dom, now, address=dom_address)
    add_unmonitored_aed(engine, "DE-K-HEUMARKT", heumarkt, now, address=heumarkt_address)
    with session_scope(engine) as session:
        for spec in (UTRECHT, read_region_file(KOELN_FILE)):
            save_region(session, spec, settings, now, "seed")
        assign_aed_regions(session)
        assign_responder_regions(session)
    with Session(engine) as session:
        managed = sorted(session.exec(select(Aed.id).where(col(Aed.manager_id).is_not(None))))
        # The manager with the most AEDs, so that the fleet page has rows in several states.
        manager_id, manager = session.exec(
            select(Manager.id, Manager.name).join(Aed, col(Aed.manager_id) == Manager.id)
            .group_by(col(Manager.id), col(Manager.name))
            .order_by(func.count().desc(), col(Manager.name))).first() or (None, None)
        assert manager is not None
        own = sorted(session.exec(select(Aed.id).where(Aed.manager_id == manager_id)))
        unevaluated = (own[-1], own[-2])
        evaluated = [a for a in session.exec(select(Aed.id)) if a not in unevaluated]
    for aed_id in [a for a in managed[::2] if a not in unevaluated]:
        record_declaration(engine, aed_id, "seed", now - timedelta(days=20), now)
    refresh_readiness(engine, settings, evaluated, now, "seed")
    with session_scope(engine) as session:
        mark_sweep(session, now)  # the states are current, as if the ingest's sweep ran

    create_account(engine, USERS["admin"], PASSWORD, "admin", now)
    create_account(engine, USERS["manager"], PASSWORD, "manager", now, manager=manager)
    create_account(engine, USERS["municipality"], PASSWORD, "municipality", now,
                   municipality=MUNICIPALITY)
    create_account(engine, USERS["dispatcher"], PASSWORD, "dispatcher", now)
    far_away = near(-8000)  # outside every search radius of the incident: not alerted
    register_responder(engine, {"id": "r-rosa", "name": "Rosa de Vries",
                                "email": "rosa@example.org", "date_of_birth": date(1990, 3, 1),
                                "certificate_date": now.date() - timedelta(days=60),
                                "home_lat": far_away[0], "home_lon": far_away[1]},
                       now, settings.dispatch)
    create_account(engine, USERS["responder"], PASSWORD, "responder", now, responder_id="r-rosa")

    core = AlarmCore(engine, settings)
    core.load(now)
    body = {"reference": "112-browser-1", "lat": VICTIM[0], "lon": VICTIM[1],
            "address": "Domplein 29, Utrecht"}
    result = core.intake("112-utrecht", parse_incident(body, core.policy.exclusions()), now)
    assert result.plan is not None and len(result.plan.responders) == len(STREET)
    engine.dispose()
    return {"manager": manager, "unevaluated": unevaluated, "incident_id": result.incident.id,
            "database": url}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console on a seeded SQLite database, served by waitress for the browser."""
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'aedfleet.db'}"
    seeded = _seed(url, datetime.now(UTC))
    engine = make_engine(url)
    # Chromium counts http://127.0.0.1 as a secure context, so it keeps Secure cookies.
    settings = load_settings(database_url=url,
                             web={"secure_cookies": True, "secret_key": "browser-tests-" * 4})
    app = create_app(engine, settings=settings, coverage=LiveCoverage(engine, settings))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, name="console-http", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    try:
        _wait_until_serving(base + "/healthz")
        yield Console(url=base, **seeded)
    finally:
        server.close()
        thread.join(timeout=10)
        engine.dispose()


def _wait_until_serving(url: str, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the console did not answer {url} within {within_s} s")
        time.sleep(0.05)


# -- the browser ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Tab:
    """One page in a fresh browser context, with what its scripts and console complained of."""

    page: Page
    console: Console
    name: str
    problems: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)
    shots: int = 0

    def go(self, path: str) -> Page:
        """Open a page of the console (after any redirects it answers 2xx)."""
        response = self.page.goto(self.console.url + path)
        assert response is not None and response.ok, f"GET {path}: {response and response.status}"
        return self.page

    def log_in(self, role: str) -> None:
        """Through the login form, as a person does; lands on the role's start page."""
        self.go("/login")
        self.page.get_by_label("User name").fill(USERS[role])
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page).to_have_url(self.console.url + START_PAGES[role])

    def expect_error(self, pattern: str) -> None:
        """A console error this test provokes on purpose (e.g. a form answered with 422)."""
        self.expected.append(re.compile(pattern))

    def assert_no_errors(self) -> None:
        """No script threw, and the console logged no error that the test did not expect."""
        unexpected = [p for p in self.problems if not any(e.search(p) for e in self.expected)]
        assert not unexpected, "the browser reported errors:\n" + "\n".join(unexpected)

    def shot(self, label: str) -> None:
        """Save a screenshot of the whole page as `<artefacts>/<test>/<n>-<label>.png`."""
        folder = ARTIFACTS / self.name
        if not self.shots:  # the pictures of an earlier run would mislead
            shutil.rmtree(folder, ignore_errors=True)
        self.shots += 1
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=folder / f"{self.shots:02d}-{label}.png", full_page=True)


@pytest.fixture
def tab(browser: Browser, console: Console, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A fresh context and page; the test errs if a script threw or the console had errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    found = Tab(page, console, re.sub(r"\W+", "_", request.node.name).strip("_"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            found.problems.append(f"console: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.problems.append(f"script error: {error}"))
    try:
        yield found
        found.assert_no_errors()
    finally:
        context.close()


# -- logging in -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", list(USERS))
def test_each_role_logs_in_through_the_form_lands_on_its_start_page_and_logs_out(
        tab: Tab, role: str) -> None:
    tab.log_in(role)
    page = tab.page
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(NAV[role])
    expect(page.locator(".who")).to_contain_text(f"{USERS[role]} ({role}")
    tab.shot("start-page")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(tab.console.url + "/login")
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    tab.go(START_PAGES[role])
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_the_session_cookie_is_secure_and_http_only_and_chromium_keeps_it_on_loopback(
        tab: Tab) -> None:
    tab.log_in("admin")
    [cookie] = [c for c in tab.page.context.cookies() if c["name"] == "aedfleet_session"]
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Lax")


# -- AED managers ---------------------------------------------------------------------------------

def test_a_manager_sees_counts_by_state_and_the_aeds_needing_action_with_reasons_in_words(
        tab: Tab) -> None:
    tab.log_in("manager")
    page = tab.page
    counts = page.get_by_role("list", name="AEDs by readiness")
    expect(counts.locator(".badge")).to_have_text([re.compile(w) for w in STATE_WORDS])
    by_state = dict(zip(STATE_WORDS, (int(n) for n in counts.locator(".count").all_inner_texts()),
                        strict=True))
    total = sum(by_state.values())
    assert by_state["Not ready"] and by_state["Unverified"] and by_state["Not evaluated yet"]
    expect(page.locator(".lead")).to_contain_text(f"{total} AEDs of {tab.console.manager}.")
    rows = page.locator("table.fleet tbody tr")
    expect(rows).to_have_count(total)
    # Not ready first, then unverified, then not evaluated yet.
    expect(rows.locator(".badge")).to_have_text([re.compile(words) for words, n
                                                 in by_state.items() for _ in range(n)])
    # Why, in sentences: no reason codes such as `pads_expiry_unknown`.
    expect(rows.first.locator("ul.reasons li").first).to_be_visible()
    reasons = rows.locator("ul.reasons li").all_inner_texts()
    assert all(len(r.split()) >= 4 and "_" not in r for r in reasons), reasons
    expect(rows.first).to_contain_text("the manager has never declared the AED ready")
    expect(page.locator("table.fleet code")).to_have_count(0)
    tab.shot("fleet")


def test_a_manager_opens_an_aed_ticks_the_box_and_declares_it_ready(tab: Tab) -> None:
    tab.log_in("manager")
    page = tab.page
    aed_id = tab.console.unevaluated[0]
    page.locator("table.fleet tbody tr", has_text="Not evaluated yet").get_by_role(
        "link", name=aed_id).click()
    expect(page).to_have_url(f"{tab.console.url}/fleet/aeds/{aed_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"AED {aed_id}")
    declarations = page.get_by_role("region", name="Declarations").get_by_role("listitem")
    expect(declarations).to_have_text(["None."])
    tab.shot("aed")

    page.get_by_label("I checked this AED today").check()
    page.get_by_label("Note (optional)").fill("Pads and battery checked on site")
    with page.expect_response(f"{tab.console.url}/fleet/aeds/{aed_id}") as shown:
        page.get_by_role("button", name="Declare ready for deployment").click()
    assert shown.value.status == 200, f"the AED page after declaring: {shown.value.status}"
    expect(page.locator(".flash-success")).to_have_text("Declared ready for deployment.")
    expect(declarations).to_have_text(
        [re.compile(rf"\d\d:\d\d by {USERS['manager']}: Pads and battery checked on site$")])
    expect(page.get_by_role("region", name="Ready for deployment")).to_contain_text(
        f"by {USERS['manager']}; valid until")
    expect(page.get_by_role("region", name="Readiness changes")).to_contain_text(
        f"declared ready by {USERS['manager']}")
    tab.shot("declared")
    tab.assert_no_errors()


def test_the_admin_finds_who_created_an_account_in_the_audit_log(tab: Tab) -> None:
    tab.log_in("admin")
    page = tab.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(f"{tab.console.url}/audit")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")

    page.get_by_label("AED id or user name").fill(USERS["manager"])
    page.get_by_role("button", name="Filter").click()

    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("user.created")
    expect(rows.first).to_contain_text("role: — → manager")
    tab.shot("audit")
    tab.assert_no_errors()


def test_the_platform_admin_sees_the_regions_side_by_side_and_narrows_the_fleet_to_one(
        tab: Tab) -> None:
    tab.log_in("admin")
    page = tab.page
    counts = page.get_by_role("list", name="AEDs by readiness").locator(".count")
    total = sum(int(n) for n in counts.all_inner_texts())
    expect(page.locator(".lead")).to_contain_text(f"{total:,} AEDs.")
    expect(page.locator("h2#regions")).to_have_text("Regions")
    regions = page.locator("table[aria-describedby=regions]")
    expect(regions.locator("thead th")).to_have_text(
        ["Region", "Time zone", "Languages", *[re.compile(w) for w in STATE_WORDS]])
    rows = regions.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator("th")).to_have_text(["Köln DE-NW-KOELN", "Utrecht NL-UT"])
    expect(rows.nth(0).locator("td")).to_have_text(["Europe/Berlin", "de, en", "0", "1", "0",
                                                    "1"])
    expect(rows.nth(1).locator("td").first).to_have_text("Europe/Amsterdam")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("nl, en")
    by_region = [sum(int(n.replace(",", "")) for n in row.locator("td.count").all_inner_texts())
                 for row in rows.all()]
    assert by_region[0] == len(KOELN_AEDS) and sum(by_region) == total, (by_region, total)
    expect(page.get_by_role("link", name="All regions")).to_have_count(0)
    tab.shot("regions")

    regions.get_by_role("link", name="Köln").click()
    expect(page).to_have_url(f"{tab.console.url}/fleet?region=DE-NW-KOELN")
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    expect(rows.nth(1)).not_to_have_attribute("aria-current", "true")
    expect(page.locator(".lead")).to_contain_text(f"{len(KOELN_AEDS)} AEDs.")
    expect(counts).to_have_text(["0", "1", "0", "1"])
    listed = page.locator("table.fleet tbody tr")
    expect(listed).to_have_count(len(KOELN_AEDS))
    expect(listed.locator("td:first-child a")).to_have_text(["DE-K-HEUMARKT", "DE-K-DOM"])
    expect(listed.first.locator(".badge")).to_have_text(re.compile("Unverified"))
    tab.shot("region-koeln")

    # A state narrows within the region, and "All regions" leads back to the whole fleet.
    page.get_by_role("list", name="AEDs by readiness").get_by_role(
        "link", name=re.compile("^Ready")).click()
    expect(page).to_have_url(f"{tab.console.url}/fleet?state=ready&region=DE-NW-KOELN")
    expect(listed.locator("td:first-child a")).to_have_text(["DE-K-DOM"])
    page.get_by_role("link", name="All regions").click()
    expect(page).to_have_url(f"{tab.console.url}/fleet")
    expect(rows.nth(0)).not_to_have_attribute("aria-current", "true")
    expect(page.locator(".lead")).to_contain_text(f"{total:,} AEDs.")


def test_a_manager_who_enters_invalid_opening_hours_sees_the_error_beside_the_field(
        tab: Tab) -> None:
    tab.log_in("manager")
    page = tab.go(f"/fleet/aeds/{tab.console.unevaluated[1]}/edit")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Edit AED {tab.console.unevaluated[1]}")
    hours = page.get_by_label("Opening hours")
    hours.fill("Mo-Fr 08:00-18:00; Sa 25:00-30:00")
    tab.expect_error(r"status of 422 .*/fleet/aeds/.*/edit\)$")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("alert")).to_contain_text("The AED was not saved")
    expect(page.get_by_role("alert").get_by_role("link", name="Opening hours")).to_have_attribute(
        "href", "#f-opening_hours")
    expect(hours).to_have_value("Mo-Fr 08:00-18:00; Sa 25:00-30:00")
    expect(hours).to_have_attribute("aria-invalid", "true")
    problem = page.locator("#e-opening_hours")
    expect(problem).to_be_visible()
    expect(problem).not_to_be_empty()
    words = problem.inner_text()
    # Beside the field: in its form group, and read out as part of its description.
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.locator(".field.has-error .error")).to_have_text(words)
    expect(hours).to_have_accessible_description(re.compile(re.escape(words)))
    tab.shot("opening-hours-error")


# -- maps -----------------------------------------------------------------------------------------

CANVAS_PIXELS = """() => {
  // Painted pixels of the map's canvas (Leaflet draws with preferCanvas): in all, and of the
  // colours maps.js gives outlines and markers (told apart by hue: fills are blended over the
  // outline's). Null while a zoom animation runs: the canvas is only scaled then.
  if (document.querySelector("#map.leaflet-zoom-anim")) { return null; }
  const kinds = {
    outline_fill: (r, g, b, a) => r > 235 && g > 235 && b > 235 && a < 200,  // #f3f4f6 at 0.6
    ready: (r, g, b) => g - r > 60 && g - b > 40,  // #16a34a
    unverified: (r, g, b) => r > 120 && g >= 60 && r - b > 90,  // #92400e ring, #fbbf24 fill
    not_ready: (r, g, b) => r > 120 && g < 60 && b < 60,  // #991b1b ring
  };
  const found = {painted: 0, outline_fill: 0, ready: 0, unverified: 0, not_ready: 0};
  for (const canvas of document.querySelectorAll("#map .leaflet-overlay-pane canvas")) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) { continue; }
      found.painted += 1;
      for (const [kind, is] of Object.entries(kinds)) {
        if (is(data[i], data[i + 1], data[i + 2], data[i + 3])) { found[kind] += 1; }
      }
    }
  }
  return found;
}"""


SHADE_PIXELS = """(shades) => {
  // Pixels of the map's canvas in each of these colours (RGB within a small distance).
  const found = shades.map(() => 0);
  for (const canvas of document.querySelectorAll("#map .leaflet-overlay-pane canvas")) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) { continue; }
      shades.forEach(([r, g, b], n) => {
        const off = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b);
        if (off < 12) { found[n] += 1; }
      });
    }
  }
  return found;
}"""
# maps.js shades a postcode area by its share covered: under 50, 80 and 95 %, and the rest.
SHARE_SHADES = ((50, (185, 28, 28)), (80, (249, 115, 22)), (95, (250, 204, 21)),
                (101, (21, 128, 61)))


def _canvas_when_drawn(page: Page, enough: str) -> dict[str, int]:
    """The canvas pixels once `enough` (a JS expression over them, `p`) holds."""
    page.wait_for_function(f"() => {{ const p = ({CANVAS_PIXELS})(); return p && ({enough}); }}")
    found: dict[str, int] = page.evaluate(CANVAS_PIXELS)
    return found


def test_the_aed_map_draws_the_municipality_and_its_aeds_without_tiles_or_errors(
        tab: Tab) -> None:
    tab.log_in("municipality")
    page = tab.page
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Fleet health").click()
    total = sum(int(n) for n in page.get_by_role("list", name="AEDs by readiness")
                .locator(".count").all_inner_texts())
    nav.get_by_role("link", name="AED map").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"AEDs by readiness in {MUNICIPALITY}")
    status = page.locator("#map-status")
    expect(status).to_have_text(re.compile(rf"^{total} AEDs: \d+ ready, \d+ unverified, "
                                           r"\d+ not ready, \d+ not evaluated yet\.$"))
    ready, unverified, not_ready, unknown = (
        int(n) for n in re.findall(r"(\d+) [a-z]", status.inner_text()))
    assert ready + unverified + not_ready + unknown == total and ready and unverified
    expect(page.locator("#map.leaflet-container")).to_be_visible()
    expect(page.locator("#map .leaflet-tile")).to_have_count(0)
    painted = _canvas_when_drawn(page, "p.outline_fill > 10000 && p.ready > 0")
    assert painted["unverified"] > 0 and painted["not_ready"] > 0, painted
    tab.shot("map")
    tab.assert_no_errors()


def test_the_coverage_page_of_utrecht_shades_its_postcodes_and_advises_new_sites(
        tab: Tab) -> None:
    tab.log_in("municipality")
    page = tab.page
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"6-minute coverage: {MUNICIPALITY}")
    postcodes = page.locator("table[aria-describedby=pc4] tbody tr")
    expect(postcodes.first).to_be_visible()
    areas = postcodes.count()
    assert areas > 20
    expect(page.locator("#map-status")).to_have_text(
        f"{areas} postcode areas shaded by the share of inhabitants covered.")
    _canvas_when_drawn(page, "p.painted > 20000")  # Utrecht's 47 postcode areas, shaded
    shares = [float(share.removesuffix(" %")) for share in
              postcodes.locator("td:nth-child(3)").all_inner_texts()]
    in_shade = page.evaluate(SHADE_PIXELS, [list(colour) for _, colour in SHARE_SHADES])
    for (below, colour), pixels in zip(SHARE_SHADES, in_shade, strict=True):
        low = max([0.0] + [b for b, _ in SHARE_SHADES if b < below])
        assert (pixels > 0) == any(low <= share < below for share in shares), (colour, pixels)
    advice = page.locator("table[aria-describedby=advice] tbody tr")
    expect(advice.first.locator("td").first).to_have_text("1")
    ranks = [row.locator("td").first.inner_text() for row in advice.all()]
    assert ranks == [str(n) for n in range(1, len(ranks) + 1)]
    # Inhabitants with the locale's grouping (en-GB: 9,876).
    assert all(float(row.locator("td").nth(2).inner_text().replace(",", "")) > 0
               for row in advice.all())
    expect(page.locator("#map .leaflet-marker-pane .pin.advice")).to_have_text(ranks)
    critical = page.locator("table[aria-describedby=critical] tbody tr td:first-child")
    expect(critical.first).to_have_text(re.compile("^NL-UT-C[123]$"))
    expect(page.locator("#map .leaflet-marker-pane .pin.critical")).to_have_count(
        critical.count())
    tab.shot("coverage")


# -- the dispatcher -------------------------------------------------------------------------------

def test_the_dispatcher_opens_the_incident_and_its_live_part_refreshes(tab: Tab) -> None:
    tab.log_in("dispatcher")
    page = tab.page
    page.get_by_role("link", name=tab.console.incident_id).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Incident {tab.console.incident_id}")
    expect(page.locator("#map .leaflet-marker-pane .pin.victim")).to_have_count(1)
    expect(page.get_by_title("Victim")).to_be_visible()
    expect(page.locator("#map .leaflet-marker-pane .pin.aed")).to_have_count(1)
    aeds = page.locator("table[aria-describedby=aeds] tbody tr")
    expect(aeds).to_have_count(1)
    expect(aeds.locator("td").first).to_have_text("aed-1")
    responders = page.locator("table[aria-describedby=responders] tbody tr")
    expect(responders).to_have_count(len(STREET))
    assert sorted(r.locator("td").first.inner_text() for r in responders.all()) == sorted(STREET)
    expect(page.get_by_role("list", name="Answers")).to_contain_text(f"Alerted {len(STREET)}")
    # Without tiles the municipalities around the victim are the map's base layer.
    expect(page.locator("#map")).to_have_attribute("data-outlines", re.compile(r"^[1-9]"))
    tab.shot("incident")

    updated = page.locator("#live .hint", has_text="Updated")
    before = updated.inner_text()
    with page.expect_response(lambda r: r.url.endswith("?part=live")) as live:
        pass  # incident.js fetches the live part every 3 s
    assert live.value.ok
    expect(updated).not_to_have_text(before)
    expect(updated).to_have_text(re.compile(r"^Updated \d\d:\d\d:\d\d\.$"))  # local time
    expect(page.locator("#map .leaflet-marker-pane .pin.victim")).to_have_count(1)
    expect(responders).to_have_count(len(STREET))
    tab.shot("incident-refreshed")


# -- responders -----------------------------------------------------------------------------------

def test_a_citizen_registers_as_responder_lands_on_the_profile_and_renews_the_certificate(
        tab: Tab) -> None:
    page = tab.go("/login")
    page.get_by_role("link", name="Register as a responder").click()
    expect(page).to_have_url(f"{tab.console.url}/responder/register")
    today = date.today()
    page.get_by_label("Full name").fill("Sanne Bakker")
    page.get_by_label("E-mail").fill("sanne@example.org")
    page.get_by_label("Date of birth").fill("1992-06-15")
    page.get_by_label("CPR certificate date").fill((today - timedelta(days=300)).isoformat())
    page.get_by_label("Medically trained").check()
    page.get_by_label("Home latitude").fill(str(round(near(500)[0], 5)))
    page.get_by_label("Home longitude").fill(str(round(near(500)[1], 5)))
    page.get_by_label("User name").fill("sanne")
    page.get_by_label("Password").fill(PASSWORD)
    tab.shot("register")
    page.get_by_role("button", name="Register").click()

    expect(page).to_have_url(f"{tab.console.url}/responder")
    expect(page.locator(".flash-success")).to_have_text(
        "Welcome: you are registered as a citizen responder.")
    expect(page.locator(".lead")).to_have_text(
        "Sanne Bakker · medically trained · alerts by app.")
    certificate = page.get_by_role("region", name="CPR certificate")
    issued = certificate.locator("p time").first  # the date as written, ISO in `datetime`
    expect(certificate).to_contain_text("Certificate of ")
    expect(issued).to_have_attribute("datetime", (today - timedelta(days=300)).isoformat())
    renewed = today - timedelta(days=1)
    certificate.get_by_label("Date of my new certificate").fill(renewed.isoformat())
    certificate.get_by_role("button", name="Update certificate").click()
    expect(page.locator(".flash-success")).to_have_text("Certificate updated.")
    expect(issued).to_have_attribute("datetime", renewed.isoformat())
    expect(certificate).to_contain_text(", valid until")
    tab.shot("certificate-renewed")


def test_a_responder_ticks_a_competence_chooses_the_language_of_alerts_and_both_are_kept(
        tab: Tab) -> None:
    tab.log_in("responder")
    page = tab.page
    skills = page.get_by_role("region", name="Training, competences and language")
    paediatric = skills.get_by_label("paediatric life support (infants and children)")
    language = skills.get_by_label("Language of alerts and messages")
    expect(paediatric).not_to_be_checked()
    expect(language).to_have_value("")  # the region's language
    expect(language.locator("option:checked")).to_have_text("my region's language")
    expect(skills.get_by_label("Training")).to_have_value("non_medical")

    paediatric.check()
    language.select_option(label="Deutsch")
    tab.shot("skills-chosen")
    skills.get_by_role("button", name="Save training and language").click()
    expect(page).to_have_url(f"{tab.console.url}/responder")
    expect(page.locator(".flash-success")).to_have_text("Training and language saved.")
    # The alerts' language is the responder's; the console keeps the account's (English here).
    expect(page.get_by_role("heading", level=1)).to_have_text("My responder profile")

    page.reload()
    expect(page.locator(".flash-success")).to_have_count(0)
    expect(paediatric).to_be_checked()
    expect(skills.get_by_label("advanced life support")).not_to_be_checked()
    expect(skills.get_by_label("water rescue")).not_to_be_checked()
    expect(language).to_have_value("de")
    expect(language.locator("option:checked")).to_have_text("Deutsch")
    expect(skills.get_by_label("Training")).to_have_value("non_medical")
    tab.shot("skills-kept")
    engine = make_engine(tab.console.database)
    try:
        with Session(engine) as session:
            rosa = session.get(Responder, "r-rosa")
            assert rosa is not None
            assert (rosa.competences, rosa.language, rosa.region) == (
                "paediatric_life_support", "de", "NL-UT")
    finally:
        engine.dispose()


# -- keyboard -------------------------------------------------------------------------------------

def _focused(page: Page) -> str:
    return str(page.evaluate("() => document.activeElement.textContent.trim() "
                             "|| document.activeElement.id"))


def test_tab_from_page_load_reaches_the_skip_link_first_and_then_the_navigation(
        tab: Tab) -> None:
    tab.log_in("admin")
    page = tab.go("/fleet")
    page.keyboard.press("Tab")
    assert _focused(page) == "Skip to content"
    skip = page.get_by_role("link", name="Skip to content")
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0  # shown while it has focus
    tab.shot("skip-link-focused")
    order = []
    for _ in range(1 + len(NAV["admin"])):
        page.keyboard.press("Tab")
        order.append(_focused(page))
    assert order == ["aedfleet", *NAV["admin"]]

    page.reload()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.getElementById('main').contains("
                         "document.activeElement)"), _focused(page)


def test_the_login_form_works_with_the_keyboard_alone(tab: Tab) -> None:
    page = tab.go("/login")
    assert page.evaluate("() => document.activeElement.id") == "username"  # autofocus
    page.keyboard.type(USERS["dispatcher"])
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(tab.console.url + START_PAGES["dispatcher"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Incidents")


# -- accessibility basics -------------------------------------------------------------------------

UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(e => e.type !== "hidden")
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
               && !e.getAttribute("aria-labelledby"))
  .map(e => e.outerHTML)"""
BADGE_WORDS = """() => Array.from(document.querySelectorAll(".badge")).map(badge =>
  Array.from(badge.childNodes)
    .filter(n => !(n.nodeType === 1 && n.getAttribute("aria-hidden") === "true"))
    .map(n => n.textContent).join("").trim())"""


def _pages_of(role: str, console: Console) -> list[str]:
    aed = console.unevaluated[1]
    return {
        "anonymous": ["/login", "/responder/register"],
        "admin": ["/fleet", f"/fleet/aeds/{aed}", f"/fleet/aeds/{aed}/edit", "/fleet/aeds/new",
                  "/map", "/incidents", "/audit"],
        "municipality": ["/fleet", "/map", "/coverage"],
        "dispatcher": ["/incidents", f"/incidents/{console.incident_id}"],
        "responder": ["/responder"],
    }[role]


@pytest.mark.parametrize("role", ["anonymous", "admin", "municipality", "dispatcher",
                                  "responder"])
def test_every_page_has_a_language_one_h1_labelled_controls_and_badges_in_words(
        tab: Tab, role: str) -> None:
    if role != "anonymous":
        tab.log_in(role)
    badges = 0
    for path in _pages_of(role, tab.console):
        page = tab.go(path)
        where = f"{role} on {path}"
        assert page.evaluate("() => document.documentElement.lang") == "en", where
        expect(page.locator("h1"), where).to_have_count(1)
        assert page.evaluate(UNLABELLED_CONTROLS) == [], where
        words = page.evaluate(BADGE_WORDS)
        assert set(words) <= set(STATE_WORDS), (where, words)
        badges += len(words)
        tab.shot(re.sub(r"\W+", "-", path).strip("-"))
    assert badges or role in ("anonymous", "dispatcher", "responder")


# -- the icon -------------------------------------------------------------------------------------

def test_the_console_has_a_favicon_so_no_page_load_logs_a_404(tab: Tab) -> None:
    tab.expected.clear()
    page = tab.go("/login")
    icon = page.evaluate("""() => (document.querySelector("link[rel~=icon]") || {}).href
                                  || new URL("/favicon.ico", location.href).href""")
    assert page.request.get(icon).status == 200


# -- languages ------------------------------------------------------------------------------------

def test_the_language_switcher_in_the_header_changes_the_page_and_the_choice_survives_a_reload(
        tab: Tab) -> None:
    tab.log_in("manager")
    page = tab.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Fleet health")

    page.get_by_label("Language").select_option(label="Deutsch")
    page.get_by_role("button", name="Switch").click()

    expect(page).to_have_url(tab.console.url + "/fleet")
    expect(page.get_by_role("heading", level=1)).to_have_text("Zustand der Geräte")
    assert page.evaluate("() => document.documentElement.lang") == "de"
    expect(page.get_by_role("navigation", name="Hauptmenü").get_by_role("link")).to_have_text(
        ["Zustand der Geräte", "AED-Karte", "API"])
    tab.shot("german")

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Zustand der Geräte")
    expect(page.get_by_label("Sprache")).to_have_value("de")
    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Anmelden")  # the cookie
    expect(page.get_by_role("status")).to_have_text("Sie sind abgemeldet.")

    page.get_by_label("Sprache").select_option("en")
    page.get_by_role("button", name="Wechseln").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
