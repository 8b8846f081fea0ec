"""`aedfleet coverage`: the 6-minute zone of a municipality, or of the whole country."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from fleet.cli import Context, parse_time, pass_context, progress_bar
from fleet.coverage import report
from fleet.coverage.service import (
    MunicipalityCoverage,
    NationalCoverage,
    analyse_municipality,
    load_inputs,
    national_map,
    national_summary,
)
from fleet.db import session_scope


@click.command()
@click.option("--municipality", "name", default=None,
              help="Municipality (as CBS spells it); without it: the whole country.")
@click.option("--at", "at", default=None, help="Moment (RFC 3339; default now). Opening hours "
              "and responder availability are taken at this moment, readiness as it is now.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--geojson", "geojson", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write a GeoJSON file (PC4 areas, advised sites, critical "
              "AEDs) that opens in QGIS.")
@click.option("--cells", is_flag=True, help="Also put every grid cell in the GeoJSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the municipality's report (one row per PC4) as CSV.")
@click.option("--advice", type=click.IntRange(0, 200), default=None,
              help="How many new sites and critical AEDs to list (default from settings).")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
              help="Areas listed in the text output, weakest first.")
@pass_context
def coverage(ctx: Context, name: str | None, at: str | None, as_json: bool,
             geojson: Path | None, cells: bool, csv_path: Path | None, advice: int | None,
             limit: int) -> None:
    """Share of inhabitants within reach of CPR and an AED in time, weakest areas first, with
    the 24-hour profile and placement advice for a municipality."""
    settings = ctx.settings
    moment = parse_time(at, settings)
    if name is None and (geojson or csv_path):
        raise click.UsageError("--geojson and --csv need --municipality")
    with session_scope(ctx.engine) as session:
        inputs = load_inputs(session, settings, datetime.now(UTC))
    if name is None:
        with progress_bar(len(inputs.areas), "laying cells over the PC4 areas") as bar:
            whole = national_map(inputs, moment, progress=bar.update)
        _national(national_summary(whole, inputs), as_json, limit)
        return
    count = settings.coverage.advice_count if advice is None else advice
    result = analyse_municipality(inputs, name, moment, advice=count)
    if geojson is not None:
        geojson.write_text(json.dumps(report.municipality_geojson(result, cells=cells)),
                           encoding="utf-8")
    if csv_path is not None:
        csv_path.write_text(report.municipality_csv(result), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.municipality_json(result), ensure_ascii=False))
    else:
        _municipality_text(result, limit)


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _municipality_text(result: MunicipalityCoverage, limit: int) -> None:
    total, model = result.total, result.model
    local = model.local(result.at)
    click.echo(f"{result.municipality} at {local:%Y-%m-%d %H:%M} ({model.tz_name}): "
               f"{_pct(total.share)} of {total.population:,.0f} inhabitants inside the "
               f"{model.target_s / 60:g}-minute zone (CPR in time {_pct(total.cpr_share)}, "
               f"AED in time {_pct(total.aed_share)}); "
               f"{result.aeds_counted} AEDs count at that time.")
    click.echo(f"Weakest postcode areas (of {len(result.postcodes)}):")
    for area in result.postcodes[:limit]:
        click.echo(f"  {area.code}  {_pct(area.share):>7} of {area.population:>8,.0f} "
                   f"inhabitants  (CPR {_pct(area.cpr_share)}, AED {_pct(area.aed_share)})")
    if result.profile:
        hours = "  ".join(f"{model.local(h.at):%H}h {100 * h.covered_share:.0f}%"
                          for h in result.profile)
        click.echo(f"Over the day: {hours}")
    if result.proposals:
        click.echo("New 24/7 AEDs that would add most (each after the ones above it):")
        for p in result.proposals:
            click.echo(f"  {p.rank:>2}. {p.lat:.5f},{p.lon:.5f}  +{p.gain:,.0f} inhabitants")
    if result.critical:
        click.echo("AEDs whose loss would hurt most:")
        for c in result.critical:
            click.echo(f"  {c.aed_id}  -{c.loss:,.0f} inhabitants")


def _national(result: NationalCoverage, as_json: bool, limit: int) -> None:
    if as_json:
        click.echo(json.dumps(report.national_json(result), ensure_ascii=False))
        return
    local = result.model.local(result.at)
    click.echo(f"Netherlands at {local:%Y-%m-%d %H:%M}: {_pct(result.share)} of "
               f"{result.population:,.0f} inhabitants inside the "
               f"{result.model.target_s / 60:g}-minute zone ({result.cells:,} cells of "
               f"{result.cell_m:g} m).")
    click.echo("Weakest municipalities:")
    for area in result.municipalities[:limit]:
        click.echo(f"  {area.code:<28} {_pct(area.share):>7} of {area.population:>9,.0f}")
