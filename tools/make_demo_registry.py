"""Generate the Dutch-shaped demo AED registry for Utrecht ("real attributes, relocated").

No open register of Dutch AED locations exists offline, so the demo registry takes
real Swiss OpenStreetMap ``emergency=defibrillator`` records (defikarte.ch export,
2020-12) with their real attributes (access, indoor, location hint, operator, name,
opening hours) and places them in the Dutch municipality of Utrecht:

* count = round(1.5 AEDs per 1,000 inhabitants of the municipality), population
  from CBS (``geo_gemeenten_centroids.csv``);
* records drawn from the Swiss export without replacement;
* for each record a PC4 area of Utrecht chosen with probability proportional to
  its population, then a uniform random point inside that PC4 polygon
  (rejection sampling in the bounding box).

The locations are therefore NOT real AED locations. Everything is driven by one
``random.Random(2026)``, so the output is deterministic.

Outputs (in ``--out``, default ``fleet/data`` of the repository):

* ``demo_registry_utrecht.csv`` -- the registry CSV;
* ``nl_gemeenten.geojson.gz`` -- byte copy of the CBS municipality polygons;
* ``ATTRIBUTION.md`` -- sources and licences.

Usage::

    python tools/make_demo_registry.py [--shared PATH] [--out PATH]

Requires the standard library and shapely.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import shutil
from pathlib import Path
from typing import Any

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

REPO_ROOT = Path(__file__).resolve().parents[1]

SEED = 2026
MUNICIPALITY = "Utrecht"
ID_PREFIX = "NL-UT-"
AEDS_PER_1000 = 1.5

SWISS_GEOJSON = Path("ch/defikarte_ch_osm_defibrillators_2020-12.geojson")
GEMEENTEN_CSV = Path("nl/geo_gemeenten_centroids.csv")
GEMEENTEN_GEOJSON = Path("nl/geo_gemeenten.wgs84.geojson.gz")
PC4_GEOJSON = Path("nl/geo_postcodes4.wgs84.geojson.gz")

REGISTRY_NAME = "demo_registry_utrecht.csv"
GEMEENTEN_OUT_NAME = "nl_gemeenten.geojson.gz"
ATTRIBUTION_NAME = "ATTRIBUTION.md"

COLUMNS = [
    "id",
    "lat",
    "lon",
    "address",
    "municipality",
    "opening_hours",
    "access",
    "indoor",
    "location_hint",
    "manager",
    "cabinet_code",
    "device_id",
    "name",
    "pads_expiry",
    "battery_expiry",
]

ACCESS_MAP = {
    "yes": "public",
    "public": "public",
    "permissive": "public",
    "customers": "public",
    "designated": "public",
    "private": "private",
    "no": "private",
    "": "public",
}
INDOOR_MAP = {"yes": "yes", "no": "no", "": ""}

MAX_TRIES = 100_000

ATTRIBUTION_TEXT = """\
# Data attribution

This directory holds data files produced by `tools/make_demo_registry.py` from the
public source files named below. Do not edit them by hand; rerun the script.

## `nl_gemeenten.geojson.gz` and the Utrecht postcode areas

Dutch municipality polygons (2022 division) with population, and the 4-digit postcode
(PC4) areas with population used to place the demo AEDs:
CBS open data, CC BY 4.0 ("Centraal Bureau voor de Statistiek"), via the R package
certegis (GPL-2). `nl_gemeenten.geojson.gz` is an unmodified copy of
`nl/geo_gemeenten.wgs84.geojson.gz`.

## `demo_registry_utrecht.csv` -- "real attributes, relocated"

