"""Coverage from the registry: load AEDs and responders, then answer per municipality or
for the whole country (the domain maths is in `model` and `placement`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import select as sa_select
from sqlmodel import Session

from alarm_core.geo import TravelModel, arc_to_chord, to_xyz
from alarm_core.loading import RESPONDER_COLUMNS, aed_entries, entry_at, pair
from alarm_core.pools import AedEntry, ResponderEntry, ResponderPool
from fleet.coverage.grid import Cells, lay_cells
from fleet.coverage.model import (
    BoolArray,
    CoverageMap,
    CoverageModel,
    FloatArray,
    ResponderSites,
    Times,
    aggregate,
    deployable_mask,
    evaluate,
)
from fleet.coverage.placement import CriticalAed, Proposal, critical_aeds, propose_sites
from fleet.errors import FleetError
from fleet.population import Pc4Areas, load_pc4
from fleet.settings import Settings


class UnknownMunicipality(FleetError):
    """No municipality of that name in the shipped areas."""


def coverage_model(settings: Settings) -> CoverageModel:
    """The configured zone, on the dispatch policy's travel model."""
    policy = replace(settings.dispatch, aed_access=settings.coverage.aed_access)
    return CoverageModel(travel=TravelModel(policy.speed_mps, policy.turnout_s),
                         alarm_delay_s=settings.coverage.alarm_delay_s,
                         target_s=settings.coverage.target_s, policy=policy,
                         tz_name=settings.timezone, country=settings.country)


@dataclass
class CoverageInputs:
    """Everything coverage is computed from: areas, AEDs with their readiness, responders."""

    areas: Pc4Areas
    aeds: list[AedEntry]
    responders: ResponderSites
    model: CoverageModel
    cell_m: float

    def __post_init__(self) -> None:
        self.aed_xyz = to_xyz(np.array([a.lat for a in self.aeds]),
                              np.array([a.lon for a in self.aeds])).reshape(-1, 3)

    @classmethod
    def build(cls, areas: Pc4Areas, aeds: list[AedEntry], responders: list[ResponderEntry],
              work: dict[str, tuple[float, float]], model: CoverageModel, cell_m: float,
              include_sms: bool = True) -> CoverageInputs:
        """From pool entries placed at home, and the work positions of those who have one."""
        pool = ResponderPool(model.policy, include_sms=include_sms)
        pool.load(responders)
        return cls(areas, aeds, ResponderSites.build(pool, work), model, cell_m)

    def with_aeds(self, changed: list[AedEntry], removed: set[str]) -> CoverageInputs:
        """New inputs with changed or new AEDs taken in and removed ones dropped (these stay
        as they are for whoever still reads them)."""
        by_id = {aed.id: aed for aed in self.aeds if aed.id not in removed}
        by_id.update({aed.id: aed for aed in changed})
        return CoverageInputs(self.areas, list(by_id.values()), self.responders, self.model,
                              self.cell_m)


def load_inputs(session: Session, settings: Settings, now: datetime,
                areas: Pc4Areas | None = None) -> CoverageInputs:
    """AEDs with their readiness evaluated at `now`, and every responder at home and work."""
    responders: list[ResponderEntry] = []
    work: dict[str, tuple[float, float]] = {}
    for row in session.execute(sa_select(*RESPONDER_COLUMNS)):
        home = pair(row.home_lat, row.home_lon)
        office = pair(row.work_lat, row.work_lon)
        if office is not None:
            work[row.id] = office
        # The usual week, not this moment: no app location, nobody busy.
        responders.append(replace(entry_at(row, home or office), busy=False))
    return CoverageInputs.build(areas or load_pc4(), aed_entries(session, settings, now),
                                responders, work, coverage_model(settings),
                                settings.coverage.cell_m,
                                include_sms=bool(settings.alarm.sms_gateway_url))


@dataclass(frozen=True)
class AreaCoverage:
    """Inhabitants of one area inside the zone (and inside each half of it)."""

    code: str
    municipality: str
    population: float
    covered: float
    cpr: float
    """Inhabitants with CPR in time (whether or not an AED is)."""
    aed: float
    """Inhabitants with an AED in time (whether or not CPR is)."""

    @classmethod
    def total(cls, name: str, parts: list[AreaCoverage]) -> AreaCoverage:
        """A municipality as the sum of its areas."""
        return cls(name, name, sum(p.population for p in parts), sum(p.covered for p in parts),
                   sum(p.cpr for p in parts), sum(p.aed for p in parts))

    @property
    def share(self) -> float:
        return self.covered / self.population if self.population else 0.0

    @property
    def cpr_share(self) -> float:
        return self.cpr / self.population if self.population else 0.0

    @property
    def aed_share(self) -> float:
        return self.aed / self.population if self.population else 0.0

    def to_json(self) -> dict[str, Any]:
        def pct(value: float) -> float:
            return round(100 * value / self.population, 2) if self.population else 0.0
        return {"code": self.code, "municipality": self.municipality,
                "population": round(self.population), "covered": round(self.covered),
                "covered_pct": pct(self.covered), "cpr_pct": pct(self.cpr),
                "aed_pct": pct(self.aed)}


