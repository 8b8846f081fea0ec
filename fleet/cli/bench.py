"""`aedfleet bench ...`: benchmarks; each ends with one line holding a JSON object of figures."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fleet import bench as benchmarks
from fleet.cli import Context, pass_context

DEFAULT_IMPORT_FILE = Path("tests/data/ch_osm_defibrillators_2020-12.geojson")


@click.group()
def bench() -> None:
    """Benchmarks (full runs take a minute; --quick for a small, fast form)."""


@bench.command()
@click.option("--aeds", "count", default=25_000, show_default=True, help="Fleet size.")
@click.option("--repeat", default=3, show_default=True, help="Runs; the best is reported.")
@click.option("--quick", is_flag=True, help="2,000 AEDs, one run: a smoke test.")
@pass_context
def readiness(ctx: Context, count: int, repeat: int, quick: bool) -> None:
    """Readiness of a national-size fleet in one pass, against a per-AED query baseline."""
    if quick:
        count, repeat = 2_000, 1
    figures = benchmarks.bench_readiness(count, repeat, baseline_sample=min(2_000, count),
                                         settings=ctx.settings)
    click.echo(f"readiness of {figures['aeds']} AEDs: one pass {figures['one_pass_s']} s "
               f"({figures['one_pass_aeds_per_s']} AEDs/s; rules alone "
               f"{figures['rules_only_us_per_aed']} µs per AED); per-AED queries baseline "
               f"{figures['baseline_per_aed_queries_s']} s: {figures['speedup_vs_baseline']}x")
    click.echo(json.dumps(figures))


@bench.command("import")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path))
@click.option("--repeat", default=3, show_default=True, help="Runs; the best is reported.")
@click.option("--quick", is_flag=True, help="One run: a smoke test.")
def import_bench(file: Path | None, repeat: int, quick: bool) -> None:
    """Import of FILE (default: the 1,550 real Swiss OSM AEDs) against row-by-row commits."""
    path = file or DEFAULT_IMPORT_FILE
    if not path.is_file():
        raise click.UsageError(f"{path} not found: give a registry file")
    figures = benchmarks.bench_import(path, 1 if quick else repeat)
    click.echo(f"import of {figures['rows']} rows ({figures['file']}): "
               f"{figures['rows_per_s']} rows/s, {figures['import_s']} s in one transaction; "
               f"row-by-row baseline {figures['baseline_row_by_row_s']} s: "
               f"{figures['speedup_vs_baseline']}x")
    click.echo(json.dumps(figures))


@bench.command("agent")
@click.option("--quick", is_flag=True, help="Short samples, a 1,000-message drain: a smoke test.")
def agent_bench(quick: bool) -> None:
    """Cabinet agent: memory and CPU idle and at 1 Hz, spool drain, simulator throughput."""
    from device_agents.bench import bench_agent
    from device_agents.register_map import find_register_map

    maps = Path("config/cabinets")
    figures = bench_agent(quick, find_register_map("rcc1", maps), maps.resolve())
    click.echo(f"agent: {figures['idle_rss_mb']} MB resident, {figures['idle_cpu_pct']} % CPU "
               f"idle, {figures['1hz_cpu_pct']} % at 1 Hz; drain of {figures['drain_messages']} "
               f"messages {figures['drain_s']} s ({figures['drain_msgs_per_s']}/s, "
               f"{figures['drain_speedup_vs_baseline']}x one-PUBACK-at-a-time); simulator "
               f"{figures['sim_msgs_per_s']} msgs/s")
    click.echo(json.dumps(figures))


@bench.command("ingest")
@click.option("--cabinets", default=25_000, show_default=True, help="Registered cabinets.")
@click.option("--messages", default=50_000, show_default=True,
              help="Telemetry messages per throughput run.")
@click.option("--database-url", help="An empty database to use (default: SQLite in a "
              "temporary folder).")
@click.option("--quick", is_flag=True, help="2,000 cabinets, 4,000 messages: a smoke test.")
def ingest_bench(cabinets: int, messages: int, database_url: str | None, quick: bool) -> None:
    """Ingest: raw broker rate, applied rate with 1 and 2 workers, burst, latency."""
    from fleet.bench_ingest import bench_ingest

    if quick:
        cabinets, messages = 2_000, 4_000
    figures = bench_ingest(cabinets, messages, latency_rate=200.0 if quick else 500.0,
                           latency_count=min(cabinets, 1_000 if quick else 5_000),
                           database_url=database_url)
    click.echo(f"ingest on {figures['database']}: raw {figures['raw_msgs_per_s']} msgs/s; "
               f"applied {figures['applied_msgs_per_s_1w']} msgs/s with one worker "
               f"({figures['applied_vs_raw_1w']} of raw), {figures['applied_msgs_per_s_2w']} "
               f"with two; all {figures['burst_cabinets']} cabinets at once applied in "
               f"{figures['burst_25k_s']} s; publish to ack p50 {figures['p50_ms']} ms, "
               f"p99 {figures['p99_ms']} ms")
    click.echo(json.dumps(figures))


@bench.command("dispatch")
@click.option("--responders", default=250_000, show_default=True)
@click.option("--aeds", default=25_000, show_default=True)
@click.option("--incidents", default=10_000, show_default=True,
              help="Selections timed in-process.")
@click.option("--naive-sample", default=50, show_default=True,
              help="Incidents also selected by the naive geopy scan.")
@click.option("--postgis", "postgis_url", default=None, envvar="AEDFLEET_BENCH_POSTGIS_URL",
              help="PostgreSQL URL with PostGIS for the KNN baseline (a bench_dispatch "
                   "schema is made and dropped); unset: that baseline is skipped.")
@click.option("--postgis-sample", default=1_000, show_default=True)
@click.option("--alerts", "alert_incidents", default=200, show_default=True,
              help="Incidents posted over HTTP and timed until all alerts are on the broker.")
@click.option("--alerts-db", "alerts_server", default=None,
              help="PostgreSQL server URL: the alarm core of the HTTP run uses a fresh "
                   "database there instead of SQLite.")
@click.option("--quick", is_flag=True,
              help="25,000 responders, 2,500 AEDs, 500 incidents: a smoke test.")
def dispatch_bench(responders: int, aeds: int, incidents: int, naive_sample: int,
                   postgis_url: str | None, postgis_sample: int, alert_incidents: int,
                   alerts_server: str | None, quick: bool) -> None:
    """Alarm core: selection p99 against geopy and PostGIS baselines; intake to alerts."""
    from alarm_core.bench import bench_dispatch

    if quick:
        responders, aeds, incidents = 25_000, 2_500, 500
        naive_sample, postgis_sample, alert_incidents = 3, 50, 20
    figures = bench_dispatch(responders, aeds, incidents, naive_sample, postgis_url,
                             postgis_sample, alert_incidents, alerts_server,
                             progress=lambda m: click.echo(m, err=True))
    click.echo(f"selection of {figures['incidents']} incidents among {figures['responders']} "
               f"responders and {figures['aeds']} AEDs: p50 {figures['select_p50_ms']} ms, "
               f"p99 {figures['select_p99_ms']} ms; naive geopy scan "
               f"{figures['naive_ratio']}x slower; PostGIS KNN "
               f"{figures['postgis_ratio'] or '-'}x slower; all agree: {figures['agree']}")
    click.echo(f"updates: location {figures['location_update_us']} µs, readiness "
               f"{figures['readiness_update_us']} µs; full rebuild "
               f"{figures['full_rebuild_ms']} ms")
    if figures.get("regions"):
        click.echo(f"with the {figures['regions']} shipped regions loaded: p50 "
                   f"{figures['regions_select_p50_ms']} ms ({figures['regions_ratio_p50']}x "
                   f"the single region), p99 {figures['regions_select_p99_ms']} ms; same plans "
                   f"{figures['regions_same_plans_pct']} %")
    if alert_incidents:
        click.echo(f"POST /api/v1/incidents -> all alerts on the broker: p50 "
                   f"{figures['alerts_p50_ms']} ms, p99 {figures['alerts_p99_ms']} ms "
                   f"({figures['alerts_incidents']} incidents, "
                   f"{figures['alerts_per_incident_mean']} alerts each, "
                   f"{figures['alerts_missing']} missing)")
    keys = ("select_p99_ms", "alerts_p99_ms", "naive_ratio", "postgis_ratio", "agree")
    click.echo(json.dumps({**{k: figures.get(k) for k in keys}, **figures}))


@bench.command("coverage")
@click.option("--responders", default=250_000, show_default=True)
@click.option("--aeds", default=25_000, show_default=True)
@click.option("--cell-m", default=150.0, show_default=True,
              help="Grid cell size (150 m: about 1.5 million cells).")
@click.option("--at", "at", default="2026-11-25T14:00:00+01:00", show_default=True,
              help="Moment of the full map (a night figure is taken at 03:00 that day as well).")
@click.option("--changes", default=1_000, show_default=True,
              help="Single AED changes applied incrementally.")
@click.option("--baseline-cells", default=3_000, show_default=True,
              help="Cells the all-pairs baseline is timed on (then scaled).")
@click.option("--quick", is_flag=True,
              help="25,000 responders, 2,500 AEDs, 1 km cells: a smoke test.")
@pass_context
def coverage_bench(ctx: Context, responders: int, aeds: int, cell_m: float, at: str,
                   changes: int, baseline_cells: int, quick: bool) -> None:
    """Coverage of the Netherlands: full, incremental, 24-hour profile; all-pairs baseline."""
    from fleet.cli import parse_time
    from fleet.coverage.bench import bench_coverage

    if quick:
        responders, aeds, cell_m, changes, baseline_cells = 25_000, 2_500, 1_000.0, 50, 200
    figures = bench_coverage(responders, aeds, cell_m, parse_time(at, ctx.settings), changes,
                             baseline_cells, progress=lambda m: click.echo(m, err=True))
    click.echo(f"{figures['cells']:,} cells of {cell_m:g} m (grid {figures['grid_s']} s, tree "
               f"{figures['cell_tree_s']} s), {figures['aeds']:,} AEDs, "
               f"{figures['responders']:,} responders: full computation {figures['full_s']} s; "
               f"one AED change p50 {figures['incremental_p50_ms']} ms, p99 "
               f"{figures['incremental_ms']} ms (agrees with full: "
               f"{figures['incremental_agrees_with_full']}); 24-hour profile of "
               f"{figures['profile_municipality']} {figures['profile_s']} s")
    click.echo(f"all-pairs numpy baseline {figures['baseline_s']} s (scaled from "
               f"{figures['baseline_sample_cells']:,} cells): {figures['baseline_ratio']}x; "
               f"agrees: {figures['baseline_agrees']}; national coverage "
               f"{figures['national_covered_pct']} % at {figures['at']}, "
               f"{figures['national_covered_pct_night']} % at {figures['night_at']}")
    keys = ("full_s", "incremental_ms", "profile_s", "baseline_ratio", "national_covered_pct")
    click.echo(json.dumps({**{k: figures[k] for k in keys}, **figures}))


@bench.command("web")
@click.option("--aeds", "count", default=25_000, show_default=True, help="Fleet size.")
@click.option("--requests", default=200, show_default=True, help="Requests per page.")
@click.option("--database-url", help="An empty database to use (default: SQLite in a "
              "temporary folder).")
@click.option("--quick", is_flag=True, help="2,000 AEDs, 20 requests: a smoke test.")
@pass_context
def web_bench(ctx: Context, count: int, requests: int, database_url: str | None,
              quick: bool) -> None:
    """Server time of the fleet page and the AED list API, against live evaluation."""
    from web.bench import bench_web

    if quick:
        count, requests = 2_000, 20
    figures = bench_web(count, requests, ctx.settings, database_url,
                        progress=lambda m: click.echo(m, err=True))
    click.echo(f"{figures['aeds']:,} AEDs on {figures['database']}: fleet page p50 "
               f"{figures['fleet_page_p50_ms']} / p99 {figures['fleet_page_p99_ms']} ms (last "
               f"page p99 {figures['fleet_page_last_p99_ms']} ms; a manager's p99 "
               f"{figures['manager_fleet_page_p99_ms']} ms); API list p50 "
               f"{figures['api_list_p50_ms']} / p99 {figures['api_list_p99_ms']} ms; map layer "
               f"p99 {figures['api_map_p99_ms']} ms; live-evaluation baseline "
               f"{figures['baseline_live_page_ms']} ms: {figures['speedup_vs_baseline']}x")
    keys = ("fleet_page_p99_ms", "api_list_p99_ms")
    click.echo(json.dumps({**{k: figures[k] for k in keys}, **figures}))


@bench.command("soak")
@click.option("--minutes", default=30.0, show_default=True, type=click.FloatRange(0.5),
              help="Wall-clock minutes to run.")
@click.option("--speed", default=10.0, show_default=True, type=click.FloatRange(1, 1_000),
              help="How much faster than a real day (10: 30 minutes are 5 hours).")
@click.option("--responders", default=250_000, show_default=True)
@click.option("--aeds", default=25_000, show_default=True)
@click.option("--postgres", "server_url", help="A PostgreSQL server URL (a fresh database is "
              "made there; default: SQLite in a temporary folder).")
@click.option("--quick", is_flag=True, help="One minute, 20,000 responders, 2,000 AEDs, a day "
              "at 60x: a smoke test.")
def soak_bench(minutes: float, speed: float, responders: int, aeds: int,
               server_url: str | None, quick: bool) -> None:
    """A national day, compressed, against the real processes: memory and latency over time."""
    from fleet.bench_soak import bench_soak

    if quick:
        minutes, speed, responders, aeds = 1.0, 60.0, 20_000, 2_000
    figures = bench_soak(minutes, speed, responders, aeds, server_url,
                         progress=lambda m: click.echo(m, err=True))
    click.echo(f"{figures['minutes']:g} min ({figures['simulated_hours']} h of a day): "
               f"{figures['incidents']} incidents, {figures['missed_incidents']} missed, "
               f"{figures['alerts_missing']} alerts missing; {figures['messages']:,} cabinet "
               f"messages, {figures['lost_messages']} lost; dispatch p99 "
               f"{figures['p99_dispatch_ms_start']} -> {figures['p99_dispatch_ms_end']} ms; "
               f"memory {figures['rss_start_mb']} -> {figures['rss_end_mb']} MB")
    click.echo(json.dumps(figures))
