"""Served regions: each with its own area, time zone, languages, dispatch and readiness rules.

A `Region` is plain data; a `RegionMap` says which region a place lies in. Where no region is
loaded the system is one region covering everywhere, made from the settings (`[dispatch]`,
`[readiness]`, `timezone`, `country`), so a single-region deployment needs no region file.

Region files (TOML, loaded with `aedfleet regions load`) give the code, name, time zone,
country, languages, the area (a GeoJSON file next to it) and the region's overrides of the
`[dispatch]` and `[readiness]` settings. Overlapping areas are refused: every place belongs
to one region, whose dispatch centre and rules decide about calls there.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
from pydantic import TypeAdapter, ValidationError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from alarm_core.policy import DispatchPolicy
from fleet.readiness import ReadinessPolicy

CODE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,10}){0,2}")
LANGUAGES = ("nl", "en", "de", "fr")
EDGE_TOLERANCE_M = 500.0
"""A place this close outside every area counts to the nearest region: the areas are
simplified outlines, and an AED on a quay or a dyke must not fall out of all of them."""
OVERLAP_TOLERANCE = 1e-4
"""Share of a region's area another may overlap (simplified outlines touch, they do not
share land)."""
METRES_PER_DEGREE = 111_320.0
REGIONAL_DISPATCH = frozenset({
    "search_radius_m", "max_search_radius_m", "radius_step_m", "min_responders",
    "max_alerted", "max_aeds", "aed_search_radius_m", "cpr_share", "aed_access",
    "allow_unverified_aeds", "speed_mps", "turnout_s", "accept_target_cpr",
    "extra_exclusions", "paediatric_under_one", "medical_only_incident_types",
    "share_responders_with", "share_aeds_with"})
"""The dispatch settings a region may set for its own calls. The others (timers, who may be a
responder, how long locations are kept) hold for every region alike."""


class RegionError(ValueError):
    """A region file or region row that cannot be used, with the reason."""


@dataclass(frozen=True)
class Region:
    """One served region and the rules that hold for calls in it."""

    code: str
    name: str
    timezone: str
    country: str | None
    languages: tuple[str, ...]
    dispatch: DispatchPolicy
    readiness: ReadinessPolicy
    area: BaseGeometry | None = None
    """None: everywhere (the one region of a deployment without region files)."""

    @property
    def language(self) -> str:
        """The region's default language."""
        return self.languages[0]

    def shares_responders_with(self, other: Region) -> bool:
        """Whether each of the two lets its responders go to the other's calls."""
        return other.code == self.code or (
            other.code in self.dispatch.share_responders_with
            and self.code in other.dispatch.share_responders_with)

    def shares_aeds_with(self, other: Region) -> bool:
        """Whether each of the two lets its AEDs be fetched for the other's calls."""
        return other.code == self.code or (
            other.code in self.dispatch.share_aeds_with
            and self.code in other.dispatch.share_aeds_with)


def everywhere(dispatch: DispatchPolicy, readiness: ReadinessPolicy, timezone: str,
               country: str | None, code: str = "DEFAULT") -> Region:
    """The single region of a deployment without region files."""
    return Region(code=code, name=code, timezone=timezone, country=country,
                  languages=("en",), dispatch=dispatch, readiness=readiness)


