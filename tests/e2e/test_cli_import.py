"""`aedfleet db upgrade` and `aedfleet import` driven as an operator does, on both databases."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import Engine

from .cli import Cli

TEST_DATA = Path(__file__).parents[1] / "data"
SWISS_GEOJSON = TEST_DATA / "ch_osm_defibrillators_2020-12.geojson"


def test_db_upgrade_brings_a_new_database_to_the_newest_revision(cli: Cli) -> None:
    upgraded = cli.ok("db", "upgrade")
    current = cli.ok("db", "current")

    revision = re.search(r"database at revision (\S+)", upgraded.stderr)
    assert revision, upgraded.stderr
    lines = dict(line.split(":", 1) for line in current.stdout.splitlines())
    assert lines["current"].strip() == lines["head"].strip() == revision.group(1)


def test_import_of_the_swiss_geojson_prints_counts_and_each_rejected_row_with_line_and_reason(
        cli: Cli, engine: Engine) -> None:
    result = cli("import", str(SWISS_GEOJSON))

    assert result.returncode == 0, result.stderr
    assert "1550 rows, 1546 imported (1546 new, 0 updated, 0 unchanged), 4 rejected" \
        in result.stdout
    rejected = [line for line in result.stderr.splitlines() if " rejected line " in line]
    assert [int(re.search(r"rejected line (\d+)", line).group(1)) for line in rejected] == \
        [272, 380, 1454, 1519]
    assert "rejected line 272 (osm-node-6633263848): unknown access value 'PUB'" in result.stderr
    assert "rejected line 1454 (osm-node-7978662260): unknown indoor value 'wall'" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_reimport_with_json_reports_every_aed_unchanged(cli: Cli, engine: Engine) -> None:
    cli.ok("import", str(SWISS_GEOJSON))

    report = cli.json("import", str(SWISS_GEOJSON))

    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 1546)
    assert [r["line"] for r in report["rejections"]] == [272, 380, 1454, 1519]
    assert len(cli.json("aeds", "list")) == 1546


def test_import_of_a_file_where_every_row_is_bad_exits_non_zero_with_nothing_imported(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "all_bad.csv"
    bad.write_text("id,lat,lon\nNL-X1,north,east\n,52.1,5.1\nNL-X3,0,0\n", encoding="utf-8")

    result = cli("import", str(bad))

    assert result.returncode != 0
    assert "nothing imported" in result.stderr
    assert "line 2 (NL-X1): bad coordinates" in result.stderr
    assert "line 3: missing id" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli.json("aeds", "list") == []


def test_truncated_geojson_is_refused_with_a_clear_message_and_stores_nothing(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    whole = SWISS_GEOJSON.read_bytes()
    truncated = tmp_path / "cut_off.geojson"
    truncated.write_bytes(whole[: len(whole) // 2])

    result = cli("import", str(truncated))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: not valid JSON")
    assert "truncated" in message
    assert cli.json("aeds", "list") == []


def test_overlong_source_name_is_refused_with_a_message_not_a_traceback(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    registry.write_text("id,lat,lon\nNL-S1,52.1,5.1\n", encoding="utf-8")

    result = cli("import", str(registry), "--source", "gemeente-utrecht-" + "x" * 30)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "source" in result.stderr.strip().splitlines()[-1]


def test_import_report_in_json_is_the_only_thing_on_stdout(
        cli: Cli, engine: Engine, tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    registry.write_text("id,lat,lon,colour\nNL-J1,52.1,5.1,green\nNL-J2,x,5.1,red\n",
                        encoding="utf-8")

    result = cli.ok("import", str(registry), "--json")

    report = json.loads(result.stdout)
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["rejections"][0]["line"] == 3
    assert any("colour" in note for note in report["notes"])
