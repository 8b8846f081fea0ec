"""Data governance as an operator drives it: `aedfleet audit list`, `retention run` and
`incidents export --anonymised`, and the audit entries of `users`, `declare` and `import`, on
both databases."""

from __future__ import annotations

import csv
import getpass
import json
from pathlib import Path

import pytest
from integration.alarm_support import NOW, alarm_settings, build_street, call
from sqlalchemy import Engine

from alarm_core.service import AlarmCore
from fleet.retention import KINDS
from fleet.settings import Settings

from .cli import Cli

PASSWORD = "correct horse battery"
ADDRESS = "Kerkstraat 7, 3512 AB Utrecht"


@pytest.fixture
def operator() -> str:
    """Who the audit log names for this test's commands."""
    return f"cli:{getpass.getuser()}"


def test_account_commands_are_in_the_audit_log_as_the_operator(cli: Cli, engine: Engine,
                                                              operator: str) -> None:
    cli.ok("users", "add", "desk1", "--role", "dispatcher", "--password", PASSWORD)
    cli.ok("users", "role", "desk1", "--role", "admin")
    cli.ok("users", "passwd", "desk1", "--password", PASSWORD + "!")
    cli.ok("users", "disable", "desk1")

    entries = cli.json("audit", "list", "--object", "desk1")

    assert [(e["actor"], e["action"]) for e in reversed(entries)] == [
        (operator, "user.created"), (operator, "user.role_changed"),
        (operator, "user.password_set"), (operator, "user.disabled")]
    assert entries[-1]["changes"] == {"role": [None, "dispatcher"]}
    assert PASSWORD not in json.dumps(entries)
    assert cli.json("audit", "list", "--user", "nobody") == []
    assert "user.role_changed" in cli.ok("audit", "list").stdout


def test_an_import_and_a_declaration_are_in_the_audit_log(cli: Cli, engine: Engine,
                                                          operator: str) -> None:
    registry = cli.cwd / "registry.csv"
    registry.write_text("id,lat,lon,opening_hours,access\nNL-G1,52.0907,5.1214,24/7,public\n",
                        encoding="utf-8")
    cli.ok("import", str(registry))
    cli.ok("declare", "NL-G1", "--by", "J. Jansen", "--note", "pads replaced")

    imported, declared = reversed(cli.json("audit", "list", "--user", operator))

    assert (imported["action"], imported["object"]) == ("aed.imported", "registry.csv")
    assert imported["changes"]["created"] == 1
    assert (declared["action"], declared["object"]) == ("aed.readiness_declared", "NL-G1")
    assert declared["changes"]["declared_by"] == [None, "J. Jansen"]


def test_retention_run_reports_a_count_for_every_kind(cli: Cli, engine: Engine) -> None:
    counts = cli.json("retention", "run")

    assert set(counts) == set(KINDS) and all(isinstance(n, int) for n in counts.values())
    assert "incidents coarsened: 0" in cli.ok("retention", "run").stdout


def test_the_anonymised_export_writes_the_register_csv_without_personal_data(
        cli: Cli, engine: Engine, settings: Settings) -> None:
    build_street(engine)
    core = AlarmCore(engine, alarm_settings(settings))
    core.load(NOW)
    incident_id = core.intake("112-utrecht", call("MK-2026-417", address=ADDRESS),
                              NOW).incident.id
    out = cli.cwd / "register.csv"

    result = cli.ok("incidents", "export", "--anonymised", "--since", "2026-11-25",
                    "--until", "2026-11-25", "--out", str(out))

    assert "1 incidents from 2026-11-25 to 2026-11-25 exported" in result.stderr
    [row] = list(csv.DictReader(out.open(encoding="utf-8")))
    assert (row["call_date"], row["call_hour"], row["pc4"], row["responders_alerted"]) == (
        "2026-11-25", "15", "3512", "6")
    document = out.read_text(encoding="utf-8")
    for personal in (incident_id, "MK-2026-417", "Kerkstraat", "Responder r-", "52.09"):
        assert personal not in document
    assert not Path(f"{out}.partial").exists()


def test_the_export_is_refused_without_the_anonymised_flag_and_the_other_commands_stay(
        cli: Cli, engine: Engine) -> None:
    refused = cli("incidents", "export", "--since", "2026-11-25", "--out", "x.csv")

    assert refused.returncode == 2 and "--anonymised" in refused.stderr
    assert not (cli.cwd / "x.csv").exists()
    assert cli.json("incidents", "list") == []
