"""SMS alerts through the real `HttpSmsGateway`, and certificate reminders, on both databases.

An SMS provider cannot run here: a local HTTP server in a thread stands in for it and records
every JSON post it gets, behind the real adapter. Alerts leave through a running `AlarmRunner`
and a real Mosquitto, so the MQTT side works alongside. Reminders are service calls with
explicit times: no test waits for a clock.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from alarm_core.metrics import AlarmMetrics
from alarm_core.models import OutboxMessage
from alarm_core.policy import DispatchPolicy
from alarm_core.registry import register_responder
from alarm_core.responders import certificate_reminder_due
from alarm_core.runner import AlarmRunner
from alarm_core.service import AlarmCore
from fleet.settings import Settings

from .alarm_support import (
    AED_1,
    AED_1_AT,
    NOW,
    VICTIM,
    ResponderApps,
    add_monitored_aed,
    add_responder,
    alarm_settings,
    by_role,
    call,
    near,
    outbox,
    responder,
    responder_record,
)
from .mqtt_support import Mosquitto, eventually

CALLER = "112-utrecht"
CABINET_CODE = "KEY-7Q2X"
SMS_PHONE = "+31611111111"
ELSEWHERE = near(0, 3_000)  # another call, 3 km east: out of reach of the first's responders


# -- the SMS gateway stand-in ---------------------------------------------------------------------

@dataclass(frozen=True)
class Post:
    """One request the gateway received, and the status it answered."""

    to: str
    text: str
    content_type: str
    status: int


class SmsGatewayStandIn:
    """A local HTTP endpoint taking `{"to", "text"}` as JSON, as SMS providers do.

    `status` is what it answers (200, or 500 to refuse); `delay_s` how long it takes to answer.
    """

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.arrived: list[float] = []
        """When each request arrived (monotonic), before any delay."""
        self.status = 200
        self.delay_s = 0.0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                gateway.arrived.append(time.monotonic())
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(gateway.delay_s)
                status = gateway.status
                gateway.posts.append(Post(body["to"], body["text"],
                                          self.headers["Content-Type"], status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1/sms"

    def delivered(self) -> list[Post]:
        """The messages it accepted, in order."""
        return [post for post in self.posts if post.status == 200]

    def refused(self) -> list[Post]:
        return [post for post in self.posts if post.status != 200]


@pytest.fixture
def gateway() -> Iterator[SmsGatewayStandIn]:
    stand_in = SmsGatewayStandIn()
    stand_in.thread.start()
    try:
        yield stand_in
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()


# -- a running alarm core and the responder apps --------------------------------------------------

@dataclass
class Scene:
    engine: Engine
    core: AlarmCore

    async def intake(self, reference: str, at: tuple[float, float] = VICTIM) -> str:
        """A call taken in as the HTTP API takes it: in a worker thread, at the time it comes."""
        result = await asyncio.to_thread(self.core.intake, CALLER, call(reference, at=at),
                                         datetime.now(UTC))
        return result.incident.id

    async def close(self, incident_id: str) -> None:
        await asyncio.to_thread(self.core.close, incident_id, "ambulance_on_scene",
                                datetime.now(UTC))


def sms_scene(engine: Engine, settings: Settings, broker: Mosquitto, gateway_url: str) -> Scene:
    """A ready AED 150 m north of the victim; `app-1` next to the victim (CPR), `sms-1` next to
    the AED (its fetcher, by SMS), `app-2` further away (a backup sent via the AED), and
    `app-far` by the place of a second call."""
    now = datetime.now(UTC)
    add_monitored_aed(engine, AED_1, AED_1_AT, now, cabinet_code=CABINET_CODE)
    add_responder(engine, "app-1", near(0, 10), now)
    add_responder(engine, "sms-1", near(155, 5), now, channel="sms", phone=SMS_PHONE)
    add_responder(engine, "app-2", near(-250), now)
    add_responder(engine, "app-far", near(10, 3_000), now)
    configured = alarm_settings(settings, sms_gateway_url=gateway_url)
    configured = configured.model_copy(update={
        "mqtt_url": broker.url("fleet"),
        "alarm": configured.alarm.model_copy(update={"client_id": "alarm-core-sms-test"})})
    core = AlarmCore(engine, configured)
    core.load(now)
    return Scene(engine, core)


@pytest.fixture
def scene(engine: Engine, settings: Settings, broker: Mosquitto,
          gateway: SmsGatewayStandIn) -> Scene:
    return sms_scene(engine, settings, broker, gateway.url)


@pytest.fixture
async def apps(broker: Mosquitto) -> AsyncIterator[ResponderApps]:
    async with ResponderApps(broker) as subscribed:
        yield subscribed


@pytest.fixture
async def running(scene: Scene) -> AsyncIterator[AlarmRunner]:
    """The scene's `AlarmRunner` (with the real `HttpSmsGateway`) running and connected."""
    runner = AlarmRunner(scene.core, scene.core.settings, AlarmMetrics())
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await eventually(runner.connected.is_set, 15, "the alarm core to connect")
    yield runner
    stop.set()
    async with asyncio.timeout(20):
        await task


