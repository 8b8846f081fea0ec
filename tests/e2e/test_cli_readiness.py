"""`aedfleet aeds list|show` and `aedfleet declare`: what an operator reads, on both databases."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from fleet.db import session_scope
from fleet.models import TelemetryState
from fleet.readiness import REASONS, WARNINGS
from fleet.registry import import_registry, record_declaration
from fleet.registry_file import parse_csv

from .cli import Cli

REGISTRY = """id,lat,lon,municipality,opening_hours,access,device_id,pads_expiry
NL-E1,52.0907,5.1214,Utrecht,24/7,public,cab-e1,
NL-E2,52.0800,5.1300,Utrecht,Mo-Fr 08:00-18:00,public,,2030-01-31
NL-E3,52.1561,5.3878,Amersfoort,,private,,2020-01-31
"""
STATES = {"ready", "unverified", "not_ready"}
SNAKE_CASE = re.compile(r"^[a-z]+(_[a-z]+)*$")


@pytest.fixture
def registered(engine: Engine) -> Engine:
    """Three AEDs; NL-E1's cabinet reported all well five minutes ago and it is declared ready."""
    now = datetime.now(UTC)
    assert import_registry(engine, parse_csv(REGISTRY)).created == 3
    with session_scope(engine) as session:
        session.add(TelemetryState(
            device_id="cab-e1", seq=7, ts=now - timedelta(minutes=5), online=True,
            battery_pct=91, pads_expiry=date.today() + timedelta(days=500), self_test="pass",
            door_open=False, aed_present=True, temperature_c=14.0, power="mains"))
    record_declaration(engine, "NL-E1", "J. Jansen", now - timedelta(days=3), now)
    return engine


def assert_contract_status(document: dict[str, object]) -> None:
    """An AED as contract §5 describes it."""
    assert isinstance(document["id"], str)
    readiness = document["readiness"]
    assert isinstance(readiness, dict)
    assert readiness["state"] in STATES
    assert all(code in REASONS and SNAKE_CASE.match(code) for code in readiness["reasons"])
    assert all(code in WARNINGS and SNAKE_CASE.match(code) for code in readiness["warnings"])
    assert isinstance(document["accessible_now"], bool)


def test_aeds_list_json_is_one_json_list_on_stdout_as_the_contract_describes(
        cli: Cli, registered: Engine) -> None:
    result = cli.ok("aeds", "list", "--json")

    documents = json.loads(result.stdout)
    assert isinstance(documents, list)
    assert [d["id"] for d in documents] == ["NL-E1", "NL-E2", "NL-E3"]
    for document in documents:
        assert_contract_status(document)
    by_id = {d["id"]: d for d in documents}
    assert by_id["NL-E1"]["readiness"] == {"state": "ready", "reasons": [], "warnings": []}
    assert by_id["NL-E1"]["accessible_now"] is True
    assert by_id["NL-E3"]["readiness"]["state"] == "not_ready"
    assert {"declaration_missing", "pads_expired"} <= set(by_id["NL-E3"]["readiness"]["reasons"])
    assert by_id["NL-E3"]["accessible_now"] is False
    assert "{" not in result.stderr


def test_aeds_list_without_json_prints_one_line_per_aed_and_the_summary_on_stderr(
        cli: Cli, registered: Engine) -> None:
    result = cli.ok("aeds", "list", "--municipality", "utrecht")

    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NL-E1", "NL-E2"]
    assert "2 AEDs: 1 ready, 0 unverified, 1 not_ready" in result.stderr


def test_aeds_list_filters_by_state_and_municipality(cli: Cli, registered: Engine) -> None:
    ready = cli.json("aeds", "list", "--state", "ready")
    not_ready_in_utrecht = cli.json("aeds", "list", "--state", "not_ready",
                                    "--municipality", "Utrecht")
    in_amersfoort = cli.json("aeds", "list", "--municipality", "AMERSFOORT")

    assert [d["id"] for d in ready] == ["NL-E1"]
    assert [d["id"] for d in not_ready_in_utrecht] == ["NL-E2"]
    assert [d["id"] for d in in_amersfoort] == ["NL-E3"]


def test_aeds_show_json_describes_one_aed(cli: Cli, registered: Engine) -> None:
    document = cli.json("aeds", "show", "NL-E1")

    assert_contract_status(document)
    assert document["id"] == "NL-E1"
    assert document["readiness"]["state"] == "ready"
    assert document["device_id"] == "cab-e1"
    assert document["municipality"] == "Utrecht"
    assert document["declaration"]["declared_by"] == "J. Jansen"
    assert document["declaration"]["declared_at"].endswith("Z")
    assert document["telemetry"]["battery_pct"] == 91


def test_aeds_show_of_an_unknown_id_exits_1_with_a_message(cli: Cli, registered: Engine) -> None:
    result = cli("aeds", "show", "NL-NOPE")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "Error: no AED with id NL-NOPE"


def test_declare_is_reflected_by_aeds_show(cli: Cli, registered: Engine) -> None:
    before = cli.json("aeds", "show", "NL-E2")
    assert "declaration_missing" in before["readiness"]["reasons"]

    declared = cli("declare", "NL-E2", "--by", "A. de Vries", "--note", "pads replaced")

    assert declared.returncode == 0, declared.stderr
    assert "declaration recorded for NL-E2; readiness now unverified" in declared.stderr
    after = cli.json("aeds", "show", "NL-E2")
    assert after["declaration"]["declared_by"] == "A. de Vries"
    assert after["readiness"]["state"] == "unverified"
    assert after["readiness"]["reasons"] == ["no_cabinet_agent"]
    text = cli.ok("aeds", "show", "NL-E2").stdout
    assert "declared ready" in text and "by A. de Vries" in text


def test_declare_with_a_time_in_the_future_is_refused(cli: Cli, registered: Engine) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    result = cli("declare", "NL-E2", "--by", "A. de Vries", "--at", tomorrow)

    assert result.returncode == 1
    assert "lies in the future" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli.json("aeds", "show", "NL-E2")["declaration"] is None


def test_declare_for_an_unknown_aed_is_refused(cli: Cli, registered: Engine) -> None:
    result = cli("declare", "NL-NOPE", "--by", "A. de Vries")

    assert result.returncode == 1
    assert result.stderr.strip() == "Error: no AED with id NL-NOPE"
