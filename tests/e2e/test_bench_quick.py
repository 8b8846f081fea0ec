"""Every benchmark runs in its quick form and ends with one line of JSON figures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .cli import Cli


def last_json_line(stdout: str) -> dict[str, object]:
    figures = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(figures, dict)
    return figures


def test_readiness_benchmark_reports_one_pass_against_its_baseline(plain_cli: Cli) -> None:
    result = plain_cli("bench", "readiness", "--quick")
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    assert figures["aeds"] == 2_000
    assert float(figures["speedup_vs_baseline"]) > 1  # type: ignore[arg-type]


def test_import_benchmark_reports_the_real_swiss_file_against_row_by_row(plain_cli: Cli) -> None:
    data = Path(__file__).parents[1] / "data"
    result = plain_cli("bench", "import", "--quick",
                           str(data / "ch_osm_defibrillators_2020-12.geojson"))
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    assert (figures["rows"], figures["imported"], figures["rejected"]) == (1550, 1546, 4)


def test_agent_benchmark_reports_memory_drain_and_simulator_figures(plain_cli: Cli) -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    result = plain_cli("bench", "agent", "--quick", timeout=240)
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    for key in ("idle_rss_mb", "drain_10k_s", "sim_msgs_per_s"):
        assert float(figures[key]) > 0, key  # type: ignore[arg-type]
    assert figures["idle_messages"] == 1, "an unchanging cabinet sends one snapshot, not a stream"


def test_ingest_benchmark_reports_raw_applied_burst_and_latency_figures(plain_cli: Cli) -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    result = plain_cli("bench", "ingest", "--quick", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    for key in ("raw_msgs_per_s", "applied_msgs_per_s_1w", "applied_msgs_per_s_2w",
                "burst_25k_s", "p99_ms"):
        assert float(figures[key]) > 0, key  # type: ignore[arg-type]
    assert figures["latency_samples"] == 1_000, "every message of the latency run was acked"


def test_dispatch_benchmark_selections_agree_across_index_geopy_and_postgis(
        plain_cli: Cli) -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    postgis = os.environ.get("AEDFLEET_TEST_POSTGRES_URL")
    args = ["--postgis", postgis] if postgis else []
    result = plain_cli("bench", "dispatch", "--quick", *args, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    assert figures["agree"] is True, "index, geopy scan and PostGIS chose the same"
    for key in ("select_p99_ms", "alerts_p99_ms", "naive_ratio"):
        assert float(figures[key]) > 0, key  # type: ignore[arg-type]
    if postgis:
        assert float(figures["postgis_ratio"]) > 0  # type: ignore[arg-type]
    assert figures["alerts_missing"] == 0, "every alert of every posted incident arrived"


def test_coverage_benchmark_agrees_with_its_all_pairs_baseline_and_full_recomputation(
        plain_cli: Cli) -> None:
    result = plain_cli("bench", "coverage", "--quick", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    assert list(figures)[:5] == ["full_s", "incremental_ms", "profile_s", "baseline_ratio",
                                 "national_covered_pct"]
    assert figures["baseline_agrees"] is True, "same covered cells as all pairs"
    assert figures["incremental_agrees_with_full"] is True
    assert 0 < float(figures["national_covered_pct"]) < 100  # type: ignore[arg-type]
    assert float(figures["baseline_ratio"]) > 1  # type: ignore[arg-type]


def test_web_benchmark_reports_fleet_page_and_api_list_server_time(plain_cli: Cli) -> None:
    result = plain_cli("bench", "web", "--quick", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    assert figures["aeds"] == 2_000
    assert float(figures["fleet_page_p99_ms"]) > 0  # type: ignore[arg-type]
    assert float(figures["api_list_p99_ms"]) > 0  # type: ignore[arg-type]
    assert float(figures["speedup_vs_baseline"]) > 1  # type: ignore[arg-type]


def test_soak_benchmark_dispatches_every_call_and_loses_no_cabinet_message(
        plain_cli: Cli) -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
    result = plain_cli("bench", "soak", "--quick", timeout=300)
    assert result.returncode == 0, result.stderr
    figures = last_json_line(result.stdout)
    assert {"minutes", "incidents", "missed_incidents", "lost_messages", "rss_growth_mb",
            "p99_dispatch_ms_start", "p99_dispatch_ms_end"} <= set(figures)
    assert int(figures["incidents"]) > 20  # type: ignore[call-overload]
    assert (figures["missed_incidents"], figures["lost_messages"], figures["alerts_missing"]
            ) == (0, 0, 0)
    assert figures["errors"] == []