def sms_rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms")
                                 .order_by(OutboxMessage.id)).all())  # type: ignore[arg-type]


def unsent(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(OutboxMessage.id)
                                .where(OutboxMessage.sent_at == None)).all())  # noqa: E711


# -- SMS alerts -----------------------------------------------------------------------------------

async def test_an_sms_fetcher_is_alerted_through_the_gateway_and_no_sms_carries_the_access_code(
        scene: Scene, apps: ResponderApps, running: AlarmRunner,
        gateway: SmsGatewayStandIn) -> None:
    incident_id = await scene.intake("ref-1")
    await eventually(lambda: len(gateway.delivered()) == 1
                     and set(apps.of("alert")) == {"app-1", "app-2"}, 10,
                     "the SMS alert and both app alerts")
    await scene.close(incident_id)
    await eventually(lambda: len(gateway.delivered()) == 3
                     and set(apps.of("questionnaire")) == {"app-1", "app-2"}, 10,
                     "the cancel and the questionnaire, by SMS and by app")
    await eventually(lambda: unsent(scene.engine) == 0, 10, "the outbox marked sent")

    assert by_role(scene.engine, incident_id) == {"cpr": ["app-1"], "fetcher": ["sms-1"],
                                                  "backup": ["app-2"]}
    alert, cancel, questionnaire = gateway.delivered()
    assert {post.to for post in gateway.posts} == {SMS_PHONE}
    assert {post.content_type for post in gateway.posts} == {"application/json"}
    assert alert.text == (
        f"aedfleet RESUSCITATION ALARM: fetch the AED at {AED_1_AT[0]:.5f},{AED_1_AT[1]:.5f} "
        f"(next to the entrance of {AED_1}) and bring it to Domplein 29, Utrecht.")
    assert cancel.text == (f"aedfleet: alarm {incident_id} cancelled (the call has ended). "
                           "Thank you.")
    assert questionnaire.text.startswith(f"aedfleet: thank you for responding to alarm "
                                         f"{incident_id}. How did it go? http")
    assert all(CABINET_CODE not in post.text for post in gateway.posts)
    # The code exists, and goes to the app of whoever else is sent via the AED.
    assert apps.of("alert")["app-2"]["aed"]["access_code"] == CABINET_CODE
    assert apps.of("alert")["app-1"]["aed"] is None
    rows = sms_rows(scene.engine)
    assert [(row.topic, row.attempts, row.sent_at is not None) for row in rows] == [
        (f"responders/sms-1/{kind}", 0, True) for kind in ("alert", "cancel", "questionnaire")]
    assert all(CABINET_CODE not in row.payload for row in rows)