class RegionMap:
    """The served regions and which of them a place lies in."""

    def __init__(self, regions: Sequence[Region]) -> None:
        if not regions:
            raise RegionError("a region map needs at least one region")
        self.regions = tuple(regions)
        self.by_code = {region.code: region for region in self.regions}
        self._bounded = [r for r in self.regions if r.area is not None]
        for region in self._bounded:
            shapely.prepare(region.area)

    def __iter__(self) -> Any:
        return iter(self.regions)

    def __len__(self) -> int:
        return len(self.regions)

    @property
    def single(self) -> bool:
        return len(self.regions) == 1 and self.regions[0].area is None

    def get(self, code: str | None) -> Region | None:
        return None if code is None else self.by_code.get(code)

    def region_at(self, lat: float, lon: float) -> Region | None:
        """The region whose area holds the place (or lies within `EDGE_TOLERANCE_M` of it)."""
        if not self._bounded:
            return self.regions[0]
        for region in self._bounded:
            if shapely.contains_xy(region.area, lon, lat):
                return region
        return self._nearest(lat, lon)

    def _nearest(self, lat: float, lon: float) -> Region | None:
        point = shapely.Point(lon, lat)
        scale = METRES_PER_DEGREE * max(0.2, float(np.cos(np.radians(lat))))
        best: tuple[float, Region] | None = None
        for region in self._bounded:
            assert region.area is not None
            # Degrees of longitude shrink with latitude: the smaller scale errs on the side
            # of counting a place as outside.
            metres = float(shapely.distance(region.area, point)) * scale
            if metres <= EDGE_TOLERANCE_M and (best is None or metres < best[0]):
                best = (metres, region)
        return None if best is None else best[1]

    def codes_at(self, lats: np.ndarray, lons: np.ndarray) -> list[str | None]:
        """The region code of many places (None outside every region)."""
        if not self._bounded:
            return [self.regions[0].code] * len(lats)
        found: list[str | None] = [None] * len(lats)
        for region in self._bounded:
            inside = shapely.contains_xy(region.area, lons, lats)
            for i in np.flatnonzero(inside).tolist():
                if found[i] is None:
                    found[i] = region.code
        outside = np.array([i for i, code in enumerate(found) if code is None], dtype=int)
        if len(outside):
            lat_out = np.asarray(lats, dtype=float)[outside]
            points = shapely.points(np.asarray(lons, dtype=float)[outside], lat_out)
            scale = METRES_PER_DEGREE * np.maximum(0.2, np.cos(np.radians(lat_out)))
            best = np.full(len(outside), EDGE_TOLERANCE_M)
            # A cheap test on the prepared area first: exact distances only for the few near it.
            reach = EDGE_TOLERANCE_M / (METRES_PER_DEGREE * 0.2)
            for region in self._bounded:
                near = np.flatnonzero(shapely.dwithin(region.area, points, reach))
                if not len(near):
                    continue
                metres = shapely.distance(region.area, points[near]) * scale[near]
                closer = metres <= best[near]
                best[near[closer]] = metres[closer]
                for j in near[closer].tolist():
                    found[int(outside[j])] = region.code
        return found

    def responder_regions_for(self, incident: Region) -> frozenset[str]:
        """Regions whose responders may be alerted for a call in `incident`'s region."""
        return frozenset(r.code for r in self.regions if incident.shares_responders_with(r))

    def aed_regions_for(self, incident: Region) -> frozenset[str]:
        """Regions whose AEDs may be sent to a call in `incident`'s region."""
        return frozenset(r.code for r in self.regions if incident.shares_aeds_with(r))


# -- region files and rows ---------------------------------------------------------------------

_DISPATCH = TypeAdapter(DispatchPolicy)
_READINESS = TypeAdapter(ReadinessPolicy)


