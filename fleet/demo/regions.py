"""The demo's two regions: the Netherlands with Utrecht's registry, and Cologne with its real AEDs.

Each has its region file in `config/regions/`, a registry bundled in `fleet.data`, its own
112 centre (a dispatch token for its region), responders who speak its language, and a log-in
per role. The region files are read from `config/regions/` of the current folder, else of the
source tree; without them the demo runs as one region, as before regions existed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine
from sqlmodel import Session

from fleet import audit
from fleet.demo.errors import DemoError
from fleet.demo.places import Place, area_from_geojson, around
from fleet.models import Region as RegionRow
from fleet.region_store import save_region
from fleet.regions import RegionError, read_region_file
from fleet.settings import Settings

REGISTRY_SOURCE = "demo"
KOELN_NEAR_AEDS_M = 600.0
"""Cologne has no population data here: its responders live, and its calls happen, within
this distance of one of the city's AEDs (banks, offices, museums: where people are)."""


@dataclass(frozen=True)
class DemoRegion:
    """One region of the demo and the people and names the demo gives it."""

    code: str
    name: str
    file: str  # in config/regions
    registry: str  # in fleet.data
    registry_note: str
    language: str
    municipality: str | None  # of the municipality log-in; None: none (no coverage data)
    login_prefix: str  # console user names: f"{login_prefix}{role}"
    responder_prefix: str
    phone_prefix: str
    caller: str  # the 112 centre's API caller name
    manager: str | None = None  # the manager log-in's; None: the manager with most cabinets


NL = DemoRegion(
    code="NL", name="Utrecht", file="nl.toml", registry="demo_registry_utrecht.csv",
    registry_note="real OpenStreetMap attributes, relocated into Utrecht (© OpenStreetMap "
                  "contributors, ODbL)",
    language="nl", municipality="Utrecht", login_prefix="demo-", responder_prefix="demo-r-",
    phone_prefix="+316", caller="demo-112")
KOELN = DemoRegion(
    code="DE-NW-KOELN", name="Köln", file="de-nw-koeln.toml",
    registry="demo_registry_koeln.csv",
    registry_note="Cologne's real AEDs (public domain, Offene Daten Köln / defikoeln)",
    # Coverage needs population per postcode area, which the demo has for the Netherlands only.
    language="de", municipality=None, login_prefix="demo-koeln-",
    responder_prefix="demo-rk-", phone_prefix="+49151", caller="demo-112-koeln",
    manager="Stadt Köln – Feuerwehr")
DEMO_REGIONS = (NL, KOELN)


def regions_folder() -> Path | None:
    """`config/regions` of the current folder if it holds the demo's files, else the source
    tree's; None when neither does."""
    for folder in (Path("config/regions"), Path(__file__).resolve().parents[2] / "config"
                   / "regions"):
        if all((folder / region.file).is_file() for region in DEMO_REGIONS):
            return folder.resolve()
    return None


def load_regions(engine: Engine, settings: Settings, now: datetime, folder: Path) -> list[str]:
    """Store the demo's regions from their files (all or none); the codes that changed."""
    try:
        specs = [read_region_file(folder / region.file) for region in DEMO_REGIONS]
        with Session(engine) as session, session.begin():
            return [spec.code for spec in specs
                    if save_region(session, spec, settings, now, audit.SYSTEM)]
    except RegionError as exc:
        raise DemoError(f"the demo's regions cannot be loaded: {exc}") from exc


def stored_area(engine: Engine, code: str) -> BaseGeometry | None:
    """A stored region's area; None when the region is not loaded."""
    with Session(engine) as session:
        row = session.get(RegionRow, code)
    return None if row is None else area_from_geojson(row.area_geojson)


def registry_places(region: DemoRegion) -> list[Place]:
    """Where the AEDs of a region's bundled registry are."""
    text = resources.files("fleet.data").joinpath(region.registry).read_text("utf-8")
    return [(float(row["lat"]), float(row["lon"])) for row in csv.DictReader(io.StringIO(text))]


def koeln_activity_area(engine: Engine) -> BaseGeometry | None:
    """Where Cologne's responders live and its calls happen: near its AEDs, in its area."""
    area = stored_area(engine, KOELN.code)
    if area is None:
        return None
    return around(registry_places(KOELN), KOELN_NEAR_AEDS_M, area)

