"""Coverage from the registry, on both databases: AEDs with their readiness as the database gives
it, responders at home and at work, the analysis of Utrecht and its JSON, CSV and GeoJSON.

The scene, in Utrecht: three AEDs two kilometres apart, each with a responder beside it. At the
Domplein the AED is ready; two kilometres south its pads have expired (not ready); two
kilometres west it has no cabinet agent (unverified). A commuter who lives in Amersfoort works
two kilometres east of the Domplein.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from shapely.geometry import shape
from sqlalchemy import Engine
from sqlmodel import Session

from alarm_core.geo import chord_to_arc, great_circle_m, to_xyz
from fleet.coverage import report
from fleet.coverage.grid import Cells
from fleet.coverage.service import (
    CoverageInputs,
    MunicipalityCoverage,
    UnknownMunicipality,
    analyse_municipality,
    load_inputs,
)
from fleet.population import load_pc4
from fleet.settings import Settings

from .alarm_support import (
    VICTIM,
    Place,
    add_monitored_aed,
    add_responder,
    add_unmonitored_aed,
    alarm_settings,
    near,
    report_cabinet,
)

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
"""Wednesday 15:00 in Utrecht: inside work hours (Mo-Fr 09:00-17:00)."""
EVENING = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
"""Wednesday 20:00 in Utrecht."""
READY_AT = VICTIM  # Domplein
EXPIRED_AT = near(-2000)
UNVERIFIED_AT = near(0, -2000)
OFFICE_AT = near(0, 2000)
SMS_AT = near(2000)
AMERSFOORT = (52.1561, 5.3878)
REACH_M = 621.0


def seconds(metres: Any) -> Any:
    return 60.0 + 30.0 + np.asarray(metres) / 2.3


def metres_from(cells: Cells, where: Place) -> np.ndarray:
    """Great-circle metres from every cell to `where`."""
    return np.asarray(chord_to_arc(np.linalg.norm(cells.xyz - to_xyz(*where), axis=1)))


@pytest.fixture
def utrecht(engine: Engine) -> Engine:
    add_monitored_aed(engine, "aed-ready", READY_AT, NOW)
    expired = add_monitored_aed(engine, "aed-expired", EXPIRED_AT, NOW)
    report_cabinet(engine, expired, NOW - timedelta(minutes=1),
                   pads_expiry=NOW.date() - timedelta(days=3))
    add_unmonitored_aed(engine, "aed-unverified", UNVERIFIED_AT, NOW)
    add_responder(engine, "r-ready", READY_AT, NOW)
    add_responder(engine, "r-expired", EXPIRED_AT, NOW)
    add_responder(engine, "r-unverified", UNVERIFIED_AT, NOW)
    add_responder(engine, "r-commuter", AMERSFOORT, NOW, work_lat=OFFICE_AT[0],
                  work_lon=OFFICE_AT[1])
    return engine


@pytest.fixture
def inputs(utrecht: Engine, settings: Settings) -> CoverageInputs:
    with Session(utrecht) as session:
        return load_inputs(session, settings, NOW)


@pytest.fixture
def analysis(inputs: CoverageInputs) -> MunicipalityCoverage:
    return analyse_municipality(inputs, "Utrecht", NOW)


def test_load_inputs_gives_each_aed_the_readiness_the_registry_works_out(
        inputs: CoverageInputs) -> None:
    assert {a.id: a.readiness for a in inputs.aeds} == {
        "aed-ready": "ready", "aed-expired": "not_ready", "aed-unverified": "unverified"}
    assert len(inputs.responders.pool) == 4
    assert inputs.cell_m == 150.0
    assert inputs.model.reach_m == pytest.approx(REACH_M)


def test_the_expired_and_unverified_aeds_bring_no_help_while_the_ready_one_does(
        analysis: MunicipalityCoverage) -> None:
    cells, times = analysis.cells, analysis.times
    ready = metres_from(cells, READY_AT)
    around_ready = ready <= 300
    assert around_ready.sum() >= 10
    assert np.allclose(times.aed_s[around_ready], seconds(ready[around_ready]), atol=1e-6)
    assert np.allclose(times.cpr_s[around_ready], seconds(ready[around_ready]), atol=1e-6)
    assert times.covered(analysis.model)[around_ready].all()

    for where in (EXPIRED_AT, UNVERIFIED_AT):
        around = metres_from(cells, where) <= 300
        assert around.sum() >= 10
        assert (times.cpr_s[around] <= 360).all()
        assert np.isinf(times.aed_s[around]).all()
        assert not times.covered(analysis.model)[around].any()
    assert analysis.aeds_counted == 1


def test_only_cells_within_reach_of_the_ready_aed_have_an_aed_in_time(
        analysis: MunicipalityCoverage) -> None:
    cells, times = analysis.cells, analysis.times
    ready = metres_from(cells, READY_AT)

    with_aed = times.aed_s <= 360
    assert np.array_equal(with_aed, ready <= REACH_M)
    covered = times.covered(analysis.model)
    assert np.array_equal(covered, ready <= REACH_M)
    assert analysis.total.covered == pytest.approx(float(cells.population[covered].sum()))
    assert analysis.total.aed == pytest.approx(analysis.total.covered)


def test_a_commuter_counts_at_the_office_in_work_hours_and_at_home_in_the_evening(
        inputs: CoverageInputs) -> None:
    afternoon = analyse_municipality(inputs, "Utrecht", NOW, profile=False)
    evening = analyse_municipality(inputs, "Utrecht", EVENING, profile=False)

    around_office = metres_from(afternoon.cells, OFFICE_AT) <= 300
    assert around_office.sum() >= 10
    assert (afternoon.times.cpr_s[around_office] <= 360).all()
    assert np.isinf(evening.times.cpr_s[around_office]).all()
    assert evening.total.cpr < afternoon.total.cpr


@pytest.mark.parametrize(("gateway", "counts"), [("", False), ("http://127.0.0.1:9/sms", True)])
def test_a_responder_reached_by_sms_counts_only_when_an_sms_gateway_is_configured(
        utrecht: Engine, settings: Settings, gateway: str, counts: bool) -> None:
    add_responder(utrecht, "r-sms", SMS_AT, NOW, channel="sms")
    with Session(utrecht) as session:
        inputs = load_inputs(session, alarm_settings(settings, sms_gateway_url=gateway), NOW)

    result = analyse_municipality(inputs, "Utrecht", NOW, advice=0, profile=False)

    around = metres_from(result.cells, SMS_AT) <= 300
    assert around.sum() >= 10
    cpr_s = result.times.cpr_s[around]
    assert bool((cpr_s <= 360).all()) is counts
    assert bool(np.isinf(cpr_s).all()) is not counts


def test_the_municipality_totals_are_the_sum_of_its_postcodes_weakest_first(
        analysis: MunicipalityCoverage) -> None:
    areas = load_pc4()
    codes = {f"{areas.postcodes[i]:04d}" for i, m in enumerate(areas.municipalities)
             if m == "Utrecht"}
    population = sum(areas.population[i] for i, m in enumerate(areas.municipalities)
                     if m == "Utrecht")

    assert {p.code for p in analysis.postcodes} == codes
    assert analysis.total.population == pytest.approx(population)
    assert analysis.total.covered == pytest.approx(sum(p.covered for p in analysis.postcodes))
    assert 0 < analysis.total.covered < analysis.total.cpr < analysis.total.population
    shares = [p.share for p in analysis.postcodes]
    assert shares == sorted(shares)
    assert set(analysis.polygons) == codes


def test_the_profile_has_every_hour_of_the_day_and_agrees_with_the_moment_itself(
        analysis: MunicipalityCoverage) -> None:
    assert len(analysis.profile) == 24
    at_now = next(h for h in analysis.profile if h.at == NOW)
    assert at_now.covered_share == pytest.approx(analysis.total.share)
    assert set(at_now.postcode_shares) == {p.code for p in analysis.postcodes}
    for p in analysis.postcodes:
        assert at_now.postcode_shares[p.code] == pytest.approx(p.share)


def test_the_ready_aed_is_the_one_critical_aed_and_new_sites_go_where_cpr_has_no_aed(
        analysis: MunicipalityCoverage) -> None:
    assert [c.aed_id for c in analysis.critical] == ["aed-ready"]
    assert analysis.critical[0].loss == pytest.approx(analysis.total.covered)

    proposals = analysis.proposals
    assert len(proposals) == 10
    gains = [p.gain for p in proposals]
    assert gains == sorted(gains, reverse=True)
    assert sum(gains) <= analysis.total.cpr - analysis.total.covered + 1e-6
    places = {"expired": EXPIRED_AT, "unverified": UNVERIFIED_AT}
    beside: set[str] = set()
    for p in proposals[:2]:  # one beside each responder who has no AED to fetch
        distance = {name: great_circle_m(p.lat, p.lon, *where) for name, where in places.items()}
        name = min(distance, key=distance.__getitem__)
        assert distance[name] <= 150
        assert p.fetch_m == pytest.approx(distance[name], abs=1e-6)
        beside.add(name)
    assert beside == set(places)


def test_an_unknown_municipality_is_refused_with_a_suggestion(inputs: CoverageInputs) -> None:
    with pytest.raises(UnknownMunicipality, match="did you mean .*Utrecht"):
        analyse_municipality(inputs, "Utrect", NOW)


# -- documents ------------------------------------------------------------------------------------

def strict_json(document: Any) -> Any:
    """The document written and read back as standard JSON (no NaN or Infinity)."""
    return json.loads(json.dumps(document, allow_nan=False))


def test_the_json_report_describes_the_municipality(analysis: MunicipalityCoverage) -> None:
    document = strict_json(report.municipality_json(analysis))

    assert document["municipality"] == "Utrecht"
    assert document["at"] == "2026-11-25T14:00:00Z"
    assert document["assumptions"]["reach_m"] == REACH_M
    assert document["assumptions"]["target_s"] == 360.0
    assert document["assumptions"]["aed_access"] == "open_now"
    assert document["assumptions"]["cell_m"] == 150.0
    assert document["population"] == round(analysis.total.population)
    assert document["covered"] == round(analysis.total.covered)
    assert document["cells"] == len(analysis.cells)
    assert document["aeds_counted"] == 1
    assert [p["postcode"] for p in document["postcodes"]] == [p.code for p in analysis.postcodes]
    assert all(0 <= p["covered_pct"] <= 100 for p in document["postcodes"])
    assert len(document["profile"]) == 24
    assert document["profile"][0]["at"] == "2026-11-24T23:00:00Z"
    assert [c["aed_id"] for c in document["critical_aeds"]] == ["aed-ready"]
    assert [p["rank"] for p in document["proposals"]] == list(range(1, 11))


def test_the_csv_report_has_a_header_and_one_row_per_postcode(
        analysis: MunicipalityCoverage) -> None:
    rows = list(csv.reader(io.StringIO(report.municipality_csv(analysis))))

    header, body = rows[0], rows[1:]
    assert header[:7] == ["postcode", "municipality", "population", "covered", "covered_pct",
                          "cpr_pct", "aed_pct"]
    assert header[7:] == [f"covered_pct_{hour:02d}:00+01:00" for hour in range(24)]
    assert len(body) == len(analysis.postcodes) == 47
    assert [r[0] for r in body] == [p.code for p in analysis.postcodes]
    assert all(len(r) == len(header) and r[1] == "Utrecht" for r in body)
    assert sum(int(r[2]) for r in body) == pytest.approx(analysis.total.population, abs=47)
    by_code = {r[0]: r for r in body}
    at_15h = header.index("covered_pct_15:00+01:00")
    for p in analysis.postcodes:
        assert float(by_code[p.code][4]) == pytest.approx(100 * p.share, abs=0.01)
        assert float(by_code[p.code][at_15h]) == pytest.approx(100 * p.share, abs=0.01)


def test_the_geojson_report_holds_postcode_areas_proposed_sites_and_critical_aeds(
        analysis: MunicipalityCoverage) -> None:
    document = strict_json(report.municipality_geojson(analysis))

    assert document["type"] == "FeatureCollection"
    features = document["features"]
    assert all(f["type"] == "Feature" and f["geometry"]["type"] and f["geometry"]["coordinates"]
               for f in features)
    kinds = [f["properties"]["kind"] for f in features]
    assert kinds.count("postcode") == 47
    assert kinds.count("proposed_aed") == len(analysis.proposals) == 10
    assert kinds.count("critical_aed") == 1
    assert "cell" not in kinds
    for feature in features:
        geometry = shape(feature["geometry"])
        assert not geometry.is_empty
        if feature["properties"]["kind"] == "postcode":
            assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
            assert geometry.area > 0
        else:
            assert feature["geometry"]["type"] == "Point"
    critical = next(f for f in features if f["properties"]["kind"] == "critical_aed")
    assert critical["properties"]["aed_id"] == "aed-ready"
    assert critical["geometry"]["coordinates"] == [round(READY_AT[1], 6), round(READY_AT[0], 6)]
    postcodes = {f["properties"]["postcode"]: shape(f["geometry"]) for f in features
                 if f["properties"]["kind"] == "postcode"}
    domplein = shape({"type": "Point", "coordinates": [READY_AT[1], READY_AT[0]]})
    assert sum(area.contains(domplein) for area in postcodes.values()) == 1


def test_the_geojson_report_with_cells_has_one_square_per_cell_with_its_times(
        analysis: MunicipalityCoverage) -> None:
    document = strict_json(report.municipality_geojson(analysis, cells=True))

    cells = [f for f in document["features"] if f["properties"]["kind"] == "cell"]
    assert len(cells) == len(analysis.cells)
    for feature in cells:
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon"
        assert len(ring) == 5 and ring[0] == ring[-1]
    covered = [f for f in cells if f["properties"]["covered"]]
    assert len(covered) == int(analysis.times.covered(analysis.model).sum())
    assert all(f["properties"]["aed_s"] is not None and f["properties"]["aed_s"] <= 360
               for f in covered)
    assert any(f["properties"]["aed_s"] is None for f in cells)


def test_the_csv_header_names_each_hour_once_on_the_day_clocks_go_back(
        inputs: CoverageInputs) -> None:
    result = analyse_municipality(inputs, "Utrecht", datetime(2026, 10, 25, 12, 0, tzinfo=UTC),
                                  advice=0)

    header = next(csv.reader(io.StringIO(report.municipality_csv(result))))

    assert len(result.profile) == 25
    assert len(set(header)) == len(header) == 7 + 25
    assert header[7:11] == ["covered_pct_00:00+02:00", "covered_pct_01:00+02:00",
                            "covered_pct_02:00+02:00", "covered_pct_02:00+01:00"]
    assert header[-1] == "covered_pct_23:00+01:00"