def test_without_a_gateway_an_sms_responder_is_never_in_a_plan(
        engine: Engine, settings: Settings) -> None:
    add_monitored_aed(engine, AED_1, AED_1_AT, NOW, cabinet_code=CABINET_CODE)
    add_responder(engine, "sms-1", near(0, 5), NOW, channel="sms", phone=SMS_PHONE)
    add_responder(engine, "sms-2", near(150), NOW, channel="sms", phone="+31622222222")
    add_responder(engine, "app-1", near(-200), NOW)
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW)

    dry_run = core.plan(VICTIM[0], VICTIM[1], NOW)
    incident_id = core.intake(CALLER, call("ref-1"), NOW).incident.id

    assert [a.responder_id for a in dry_run.responders] == ["app-1"]
    assert by_role(engine, incident_id) == {"cpr": ["app-1"], "fetcher": [], "backup": []}
    assert sms_rows(engine) == []
    assert responder(engine, "sms-1").busy_incident is None


async def test_an_sms_the_gateway_refuses_is_retried_later_while_mqtt_alerts_keep_flowing(
        scene: Scene, apps: ResponderApps, running: AlarmRunner,
        gateway: SmsGatewayStandIn) -> None:
    gateway.status = 500

    await scene.intake("ref-1")
    await eventually(lambda: [r.attempts for r in sms_rows(scene.engine)] == [1], 10,
                     "the refused SMS to be marked for a retry")
    [refused] = sms_rows(scene.engine)
    assert refused.sent_at is None
    assert refused.next_attempt_at is not None and refused.next_attempt_at > refused.created_at
    assert refused.last_error is not None and "500" in refused.last_error
    assert set(apps.of("alert")) == {"app-1", "app-2"}

    # Another call meanwhile: its alert goes out at once, past the failing SMS.
    await scene.intake("ref-2", at=ELSEWHERE)
    await eventually(lambda: "app-far" in apps.of("alert"), 5, "the second call's alert")

    gateway.status = 200
    await eventually(lambda: sms_rows(scene.engine)[0].sent_at is not None, 15,
                     "the SMS delivered once the gateway takes it again")

    [delivered] = gateway.delivered()
    assert delivered.text.startswith("aedfleet RESUSCITATION ALARM: fetch the AED")
    assert len({post.text for post in gateway.posts}) == 1  # the same message, retried
    assert len(gateway.refused()) >= 1
    assert sms_rows(scene.engine)[0].attempts == len(gateway.refused())
    assert unsent(scene.engine) == 0


async def test_a_slow_sms_gateway_never_holds_up_the_mqtt_alerts_of_another_call(
        scene: Scene, apps: ResponderApps, running: AlarmRunner,
        gateway: SmsGatewayStandIn) -> None:
    gateway.delay_s = 3.0  # the SMS of the first call hangs this long at the gateway
    await scene.intake("ref-1")
    await eventually(lambda: len(gateway.arrived) == 1, 10, "the SMS alert at the gateway")

    called = time.monotonic()
    await scene.intake("ref-2", at=ELSEWHERE)
    await eventually(lambda: apps.arrival("app-far", "alert") is not None, 10,
                     "the second call's alert")

    arrived = apps.arrival("app-far", "alert")
    # Held up, it would take the rest of the 3 s; a loaded machine may take a moment.
    assert arrived is not None and arrived - called < 1.5, \
        f"the second call's alert took {arrived - called:.1f} s"


def sms_kinds(gateway: SmsGatewayStandIn) -> list[str]:
    """What the SMS the gateway accepted were, in order: alert, cancel or questionnaire."""
    def kind(text: str) -> str:
        if "RESUSCITATION ALARM" in text:
            return "alert"
        return "cancel" if " cancelled (" in text else "questionnaire"
    return [kind(post.text) for post in gateway.delivered()]


async def test_an_sms_alert_is_never_delivered_after_its_cancel(
        scene: Scene, running: AlarmRunner, gateway: SmsGatewayStandIn) -> None:
    gateway.status = 500
    incident_id = await scene.intake("ref-1")
    await eventually(lambda: [r.attempts for r in sms_rows(scene.engine)] == [1], 10,
                     "the refused SMS alert to wait for its retry")
    gateway.status = 200

    await scene.close(incident_id)
    await eventually(lambda: "cancel" in sms_kinds(gateway), 10, "the cancel by SMS")
    alert_row = sms_rows(scene.engine)[0]
    settle = time.monotonic() + 4  # past the alert's backoff: its retry, if any, is done
    while time.monotonic() < settle and alert_row.sent_at is None:
        await asyncio.sleep(0.1)
        alert_row = sms_rows(scene.engine)[0]

    kinds = sms_kinds(gateway)
    assert "alert" not in kinds[kinds.index("cancel"):], kinds


