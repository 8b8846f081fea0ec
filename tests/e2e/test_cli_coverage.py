"""`aedfleet coverage` as an operator runs it, on both databases: a municipality's 6-minute zone
as text, JSON, GeoJSON and CSV, a misspelt municipality, and the whole country on a coarse grid.

The scene: one ready 24/7 AED with a responder beside it in the middle of Utrecht, exactly on a
centre of the 2 km national grid, so that the country's covered inhabitants are those of the
cells within 621 m of it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from integration.alarm_support import add_monitored_aed, add_responder
from sqlalchemy import Engine

from alarm_core.geo import great_circle_m
from fleet.coverage.grid import lay_cells
from fleet.coverage.model import CoverageModel
from fleet.coverage.service import day_hours
from fleet.population import load_pc4

from .cli import Cli

DOMPLEIN = (52.0907, 5.1214)
COARSE = {"AEDFLEET_COVERAGE__CELL_M": "2000"}


def coarse_cell_in_utrecht() -> tuple[float, float, float]:
    """(lat, lon) of the 2 km national cell nearest the Domplein, and the inhabitants of the
    cells within 621 m of it (small central postcode areas are one cell each, at their inner
    point, so there are a few)."""
    areas = load_pc4()
    cells = lay_cells(areas, 2000.0)
    distances = np.array([great_circle_m(*DOMPLEIN, float(lat), float(lon))
                          for lat, lon in zip(cells.lat, cells.lon, strict=True)])
    best = int(np.argmin(distances))
    assert areas.municipalities[int(cells.area[best])] == "Utrecht"
    lat, lon = float(cells.lat[best]), float(cells.lon[best])
    reach = np.array([great_circle_m(lat, lon, float(a), float(b))
                      for a, b in zip(cells.lat, cells.lon, strict=True)])
    assert not (np.abs(reach - 621.0) < 1.0).any()  # no cell on the edge of the zone
    return lat, lon, float(cells.population[reach <= 621.0].sum())


@pytest.fixture(scope="module")
def coarse_cell() -> tuple[float, float, float]:
    return coarse_cell_in_utrecht()


@pytest.fixture
def now() -> datetime:
    """This hour (readiness is always taken at the real now; `--at` pins the rest)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def scene(cli: Cli, engine: Engine, now: datetime,
          coarse_cell: tuple[float, float, float]) -> Cli:
    lat, lon, _people = coarse_cell
    add_monitored_aed(engine, "aed-centre", (lat, lon), datetime.now(UTC))
    add_responder(engine, "r-centre", (lat, lon), now)
    return cli


def at_argument(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


def test_coverage_of_a_municipality_as_json(scene: Cli, now: datetime) -> None:
    document = json.loads(scene.ok("coverage", "--municipality", "utrecht", "--at",
                                   at_argument(now), "--json").stdout)

    assert document["municipality"] == "Utrecht"
    assert document["at"] == at_argument(now)
    assert document["population"] == 359185
    assert 0 < document["covered"] < document["population"]
    assert document["aeds_counted"] == 1
    assert len(document["postcodes"]) == 47
    assert len(document["profile"]) == len(day_hours(now, CoverageModel()))
    assert [c["aed_id"] for c in document["critical_aeds"]] == ["aed-centre"]
    assert document["critical_aeds"][0]["loss_inhabitants"] == pytest.approx(
        document["covered"], abs=1)
    assert document["proposals"] == []  # CPR is in time only where the AED is too
    assert document["assumptions"]["reach_m"] == 621.0
    assert document["assumptions"]["cell_m"] == 150.0


def test_coverage_of_a_municipality_as_text_with_geojson_cells_and_csv_files(
        scene: Cli, now: datetime, tmp_path: Path) -> None:
    geojson, table = tmp_path / "utrecht.geojson", tmp_path / "utrecht.csv"

    result = scene.ok("coverage", "--municipality", "Utrecht", "--at", at_argument(now),
                      "--geojson", str(geojson), "--cells", "--csv", str(table), "--limit", "3")

    lines = result.stdout.splitlines()
    assert lines[0].startswith("Utrecht at ")
    assert "inside the 6-minute zone" in lines[0]
    assert "1 AEDs count at that time" in lines[0]
    assert lines[1] == "Weakest postcode areas (of 47):"
    assert all(re.match(r"^  \d{4} +\d+\.\d % of ", line) for line in lines[2:5])
    assert not re.match(r"^  \d{4} ", lines[5])
    assert any(line.startswith("  aed-centre  -") for line in lines)
    document = json.loads(geojson.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection"
    kinds = [f["properties"]["kind"] for f in document["features"]]
    assert kinds.count("postcode") == 47 and kinds.count("critical_aed") == 1
    areas = load_pc4()
    utrecht = np.array([i for i, m in enumerate(areas.municipalities) if m == "Utrecht"])
    assert kinds.count("cell") == len(lay_cells(areas, 150.0, only=utrecht))
    assert all(f["geometry"]["coordinates"] for f in document["features"])
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["postcode", "municipality", "population"]
    assert len(rows) == 1 + 47
    assert {r[1] for r in rows[1:]} == {"Utrecht"}


def test_an_unknown_municipality_exits_non_zero_with_a_suggestion(scene: Cli) -> None:
    result = scene("coverage", "--municipality", "Utreht", "--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "no municipality named 'Utreht'; did you mean Utrecht" in result.stderr
    assert "Traceback" not in result.stderr


def test_files_without_a_municipality_are_refused(scene: Cli, tmp_path: Path) -> None:
    result = scene("coverage", "--csv", str(tmp_path / "country.csv"))

    assert result.returncode == 2
    assert "--geojson and --csv need --municipality" in result.stderr
    assert not (tmp_path / "country.csv").exists()


def test_coverage_of_the_whole_country_on_a_coarse_grid(
        scene: Cli, now: datetime, coarse_cell: tuple[float, float, float]) -> None:
    _lat, _lon, people = coarse_cell
    result = scene("coverage", "--at", at_argument(now), "--json", env=COARSE)
    assert result.returncode == 0, result.stderr

    document = json.loads(result.stdout)

    population = float(load_pc4().population.sum())
    assert document["assumptions"]["cell_m"] == 2000.0
    assert document["cells"] == len(lay_cells(load_pc4(), 2000.0))
    assert document["population"] == round(population)
    assert document["covered"] == round(people)
    assert document["covered_pct"] == round(100 * people / population, 2)
    municipalities = document["municipalities"]
    assert len(municipalities) == len(set(load_pc4().municipalities))
    assert municipalities[-1]["municipality"] == "Utrecht"
    assert municipalities[-1]["covered"] == round(people)
    assert all(m["covered"] == 0 for m in municipalities[:-1])
    assert sum(m["population"] for m in municipalities) == pytest.approx(population, abs=400)


def test_the_country_as_text_names_the_weakest_municipalities(scene: Cli, now: datetime) -> None:
    result = scene("coverage", "--at", at_argument(now), "--limit", "5", env=COARSE)
    assert result.returncode == 0, result.stderr

    lines = result.stdout.splitlines()
    assert lines[0].startswith("Netherlands at ")
    assert "cells of 2000 m" in lines[0]
    assert lines[1] == "Weakest municipalities:"
    assert len(lines) == 2 + 5
