"""The demo's two regions on SQLite and PostgreSQL: the Netherlands with Utrecht's registry and
Cologne with its real AEDs, each with its responders, log-ins and 112 token."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from alarm_core.models import ApiToken, Responder
from fleet.demo.people import dispatch_token, ensure_logins, seed_responders
from fleet.demo.regions import (
    DEMO_REGIONS,
    KOELN,
    KOELN_NEAR_AEDS_M,
    NL,
    REGISTRY_SOURCE,
    koeln_activity_area,
    load_regions,
    regions_folder,
    registry_places,
)
from fleet.models import Aed, ConsoleUser
from fleet.region_store import region_map
from fleet.registry import import_registry
from fleet.registry_file import read_registry_file
from fleet.settings import Settings
from web.auth import caller_of

NOW = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


@pytest.fixture
def demo_engine(engine: Engine, settings: Settings) -> Engine:
    """The demo's setup: both regions and both registries."""
    folder = regions_folder()
    assert folder is not None
    assert load_regions(engine, settings, NOW, folder) == ["NL", "DE-NW-KOELN"]
    for region in DEMO_REGIONS:
        with resources.as_file(resources.files("fleet.data") / region.registry) as path:
            import_registry(engine, read_registry_file(Path(path), source=REGISTRY_SOURCE))
    return engine


def test_the_demo_has_both_regions_and_every_aed_lies_in_its_own(
        demo_engine: Engine, settings: Settings) -> None:
    with Session(demo_engine) as session:
        regions = region_map(session, settings)
        aeds = session.exec(select(Aed.id, Aed.lat, Aed.lon)).all()
    assert sorted(region.code for region in regions) == ["DE-NW-KOELN", "NL"]
    codes = regions.codes_at(np.array([a[1] for a in aeds]), np.array([a[2] for a in aeds]))
    placed = {aed_id: code for (aed_id, _, _), code in zip(aeds, codes, strict=True)}
    assert sum(1 for aed_id in placed if aed_id.startswith("DE-K-")) == 121
    assert sum(1 for aed_id in placed if aed_id.startswith("NL-UT-")) == 536
    assert {code for aed_id, code in placed.items() if aed_id.startswith("DE-K-")} == {
        "DE-NW-KOELN"}
    assert {code for aed_id, code in placed.items() if aed_id.startswith("NL-UT-")} == {"NL"}


def test_loading_the_demo_regions_again_changes_nothing(demo_engine: Engine,
                                                        settings: Settings) -> None:
    folder = regions_folder()
    assert folder is not None

    assert load_regions(demo_engine, settings, NOW, folder) == []


def test_cologne_responders_speak_german_and_live_near_its_aeds(
        demo_engine: Engine, settings: Settings) -> None:
    area = koeln_activity_area(demo_engine)
    assert area is not None

    ids = seed_responders(demo_engine, settings, area, 40, NOW, 1, KOELN, True)

    with Session(demo_engine) as session:
        responders = session.exec(select(Responder).where(col(Responder.id).in_(ids))).all()
        regions = region_map(session, settings)
    assert len(responders) == 40
    assert all(r.id.startswith("demo-rk-") for r in responders)
    assert {(r.language, r.region) for r in responders} == {("de", "DE-NW-KOELN")}
    aeds = registry_places(KOELN)
    for responder in responders:
        assert responder.home_lat is not None and responder.home_lon is not None
        home_region = regions.region_at(responder.home_lat, responder.home_lon)
        assert home_region is not None and home_region.code == "DE-NW-KOELN"
        assert min(metres(responder.home_lat, responder.home_lon, lat, lon)
                   for lat, lon in aeds) <= KOELN_NEAR_AEDS_M * 1.01


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def test_each_region_has_its_log_ins_in_its_language(demo_engine: Engine,
                                                     settings: Settings) -> None:
    area = koeln_activity_area(demo_engine)
    assert area is not None
    [responder] = seed_responders(demo_engine, settings, area, 1, NOW, 1, KOELN, True)

    dutch = ensure_logins(demo_engine, NOW, "Kanton Zug", "Utrecht", None, NL, True)
    german = ensure_logins(demo_engine, NOW, KOELN.manager, KOELN.municipality, responder,
                           KOELN, True)

    assert [(login.username, login.region) for login in dutch] == [
        ("demo-admin", None), ("demo-manager", "NL"), ("demo-municipality", "NL"),
        ("demo-dispatcher", "NL")]
    assert [(login.username, login.scope) for login in german] == [
        ("demo-koeln-manager", "Stadt Köln – Feuerwehr"), ("demo-koeln-dispatcher", "incidents"),
        ("demo-koeln-responder", "demo-rk-0001")]
    with Session(demo_engine) as session:
        users = {u.username: (u.role, u.region, u.locale)
                 for u in session.exec(select(ConsoleUser))}
    assert users == {
        "demo-admin": ("admin", None, None),
        "demo-manager": ("manager", "NL", "nl"),
        "demo-municipality": ("municipality", "NL", "nl"),
        "demo-dispatcher": ("dispatcher", "NL", "nl"),
        "demo-koeln-manager": ("manager", "DE-NW-KOELN", "de"),
        "demo-koeln-dispatcher": ("dispatcher", "DE-NW-KOELN", "de"),
        "demo-koeln-responder": ("responder", "DE-NW-KOELN", "de"),
    }


def test_each_region_has_its_own_112_token_and_a_new_run_revokes_the_old(
        demo_engine: Engine) -> None:
    first = dispatch_token(demo_engine, NOW, NL.caller, NL.code)
    koeln = dispatch_token(demo_engine, NOW, KOELN.caller, KOELN.code)

    again = dispatch_token(demo_engine, NOW, KOELN.caller, KOELN.code)

    assert caller_of(demo_engine, first) == ("demo-112", "dispatch", "NL")
    assert caller_of(demo_engine, again) == ("demo-112-koeln", "dispatch", "DE-NW-KOELN")
    assert caller_of(demo_engine, koeln) is None
    with Session(demo_engine) as session:
        live = session.exec(select(ApiToken.caller, ApiToken.region).where(
            col(ApiToken.revoked_at).is_(None))).all()
    assert sorted(live) == [("demo-112", "NL"), ("demo-112-koeln", "DE-NW-KOELN")]
