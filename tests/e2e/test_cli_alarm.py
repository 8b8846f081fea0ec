"""The alarm core as an operator drives it: `aedfleet responders`, `dispatch`, `tokens` and the
`alarm` service, on both databases.

The service runs as the real `aedfleet alarm` process against a real Mosquitto; the test speaks
to it as the 112 centre does (HTTP with a bearer token, urllib) and as responder apps do (MQTT).
Commands that only read are sometimes run side by side, as two operators might: each start of
the executable costs a second.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
from dateutil.relativedelta import relativedelta
from integration.alarm_support import (
    ACCESS_CODE,
    AED_1,
    STREET,
    ResponderApps,
    add_monitored_aed,
    add_responder,
    add_responders,
)
from integration.mqtt_support import Mosquitto, broker
from sqlalchemy import Engine, text, update
from sqlmodel import Session, select

from alarm_core.models import Incident, OutboxMessage, Responder
from device_agents.local_broker import free_port
from fleet.db import session_scope
from fleet.models import Aed
from fleet.registry import record_declaration

from .cli import AEDFLEET, Cli

__all__ = ["broker"]  # the fixture, shared with the integration tests

T = TypeVar("T")

VICTIM = (52.0907, 5.1214)  # Domplein, Utrecht: inside the default service area
PARIS = (48.85, 2.35)
TIMEZONE = ZoneInfo("Europe/Amsterdam")
RESPONDER_HEADER = ("id,name,email,phone,date_of_birth,certificate_date,training,channel,"
                    "available,quiet_from,quiet_until,home_lat,home_lon,work_lat,work_lon")
ALLOW_UNVERIFIED = {"AEDFLEET_DISPATCH__ALLOW_UNVERIFIED_AEDS": "true"}
CALLER = "112-utrecht"


def near(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    """The point `north_m` metres north and `east_m` metres east of the victim."""
    lat, lon = VICTIM
    return (round(lat + north_m / 111_320.0, 7),
            round(lon + east_m / (111_320.0 * math.cos(math.radians(lat))), 7))


def today() -> date:
    """The date the commands go by (the configured time zone's)."""
    return datetime.now(TIMEZONE).date()


def recent_certificate() -> date:
    return today() - timedelta(days=100)


def valid_until(certified: date) -> str:
    """The last day a certificate counts: twelve months less a day."""
    return (certified + relativedelta(months=12) - timedelta(days=1)).isoformat()


def responder_row(responder_id: str, at: tuple[float, float] | None, *,
                  date_of_birth: date = date(1985, 4, 12),
                  certificate: date | None | str = "recent", channel: str = "app",
                  phone: str = "", available: str = "yes", name: str | None = None) -> str:
    """One line of a responder CSV (columns of docs/alarm.md), living at `at`."""
    certified = recent_certificate() if certificate == "recent" else certificate
    home = ("", "") if at is None else (str(at[0]), str(at[1]))
    return ",".join([
        responder_id, name or f"Responder {responder_id}", f"{responder_id}@example.org", phone,
        date_of_birth.isoformat(), "" if certified is None else str(certified), "non_medical",
        channel, available, "", "", *home, "", ""])


def write_csv(folder: Path, name: str, header: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def together(*commands: Callable[[], T]) -> list[T]:
    """Run commands that only read side by side, and return their results in order."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: command(), commands))


def rejections(stderr: str) -> list[str]:
    """The import's lines about rejected rows (stderr also carries the progress label)."""
    return [line for line in stderr.splitlines() if " rejected: " in line]


def responder_names(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return dict(session.exec(select(Responder.id, Responder.name)).all())


# -- aedfleet responders import -------------------------------------------------------------------

def import_rows() -> list[str]:
    """Two good rows among bad ones; the comments are the file's line numbers."""
    return [
        responder_row("r-anna", near(10)),  # 2
        responder_row("r-kid", near(20), date_of_birth=today() - relativedelta(years=16)),  # 3
        responder_row("r-nophone", near(30), channel="sms"),  # 4
        responder_row("r-future", near(40), certificate=today() + timedelta(days=10)),  # 5
        responder_row("r-bram", near(50), channel="sms", phone="+31611111111"),  # 6
        responder_row("r-maybe", near(60), available="maybe"),  # 7
        responder_row("r-anna", near(70)),  # 8
        responder_row("r-nowhere", None),  # 9
    ]


REJECTED = {
    3: "responders must be at least 18 years old",
    4: "SMS responders need a phone number",
    5: "certificate_date is in the future",
    7: "available must be yes or no, not 'maybe'",
    8: "id r-anna appears twice in the file",
    9: "a home or work location is required",
}


def test_responder_import_reports_each_rejected_line_and_a_re_import_updates(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "responders.csv", RESPONDER_HEADER, import_rows())

    result = cli("responders", "import", str(path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["responders.csv: 8 rows, 2 new, 0 updated, 6 rejected"]
    assert rejections(result.stderr) == [
        f"responders.csv: line {line} rejected: {reason}" for line, reason in REJECTED.items()]
    assert "Traceback" not in result.stderr
    assert responder_names(engine) == {"r-anna": "Responder r-anna", "r-bram": "Responder r-bram"}

    renamed = [row.replace("Responder r-bram", "Bram Smit") for row in import_rows()]
    write_csv(tmp_path, "responders.csv", RESPONDER_HEADER, renamed)
    report = cli.json("responders", "import", str(path))

    assert report == {"rows": 8, "created": 0, "updated": 2, "rejected": [
        {"line": line, "reason": reason} for line, reason in REJECTED.items()]}
    assert responder_names(engine) == {"r-anna": "Responder r-anna", "r-bram": "Bram Smit"}


def test_a_responder_file_without_a_good_row_or_a_required_column_exits_non_zero_clearly(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    all_bad = write_csv(tmp_path, "all_bad.csv", RESPONDER_HEADER, [
        responder_row("r-kid", near(20), date_of_birth=today() - relativedelta(years=16)),
        responder_row("r-nowhere", None)])
    no_birth_dates = write_csv(tmp_path, "no_dob.csv", "id,name,home_lat,home_lon",
                               ["r-1,Anna,52.09,5.12"])

    bad_rows, missing_column = together(
        lambda: cli("responders", "import", str(all_bad)),
        lambda: cli("responders", "import", str(no_birth_dates)))

    assert bad_rows.returncode == 1
    assert rejections(bad_rows.stderr) == [
        "all_bad.csv: line 2 rejected: responders must be at least 18 years old",
        "all_bad.csv: line 3 rejected: a home or work location is required"]
    assert bad_rows.stderr.splitlines()[-1] == f"Error: nothing imported from {all_bad}"
    assert "Traceback" not in bad_rows.stderr
    assert bad_rows.stdout.splitlines() == ["all_bad.csv: 2 rows, 0 new, 0 updated, 2 rejected"]
    assert missing_column.returncode == 1
    assert missing_column.stderr.splitlines() == [
        "Error: no_dob.csv: missing columns date_of_birth"]
    assert responder_names(engine) == {}


# -- aedfleet responders list / confirm -----------------------------------------------------------

LIST_KEYS = {"id", "name", "training", "channel", "active", "certificate_valid_until",
             "alertable", "not_alertable", "ignored_in_row"}


def test_responders_list_says_why_a_responder_cannot_be_alerted_and_confirm_brings_one_back(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    expired = today() - relativedelta(years=2)
    expiring = today() + timedelta(days=11) - relativedelta(months=12)
    path = write_csv(tmp_path, "responders.csv", RESPONDER_HEADER, [
        responder_row("r-ok", near(10)),
        responder_row("r-expired", near(20), certificate=expired),
        responder_row("r-expiring", near(30), certificate=expiring),
        responder_row("r-off", near(40), available="no"),
        responder_row("r-uncertified", near(50), certificate=None),
        responder_row("r-silent", near(60)),
    ])
    cli.ok("responders", "import", str(path))
    with session_scope(engine) as session:  # ten alarms in a row left unanswered
        session.execute(update(Responder).where(Responder.id == "r-silent")  # type: ignore[arg-type]
                        .values(active=False, ignored_in_row=10))

    shown, listed, inactive = together(
        lambda: cli.ok("responders", "list"),
        lambda: cli.json("responders", "list"),
        lambda: cli.json("responders", "list", "--inactive"))

    why = {line.split()[0]: line.split(None, 3)[3] for line in shown.stdout.splitlines()}
    assert why == {
        "r-expired": "CPR/AED certificate expired; renew it to receive alarms again",
        "r-expiring": "alertable",
        "r-off": "switched availability off",
        "r-ok": "alertable",
        "r-silent": "flagged inactive after unanswered alarms; confirms their profile to return",
        "r-uncertified": "no CPR/AED certificate registered",
    }
    assert shown.stderr.splitlines() == ["6 shown of 6 responders"]
    by_id = {item["id"]: item for item in listed}
    assert all(set(item) == LIST_KEYS for item in listed)
    assert by_id["r-ok"] == {
        "id": "r-ok", "name": "Responder r-ok", "training": "non_medical", "channel": "app",
        "active": True, "certificate_valid_until": valid_until(recent_certificate()),
        "alertable": True, "not_alertable": None, "ignored_in_row": 0}
    assert by_id["r-expired"]["certificate_valid_until"] == valid_until(expired)
    assert by_id["r-uncertified"]["certificate_valid_until"] is None
    assert {rid: item["not_alertable"] for rid, item in by_id.items()} == {
        "r-ok": None, "r-expired": "certificate_expired", "r-expiring": None,
        "r-off": "unavailable", "r-uncertified": "certificate_missing", "r-silent": "inactive"}
    assert [(i["id"], i["active"], i["ignored_in_row"]) for i in inactive] == [
        ("r-silent", False, 10)]

    confirmed = cli.ok("responders", "confirm", "r-silent")

    assert confirmed.stdout.splitlines() == ["r-silent is active again"]
    with Session(engine) as session:
        back = session.get(Responder, "r-silent")
    assert back is not None and (back.active, back.ignored_in_row) == (True, 0)


# -- aedfleet dispatch ----------------------------------------------------------------------------

def next_wednesday_afternoon() -> str:
    """A time inside `Mo-Fr 09:00-17:00`, local time (no zone: read in the configured one)."""
    day = today() + timedelta(days=1)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return f"{day.isoformat()}T14:00:00"


@pytest.fixture
def dispatch_scene(cli: Cli, engine: Engine, tmp_path: Path) -> Cli:
    """Five AEDs around the victim from a registry CSV: NL-D1 deployable day and night (but
    unverified: no cabinet agent), NL-D2 open in office hours only, and three never
    deployable: NL-D3 (pads expired), NL-D4 (never declared ready), NL-D5 (out of service).
    Six responders, of whom four can be alerted."""
    fresh, expired = today() + timedelta(days=400), today() - timedelta(days=10)
    registry = write_csv(
        tmp_path, "registry.csv", "id,lat,lon,opening_hours,access,pads_expiry,cabinet_code,"
        "location_hint", [
            f"NL-D1,{near(150)[0]},{near(150)[1]},24/7,public,{fresh},4711,town hall",
            f"NL-D2,{near(60)[0]},{near(60)[1]},Mo-Fr 09:00-17:00,public,{fresh},,office",
            f"NL-D3,{near(0, 80)[0]},{near(0, 80)[1]},24/7,public,{expired},,pads expired",
            f"NL-D4,{near(-100)[0]},{near(-100)[1]},24/7,public,{fresh},,never declared",
            f"NL-D5,{near(0, -110)[0]},{near(0, -110)[1]},24/7,public,{fresh},,out of service",
        ])
    cli.ok("import", str(registry))
    cli.ok("declare", "NL-D1", "--by", "J. Jansen")
    # The other declarations and the manager taking NL-D5 out of service (the registry has no
    # command for that) are written directly: they only make the passed-over AEDs' reasons
    # single ones.
    now = datetime.now(UTC)
    for aed_id in ("NL-D2", "NL-D5"):
        record_declaration(engine, aed_id, "J. Jansen", now, now)
    with session_scope(engine) as session:
        session.execute(update(Aed).where(Aed.id == "NL-D5")  # type: ignore[arg-type]
                        .values(out_of_service=True))
    for responder_id, at in {"r-1": near(0, 20),  # nearest: starts CPR
                             "r-2": near(160),  # next to NL-D1: its fetcher
                             "r-3": near(-300), "r-4": near(0, -400)}.items():
        add_responder(engine, responder_id, at, now)
    add_responder(engine, "r-lapsed", near(0, 5), now,
                  certificate_date=today() - relativedelta(years=2))
    add_responder(engine, "r-sms", near(5), now, channel="sms")  # no SMS gateway configured
    return cli


def test_dispatch_dry_run_plans_only_deployable_aeds_and_names_those_passed_over(
        dispatch_scene: Cli, engine: Engine) -> None:
    cli, at = dispatch_scene, next_wednesday_afternoon()
    where = ("--lat", str(VICTIM[0]), "--lon", str(VICTIM[1]), "--at", at)

    plan, shown, strict = together(
        lambda: cli("dispatch", *where, "--json", env=ALLOW_UNVERIFIED),
        lambda: cli("dispatch", *where, env=ALLOW_UNVERIFIED),
        lambda: cli("dispatch", *where, "--json"))

    for result in (plan, shown, strict):
        assert result.returncode == 0, result.stderr
    document = json.loads(plan.stdout)
    assert {"victim", "at", "radius_m", "responders", "aeds", "counts", "expected_first_cpr_s",
            "expected_first_aed_s", "skipped_aeds"} <= set(document)
    roles = {r["id"]: (r["role"], r["aed_id"]) for r in document["responders"]}
    assert roles == {"r-1": ("cpr", None), "r-2": ("fetch_aed", "NL-D1"),
                     "r-3": ("fetch_aed", "NL-D1"), "r-4": ("fetch_aed", "NL-D1")}
    [aed] = document["aeds"]
    assert (aed["id"], aed["readiness"], aed["unverified"], aed["access"], aed["fetcher_id"]) == (
        "NL-D1", "unverified", True, "always_open", "r-2")
    assert document["skipped_aeds"] == {"NL-D2": "not_always_open", "NL-D3": "not_ready",
                                        "NL-D4": "not_ready", "NL-D5": "not_ready"}
    nearest = document["responders"][0]
    assert nearest["id"] == "r-1"
    assert document["expected_first_cpr_s"] == nearest["eta_s"] == pytest.approx(
        30 + 20 / 2.3, abs=0.5)
    assert document["expected_first_aed_s"] == aed["eta_s"]
    assert document["counts"] == {"alerted": 4, "cpr": 1, "fetch_aed": 3, "aeds": 1}

    lines = shown.stdout.splitlines()
    assert lines[0].endswith("4 responders within 2000 m (1 CPR, 3 via an AED), 1 AEDs")
    assert re.fullmatch(r"  AED NL-D1: 15\d m from the victim, unverified, fetched by r-2 "
                        r"\(on scene in \d+ s\)", lines[1]), lines
    assert lines[2:6] == ["  AED NL-D2 passed over: not_always_open",
                          "  AED NL-D3 passed over: not_ready",
                          "  AED NL-D4 passed over: not_ready",
                          "  AED NL-D5 passed over: not_ready"]
    assert lines[-2] == "expected first CPR: 39 s after the alert"

    # Without allow_unverified_aeds an AED without a cabinet agent is never sent.
    without = json.loads(strict.stdout)
    assert without["aeds"] == [] and without["expected_first_aed_s"] is None
    assert without["skipped_aeds"]["NL-D1"] == "unverified"
    assert {r["role"] for r in without["responders"]} == {"cpr"}

    # A dry run: nobody alerted, nothing stored.
    with Session(engine) as session:
        assert session.exec(select(Incident)).all() == []
        assert session.exec(select(OutboxMessage)).all() == []
        assert session.exec(select(Responder).where(
            Responder.busy_incident != None)).all() == []  # noqa: E711


def test_dispatch_outside_the_service_area_exits_non_zero_without_a_traceback(
        cli: Cli, engine: Engine) -> None:
    result = cli("dispatch", "--lat", str(PARIS[0]), "--lon", str(PARIS[1]), "--json")

    assert result.returncode == 1
    assert result.stderr.splitlines() == ["Error: 48.85000,2.35000 is outside the service area"]
    assert result.stdout == ""


# -- aedfleet alarm: the service ------------------------------------------------------------------

class AlarmService:
    """`aedfleet alarm --http 127.0.0.1:PORT` in the background, spoken to over HTTP."""

    def __init__(self, cli: Cli, broker: Mosquitto) -> None:
        self.token = ""
        """What `aedfleet tokens create` printed for the 112 centre."""
        self.port = free_port()
        self.stderr_path = cli.cwd / "alarm.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [str(AEDFLEET), "alarm", "--http", f"127.0.0.1:{self.port}"], cwd=cli.cwd,
                env={**cli.env, "AEDFLEET_MQTT_URL": broker.url("fleet"),
                     "AEDFLEET_ALARM__CLIENT_ID": "alarm-core-e2e"},
                stdout=subprocess.DEVNULL, stderr=stderr)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def call(self, method: str, path: str, body: Any = None, token: str | None = None
             ) -> tuple[int, Any]:
        """One HTTP request; returns the status and the parsed JSON body."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method, headers=headers,
            data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    async def api(self, method: str, path: str, body: Any = None, token: str | None = None
                  ) -> tuple[int, Any]:
        return await asyncio.to_thread(self.call, method, path, body, token)

    def healthy(self) -> bool:
        try:
            return self.call("GET", "/healthz")[0] == 200
        except OSError:  # not listening yet
            return False

    def terminate(self, timeout_s: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str,
                   service: AlarmService) -> None:
    """Poll `condition` (in a thread: it may do I/O) until it holds; fail early if the service
    has died."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(condition):
        if service.process.poll() is not None:
            raise AssertionError(f"aedfleet alarm exited ({service.process.returncode}) while "
                                 f"waiting for {what}:\n{service.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}:\n"
                                 f"{service.stderr}")
        await asyncio.sleep(0.05)


@pytest.fixture
def street(cli: Cli, engine: Engine) -> Cli:
    """A ready AED in a monitored cabinet 150 m north of the victim and six responders
    (`STREET` of the integration tests), registered just now."""
    now = datetime.now(UTC)
    add_monitored_aed(engine, AED_1, near(150), now)
    add_responders(engine, STREET, now)
    return cli


@pytest.fixture
async def service(street: Cli, broker: Mosquitto) -> AsyncIterator[AlarmService]:
    """`aedfleet alarm` up and connected (/healthz answers 200), and a token for the 112 centre
    made with `aedfleet tokens create` while the service started."""
    running = AlarmService(street, broker)
    try:
        created = await asyncio.to_thread(street.ok, "tokens", "create", CALLER)
        running.token = created.stdout.strip()
        await wait_for(running.healthy, 30, "GET /healthz to answer 200", running)
        yield running
    finally:
        running.kill()


@pytest.fixture
async def apps(broker: Mosquitto) -> AsyncIterator[ResponderApps]:
    async with ResponderApps(broker) as subscribed:
        yield subscribed


def call_body(reference: str, **fields: Any) -> dict[str, Any]:
    body = {"reference": reference, "lat": VICTIM[0], "lon": VICTIM[1],
            "address": "Domplein 29, Utrecht", "source": "112",
            "called_at": datetime.now(UTC).isoformat(timespec="seconds")}
    body.update(fields)
    return body


def answer(incident_id: str, what: str) -> bytes:
    return json.dumps({"v": 1, "incident_id": incident_id, "answer": what,
                       "ts": datetime.now(UTC).isoformat()}).encode()


async def test_the_alarm_service_alerts_takes_answers_closes_and_follows_up_with_aftercare(
        street: Cli, broker: Mosquitto, apps: ResponderApps, service: AlarmService) -> None:
    cli, token = street, service.token

    status, created = await service.api("POST", "/api/v1/incidents", call_body("ref-1"), token)

    assert status == 201, created
    incident_id = created["id"]
    assert (created["state"], created["citizen_alarm"]) == ("dispatched", True)
    alerted = {r["id"]: r for r in created["responders"]}
    assert set(alerted) == set(STREET)
    await wait_for(lambda: set(apps.of("alert", incident_id)) == set(STREET), 10,
                   "every alerted responder's alert on the broker", service)
    alerts = apps.of("alert", incident_id)
    assert {rid: a["role"] for rid, a in alerts.items()} == {
        rid: r["role"] for rid, r in alerted.items()}
    fetcher = next(rid for rid, r in alerted.items() if r["designated_fetcher"])
    assert alerts[fetcher]["aed"]["aed_id"] == AED_1
    assert alerts[fetcher]["aed"]["access_code"] == ACCESS_CODE

    # The fetcher's app accepts over MQTT.
    async with aiomqtt.Client("127.0.0.1", broker.port, username="fleet",
                              password=broker.credentials["fleet"]) as app:
        await app.publish(f"responders/{fetcher}/response", answer(incident_id, "accept"),
                          qos=1)

    def accepted() -> bool:
        document = service.call("GET", f"/api/v1/incidents/{incident_id}", token=token)[1]
        return any(r["id"] == fetcher and r["status"] == "accepted"
                   for r in document["responders"])

    await wait_for(accepted, 10, "the answer to be applied", service)

    status, closed = await service.api("POST", f"/api/v1/incidents/{incident_id}/close",
                                       {"reason": "ambulance_on_scene"}, token)

    assert status == 200, closed
    assert (closed["state"], closed["close_reason"]) == ("closed", "ambulance_on_scene")
    await wait_for(lambda: set(apps.of("cancel", incident_id)) == set(STREET)
                   and set(apps.of("questionnaire", incident_id)) == set(STREET), 10,
                   "a cancel and a questionnaire for everyone alerted", service)
    assert {c["reason"] for c in apps.of("cancel", incident_id).values()} == {"incident_closed"}
    links = apps.of("questionnaire", incident_id)
    assert all(q["url"].startswith("http://127.0.0.1:5080/questionnaire/")
               for q in links.values())
    link = links[fetcher]["url"].rsplit("/", 1)[1]

    status, answered = await service.api("POST", f"/api/v1/questionnaires/{link}", {
        "answers": {"arrived_first": True, "shocks": 1}, "aftercare": True})

    assert (status, answered) == (201, {"incident_id": incident_id, "aftercare": True})
    shown, listed, tasks = together(lambda: cli.ok("incidents", "show", incident_id),
                                    lambda: cli.ok("incidents", "list"),
                                    lambda: cli.json("aftercare", "list"))
    document = json.loads(shown.stdout)
    assert (document["state"], document["close_reason"]) == ("closed", "ambulance_on_scene")
    assert {r["id"]: r["status"] for r in document["responders"]} == {
        rid: "accepted" if rid == fetcher else "cancelled" for rid in STREET}
    assert (document["aeds"][0]["fetcher_id"], document["aeds"][0]["fetcher_accepted"]) == (
        fetcher, True)
    [line] = listed.stdout.splitlines()
    assert line.startswith(incident_id) and " closed " in line
    [task] = tasks
    assert (task["incident_id"], task["responder_id"], task["overdue"], task["done_at"]) == (
        incident_id, fetcher, False, None)

    started = time.monotonic()
    assert service.terminate(10) == 0, service.stderr
    assert time.monotonic() - started < 10
    assert service.stderr.splitlines()[-1] == "alarm core stopped"
    assert "Traceback" not in service.stderr


async def test_the_alarm_service_refuses_bad_tokens_and_alerts_nobody_for_an_excluded_call(
        street: Cli, apps: ResponderApps, service: AlarmService) -> None:
    cli, token = street, service.token
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token

    for wrong in ("not-a-token", None):
        status, refused = await service.api("POST", "/api/v1/incidents", call_body("ref-0"),
                                            wrong)
        assert status == 401
        assert set(refused) == {"error", "message"} and refused["error"] == "unauthorized"

    status, excluded = await service.api("POST", "/api/v1/incidents", call_body(
        "ref-1", exclusions=["victim_under_one_year"]), token)

    assert status == 201, excluded
    assert (excluded["state"], excluded["citizen_alarm"], excluded["counts"]["alerted"]) == (
        "excluded", False, 0)
    assert [e["code"] for e in excluded["exclusions"]] == ["victim_under_one_year"]

    # A call without exclusion afterwards: once its alerts are in, any alert for the excluded
    # call (written earlier) would have arrived before them.
    status, dispatched = await service.api("POST", "/api/v1/incidents", call_body("ref-2"),
                                           token)
    assert status == 201, dispatched
    await wait_for(lambda: set(apps.of("alert", dispatched["id"])) == set(STREET), 10,
                   "the alerts of the second call", service)
    assert apps.of("alert", excluded["id"]) == {}
    assert {h.payload["incident_id"] for h in apps.heard} == {dispatched["id"]}

    revoked = cli.ok("tokens", "revoke", CALLER)

    assert revoked.stdout.splitlines() == ["1 tokens revoked"]
    status, refused = await service.api("GET", "/api/v1/incidents", token=token)
    assert (status, refused["error"]) == (401, "unauthorized")
    assert service.terminate(10) == 0, service.stderr


async def test_a_standby_alarm_core_refuses_calls_until_the_active_one_dies_then_takes_over(
        street: Cli, broker: Mosquitto, apps: ResponderApps, service: AlarmService) -> None:
    token = service.token
    standby = AlarmService(street, broker)
    try:
        await wait_for(lambda: "standby" in standby.stderr, 30, "the second node to wait",
                       standby)
        assert standby.call("GET", "/healthz") == (503, {"status": "standby"})
        status, refused = await standby.api("POST", "/api/v1/incidents", call_body("ref-s"),
                                            token)
        assert (status, refused["error"]) == (503, "standby")
        call = call_body("ref-1")
        status, first = await service.api("POST", "/api/v1/incidents", call, token)
        assert status == 201, first

        service.process.kill()  # the active node dies without a word
        service.process.wait(10)
        died = time.monotonic()
        await wait_for(standby.healthy, 15, "the standby to take over", standby)
        took_over_s = time.monotonic() - died

        assert took_over_s < 5, standby.stderr
        # The 112 centre's retry of the call it sent before is answered, not dispatched again.
        assert (await standby.api("POST", "/api/v1/incidents", call, token))[0] == 200
        status, second = await standby.api(
            "POST", "/api/v1/incidents",
            call_body("ref-2", lat=VICTIM[0] + 0.0004, lon=VICTIM[1]), token)
        assert status == 201, second
        assert second["state"] == "no_responders"  # all six are still on the first call
        await wait_for(lambda: set(apps.of("alert", first["id"])) == set(STREET), 10,
                       "the first call's alerts", standby)
        assert standby.terminate(10) == 0, standby.stderr
        assert "Traceback" not in standby.stderr
    finally:
        standby.kill()


async def test_an_active_alarm_core_that_loses_its_lock_stops_at_once_and_the_standby_leads(
        street: Cli, broker: Mosquitto, service: AlarmService, engine: Engine) -> None:
    if engine.url.get_backend_name() != "postgresql":
        pytest.skip("the lock held on a database connection is PostgreSQL's")
    standby = AlarmService(street, broker)
    try:
        await wait_for(lambda: "standby" in standby.stderr, 30, "the second node to wait",
                       standby)
        with engine.connect() as admin:  # the server drops the active node's lock connection
            admin.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"))
            admin.commit()

        assert service.process.wait(15) == 3
        assert "can no longer confirm that it is the active node" in service.stderr
        await wait_for(standby.healthy, 15, "the standby to take over", standby)
        status, created = await standby.api("POST", "/api/v1/incidents", call_body("ref-1"),
                                            service.token)
        assert status == 201, created
    finally:
        standby.kill()