def _policy(adapter: TypeAdapter[Any], base: Any, overrides: Mapping[str, Any],
            what: str, regional: frozenset[str] | None = None) -> Any:
    known = {f.name for f in fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise RegionError(f"[{what}] has no setting {', '.join(unknown)}")
    shared = sorted(set(overrides) - (known if regional is None else regional))
    if shared:
        raise RegionError(f"[{what}] {', '.join(shared)}: the same for every region, "
                          "set in the [dispatch] settings")
    try:
        return adapter.validate_python({**asdict(base), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise RegionError(f"[{what}] {problems}") from exc
    except ValueError as exc:  # DispatchPolicy's own checks
        raise RegionError(f"[{what}] {exc}") from exc


def area_from_geojson(document: Any) -> BaseGeometry:
    """A (multi)polygon from a GeoJSON geometry, Feature or FeatureCollection (their union)."""
    if not isinstance(document, dict):
        raise RegionError("the area must be a GeoJSON object")
    kind = document.get("type")
    try:
        if kind == "FeatureCollection":
            parts = [shape(f["geometry"]) for f in document.get("features", [])]
            if not parts:
                raise RegionError("the area's FeatureCollection has no features")
            area = shapely.union_all(parts)
        elif kind == "Feature":
            area = shape(document["geometry"])
        else:
            area = shape(document)
    except (KeyError, TypeError, ValueError, AttributeError,
            shapely.errors.ShapelyError) as exc:
        raise RegionError(f"the area is not valid GeoJSON: {exc}") from exc
    if area.geom_type not in ("Polygon", "MultiPolygon"):
        raise RegionError(f"the area must be a polygon, not {area.geom_type}")
    if area.is_empty:
        raise RegionError("the area is empty")
    west, south, east, north = area.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise RegionError("the area's coordinates must be longitude, latitude (WGS84)")
    if not area.is_valid:
        repaired = shapely.make_valid(area)
        parts = getattr(repaired, "geoms", [repaired])
        area = shapely.union_all([p for p in parts if p.geom_type in ("Polygon",
                                                                      "MultiPolygon")])
        if area.is_empty:
            raise RegionError("the area's outline encloses nothing")
    return area


@dataclass(frozen=True)
class RegionSpec:
    """A region as stored: settings overrides kept apart from the settings they override."""

    code: str
    name: str
    timezone: str
    country: str
    languages: tuple[str, ...]
    area_geojson: str
    dispatch: dict[str, Any]
    readiness: dict[str, Any]

    def region(self, dispatch: DispatchPolicy, readiness: ReadinessPolicy) -> Region:
        """The region with its overrides applied to these settings."""
        return Region(code=self.code, name=self.name, timezone=self.timezone,
                      country=self.country, languages=self.languages,
                      dispatch=_policy(_DISPATCH, dispatch, self.dispatch,
                                       f"{self.code} dispatch", REGIONAL_DISPATCH),
                      readiness=_policy(_READINESS, readiness, self.readiness,
                                        f"{self.code} readiness"),
                      area=area_from_geojson(json.loads(self.area_geojson)))


def parse_spec(document: Mapping[str, Any], area: Any) -> RegionSpec:
    """Check a region file's content (and its area) and return what is stored."""
    allowed = {"code", "name", "timezone", "country", "languages", "area", "dispatch",
               "readiness"}
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise RegionError(f"unknown key(s) {', '.join(unknown)}")
    code = document.get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise RegionError("code must be a country code with up to two subdivisions, "
                          "upper case: NL, BE-VLG, DE-NW-KOELN")
    name = document.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 120:
        raise RegionError(f"{code}: name must be text of 1-120 characters")
    timezone = document.get("timezone")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder, "Europe"
        raise RegionError(f"{code}: unknown time zone {timezone!r}") from exc
    country = document.get("country", code[:2])
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise RegionError(f"{code}: country must be a two-letter ISO code")
    languages = document.get("languages")
    if not isinstance(languages, list) or not languages \
            or any(lang not in LANGUAGES for lang in languages) \
            or len(set(languages)) != len(languages):
        raise RegionError(f"{code}: languages must list some of {', '.join(LANGUAGES)}, "
                          "the default first")
    dispatch = document.get("dispatch", {})
    readiness = document.get("readiness", {})
    if not isinstance(dispatch, dict) or not isinstance(readiness, dict):
        raise RegionError(f"{code}: [dispatch] and [readiness] must be tables")
    area_shape = area_from_geojson(area)
    spec = RegionSpec(code=code, name=name, timezone=str(timezone), country=country,
                      languages=tuple(languages),
                      area_geojson=json.dumps(shapely.geometry.mapping(area_shape)),
                      dispatch=dict(dispatch), readiness=dict(readiness))
    spec.region(DispatchPolicy(), ReadinessPolicy())  # the overrides themselves must be valid
    return spec


def read_region_file(path: Path) -> RegionSpec:
    """A region file and the GeoJSON area it names (relative to the file)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegionError(f"{path}: {exc}") from exc
    area_name = document.get("area")
    if not isinstance(area_name, str) or not area_name:
        raise RegionError(f"{path}: area must name a GeoJSON file")
    area_path = path.parent / area_name
    try:
        area = json.loads(area_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RegionError(f"{area_path}: {exc}") from exc
    try:
        return parse_spec(document, area)
    except RegionError as exc:
        raise RegionError(f"{path}: {exc}") from exc


def check_overlaps(regions: Iterable[Region]) -> None:
    """Refuse areas that share land: a place must belong to one region."""
    bounded = [r for r in regions if r.area is not None]
    for i, a in enumerate(bounded):
        for b in bounded[i + 1:]:
            assert a.area is not None and b.area is not None
            if not a.area.intersects(b.area):
                continue
            shared = a.area.intersection(b.area).area
            if shared > OVERLAP_TOLERANCE * min(a.area.area, b.area.area):
                raise RegionError(f"the areas of {a.code} and {b.code} overlap: every place "
                                  "must belong to one region")