# -- certificate reminders ------------------------------------------------------------------------

def lasting_until(day: date) -> date:
    """The date of a certificate whose last valid day is `day`."""
    return day + timedelta(days=1) - relativedelta(months=12)


TODAY = NOW.date()


def notices(engine: Engine) -> list[tuple[str, str, str]]:
    """(responder, kind, channel) of every notice in the outbox, in order."""
    return [(m.responder_id, m.payload["kind"], m.channel) for m in outbox(engine, "notice")]


def renew(engine: Engine, responder_id: str, certified: date, registered: datetime) -> None:
    """The responder's new certificate reaches the registry at `registered`."""
    register_responder(engine, responder_record(responder_id, near(10), NOW,
                                                certificate_date=certified),
                       registered, DispatchPolicy())


def test_a_certificate_running_out_within_thirty_days_gets_exactly_one_notice(
        engine: Engine, settings: Settings) -> None:
    add_responder(engine, "r-due", near(10), NOW,
                  certificate_date=lasting_until(TODAY + timedelta(days=20)))
    add_responder(engine, "r-later", near(20), NOW,
                  certificate_date=lasting_until(TODAY + timedelta(days=40)))
    add_responder(engine, "r-fresh", near(30), NOW)
    core = AlarmCore(engine, alarm_settings(settings))

    first = core.remind_certificates(NOW)
    again = core.remind_certificates(NOW + timedelta(hours=1))

    assert (first, again) == (1, 0)
    [notice] = outbox(engine, "notice")
    expires = (TODAY + timedelta(days=20)).isoformat()
    assert (notice.responder_id, notice.channel, notice.sent_at) == ("r-due", "mqtt", None)
    assert notice.payload == {
        "v": 1, "kind": "certificate_expiring", "valid_until": expires,
        "message": f"your CPR/AED certificate is valid until {expires}; renew it to keep "
                   "receiving alarms"}
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    # and the same as an inbox message, pushed to the app
    assert [(row.topic, row.urgent) for row in rows] == [
        ("responders/r-due/notice", False), ("responders/r-due/inbox", False)]

    # Ten days on, the other certificate is due too; the first is not reminded again.
    assert core.remind_certificates(NOW + timedelta(days=10)) == 1
    assert notices(engine) == [("r-due", "certificate_expiring", "mqtt"),
                               ("r-later", "certificate_expiring", "mqtt")]


def test_a_renewed_certificate_is_reminded_again_when_it_in_turn_runs_out(
        engine: Engine, settings: Settings) -> None:
    add_responder(engine, "r-due", near(10), NOW,
                  certificate_date=lasting_until(TODAY + timedelta(days=20)))
    core = AlarmCore(engine, alarm_settings(settings))
    assert core.remind_certificates(NOW) == 1
    renewed = TODAY + timedelta(days=5)  # the course a few days after the reminder
    renew(engine, "r-due", renewed, NOW + timedelta(days=6))

    assert core.remind_certificates(NOW + timedelta(days=7)) == 0
    next_year = datetime(2027, 11, 10, 9, 0, tzinfo=UTC)  # 20 days before it runs out
    assert core.remind_certificates(next_year) == 1
    assert core.remind_certificates(next_year + timedelta(days=1)) == 0

    first, second = outbox(engine, "notice")
    assert (first.payload["valid_until"], second.payload["valid_until"]) == (
        (TODAY + timedelta(days=20)).isoformat(), "2027-11-29")


@pytest.mark.parametrize("course", [timedelta(0), timedelta(days=-3)],
                         ids=["renewed_the_day_of_the_reminder", "renewed_before_it"])
