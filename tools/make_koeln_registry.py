"""Convert Cologne's public AED list into the registry CSV, and derive its service area.

Source: ``koeln/aed.csv`` of the shared data -- 145 AEDs in Cologne (Offene Daten Köln /
defikoeln, public domain), of which 121 have coordinates. Real locations, names, addresses
and location details; 27 rows give opening hours as German free text.

* Rows without coordinates are left out and listed (an AED the dispatch cannot place is of
  no use to it).
* Ids become ``DE-K-<source id, 4 digits>``; the address gets the postal code and "Köln".
* German opening hours are read into OpenStreetMap syntax with
  ``fleet.opening_hours_de.read_german_hours``; text it cannot read safely is left out (the
  AED then counts as closed: hours unknown) and listed with the reason.
* The source names no operators and has no cabinets. For the demo every AED is given the
  manager ``Stadt Köln – Feuerwehr``, and two in five a synthetic cabinet
  (``cab-DE-K-<n>``), as in the Utrecht demo registry.
* The service area: Cologne's boundary is not in the data, so the area is the convex hull of
  the AEDs buffered by 2 km (in metres, on a local projection) -- an approximation.

Everything is deterministic; rerun after changing this script or the source.

Outputs (paths relative to the repository):

* ``tests/data/koeln_registry.csv`` and ``fleet/data/demo_registry_koeln.csv`` -- the
  registry CSV (the same content: tests import what the demo imports);
* ``config/regions/de-nw-koeln.geojson`` -- the approximate service area (a Feature).

Usage::

    python tools/make_koeln_registry.py [--shared PATH] [--repo PATH]

Requires shapely and the repository's ``fleet`` package (run it with the project's venv).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPoint, mapping
from shapely.geometry.base import BaseGeometry

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from fleet.opening_hours_de import read_german_hours  # noqa: E402

SOURCE = Path("koeln/aed.csv")
REGISTRY_OUTPUTS = (Path("tests/data/koeln_registry.csv"),
                    Path("fleet/data/demo_registry_koeln.csv"))
AREA_OUTPUT = Path("config/regions/de-nw-koeln.geojson")

ID_PREFIX = "DE-K-"
CITY = "Köln"
MANAGER = "Stadt Köln – Feuerwehr"
AREA_BUFFER_M = 2_000.0
EARTH_RADIUS_M = 6_371_008.8

COLUMNS = ["id", "lat", "lon", "address", "municipality", "opening_hours", "access", "indoor",
           "location_hint", "manager", "cabinet_code", "device_id", "name"]


def read_source(path: Path) -> list[dict[str, str]]:
    """The rows of Cologne's AED list, as published."""
    with path.open(encoding="utf-8-sig", newline="") as source:
        return list(csv.DictReader(source))


def address_of(row: dict[str, str]) -> str:
    """`Mailänder Passage 51, 50765 Köln` (the postal code where the source has one); empty
    where the source gives no street address."""
    place = f"{row['postalcode'].strip()} {CITY}".strip()
    return f"{row['address'].strip()}, {place}" if row["address"].strip() else ""


