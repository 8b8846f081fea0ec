"""Schemathesis against the OpenAPI description the application serves (/api/v1/openapi.json).

Every described operation is called in-process (WSGI, no server) on the console scene of
`console_support` with a running alarm core and live coverage, on both engines. With a token of
the operation's scope the server never answers 5xx (both optional parts run here, so not even
503), and its answers match the description: status codes, media types, body schemas, and 4xx
for schema-violating requests. Without a token it refuses with 401, with a token of another
scope with 403.

The description gives bodies only as "a JSON object", so the fuzzer also draws bodies and path
ids shaped like the real ones (the scene's incidents, responders, AEDs, questionnaire links):
that is how it gets past the first validation into the alarm core.

Size: `AEDFLEET_FUZZ_PROFILE=ci` (default: about 30 s per database) or `long` (about ten
minutes for both). What the fuzz found, and two 500s found reading the code it drives, is
kept at the end of the file as regression tests with the literal request.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from alarm_core.wire import rfc3339
from fleet.coverage.live import LiveCoverage
from fleet.settings import Settings
from web import create_app
from web.auth import SCOPES, create_token

from .alarm_support import AED_1, STREET, VICTIM, call, near
from .console_support import DATABASES, Scene, build_scene, module_engine

logger = logging.getLogger(__name__)

OPENAPI = "/api/v1/openapi.json"
CALLER = "112-utrecht"
"""The dispatch centre of the scene's incidents: its tokens see them."""

settings.register_profile(
    "aedfleet-fuzz-ci", max_examples=50, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large])
settings.register_profile("aedfleet-fuzz-long", settings.get_profile("aedfleet-fuzz-ci"),
                          max_examples=550)
FUZZ_PROFILE = os.environ.get("AEDFLEET_FUZZ_PROFILE", "ci")
if FUZZ_PROFILE not in ("ci", "long"):
    raise ValueError(f"AEDFLEET_FUZZ_PROFILE={FUZZ_PROFILE!r}: ci or long")
FUZZ = settings.get_profile(f"aedfleet-fuzz-{FUZZ_PROFILE}")
"""Examples per operation and test (schemathesis adds its examples and coverage cases)."""


# -- the application under test -------------------------------------------------------------------

@dataclass
class Target:
    """The application over the scene, one token per scope, and a tally of requests."""

    app: Flask
    scene: Scene
    open_incident: str
    """A call an hour after the scene's closed one, still open: answers and positions land."""
    tokens: dict[str, str]
    requests: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, st.SearchStrategy[dict[str, Any]] | None] = field(default_factory=dict)

    def headers(self, scope: str | None) -> dict[str, str]:
        token = self.tokens.get(scope or "")
        return {} if token is None else {"Authorization": f"Bearer {token}"}


def build_target(engine: Engine, settings_: Settings) -> Target:
    scene = build_scene(engine, settings_, accounts=False)
    scene.core.load(scene.now)
    opened = scene.core.intake(CALLER, call("ref-open", near(50, 50)), scene.now).incident
    coarse = scene.settings.model_copy(update={"coverage": scene.settings.coverage.model_copy(
        update={"cell_m": 1000.0})})
    now = scene.now  # the scene's clock stands still
    coverage = LiveCoverage(engine, coarse, clock=lambda: now, monotonic=lambda: 0.0)
    app = create_app(engine, settings=scene.settings, alarm_core=scene.core, coverage=coverage,
                     clock=lambda: now, config={"TESTING": True})
    tokens = {scope: create_token(engine, CALLER, now, scope) for scope in SCOPES}
    return Target(app, scene, opened.id, tokens)


ACTIVE: list[Target] = []
"""The target set up now: the hooks below draw its scene's ids (pytest runs every item of one
database before it sets up the other)."""


@pytest.fixture(scope="module", params=DATABASES)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Target]:
    for engine, settings_ in module_engine(request.param, tmp_path_factory.mktemp("fuzz")):
        found = build_target(engine, settings_)
        ACTIVE.append(found)
        try:
            yield found
        finally:
            ACTIVE.remove(found)
        logger.info("fuzzed %s (%s profile): %d requests: %s", request.param, FUZZ_PROFILE,
                    found.requests.total(), dict(sorted(found.requests.items())))


def scope_of(case: Case) -> str | None:
    """The token scope an operation wants (its tag); None for the questionnaire links."""
    return next((tag for tag in case.operation.tags or [] if tag in SCOPES), None)


# -- strategies shaped like the real requests -----------------------------------------------------