The AED attribute records (access, indoor, location hint, operator, name, opening
hours) are real Swiss OpenStreetMap `emergency=defibrillator` records from the
defikarte.ch export of 2020-12: © OpenStreetMap contributors, ODbL
(https://www.openstreetmap.org/copyright).

The records have been **relocated**: each was placed at a random point inside a
Dutch postcode (PC4) area of the municipality of Utrecht, chosen in proportion to the
area's population (CBS data above), at 1.5 AEDs per 1,000 inhabitants. The
locations and addresses are therefore **not real AED locations**; the `address`
column holds only the postcode and place of the chosen PC4 area. `device_id` values
(connected cabinets) are synthetic; no expiry dates are given because the source has
none. Being derived from OpenStreetMap data, this file is available under the ODbL.
"""


def load_gemeente_population(path: Path, gemeente: str) -> int:
    """Return the ``inwoners`` of ``gemeente`` from the municipality centroids CSV."""
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["gemeente"] == gemeente:
                return int(row["inwoners"])
    raise SystemExit(f"municipality {gemeente!r} not found in {path}")


def load_pc4_areas(path: Path, gemeente: str) -> list[dict[str, Any]]:
    """Return the PC4 areas of ``gemeente`` sorted by postcode, with shapely geometry."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    areas: list[dict[str, Any]] = []
    for feature in data["features"]:
        props = feature["properties"]
        if props.get("gemeente") != gemeente:
            continue
        areas.append(
            {
                "postcode": str(props["postcode"]),
                "plaats": str(props["plaats"]),
                "inwoners": int(props["inwoners"] or 0),
                "geometry": shape(feature["geometry"]),
            }
        )
    areas.sort(key=lambda a: a["postcode"])
    if not areas:
        raise SystemExit(f"no PC4 areas for municipality {gemeente!r} in {path}")
    return areas


def load_swiss_records(path: Path) -> list[dict[str, Any]]:
    """Return the property dicts of the Swiss OSM defibrillator features, in file order."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return [feature["properties"] for feature in data["features"]]


def random_point_in(geom: BaseGeometry, rng: random.Random) -> tuple[float, float]:
    """Uniform random point (lat, lon), rounded to 6 decimals, inside ``geom``.

    Rejection sampling in the bounding box; the rounded point is tested, so the
    written coordinates themselves lie inside the polygon.
    """
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(MAX_TRIES):
        lon = round(rng.uniform(minx, maxx), 6)
        lat = round(rng.uniform(miny, maxy), 6)
        if geom.contains(Point(lon, lat)):
            return lat, lon
    raise RuntimeError("rejection sampling failed")


def text(value: Any) -> str:
    """OSM tag value as a string ('' for missing)."""
    return "" if value is None else str(value)


def map_access(raw: str) -> tuple[str, bool]:
    """Map an OSM ``access`` value; return (value, was_mapped). Unknown values stay verbatim."""
    if raw in ACCESS_MAP:
        return ACCESS_MAP[raw], True
    return raw, False


def map_indoor(raw: str) -> str:
    """Map an OSM ``indoor`` value; unknown values stay verbatim."""
    return INDOOR_MAP.get(raw, raw)


def build_rows(
    records: list[dict[str, Any]],
    areas: list[dict[str, Any]],
    count: int,
    rng: random.Random,
) -> tuple[list[dict[str, str]], int]:
    """Build the registry rows; return (rows, number of rows with an unmapped access value)."""
    chosen = rng.sample(records, count)
    weights = [a["inwoners"] for a in areas]
    rows: list[dict[str, str]] = []
    unmapped = 0
    for i, rec in enumerate(chosen, start=1):
        area = rng.choices(areas, weights=weights, k=1)[0]
        lat, lon = random_point_in(area["geometry"], rng)
        access, mapped = map_access(text(rec.get("access")))
        if not mapped:
            unmapped += 1
        location_hint = (
            text(rec.get("defibrillator:location")) or text(rec.get("description"))
        )
        number = f"{i:04d}"
        rows.append(
            {
                "id": f"{ID_PREFIX}{number}",
                "lat": f"{lat:.6f}",
                "lon": f"{lon:.6f}",
                "address": f"{area['postcode']} {area['plaats']}",
                "municipality": MUNICIPALITY,
                "opening_hours": text(rec.get("opening_hours")),
                "access": access,
                "indoor": map_indoor(text(rec.get("indoor"))),
                "location_hint": location_hint,
                "manager": text(rec.get("operator")),
                "cabinet_code": "",
                "device_id": f"cab-{ID_PREFIX}{number}" if i % 5 in (1, 3) else "",
                "name": text(rec.get("name")),
                "pads_expiry": "",
                "battery_expiry": "",
            }
        )
    return rows, unmapped


def write_registry(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the registry CSV (UTF-8, ``\\n`` line endings)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=REPO_ROOT / ".." / "shared" / "data",
        help="folder with the source data: nl/ (CBS GeoJSON) and ch/ (Swiss OSM export); "
             "default ../shared/data beside the repository",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "fleet" / "data",
        help="output directory (default: fleet/data of the repository)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shared: Path = args.shared
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    population = load_gemeente_population(shared / GEMEENTEN_CSV, MUNICIPALITY)
    count = round(population * AEDS_PER_1000 / 1000)
    areas = load_pc4_areas(shared / PC4_GEOJSON, MUNICIPALITY)
    records = load_swiss_records(shared / SWISS_GEOJSON)
    if count > len(records):
        raise SystemExit(f"need {count} records, source has only {len(records)}")

    rng = random.Random(SEED)
    rows, unmapped = build_rows(records, areas, count, rng)

    write_registry(out / REGISTRY_NAME, rows)
    shutil.copyfile(shared / GEMEENTEN_GEOJSON, out / GEMEENTEN_OUT_NAME)
    (out / ATTRIBUTION_NAME).write_text(ATTRIBUTION_TEXT, encoding="utf-8", newline="\n")

    with_device = sum(1 for r in rows if r["device_id"])
    print(
        f"wrote {len(rows)} AEDs to {out / REGISTRY_NAME} "
        f"({MUNICIPALITY}, {population} inhabitants, {len(areas)} PC4 areas): "
        f"{with_device} with device_id, {unmapped} with non-mapped access values"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