def build_rows(source: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str],
                                                      list[str]]:
    """Registry rows, and the report's lines on left-out rows and on opening hours."""
    rows: list[dict[str, str]] = []
    left_out: list[str] = []
    hours_report: list[str] = []
    seen: set[str] = set()
    for line, record in enumerate(source, start=2):
        if not (record["latitude"].strip() and record["longitude"].strip()):
            left_out.append(f"line {line} (id {record['id']}, {record['name']}): no coordinates")
            continue
        aed_id = f"{ID_PREFIX}{int(record['id']):04d}"
        if aed_id in seen:
            raise SystemExit(f"line {line}: id {record['id']} appears twice with coordinates")
        seen.add(aed_id)
        hours = ""
        if record["opening_hours"].strip():
            read = read_german_hours(record["opening_hours"])
            if read.opening_hours is None:
                hours_report.append(f"unknown   {aed_id}: {record['opening_hours']!r} "
                                    f"({read.reason})")
            else:
                hours = read.opening_hours
                extra = f" (left out: {', '.join(read.dropped)})" if read.dropped else ""
                hours_report.append(f"converted {aed_id}: {record['opening_hours'].strip()!r}"
                                    f" -> {hours!r}{extra}")
        number = len(rows) + 1
        rows.append({
            "id": aed_id, "lat": record["latitude"].strip(), "lon": record["longitude"].strip(),
            "address": address_of(record), "municipality": CITY, "opening_hours": hours,
            "access": "public", "indoor": "", "location_hint": record["location_details"].strip(),
            "manager": MANAGER, "cabinet_code": "",
            "device_id": f"cab-{aed_id}" if number % 5 in (1, 3) else "",
            "name": record["name"].strip(),
        })
    return rows, left_out, hours_report


def service_area(rows: list[dict[str, str]], buffer_m: float) -> BaseGeometry:
    """The convex hull of the AEDs buffered by `buffer_m`, computed in metres.

    An equirectangular projection about the AEDs' mean latitude: over a city's 30 km its
    scale error is far below the buffer's own precision.
    """
    points = [(float(r["lon"]), float(r["lat"])) for r in rows]
    lat0 = sum(lat for _, lat in points) / len(points)
    lon0 = sum(lon for lon, _ in points) / len(points)
    scale_x = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    scale_y = math.radians(1) * EARTH_RADIUS_M

    origin, scale = np.array([lon0, lat0]), np.array([scale_x, scale_y])
    hull = MultiPoint((np.array(points) - origin) * scale).convex_hull
    return shapely.transform(hull.buffer(buffer_m, quad_segs=8),
                             lambda xy: np.round(origin + xy / scale, 5))


def write_registry(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_area(path: Path, area: BaseGeometry, count: int) -> None:
    feature = {
        "type": "Feature",
        "properties": {
            "name": "Köln (approximate service area)",
            "approximation": f"convex hull of the {count} AEDs with coordinates in Cologne's "
                             f"public AED list, buffered by {AREA_BUFFER_M / 1000:g} km; "
                             "not the city boundary",
            "made_by": "tools/make_koeln_registry.py",
        },
        "geometry": mapping(area),
    }
    path.write_text(json.dumps(feature, ensure_ascii=False) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT / ".." / "shared" / "data",
                        help="folder with koeln/aed.csv (default: ../shared/data beside the "
                             "repository)")
    parser.add_argument("--repo", type=Path, default=REPO_ROOT,
                        help="repository to write into (default: this one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = read_source(args.shared / SOURCE)
    rows, left_out, hours_report = build_rows(source)
    for output in REGISTRY_OUTPUTS:
        write_registry(args.repo / output, rows)
    area = service_area(rows, AREA_BUFFER_M)
    write_area(args.repo / AREA_OUTPUT, area, len(rows))

    with_hours = sum(1 for r in rows if r["opening_hours"])
    unknown = sum(1 for line in hours_report if line.startswith("unknown"))
    print(f"{len(source)} rows read; {len(rows)} AEDs written to "
          f"{', '.join(str(o) for o in REGISTRY_OUTPUTS)}; {len(left_out)} left out:")
    print("\n".join(f"  {line}" for line in left_out))
    texts = sum(1 for r in source if r["opening_hours"].strip())
    print(f"opening hours: {texts} rows of the source give some; of the {len(rows)} written, "
          f"{with_hours} have OSM hours, {unknown} unreadable text left unknown, "
          f"{len(rows) - with_hours - unknown} give none:")
    print("\n".join(f"  {line}" for line in hours_report))
    print(f"cabinets (synthetic): {sum(1 for r in rows if r['device_id'])}")
    print(f"service area: {AREA_OUTPUT} ({len(area.exterior.coords)} vertices, "
          f"convex hull + {AREA_BUFFER_M:g} m)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
