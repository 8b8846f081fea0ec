"""Regions in the database and the alarm core: border calls, dispatch centres bound to their
region, each region's readiness thresholds and competence rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from alarm_core.errors import Refused
from alarm_core.models import Incident
from alarm_core.service import AlarmCore
from fleet.db import session_scope
from fleet.region_store import region_map, save_region
from fleet.regions import RegionError, RegionSpec
from fleet.registry import aed_status
from fleet.settings import Settings

from .alarm_support import (
    NOW,
    add_monitored_aed,
    add_responder,
    alerts,
    call,
    near,
    report_cabinet,
)

# Kerkrade (NL) and Herzogenrath (DE): the border runs at about 6.075 E through one street.
KERKRADE = (50.8660, 6.0700)
HERZOGENRATH = (50.8660, 6.0850)


def box(west: float, south: float, east: float, north: float) -> str:
    return json.dumps({"type": "Polygon", "coordinates": [[
        [west, south], [east, south], [east, north], [west, north], [west, south]]]})


def spec(code: str, area: str, timezone: str, languages: tuple[str, ...],
         **dispatch: Any) -> RegionSpec:
    return RegionSpec(code=code, name=code, timezone=timezone, country=code[:2],
                      languages=languages, area_geojson=area, dispatch=dispatch,
                      readiness={})


def limburg(share: bool = True, **nl: Any) -> list[RegionSpec]:
    return [spec("NL-LI", box(5.6, 50.75, 6.075, 51.2), "Europe/Amsterdam", ("nl", "en"),
                 **({"share_responders_with": ["DE-NW-AC"], "share_aeds_with": ["DE-NW-AC"]}
                    if share else {}), **nl),
            spec("DE-NW-AC", box(6.075, 50.6, 6.5, 51.0), "Europe/Berlin", ("de", "en"),
                 **({"share_responders_with": ["NL-LI"], "share_aeds_with": ["NL-LI"]}
                    if share else {}))]


def load_regions(engine: Engine, settings: Settings, specs: list[RegionSpec]) -> None:
    with session_scope(engine) as session:
        for one in specs:
            save_region(session, one, settings, NOW, "test")


def border_street(engine: Engine) -> None:
    """Responders and AEDs on both sides of the border (homes decide their region)."""
    for rid, at in {"nl-1": near(150, 0, KERKRADE), "nl-2": near(-700, 0, KERKRADE),
                    "de-1": near(0, 500, KERKRADE), "de-2": near(300, 800, KERKRADE)}.items():
        add_responder(engine, rid, at, NOW)
    add_monitored_aed(engine, "aed-nl", near(-400, -300, KERKRADE), NOW)
    add_monitored_aed(engine, "aed-de", near(0, 700, KERKRADE), NOW)


def core_for(engine: Engine, settings: Settings) -> AlarmCore:
    core = AlarmCore(engine, settings)
    core.load(NOW)
    return core


def test_a_border_call_alerts_and_sends_from_both_sides_when_both_regions_share(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg(share=True))
    border_street(engine)
    core = core_for(engine, settings)

    result = core.intake("112-limburg", call("border-1", KERKRADE), NOW, "NL-LI")

    assert result.plan is not None
    assert set(alerts(engine, result.incident.id)) == {"nl-1", "nl-2", "de-1", "de-2"}
    assert {a.id for a in result.plan.aeds} == {"aed-nl", "aed-de"}
    with Session(engine) as session:
        stored = session.get(Incident, result.incident.id)
        assert stored is not None and stored.region == "NL-LI"
        plan = json.loads(stored.plan)
    why = {r["id"]: r["why"] for r in plan["responders"]}
    assert "cross_border:DE-NW-AC" in why["de-1"]
    assert not any(w.startswith("cross_border") for w in why["nl-1"])
    assert plan["selection"]["responder_regions"] == ["DE-NW-AC", "NL-LI"]


def test_without_an_agreement_a_border_call_stays_on_its_own_side(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg(share=False))
    border_street(engine)
    core = core_for(engine, settings)

    result = core.intake("112-limburg", call("border-2", KERKRADE), NOW, "NL-LI")

    assert result.plan is not None
    assert set(alerts(engine, result.incident.id)) == {"nl-1", "nl-2"}
    assert [a.id for a in result.plan.aeds] == ["aed-nl"]
    assert result.plan.skipped_aeds == {"aed-de": "other_region"}


def test_a_dispatch_centre_cannot_raise_an_alarm_in_another_region(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg())
    border_street(engine)
    core = core_for(engine, settings)

    with pytest.raises(Refused) as refused:
        core.intake("112-limburg", call("border-3", HERZOGENRATH), NOW, "NL-LI")
    assert refused.value.code == "outside_caller_region"
    assert "DE-NW-AC" in refused.value.message
    far_away = core.intake("112-aachen", call("border-4", HERZOGENRATH), NOW, "DE-NW-AC")
    assert far_away.incident.region == "DE-NW-AC"
    with pytest.raises(Refused) as outside:
        core.intake("112-limburg", call("border-5", (52.09, 5.12)), NOW, "NL-LI")
    assert outside.value.code == "outside_service_area"


def test_an_infant_call_alerts_only_paediatric_responders_where_the_region_allows_it(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg(share=False, paediatric_under_one=True))
    border_street(engine)
    add_responder(engine, "nl-kids", near(-200, 0, KERKRADE), NOW,
                  competences="paediatric_life_support")
    core = core_for(engine, settings)

    infant = core.intake("112-limburg", call("infant-1", KERKRADE,
                                             exclusions=("victim_under_one_year",)), NOW,
                         "NL-LI")
    german_infant = core.intake("112-aachen", call("infant-2", HERZOGENRATH,
                                                   exclusions=("victim_under_one_year",)),
                                NOW, "DE-NW-AC")

    assert infant.incident.state == "dispatched"
    assert set(alerts(engine, infant.incident.id)) == {"nl-kids"}
    assert infant.plan is not None
    assert infant.plan.responders[0].reasons == ("nearest", "paediatric_competence")
    # The German region keeps the exclusion: no citizen alarm for an infant there.
    assert german_infant.incident.state == "excluded" and german_infant.plan is None


def test_a_medical_only_incident_type_changes_the_plan(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg(share=False, medical_only_incident_types=["overdose"]))
    border_street(engine)
    add_responder(engine, "nl-nurse", near(-500, 0, KERKRADE), NOW, training="medical")
    core = core_for(engine, settings)

    ordinary = core.intake("112-limburg", call("type-1", KERKRADE), NOW, "NL-LI")
    core.close(ordinary.incident.id, "ended", NOW + timedelta(minutes=1))
    overdose = core.intake("112-limburg", call("type-2", near(10, 0, KERKRADE),
                                               incident_type="overdose"),
                           NOW + timedelta(minutes=2), "NL-LI")

    assert set(alerts(engine, ordinary.incident.id)) == {"nl-1", "nl-2", "nl-nurse"}
    assert set(alerts(engine, overdose.incident.id)) == {"nl-nurse"}
    assert overdose.incident.incident_type == "overdose"
    assert overdose.plan is not None
    assert "medical_training" in overdose.plan.responders[0].reasons


def test_each_aeds_readiness_uses_the_thresholds_of_the_region_it_stands_in(
        engine: Engine, settings: Settings) -> None:
    specs = limburg(share=True)
    specs[1] = replace(specs[1], readiness={"battery_low_pct": 30})
    load_regions(engine, settings, specs)
    border_street(engine)
    for aed_id in ("aed-nl", "aed-de"):
        report_cabinet(engine, f"cab-{aed_id}", NOW - timedelta(minutes=1), battery_pct=25)

    with Session(engine) as session:
        nl = aed_status(session, settings, "aed-nl", NOW)
        de = aed_status(session, settings, "aed-de", NOW)
    assert nl.readiness.state.value == "ready"
    assert de.readiness.state.value == "not_ready"
    assert "battery_low" in de.readiness.reasons

    core = core_for(engine, settings)
    result = core.intake("112-limburg", call("battery-1", KERKRADE), NOW, "NL-LI")
    assert result.plan is not None
    assert [a.id for a in result.plan.aeds] == ["aed-nl"]


def test_a_changed_region_reaches_a_running_alarm_core_on_its_next_refresh(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg(share=False))
    border_street(engine)
    core = core_for(engine, settings)
    before = core.plan(*KERKRADE, NOW)
    load_regions(engine, settings, limburg(share=True))
    core.refresh(NOW + timedelta(seconds=1))
    after = core.plan(*KERKRADE, NOW + timedelta(seconds=1))

    assert {a.responder_id for a in before.responders} == {"nl-1", "nl-2"}
    assert {a.responder_id for a in after.responders} == {"nl-1", "nl-2", "de-1", "de-2"}


def test_overlapping_regions_are_refused_and_nothing_is_stored(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, limburg())
    overlapping = spec("NL-ZL", box(5.9, 50.8, 6.2, 50.9), "Europe/Amsterdam", ("nl",))
    with pytest.raises(RegionError, match="overlap"), session_scope(engine) as session:
        save_region(session, overlapping, settings, NOW, "test")
    with Session(engine) as session:
        assert [r.code for r in region_map(session, settings)] == ["DE-NW-AC", "NL-LI"]


def test_a_region_may_not_change_the_rules_that_hold_for_every_region(
        engine: Engine, settings: Settings) -> None:
    private = spec("NL-LI", box(5.6, 50.75, 6.075, 51.2), "Europe/Amsterdam", ("nl",),
                   location_retention_minutes=600)
    with pytest.raises(RegionError, match="the same for every region"), \
            session_scope(engine) as session:
        save_region(session, private, settings, NOW, "test")


def test_a_responder_without_a_region_is_given_the_one_they_live_in(
        engine: Engine, settings: Settings) -> None:
    from fleet.region_store import assign_responder_regions

    from .alarm_support import responder

    add_responder(engine, "early", near(0, 500, KERKRADE), NOW)  # before any region exists
    load_regions(engine, settings, limburg())
    border_street(engine)
    add_responder(engine, "chosen", near(0, 500, KERKRADE), NOW, region="NL-LI")

    assert responder(engine, "de-1").region == "DE-NW-AC"  # registered after: at once
    assert responder(engine, "early").region is None
    with session_scope(engine) as session:
        assert assign_responder_regions(session) == 1  # as `aedfleet regions load` does
    assert responder(engine, "early").region == "DE-NW-AC"
    assert responder(engine, "chosen").region == "NL-LI"  # their own choice is kept


# Galway (Europe/Dublin) is an hour behind the settings' Europe/Amsterdam.
GALWAY = (53.2740, -9.0490)


def test_a_responder_is_at_work_by_the_clock_of_their_own_region(
        engine: Engine, settings: Settings) -> None:
    load_regions(engine, settings, [spec("IE-GALWAY", box(-9.3, 53.1, -8.8, 53.45),
                                         "Europe/Dublin", ("en",))])
    office = near(0, 0, GALWAY)
    add_responder(engine, "ie-1", near(3_000, 0, GALWAY), NOW,
                  work_lat=office[0], work_lon=office[1])
    half_past_four = NOW.replace(hour=16, minute=30)  # in Galway; 17:30 in Amsterdam
    core = core_for(engine, settings)
    core.load(half_past_four)

    result = core.intake("112-galway", call("galway-1", office), half_past_four)

    assert result.plan is not None
    assert set(alerts(engine, result.incident.id)) == {"ie-1"}


def test_a_responder_who_moves_across_the_border_gets_the_region_of_the_new_home(
        engine: Engine, settings: Settings, tmp_path: Any) -> None:
    from alarm_core.policy import DispatchPolicy
    from alarm_core.registry import import_responders

    from .alarm_support import responder

    load_regions(engine, settings, limburg())
    border_street(engine)  # de-1 lives east of the border: DE-NW-AC
    add_responder(engine, "de-1", near(150, -300, KERKRADE), NOW)  # moves west, names none
    csv = tmp_path / "moved.csv"
    csv.write_text("id,name,date_of_birth,home_lat,home_lon\n"
                   f"de-2,Responder de-2,1985-04-12,{KERKRADE[0]},{KERKRADE[1] - 0.01}\n"
                   f"nl-1,Responder nl-1,1985-04-12,{KERKRADE[0]},{KERKRADE[1] - 0.005}\n",
                   encoding="utf-8")
    import_responders(engine, csv, NOW, DispatchPolicy())

    assert responder(engine, "de-1").region == "NL-LI"
    assert responder(engine, "de-2").region == "NL-LI"  # re-import with a new home
    assert responder(engine, "nl-1").region == "NL-LI"
