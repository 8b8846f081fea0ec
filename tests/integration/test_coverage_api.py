"""The coverage API as the console's map and a municipality's tools use it.

Flask's test client against the real application, a live coverage over a real database (both
engines): one ready 24/7 AED and six responders in the centre of Utrecht.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from fleet.coverage.live import LiveCoverage
from fleet.settings import Settings
from web import create_app
from web.auth import create_token

from .alarm_support import AED_1, NOW, build_street, report_cabinet, set_aed
from .test_alarm_api import assert_error

UTRECHT = "/api/v1/coverage/municipalities/Utrecht"


@dataclass
class Map:
    engine: Engine
    client: FlaskClient
    token: str
    now: datetime = NOW
    tick: float = 0.0
    """The monotonic clock, seconds."""

    def later(self, seconds: float) -> None:
        """Time passes on both clocks."""
        self.now += timedelta(seconds=seconds)
        self.tick += seconds

    def get(self, path: str, token: str | None = None) -> TestResponse:
        return self.client.get(path, headers={"Authorization": f"Bearer {token or self.token}"})


@pytest.fixture
def coverage_map(engine: Engine, settings: Settings) -> Map:
    build_street(engine)
    coarse = settings.model_copy(update={"coverage": settings.coverage.model_copy(
        update={"cell_m": 1000.0, "refresh_s": 5.0})})
    holder: dict[str, Map] = {}
    live = LiveCoverage(engine, coarse, clock=lambda: holder["map"].now,
                        monotonic=lambda: holder["map"].tick)
    app = create_app(engine, coverage=live)
    app.config["TESTING"] = True
    holder["map"] = Map(engine, app.test_client(),
                        create_token(engine, "utrecht-gis", NOW, "coverage"))
    return holder["map"]


@pytest.mark.parametrize("path", ["/api/v1/coverage", UTRECHT, f"{UTRECHT}/geojson",
                                  f"{UTRECHT}/csv"])
def test_every_coverage_endpoint_needs_a_coverage_token(coverage_map: Map, path: str) -> None:
    assert_error(coverage_map.client.get(path), 401, "unauthorized")
    dispatch = create_token(coverage_map.engine, "112-utrecht", NOW, "dispatch")
    assert_error(coverage_map.get(path, dispatch), 403, "forbidden")


def test_municipality_report_counts_the_ready_aed_and_lists_weakest_postcodes_first(
        coverage_map: Map) -> None:
    response = coverage_map.get(f"{UTRECHT}?at=2026-11-25T14:00:00Z")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["municipality"] == "Utrecht" and body["aeds_counted"] == 1
    assert 0 < body["covered_pct"] < 100
    assert body["assumptions"]["reach_m"] == pytest.approx(621.0)
    shares = [p["covered_pct"] for p in body["postcodes"]]
    assert shares == sorted(shares) and shares[-1] > 0
    assert len(body["profile"]) == 24
    at_two = next(h for h in body["profile"] if h["at"] == "2026-11-25T13:00:00Z")
    assert at_two["covered_pct"] == body["covered_pct"]


def test_an_aed_whose_pads_expire_leaves_the_map_at_the_next_refresh(coverage_map: Map) -> None:
    before = coverage_map.get(UTRECHT).get_json()
    national = coverage_map.get("/api/v1/coverage").get_json()
    assert before["covered_pct"] > 0 and national["covered_pct"] > 0
    report_cabinet(coverage_map.engine, f"cab-{AED_1}", NOW + timedelta(seconds=1),
                   pads_expiry=NOW.date() - timedelta(days=1))
    coverage_map.later(10)
    after = coverage_map.get(UTRECHT).get_json()
    assert after["aeds_counted"] == 0 and after["covered_pct"] == 0
    assert coverage_map.get("/api/v1/coverage").get_json()["covered_pct"] == 0


def test_the_national_map_follows_opening_hours_also_when_it_refreshes(
        coverage_map: Map) -> None:
    # 15:00 in Utrecht; the AED's shop closes at 15:10.
    set_aed(coverage_map.engine, AED_1, opening_hours="Mo-Fr 08:00-15:10",
            updated_at=NOW + timedelta(seconds=1))
    coverage_map.later(10)
    assert coverage_map.get("/api/v1/coverage").get_json()["covered_pct"] > 0
    coverage_map.later(660)  # 15:11:10: a refresh is due as well (a full one is not)
    assert coverage_map.get("/api/v1/coverage").get_json()["covered_pct"] == 0


def test_a_wall_clock_set_back_does_not_stop_the_refreshes(coverage_map: Map) -> None:
    assert coverage_map.get(UTRECHT).get_json()["aeds_counted"] == 1
    coverage_map.now -= timedelta(hours=1)
    report_cabinet(coverage_map.engine, f"cab-{AED_1}", coverage_map.now,
                   pads_expiry=NOW.date() - timedelta(days=1))
    coverage_map.tick += 10
    assert coverage_map.get(UTRECHT).get_json()["aeds_counted"] == 0


def test_geojson_and_csv_describe_every_postcode_area_of_the_municipality(
        coverage_map: Map) -> None:
    geo = coverage_map.get(f"{UTRECHT}/geojson")
    assert geo.status_code == 200 and geo.mimetype == "application/geo+json"
    document = geo.get_json(force=True)
    postcodes = [f for f in document["features"] if f["properties"]["kind"] == "postcode"]
    assert postcodes and all(f["geometry"]["type"] in ("Polygon", "MultiPolygon")
                             for f in postcodes)
    table = coverage_map.get(f"{UTRECHT}/csv")
    assert table.status_code == 200 and table.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(table.get_data(as_text=True))))
    assert {r["postcode"] for r in rows} == {f["properties"]["postcode"] for f in postcodes}


def test_the_csv_of_the_day_the_clocks_go_back_has_25_distinct_hours(coverage_map: Map) -> None:
    table = coverage_map.get(f"{UTRECHT}/csv?at=2026-10-25T12:00:00Z").get_data(as_text=True)
    header = next(csv.reader(io.StringIO(table)))
    hours = [name for name in header if name.startswith("covered_pct_")]
    assert len(hours) == len(set(hours)) == 25
    assert "covered_pct_02:00+02:00" in hours and "covered_pct_02:00+01:00" in hours


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/v1/coverage/municipalities/Utrekt", 404, "unknown_municipality"),
    (f"{UTRECHT}?at=yesterday", 400, "invalid_time"),
    (f"{UTRECHT}?at=2026-11-25T14:00:00", 400, "invalid_time"),
    (f"{UTRECHT}?advice=-1", 400, "invalid_argument"),
    (f"{UTRECHT}?advice=201", 400, "invalid_argument"),
    (f"{UTRECHT}?advice=%C2%B2", 400, "invalid_argument"),
    ("/api/v1/coverage?limit=0", 400, "invalid_argument"),
])
def test_bad_requests_are_refused_with_a_reason(coverage_map: Map, path: str, status: int,
                                                code: str) -> None:
    assert_error(coverage_map.get(path), status, code)


def test_a_server_without_coverage_says_so(engine: Engine) -> None:
    app = create_app(engine)
    token = create_token(engine, "utrecht-gis", NOW, "coverage")
    response = app.test_client().get(UTRECHT, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 503, "coverage_unavailable")
