"""Write the area GeoJSON files of the region files in ``config/regions/``.

* ``nl.geojson`` -- the Netherlands: the union of the 345 municipality polygons bundled in
  ``fleet/data/nl_gemeenten.geojson.gz`` (CBS, CC BY 4.0), with the slivers between
  neighbouring municipalities closed, holes under 1 km² dropped and the outline simplified to
  about 100 m, so the file stays small.
* ``be-vlg-leuven.geojson``, ``ie-galway.geojson``, ``de-rp-neuwied.geojson`` -- example
  regions: a rough box around each town (approximate, for trying region files out; not
  boundaries).

Cologne's area is made by ``tools/make_koeln_registry.py`` from its AEDs.

Usage::

    python tools/make_region_areas.py [--repo PATH]

Requires shapely.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry

REPO_ROOT = Path(__file__).resolve().parents[1]
GEMEENTEN = Path("fleet/data/nl_gemeenten.geojson.gz")
OUT = Path("config/regions")

CLOSE_GAPS_DEG = 0.0005  # ~50 m: closes slivers between separately simplified municipalities
SIMPLIFY_DEG = 0.001  # ~100 m (the region map tolerates 500 m at an edge)
MIN_HOLE_KM2 = 1.0
KM2_PER_DEG2_AT_52N = 111.32 * 111.32 * 0.616

# (file, name, (west, south, east, north)): rough boxes around the towns, by hand from a map.
EXAMPLE_BOXES = [
    ("be-vlg-leuven.geojson", "Leuven (approximate example area)", (4.62, 50.83, 4.78, 50.92)),
    ("ie-galway.geojson", "Galway (approximate example area)", (-9.14, 53.25, -8.95, 53.31)),
    ("de-rp-neuwied.geojson", "Neuwied (approximate example area)", (7.36, 50.40, 7.56, 50.50)),
]


def netherlands(path: Path) -> BaseGeometry:
    """The union of the municipalities, gaps closed, small holes dropped, simplified."""
    with gzip.open(path, "rt", encoding="utf-8") as source:
        features = json.load(source)["features"]
    union = shapely.union_all([shape(f["geometry"]) for f in features])
    closed = union.buffer(CLOSE_GAPS_DEG, quad_segs=2).buffer(-CLOSE_GAPS_DEG, quad_segs=2)
    parts = [closed] if closed.geom_type == "Polygon" else list(closed.geoms)
    kept = [Polygon(part.exterior, [hole for hole in part.interiors
                                    if Polygon(hole).area * KM2_PER_DEG2_AT_52N >= MIN_HOLE_KM2])
            for part in parts]
    simplified = shapely.MultiPolygon(kept).simplify(SIMPLIFY_DEG, preserve_topology=True)
    return shapely.set_precision(shapely.make_valid(simplified), 1e-5)


def feature(geometry: BaseGeometry, properties: dict[str, Any]) -> str:
    return json.dumps({"type": "Feature", "properties": properties,
                       "geometry": mapping(geometry)}, ensure_ascii=False) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO_ROOT,
                        help="repository to read from and write into (default: this one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.repo / OUT
    out.mkdir(parents=True, exist_ok=True)
    nl = netherlands(args.repo / GEMEENTEN)
    (out / "nl.geojson").write_text(feature(nl, {
        "name": "Nederland",
        "made_by": "tools/make_region_areas.py",
        "source": "union of the CBS municipality polygons (2022), CC BY 4.0 (Centraal Bureau "
                  "voor de Statistiek); simplified to about 100 m",
    }), encoding="utf-8")
    for name, title, bounds in EXAMPLE_BOXES:
        (out / name).write_text(feature(box(*bounds), {
            "name": title, "made_by": "tools/make_region_areas.py",
            "approximation": "a rough box around the town, for trying region files out; "
                             "not its boundary"}), encoding="utf-8")
    size = (out / "nl.geojson").stat().st_size
    vertices = shapely.get_num_coordinates(nl)
    print(f"nl.geojson: {size / 1000:.0f} kB, {vertices} vertices, "
          f"{len(getattr(nl, 'geoms', [nl]))} polygons; "
          f"examples: {', '.join(name for name, _, _ in EXAMPLE_BOXES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