def test_a_certificate_renewed_while_the_old_ones_reminder_went_out_is_reminded_in_turn(
        engine: Engine, settings: Settings, course: timedelta) -> None:
    add_responder(engine, "r-due", near(10), NOW,
                  certificate_date=lasting_until(TODAY + timedelta(days=20)))
    core = AlarmCore(engine, alarm_settings(settings))
    assert core.remind_certificates(NOW) == 1  # about the old certificate
    renewed = TODAY + course  # the new one reaches the registry two days later
    renew(engine, "r-due", renewed, NOW + timedelta(days=2))

    due = datetime.combine(renewed + relativedelta(months=12) - timedelta(days=20),
                           datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    assert core.remind_certificates(due) == 1


def test_an_expired_certificate_gets_a_certificate_expired_notice(
        engine: Engine, settings: Settings) -> None:
    add_responder(engine, "r-expired", near(10), NOW,
                  certificate_date=lasting_until(TODAY - timedelta(days=5)))
    core = AlarmCore(engine, alarm_settings(settings))

    assert core.remind_certificates(NOW) == 1
    assert core.remind_certificates(NOW + timedelta(days=1)) == 0

    [notice] = outbox(engine, "notice")
    assert notice.payload == {
        "v": 1, "kind": "certificate_expired",
        "valid_until": (TODAY - timedelta(days=5)).isoformat(),
        "message": "CPR/AED certificate expired; renew it to receive alarms again"}


def test_sms_responders_are_reminded_only_once_an_sms_gateway_is_configured(
        engine: Engine, settings: Settings) -> None:
    due = lasting_until(TODAY + timedelta(days=10))
    add_responder(engine, "r-app", near(10), NOW, certificate_date=due)
    add_responder(engine, "r-sms", near(20), NOW, certificate_date=due, channel="sms",
                  phone=SMS_PHONE)
    without = AlarmCore(engine, alarm_settings(settings))
    with_gateway = AlarmCore(engine, alarm_settings(settings,
                                                    sms_gateway_url="http://127.0.0.1:9/sms"))

    assert without.remind_certificates(NOW) == 1
    assert without.remind_certificates(NOW + timedelta(hours=1)) == 0
    assert notices(engine) == [("r-app", "certificate_expiring", "mqtt")]

    assert with_gateway.remind_certificates(NOW + timedelta(hours=2)) == 1
    assert notices(engine) == [("r-app", "certificate_expiring", "mqtt"),
                               ("r-sms", "certificate_expiring", "sms")]


def test_one_reminder_run_sends_at_most_limit_notices_and_the_next_runs_the_rest(
        engine: Engine, settings: Settings) -> None:
    due = lasting_until(TODAY + timedelta(days=10))
    for n in range(5):
        add_responder(engine, f"r-{n}", near(10 * n), NOW, certificate_date=due)
    core = AlarmCore(engine, alarm_settings(settings))

    runs = [core.remind_certificates(NOW + timedelta(minutes=m), limit=2) for m in range(4)]

    assert runs == [2, 2, 1, 0]
    assert [m.responder_id for m in outbox(engine, "notice")] == [f"r-{n}" for n in range(5)]
    assert Counter(m.responder_id for m in outbox(engine, "notice")) == Counter(
        {f"r-{n}": 1 for n in range(5)})


@pytest.mark.parametrize(("today", "certified"), [
    (date(2028, 2, 1), date(2027, 3, 4)),  # valid until 2028-03-03: 31 days ahead, not due
    (date(2029, 2, 1), date(2028, 3, 4)),  # valid until 2029-03-03: 30 days ahead, due
], ids=["a_day_early_before_a_leap_day", "a_day_late_after_a_leap_year"])
def test_reminders_go_to_exactly_the_certificates_the_reminder_rule_calls_due(
        engine: Engine, settings: Settings, today: date, certified: date) -> None:
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    register_responder(engine, responder_record("r-edge", near(10), now,
                                                certificate_date=certified),
                       now - timedelta(days=1), DispatchPolicy())
    core = AlarmCore(engine, alarm_settings(settings))

    sent = core.remind_certificates(now)

    assert sent == int(certificate_reminder_due(certified, today, DispatchPolicy()))