def times_around(now: datetime) -> st.SearchStrategy[Any]:
    """RFC 3339 strings near `now`, at any time with any offset (also one that carries years 1
    and 9999 out of the calendar in UTC), and not-times."""
    near_now = st.integers(-48 * 3600, 3600).map(lambda s: rfc3339(now + timedelta(seconds=s)))
    anywhere = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                            timezones=st.timezones()).map(lambda t: t.isoformat())
    return near_now | anywhere | st.text(max_size=40) | st.integers() | st.none()


def coordinates(limit: float, around: float) -> st.SearchStrategy[Any]:
    """Near the victim, anywhere, out of range, and not numbers (JSON has no NaN)."""
    return (st.floats(around - 0.05, around + 0.05) | st.floats(-limit * 1.1, limit * 1.1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.integers() | st.none()
            | st.booleans() | st.text(max_size=5))


def shaped_bodies(target: Target, path: str) -> st.SearchStrategy[dict[str, Any]] | None:
    """Bodies an operation's real callers send: the right fields, any plausible values."""
    when = times_around(target.scene.now)
    if path == "/api/v1/incidents":
        return st.fixed_dictionaries(
            {"reference": st.from_regex(r"[A-Za-z0-9_.:/-]{1,100}", fullmatch=True)
             | st.text(max_size=110),
             "lat": coordinates(90, VICTIM[0]), "lon": coordinates(180, VICTIM[1])},
            optional={"address": st.text(max_size=310) | st.none(), "called_at": when,
                      "source": st.sampled_from(["112", "wearable", "sms", ""]),
                      "exclusions": st.lists(st.sampled_from(
                          ["trauma", "unsafe_scene", "victim_under_one_year", "x"]))})
    if path == "/api/v1/incidents/{incident_id}/close":
        return st.fixed_dictionaries({}, optional={"reason": st.text(max_size=45)
                                                   | st.integers() | st.none()})
    if path == "/api/v1/incidents/{incident_id}/responses":
        return st.fixed_dictionaries(
            {"responder_id": st.sampled_from(sorted(STREET)) | st.text(max_size=70),
             "answer": st.sampled_from(["accept", "decline", "maybe"])},
            optional={"ts": when, "incident_id": st.text(max_size=45)})
    if path == "/api/v1/responders/{responder_id}/position":
        return st.fixed_dictionaries({"lat": coordinates(90, VICTIM[0]),
                                      "lon": coordinates(180, VICTIM[1]), "ts": when})
    if path == "/api/v1/questionnaires/{token}":
        answers = st.dictionaries(st.text(max_size=10),
                                  st.text(max_size=50) | st.integers() | st.booleans(),
                                  max_size=5)
        return st.fixed_dictionaries({}, optional={
            "answers": answers | st.text(max_size=2) | st.lists(st.integers(), max_size=2),
            "aftercare": st.booleans() | st.none() | st.integers(0, 1)})
    return None


def known_ids(target: Target) -> dict[str, list[str]]:
    """Path parameter values that name something in the scene (and a few near misses)."""
    scene = target.scene
    return {"incident_id": [scene.incident_id, target.open_incident, "inc-000000000000"],
            "responder_id": [*sorted(STREET), "r-404"],
            "token": [*sorted(scene.questionnaires.values()), "x" * 32],
            "name": ["Utrecht", "utrecht", "  UTRECHT  ", "Zeist", "De Bilt", "Utrekt"],
            "aed_id": [AED_1, "a-2", "b-2", "b-3", "unknown-aed"]}


def served_description() -> Any:
    """The description as the application serves it (serving it reads no database); each
    request of the fuzz then goes to the target's application (`case.call(app=...)`).

    `schemathesis.pytest.from_fixture` would load it from the target instead, but schemathesis
    4.32 reads `Function._nodeid` there, which pytest 9.2 no longer has."""
    app = create_app(None, settings=Settings(database_url="sqlite://"),
                     config={"TESTING": True, "SECRET_KEY": "fuzz-" + "k" * 40})
    return schemathesis.openapi.from_wsgi(OPENAPI, app)


schema = served_description()


@schema.hook("flatmap_path_parameters")
def _known_path_ids(context: HookContext, parameters: dict[str, Any] | None
                    ) -> st.SearchStrategy[dict[str, Any] | None]:
    """Sometimes the generated ids, sometimes ids of the scene."""
    ids = known_ids(ACTIVE[-1])
    names = [name for name in parameters or {} if name in ids]
    if not parameters or not names or not all(isinstance(parameters[n], str) for n in names):
        return st.just(parameters)  # a negative case's ids stay what they are
    known = st.fixed_dictionaries({name: st.sampled_from(ids[name]) for name in names})
    return st.just(parameters) | known.map(lambda chosen: {**parameters, **chosen})


@schema.hook("flatmap_body")
def _shaped_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Sometimes the generated object, sometimes a body shaped like the real ones."""
    target, operation = ACTIVE[-1], context.operation
    if operation is None or not isinstance(body, dict):
        return st.just(body)  # a negative case's body stays what it is
    if operation.path not in target.bodies:
        target.bodies[operation.path] = shaped_bodies(target, operation.path)
    shaped = target.bodies[operation.path]
    return st.just(body) if shaped is None else st.just(body) | shaped


@schema.hook("after_call")
def _count(context: HookContext, case: Case, response: Response) -> None:
    ACTIVE[-1].requests[case.operation.label] += 1


# -- what counts as documented --------------------------------------------------------------------

def declared_methods(case: Case) -> set[str]:
    return {method.upper() for method in case.operation.schema.raw_schema["paths"][
        case.operation.path]}


def undeclared_methods_are_refused_with_405(ctx: CheckContext, response: Response, case: Case
                                            ) -> bool | None:
    """The coverage phase also sends methods the path does not declare: 405, naming the
    allowed ones."""
    sent = (response.request.method or "").upper()
    declared = declared_methods(case)
    if sent in declared or sent == "OPTIONS" or (sent == "HEAD" and "GET" in declared):
        return None
    assert response.status_code == 405, f"{sent} {case.formatted_path}: {response.status_code}"
    assert response.headers.get("allow"), f"{sent} {case.formatted_path}: 405 without Allow"
    return None


CHECKS: list[Callable[..., Any]] = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance, negative_data_rejection, undeclared_methods_are_refused_with_405]
"""Left out as unfair: `positive_data_acceptance` (bodies are described only as "an object",
so a refused valid-looking body is no contradiction), `ignored_auth` (the second test does it
for every case), and the stateful checks (the description has no links)."""


def holds_nul(response: Response) -> bool:
    """Whether the request carried a NUL character (in its URL or JSON body)."""
    request = response.request
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    return "%00" in (request.url or "") or b"\\u0000" in body or b"\x00" in body


def assert_refused(response: Response, status: int, label: str) -> None:
    """`status` in the one error shape; or 400 for a NUL character, which the application
    refuses before it looks at the caller (`_no_nul` in `web.create_app`)."""
    if holds_nul(response) and response.status_code == 400:
        status = 400
    assert response.status_code == status, f"{label}: {response.status_code} {response.text[:200]}"
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "message"}, (label, body)


# -- the fuzz -------------------------------------------------------------------------------------

@settings(FUZZ)
@schema.parametrize()
def test_every_operation_with_a_token_of_its_scope_answers_as_documented(
        case: Case, target: Target) -> None:
    case.call_and_validate(headers=target.headers(scope_of(case)), checks=CHECKS,
                           app=target.app)


@settings(FUZZ)
@schema.parametrize()
def test_every_operation_refuses_callers_without_a_token_of_its_scope(
        case: Case, target: Target) -> None:
    scope = scope_of(case)
    if case.headers:
        case.headers.pop("Authorization", None)  # case-insensitive
    response = case.call(app=target.app)
    case.validate_response(response, checks=[not_a_server_error])
    if scope is None or (case.method or "").upper() not in declared_methods(case):
        return  # a questionnaire link is its own authorisation; other methods are 405
    assert_refused(response, 401, f"{case.operation.label} without a token")
    other = next(s for s in SCOPES if s != scope)
    response = case.call(headers=target.headers(other), app=target.app)
    # The coverage phase's "no Authorization header" cases keep it out of this call as well.
    sent_token = "Authorization" in response.request.headers
    assert_refused(response, 403 if sent_token else 401,
                   f"{case.operation.label} with a {other} token")


# -- what the fuzz found, fixed: the literal requests ------------------------------------------

def assert_described(method: str, path: str, response: Any) -> None:
    """The answer's status is described for the operation, and the answer fits it."""
    operation = schema[path][method]
    described = operation.definition.raw["responses"]
    assert str(response.status_code) in described, (response.status_code, sorted(described))
    assert operation.is_valid_response(response), response.get_data(as_text=True)[:300]


def call_body(reference: str, **fields: Any) -> dict[str, Any]:
    return {"reference": reference, "lat": VICTIM[0], "lon": VICTIM[1],
            "address": "Domplein 29, Utrecht", "source": "112", **fields}


def test_the_incident_list_answers_the_described_shape(target: Target) -> None:
    response = target.app.test_client().get("/api/v1/incidents",
                                            headers=target.headers("dispatch"))
    assert response.status_code == 200
    assert_described("GET", "/api/v1/incidents", response)


def test_a_repeated_call_answers_a_described_status(target: Target) -> None:
    client, headers = target.app.test_client(), target.headers("dispatch")
    client.post("/api/v1/incidents", json=call_body("fuzz-again"), headers=headers)
    response = client.post("/api/v1/incidents", json=call_body("fuzz-again"), headers=headers)
    assert response.status_code == 200, response.get_json()
    assert_described("POST", "/api/v1/incidents", response)


@pytest.mark.parametrize(("method", "operation", "path", "scope", "body"), [
    pytest.param("POST", "/api/v1/incidents", "/api/v1/incidents", "dispatch",
                 call_body("ref-open"), id="reference_conflict"),
    pytest.param("POST", "/api/v1/incidents/{incident_id}/responses",
                 "/api/v1/incidents/{closed}/responses", "responders",
                 {"responder_id": "r-1", "answer": "accept"}, id="incident_closed"),
    pytest.param("POST", "/api/v1/questionnaires/{token}", "/api/v1/questionnaires/{token}",
                 None, {"answers": {}, "aftercare": False}, id="already_answered"),
])
def test_a_conflict_answers_a_described_status(target: Target, method: str, operation: str,
                                               path: str, scope: str | None,
                                               body: dict[str, Any]) -> None:
    url = path.format(closed=target.scene.incident_id, token=target.scene.questionnaires["r-6"])
    client = target.app.test_client()
    for _ in range(2):  # a questionnaire conflicts the second time
        response = client.open(url, method=method, json=body, headers=target.headers(scope))
    assert response.status_code == 409, response.get_json()
    assert_described(method, operation, response)


@pytest.mark.parametrize("body", ["null", "false", "0", '""', "[]"])
def test_closing_with_a_body_that_is_not_an_object_is_refused(target: Target,
                                                              body: str) -> None:
    client, headers = target.app.test_client(), target.headers("dispatch")
    opened = client.post("/api/v1/incidents", json=call_body(f"fuzz-close-{body.encode().hex()}"),
                    headers=headers)
    assert opened.status_code == 201, opened.get_json()
    response = client.post(f"/api/v1/incidents/{opened.get_json()['id']}/close", data=body,
                           content_type="application/json", headers=headers)
    assert response.status_code == 400, response.get_json()


def test_an_undeclared_method_is_refused_with_the_allowed_ones(target: Target) -> None:
    response = target.app.test_client().delete("/api/v1/incidents",
                                               headers=target.headers("dispatch"))
    assert response.status_code == 405
    assert set(response.headers.get("Allow", "").replace(" ", "").split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize(("method", "path", "scope", "body"), [
    pytest.param("PUT", "/api/v1/responders/r-1/position", "responders",
                 {"lat": VICTIM[0], "lon": VICTIM[1], "ts": "0001-01-01T00:00:00+01:00"},
                 id="position_ts_in_year_1"),
    pytest.param("POST", "/api/v1/incidents/{open}/responses", "responders",
                 {"responder_id": "r-1", "answer": "accept", "ts": "9999-12-31T23:59:59-01:00"},
                 id="answer_ts_in_year_9999"),
    pytest.param("POST", "/api/v1/incidents", "dispatch",
                 call_body("fuzz-year-1", called_at="0001-01-01T00:00:00+01:00"),
                 id="called_at_in_year_1"),
])
def test_a_time_that_leaves_the_calendar_in_utc_is_refused(
        target: Target, method: str, path: str, scope: str, body: dict[str, Any]) -> None:
    response = target.app.test_client().open(path.format(open=target.open_incident),
                                             method=method, json=body,
                                             headers=target.headers(scope))
    assert response.status_code in (400, 422), response.get_json()
    assert response.get_json()["error"] == "invalid_field"


@pytest.mark.parametrize("scope", [None, "dispatch"], ids=["no_token", "dispatch_token"])
def test_a_deeply_nested_json_body_is_refused(target: Target, scope: str | None) -> None:
    response = target.app.test_client().post(
        "/api/v1/incidents", data="[" * 2000 + "]" * 2000, content_type="application/json",
        headers=target.headers(scope))
    assert response.status_code in (400, 401), response.get_json()


@pytest.mark.parametrize("field", ["address", "reference"])
def test_a_call_with_text_no_database_can_store_is_refused(target: Target, field: str) -> None:
    body = json.dumps(call_body("fuzz-surrogate")).replace(
        '"fuzz-surrogate"' if field == "reference" else '"Domplein 29, Utrecht"', '"\\ud800"')
    response = target.app.test_client().post(
        "/api/v1/incidents", data=body, content_type="application/json",
        headers=target.headers("dispatch"))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_body"