def weakest_first(areas: list[AreaCoverage]) -> list[AreaCoverage]:
    """Lowest share first; among equals the most inhabitants first (most people outside)."""
    return sorted(areas, key=lambda a: (a.share, -(a.population - a.covered), a.code))


@dataclass(frozen=True)
class HourCoverage:
    at: datetime
    covered_share: float
    postcode_shares: dict[str, float]


@dataclass(frozen=True)
class MunicipalityCoverage:
    municipality: str
    at: datetime
    model: CoverageModel
    cell_m: float
    total: AreaCoverage
    postcodes: list[AreaCoverage]
    """Weakest first."""
    profile: list[HourCoverage]
    proposals: list[Proposal]
    critical: list[CriticalAed]
    cells: Cells
    times: Times
    aeds_counted: int
    polygons: dict[str, Any]
    """PC4 code -> shapely polygon."""


# Names people use for the municipalities CBS spells otherwise.
ALIASES = {"den haag": "'s-Gravenhage", "the hague": "'s-Gravenhage",
           "den bosch": "'s-Hertogenbosch"}


def find_municipality(areas: Pc4Areas, name: str) -> str:
    """The municipality's name as the areas spell it (case and spacing forgiven)."""
    names = sorted(set(areas.municipalities))
    wanted = " ".join(name.split()).casefold()
    folded = {known.casefold(): known for known in names}
    if wanted in folded:
        return folded[wanted]
    if wanted in ALIASES and ALIASES[wanted] in names:
        return ALIASES[wanted]
    # "Bergen" is two municipalities: "Bergen (NH.)" and "Bergen (L.)".
    starting = [known for fold, known in folded.items() if fold.startswith(wanted + " (")]
    close = starting or [folded[c] for c in difflib.get_close_matches(wanted, list(folded), n=3,
                                                                     cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownMunicipality(f"no municipality named {name!r}{hint}")


def near_cells(points: FloatArray, cells: Cells, margin_m: float) -> BoolArray:
    """Points that may lie within `margin_m` of some cell (a box test in sphere coordinates)."""
    if len(points) == 0 or len(cells) == 0:
        return np.zeros(len(points), dtype=bool)
    pad = arc_to_chord(margin_m)
    low, high = cells.xyz.min(axis=0) - pad, cells.xyz.max(axis=0) + pad
    return np.asarray(np.all((points >= low) & (points <= high), axis=1))


@dataclass(frozen=True)
class _Local:
    """The AEDs and responders around a set of cells at one moment."""

    aed_index: np.ndarray
    deployable: BoolArray
    responders: FloatArray


def _around(inputs: CoverageInputs, cells: Cells, at: datetime,
            nearby: np.ndarray) -> _Local:
    aeds = [inputs.aeds[i] for i in nearby.tolist()]
    people = inputs.responders.positions_at(at, inputs.model)
    people = people[near_cells(people, cells, 2 * inputs.model.reach_m)]
    return _Local(nearby, deployable_mask(aeds, at, inputs.model), people)


def _shares(cells: Cells, covered: BoolArray, areas: Pc4Areas, indexes: list[int],
            ) -> dict[str, float]:
    pop = aggregate(cells, cells.population, len(areas))
    got = aggregate(cells, cells.population * covered, len(areas))
    return {f"{areas.postcodes[i]:04d}": float(got[i] / pop[i]) if pop[i] else 0.0
            for i in indexes}


def analyse_municipality(inputs: CoverageInputs, name: str, at: datetime,
                         advice: int = 10, profile: bool = True) -> MunicipalityCoverage:
    """Coverage of one municipality at `at`: per PC4, its 24-hour profile (the local day of
    `at`, hour by hour) and the placement advice."""
    areas, model = inputs.areas, inputs.model
    municipality = find_municipality(areas, name)
    indexes = [i for i, m in enumerate(areas.municipalities) if m == municipality]
    cells = lay_cells(areas, inputs.cell_m, only=np.array(indexes))
    nearby = np.flatnonzero(near_cells(inputs.aed_xyz, cells, model.reach_m))
    local = _around(inputs, cells, at, nearby)
    aed_xyz = inputs.aed_xyz[nearby]
    times = evaluate(cells, aed_xyz, local.deployable, local.responders, model)
    counted = np.ones(len(cells), dtype=bool)
    postcodes = _area_results(cells, times, model, areas, indexes)
    total = AreaCoverage.total(municipality, postcodes)
    tree = cKDTree(local.responders) if len(local.responders) else None
    ids = [inputs.aeds[i].id for i in nearby.tolist()]
    latlon = np.array([[inputs.aeds[i].lat, inputs.aeds[i].lon] for i in nearby.tolist()]
                      ).reshape(-1, 2)
    return MunicipalityCoverage(
        municipality=municipality, at=at, model=model, cell_m=inputs.cell_m, total=total,
        postcodes=weakest_first(postcodes),
        profile=day_profile(inputs, cells, nearby, at, indexes) if profile else [],
        proposals=propose_sites(cells, times, counted, tree, model, advice),
        critical=critical_aeds(cells, times, counted, ids, aed_xyz, latlon, model, advice),
        cells=cells, times=times, aeds_counted=int(local.deployable.sum()),
        polygons={f"{areas.postcodes[i]:04d}": areas.polygons[i] for i in indexes})


def _area_results(cells: Cells, times: Times, model: CoverageModel, areas: Pc4Areas,
                  indexes: list[int] | None = None) -> list[AreaCoverage]:
    n, weights = len(areas), cells.population
    return _postcodes(areas, aggregate(cells, weights, n),
                      aggregate(cells, weights * times.covered(model), n),
                      aggregate(cells, weights * (times.cpr_s <= model.target_s), n),
                      aggregate(cells, weights * (times.aed_s <= model.target_s), n),
                      range(n) if indexes is None else indexes)


def _postcodes(areas: Pc4Areas, population: FloatArray, covered: FloatArray, cpr: FloatArray,
               aed: FloatArray, indexes: Iterable[int]) -> list[AreaCoverage]:
    """The PC4 areas of `indexes` from per-area sums of inhabitants."""
    return [AreaCoverage(f"{areas.postcodes[i]:04d}", areas.municipalities[i],
                         float(population[i]), float(covered[i]), float(cpr[i]), float(aed[i]))
            for i in indexes]


def day_hours(at: datetime, model: CoverageModel) -> list[datetime]:
    """Each whole hour of the local day of `at` (23 or 25 on the days clocks change)."""
    day = model.local(at).date()
    moment = datetime.combine(day, time(0), tzinfo=ZoneInfo(model.tz_name)).astimezone(UTC)
    hours: list[datetime] = []
    while model.local(moment).date() == day:
        hours.append(moment)
        moment += timedelta(hours=1)
    return hours


def day_profile(inputs: CoverageInputs, cells: Cells, nearby: np.ndarray, at: datetime,
                indexes: list[int]) -> list[HourCoverage]:
    """Coverage of these cells at each hour of the local day of `at`."""
    profile: list[HourCoverage] = []
    pop = float(cells.population.sum())
    for hour in day_hours(at, inputs.model):
        local = _around(inputs, cells, hour, nearby)
        times = evaluate(cells, inputs.aed_xyz[nearby], local.deployable, local.responders,
                         inputs.model)
        covered = times.covered(inputs.model)
        share = float((cells.population * covered).sum()) / pop if pop else 0.0
        profile.append(HourCoverage(hour, share, _shares(cells, covered, inputs.areas, indexes)))
    return profile


@dataclass(frozen=True)
class NationalCoverage:
    at: datetime
    model: CoverageModel
    cell_m: float
    cells: int
    population: float
    covered: float
    municipalities: list[AreaCoverage]
    postcodes: list[AreaCoverage]

    @property
    def share(self) -> float:
        return self.covered / self.population if self.population else 0.0


def national_map(inputs: CoverageInputs, at: datetime,
                 progress: Callable[[int], None] | None = None) -> CoverageMap:
    """The whole country's cells and their coverage at `at`, ready for incremental updates."""
    cells = lay_cells(inputs.areas, inputs.cell_m, progress=progress)
    return CoverageMap(cells, inputs.aeds, inputs.responders, inputs.model, at,
                       len(inputs.areas))


def national_summary(coverage: CoverageMap, inputs: CoverageInputs) -> NationalCoverage:
    """Per PC4 and per municipality, weakest first, from a national map."""
    areas = inputs.areas
    postcodes = _postcodes(areas, coverage.area_population, coverage.area_covered,
                           coverage.area_cpr, coverage.area_aed, range(len(areas)))
    by_name: dict[str, list[AreaCoverage]] = {}
    for p in postcodes:
        by_name.setdefault(p.municipality, []).append(p)
    municipalities = [AreaCoverage.total(name, parts) for name, parts in by_name.items()]
    return NationalCoverage(
        at=coverage.at, model=inputs.model, cell_m=inputs.cell_m, cells=len(coverage.cells),
        population=float(coverage.area_population.sum()),
        covered=float(coverage.area_covered.sum()),
        municipalities=weakest_first(municipalities), postcodes=weakest_first(postcodes))
