"""`aedfleet regions`: the served regions, loaded from region files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlmodel import Session

from fleet.cli import Context, pass_context
from fleet.region_store import (
    assign_aed_regions,
    assign_responder_regions,
    region_map,
    region_rows,
    save_region,
)
from fleet.regions import RegionError, read_region_file


@click.group()
def regions() -> None:
    """Served regions: area, time zone, languages and their own rules."""


@regions.command("load")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def load(ctx: Context, files: tuple[Path, ...]) -> None:
    """Add or replace regions from region files (TOML naming a GeoJSON area), all or none."""
    try:
        specs = [read_region_file(path) for path in files]
        now = datetime.now(UTC)
        with Session(ctx.engine) as session, session.begin():
            changed = [spec.code for spec in specs
                       if save_region(session, spec, ctx.settings, now, ctx.actor)]
            moved = assign_aed_regions(session) if changed else 0
            placed = assign_responder_regions(session) if changed else 0
    except RegionError as exc:
        raise click.ClickException(f"no region loaded: {exc}") from exc
    click.echo(f"{len(specs)} region(s) read, {len(changed)} changed"
               + (f": {', '.join(changed)}; {moved} AED(s) now in another region, "
                  f"{placed} responder(s) given the region they live in" if changed else ""))


@regions.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
@pass_context
def list_regions(ctx: Context, as_json: bool) -> None:
    """The stored regions with their time zone, languages and changed rules."""
    with Session(ctx.engine) as session:
        rows = region_rows(session)
    found = [{"code": r.code, "name": r.name, "timezone": r.timezone, "country": r.country,
              "languages": r.languages.split(","), "dispatch": json.loads(r.dispatch),
              "readiness": json.loads(r.readiness)} for r in rows]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("no regions: one region everywhere, with the [dispatch] and [readiness] "
                   "settings")
    for region in found:
        rules = {**region["dispatch"], **region["readiness"]}
        click.echo(f"{region['code']:<14} {region['name']:<24} {region['timezone']:<18} "
                   f"{','.join(region['languages']):<9} "
                   + (" ".join(f"{k}={v}" for k, v in rules.items()) or "-"))


@regions.command("where")
@click.argument("lat", type=click.FloatRange(-90, 90))
@click.argument("lon", type=click.FloatRange(-180, 180))
@pass_context
def where(ctx: Context, lat: float, lon: float) -> None:
    """Which region a place lies in (exit status 1 when none)."""
    with Session(ctx.engine) as session:
        region = region_map(session, ctx.settings).region_at(lat, lon)
    if region is None:
        raise click.ClickException(f"{lat},{lon} lies in no served region")
    click.echo(f"{region.code} {region.name} ({region.timezone})")
