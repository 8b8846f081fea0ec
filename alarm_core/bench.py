"""`aedfleet bench dispatch`: the alarm core at national scale.

A synthetic Netherlands: responders and AEDs placed where people live (CBS population per PC4
area), incidents where cardiac arrests are expected (age-weighted expected arrests per PC4).
Attributes (ages, certificates, availability, readiness, opening hours) are drawn at rates a
real register shows. Measured in one run on the same data:

- selection in-process with the spatial pools (p50/p99), and what updates cost;
- the same selections by a naive scan with geopy distances, and by PostGIS KNN queries
  (`ORDER BY geog <-> point`) on a real PostgreSQL/PostGIS: ratios, and whether all three
  chose the same responders and AEDs;
- `POST /api/v1/incidents` until every alert is on a real Mosquitto broker, measured by a
  subscriber (p50/p99).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from geopy.distance import great_circle
from sqlalchemy import insert

from alarm_core.geo import TravelModel, to_xyz
from alarm_core.policy import DispatchPolicy
from alarm_core.pools import AedEntry, AedPool, ResponderEntry, ResponderPool
from alarm_core.responders import ResponderFacts, not_alertable_reason
from alarm_core.selection import (
    Plan,
    _not_deployable,
    assign_roles,
    search_radius,
    select_plan,
)
from fleet.population import load_pc4, sample_points

TZ = "Europe/Amsterdam"
SETTLE_S = 5.0
HOURS = ["24/7"] * 13 + ["Mo-Fr 08:00-18:00"] * 4 + ["Mo-Sa 09:00-21:00"] * 2 + \
    ["Mo-Su 07:00-23:00"]


@dataclass
class World:
    responders: list[ResponderEntry]
    aeds: list[AedEntry]
    incidents: np.ndarray
    """(n, 2) lat, lon"""
    times: list[datetime]


def build_world(responders: int, aeds: int, incidents: int, now: datetime,
                seed: int = 112) -> World:
    """A synthetic national population of responders, AEDs and incidents (see module doc)."""
    rng = np.random.default_rng(seed)
    areas = load_pc4()
    people = sample_points(areas, areas.population, responders, rng)
    places = sample_points(areas, areas.population, aeds, rng)
    calls = sample_points(areas, areas.expected_ohca, incidents, rng)
    today = now.date()
    born = rng.integers(date(1950, 1, 1).toordinal(), date(2010, 1, 1).toordinal(), responders)
    certified = today.toordinal() - rng.integers(0, 450, responders)
    quiet = rng.random(responders) < 0.2
    entries = [
        ResponderEntry(
            id=f"R{i:06d}", lat=float(people[i, 0]), lon=float(people[i, 1]),
            date_of_birth=date.fromordinal(int(born[i])),
            certificate_date=None if rng.random() < 0.02 else
            date.fromordinal(int(certified[i])),
            available=bool(rng.random() < 0.92), active=bool(rng.random() < 0.97),
            quiet_from=clock_time(23, 0) if quiet[i] else None,
            quiet_until=clock_time(7, 0) if quiet[i] else None,
            medical=bool(rng.random() < 0.15), app=bool(rng.random() < 0.95))
        for i in range(responders)]
    states = rng.choice(["ready", "unverified", "not_ready"], size=aeds, p=[0.75, 0.12, 0.13])
    hours = rng.choice(HOURS, size=aeds)
    aed_entries = [
        AedEntry(id=f"A{i:06d}", lat=float(places[i, 0]), lon=float(places[i, 1]),
                 readiness=str(states[i]), public=bool(rng.random() < 0.95),
                 opening_hours=str(hours[i]), access_code=f"{rng.integers(1000, 9999)}",
                 location_hint="next to the entrance")
        for i in range(aeds)]
    # Calls spread over a week: day and night, weekdays and the weekend.
    offsets = rng.uniform(0, 7 * 86_400, incidents)
    times = [now + timedelta(seconds=float(s)) for s in offsets]
    return World(entries, aed_entries, calls, times)


def pools_of(world: World, policy: DispatchPolicy) -> tuple[ResponderPool, AedPool]:
    responders = ResponderPool(policy, include_sms=True)
    responders.load(world.responders)
    aeds = AedPool()
    aeds.load(world.aeds)
    return responders, aeds


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def signature(plan: Plan) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What must agree between methods: the responders (in order) and the AEDs chosen."""
    return (tuple(a.responder_id for a in plan.responders), tuple(a.id for a in plan.aeds))


# -- baselines ---------------------------------------------------------------------------------


def naive_plan(lat: float, lon: float, at: datetime, world: World, responders: ResponderPool,
               aeds: AedPool, policy: DispatchPolicy) -> Plan:
    """The same selection by scanning everyone with geopy distances."""
    local = at.astimezone(ZoneInfo(TZ))
    found = []
    for slot, entry in enumerate(world.responders):
        if entry.lat is None or entry.lon is None:
            continue
        metres = great_circle((lat, lon), (entry.lat, entry.lon)).meters
        if metres > policy.max_search_radius_m:
            continue
        facts = ResponderFacts(entry.date_of_birth, entry.certificate_date, entry.available,
                               entry.quiet_from, entry.quiet_until, entry.active, entry.busy)
        if not_alertable_reason(facts, local, policy) is None and (entry.app or
                                                                   responders.include_sms):
            found.append((metres, slot))
    found.sort()
    return _finish(lat, lon, at, found, _naive_aeds(lat, lon, at, world, aeds, policy),
                   responders, aeds, policy)


def _naive_aeds(lat: float, lon: float, at: datetime, world: World, aeds: AedPool,
                policy: DispatchPolicy) -> list[tuple[int, float, str]]:
    near = sorted((great_circle((lat, lon), (e.lat, e.lon)).meters, slot)
                  for slot, e in enumerate(world.aeds))
    chosen: list[tuple[int, float, str]] = []
    for metres, slot in near:
        if metres > policy.aed_search_radius_m or len(chosen) == policy.max_aeds:
            break
        if _not_deployable(slot, aeds, policy, at, TZ, "NL") is None:
            hours = aeds.entries[slot].opening_hours
            chosen.append((slot, metres, "always_open" if hours == "24/7" else "open"))
    return chosen


def _finish(lat: float, lon: float, at: datetime, found: list[tuple[float, int]],
            chosen: list[tuple[int, float, str]], responders: ResponderPool, aeds: AedPool,
            policy: DispatchPolicy) -> Plan:
    """Radius widening and roles, exactly as `select_plan` does them, on found candidates."""
    distances = np.array([m for m, _s in found])
    radius, count = search_radius(distances, policy)
    slots = [s for _m, s in found[:count]]
    positions = np.array([responders.index.position(s) for s in slots]).reshape(-1, 3)
    return assign_roles(lat, lon, at, radius, [responders.ids[s] for s in slots], positions,
                        distances[:count], chosen, aeds,
                        TravelModel(policy.speed_mps, policy.turnout_s), policy)


class PostgisSelector:
    """The same selection with PostGIS: eligibility in SQL, KNN ordering by `<->`."""

    def __init__(self, url: str, world: World, policy: DispatchPolicy,
                 responders: ResponderPool) -> None:
        import psycopg

        self.policy = policy
        self.responders = responders
        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                                    autocommit=True)
        cur = self.conn.cursor()
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute("DROP SCHEMA IF EXISTS bench_dispatch CASCADE")
        cur.execute("CREATE SCHEMA bench_dispatch")
        cur.execute("""CREATE TABLE bench_dispatch.responder (
            slot integer PRIMARY KEY, geog geography(Point, 4326) NOT NULL,
            adult_day integer, cert_until_day integer, available boolean, active boolean,
            busy boolean, quiet_from smallint, quiet_until smallint, app boolean)""")
        cur.execute("""CREATE TABLE bench_dispatch.aed (
            slot integer PRIMARY KEY, geog geography(Point, 4326) NOT NULL, state smallint,
            in_use boolean, public boolean, always_open boolean)""")
        cols = responders._cols  # noqa: SLF001 -- the pool's own columns, so both agree
        with cur.copy("COPY bench_dispatch.responder FROM STDIN") as copy:
            for slot, entry in enumerate(world.responders):
                copy.write_row((slot, f"SRID=4326;POINT({entry.lon} {entry.lat})",
                                int(cols["adult_day"][slot]), int(cols["cert_until_day"][slot]),
                                entry.available, entry.active, entry.busy,
                                int(cols["quiet_from"][slot]), int(cols["quiet_until"][slot]),
                                entry.app))
        with cur.copy("COPY bench_dispatch.aed FROM STDIN") as copy:
            for slot, aed in enumerate(world.aeds):
                copy.write_row((slot, f"SRID=4326;POINT({aed.lon} {aed.lat})",
                                {"ready": 0, "unverified": 1}.get(aed.readiness, 2),
                                aed.in_use, aed.public, aed.opening_hours == "24/7"))
        cur.execute("CREATE INDEX ON bench_dispatch.responder USING gist (geog)")
        cur.execute("CREATE INDEX ON bench_dispatch.aed USING gist (geog)")
        cur.execute("ANALYZE bench_dispatch.responder")
        cur.execute("ANALYZE bench_dispatch.aed")

    RESPONDERS = """
        SELECT slot, ST_Distance(geog, p, false) AS metres
        FROM bench_dispatch.responder, (SELECT ST_MakePoint(%(lon)s, %(lat)s)::geography AS p) q
        WHERE ST_DWithin(geog, p, %(radius)s, false)
          AND adult_day <= %(today)s AND cert_until_day >= %(today)s
          AND active AND available AND NOT busy AND (app OR %(sms)s)
          AND NOT (quiet_from >= 0 AND quiet_until >= 0 AND quiet_from <> quiet_until AND
                   CASE WHEN quiet_from < quiet_until
                        THEN %(minute)s >= quiet_from AND %(minute)s < quiet_until
                        ELSE %(minute)s >= quiet_from OR %(minute)s < quiet_until END)
        ORDER BY geog <-> p, slot
        LIMIT %(limit)s"""

    AEDS = """
        SELECT slot, ST_Distance(geog, p, false) AS metres
        FROM bench_dispatch.aed, (SELECT ST_MakePoint(%(lon)s, %(lat)s)::geography AS p) q
        WHERE ST_DWithin(geog, p, %(radius)s, false)
          AND state = 0 AND NOT in_use AND public AND always_open
        ORDER BY geog <-> p, slot
        LIMIT %(limit)s"""

    def plan(self, lat: float, lon: float, at: datetime, aeds: AedPool) -> Plan:
        policy = self.policy
        local = at.astimezone(ZoneInfo(TZ))
        cur = self.conn.cursor()
        # Among the max_alerted nearest eligible within the largest radius, the widening
        # rule picks the same radius as over all of them (min_responders <= max_alerted).
        cur.execute(self.RESPONDERS, {
            "lat": lat, "lon": lon, "radius": policy.max_search_radius_m,
            "today": local.toordinal(), "minute": local.hour * 60 + local.minute,
            "sms": self.responders.include_sms, "limit": policy.max_alerted})
        found = [(float(metres), int(slot)) for slot, metres in cur.fetchall()]
        found.sort()
        cur.execute(self.AEDS, {"lat": lat, "lon": lon, "radius": policy.aed_search_radius_m,
                                "limit": policy.max_aeds})
        chosen = [(int(slot), float(metres), "always_open") for slot, metres in cur.fetchall()]
        return _finish(lat, lon, at, found, chosen, self.responders, aeds, policy)

    def close(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS bench_dispatch CASCADE")
        self.conn.close()


# -- the benchmark -----------------------------------------------------------------------------


def _timed(run: Callable[[], Plan]) -> tuple[Plan, float]:
    started = time.perf_counter()
    plan = run()
    return plan, (time.perf_counter() - started) * 1000


def bench_selection(world: World, policy: DispatchPolicy, naive_sample: int,
                    postgis_url: str | None, postgis_sample: int,
                    progress: Callable[[str], None]) -> dict[str, Any]:
    """Selections in-process for every incident, and the two baselines on samples."""
    started = time.perf_counter()
    responders, aeds = pools_of(world, policy)
    build_s = time.perf_counter() - started
    progress(f"pools built in {build_s:.1f} s; selecting {len(world.times)} incidents")
    plans: list[Plan] = []
    select_ms: list[float] = []
    for (lat, lon), at in zip(world.incidents.tolist(), world.times, strict=True):
        plan, ms = _timed(partial(select_plan, lat, lon, at, responders, aeds, policy, TZ,
                                  "NL"))
        plans.append(plan)
        select_ms.append(ms)
    figures: dict[str, Any] = {
        "pools_build_s": round(build_s, 2),
        "select_p50_ms": round(percentile(select_ms, 50), 3),
        "select_p99_ms": round(percentile(select_ms, 99), 3),
        "alerted_mean": round(statistics.mean(len(p.responders) for p in plans), 1),
        "with_aed_pct": round(100 * sum(bool(p.aeds) for p in plans) / len(plans), 1),
        "expected_first_cpr_s_median": round(statistics.median(
            p.first_cpr_s for p in plans if p.first_cpr_s is not None), 1),
        "expected_first_aed_s_median": round(statistics.median(
            [p.first_aed_s for p in plans if p.first_aed_s is not None] or [float("nan")]), 1),
    }
    agree = True
    progress(f"naive geopy scan on {naive_sample} incidents")
    naive_ms, indexed_ms = [], []
    for i in range(min(naive_sample, len(plans))):
        (lat, lon), at = world.incidents[i].tolist(), world.times[i]
        plan, ms = _timed(partial(naive_plan, lat, lon, at, world, responders, aeds, policy))
        naive_ms.append(ms)
        indexed_ms.append(select_ms[i])
        agree = agree and signature(plan) == signature(plans[i])
    figures["naive_ms_mean"] = round(statistics.mean(naive_ms), 2)
    figures["naive_ratio"] = round(statistics.mean(naive_ms) / statistics.mean(indexed_ms), 1)
    if postgis_url:
        progress(f"loading PostGIS and running {postgis_sample} KNN selections")
        selector = PostgisSelector(postgis_url, world, policy, responders)
        try:
            pg_ms, own_ms = [], []
            for i in range(min(postgis_sample, len(plans))):
                (lat, lon), at = world.incidents[i].tolist(), world.times[i]
                plan, ms = _timed(partial(selector.plan, lat, lon, at, aeds))
                pg_ms.append(ms)
                own_ms.append(select_ms[i])
                agree = agree and signature(plan) == signature(plans[i])
        finally:
            selector.close()
        figures["postgis_p99_ms"] = round(percentile(pg_ms, 99), 3)
        figures["postgis_ratio"] = round(statistics.mean(pg_ms) / statistics.mean(own_ms), 1)
    else:
        figures["postgis_ratio"] = None
    figures["agree"] = agree
    figures.update(_update_costs(responders, aeds, world))
    figures.update(bench_regions(world, policy, plans, select_ms, progress))
    return figures


REGION_FILES = Path(__file__).resolve().parent.parent / "config" / "regions"


def bench_regions(world: World, policy: DispatchPolicy, single: list[Plan],
                  single_ms: list[float], progress: Callable[[str], None]) -> dict[str, Any]:
    """The same calls with the shipped region files loaded: the Netherlands as one region
    among others. Measures what regions add to a selection (finding the call's region,
    filtering by region) and whether the plans stay those of the single-region run."""
    from fleet.readiness import ReadinessPolicy
    from fleet.regions import RegionMap, read_region_file

    files = sorted(REGION_FILES.glob("*.toml"))
    if not files:
        return {}
    progress(f"the same calls with {len(files)} regions loaded")
    started = time.perf_counter()
    regions = RegionMap([read_region_file(f).region(policy, ReadinessPolicy()) for f in files])
    responder_codes = regions.codes_at(np.array([r.lat for r in world.responders]),
                                       np.array([r.lon for r in world.responders]))
    aed_codes = regions.codes_at(np.array([a.lat for a in world.aeds]),
                                 np.array([a.lon for a in world.aeds]))
    tagged = replace(world,
                     responders=[replace(r, region=c) for r, c in zip(world.responders,
                                                                     responder_codes,
                                                                     strict=True)],
                     aeds=[replace(a, region=c) for a, c in zip(world.aeds, aed_codes,
                                                                strict=True)])
    responders, aeds = pools_of(tagged, policy)
    tag_s = time.perf_counter() - started
    ms: list[float] = []
    same = 0
    for i, ((lat, lon), at) in enumerate(zip(world.incidents.tolist(), world.times,
                                             strict=True)):
        begun = time.perf_counter()
        region = regions.region_at(lat, lon)
        if region is None:
            continue
        plan = select_plan(lat, lon, at, responders, aeds, policy, regions=regions,
                           region=region)
        ms.append((time.perf_counter() - begun) * 1000)
        same += signature(plan) == signature(single[i])
    return {"regions": len(regions), "regions_tag_s": round(tag_s, 2),
            "regions_select_p50_ms": round(percentile(ms, 50), 3),
            "regions_select_p99_ms": round(percentile(ms, 99), 3),
            "regions_ratio_p50": round(percentile(ms, 50) / percentile(single_ms, 50), 2),
            "regions_same_plans_pct": round(100 * same / max(1, len(ms)), 2),
            "regions_calls_outside": len(single) - len(ms)}


def _update_costs(responders: ResponderPool, aeds: AedPool, world: World) -> dict[str, Any]:
    """Cost of the updates the pools take without a rebuild (and of a rebuild)."""
    rng = np.random.default_rng(7)
    count = 20_000
    picks = rng.integers(0, len(world.responders), count)
    rebuilds = responders.index.rebuilds
    started = time.perf_counter()
    for slot in picks.tolist():
        entry = world.responders[slot]
        if entry.lat is not None and entry.lon is not None:
            responders.move(entry.id, entry.lat + 0.001, entry.lon)
    move_us = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    for slot in rng.integers(0, len(world.aeds), count).tolist():
        aeds.set_readiness(world.aeds[slot].id, "not_ready" if slot % 2 else "ready")
    readiness_us = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    responders.index.rebuild()
    rebuild_ms = (time.perf_counter() - started) * 1000
    return {"location_update_us": round(move_us, 2),
            "readiness_update_us": round(readiness_us, 2),
            "rebuilds_during_updates": responders.index.rebuilds - rebuilds - 1,
            "full_rebuild_ms": round(rebuild_ms, 1)}


# -- intake to alerts on the broker ------------------------------------------------------------


def store_world(engine: Any, world: World, now: datetime) -> None:
    """Write the world into the database the way the registry would hold it."""
    from alarm_core.models import Responder
    from fleet.models import Aed, Cabinet, ReadinessDeclaration, TelemetryState

    rows = [{"id": e.id, "name": e.id, "date_of_birth": e.date_of_birth,
             "certificate_date": e.certificate_date, "training": "medical" if e.medical
             else "non_medical", "channel": "app" if e.app else "sms",
             "phone": None if e.app else "+31600000000", "available": e.available,
             "active": e.active, "quiet_from": e.quiet_from, "quiet_until": e.quiet_until,
             "home_lat": e.lat, "home_lon": e.lon, "ignored_in_row": 0, "created_at": now,
             "updated_at": now} for e in world.responders]
    aeds, cabinets, states, declarations = [], [], [], []
    today = now.date()
    for e in world.aeds:
        aeds.append({"id": e.id, "lat": e.lat, "lon": e.lon, "access": "public" if e.public
                     else "private", "opening_hours": e.opening_hours,
                     "cabinet_code": e.access_code, "location_hint": e.location_hint,
                     "out_of_service": e.readiness == "not_ready",
                     "pads_expiry": today + timedelta(days=400),
                     "battery_expiry": today + timedelta(days=800), "source": "bench",
                     "created_at": now, "updated_at": now})
        declarations.append({"aed_id": e.id, "declared_by": "bench", "declared_at": now,
                             "recorded_at": now})
        if e.readiness == "ready":
            device = f"cab-{e.id}"
            cabinets.append({"device_id": device, "aed_id": e.id, "register_map": "rcc1",
                             "created_at": now})
            states.append({"device_id": device, "seq": 1, "ts": now, "received_at": now,
                           "online": True, "status_ts": now, "battery_pct": 95,
                           "pads_expiry": today + timedelta(days=400),
                           "battery_expiry": today + timedelta(days=800), "self_test": "pass",
                           "self_test_ts": now, "door_open": False, "aed_present": True,
                           "temperature_c": 15.0, "heater_on": False, "power": "mains"})
    with engine.begin() as connection:
        for table, batch in ((Responder, rows), (Aed, aeds), (Cabinet, cabinets),
                             (TelemetryState, states), (ReadinessDeclaration, declarations)):
            for start in range(0, len(batch), 5_000):
                connection.execute(insert(table), batch[start:start + 5_000])


class AlertCounter:
    """A subscriber on every responder's alert topic: when each incident's alerts arrive."""

    def __init__(self, port: int, user: str, password: str) -> None:
        import paho.mqtt.client as mqtt

        self.arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-alerts")
        self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("responders/+/alert", qos=1)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        arrived = time.perf_counter()
        incident = json.loads(message.payload)["incident_id"]
        with self._lock:
            self.arrivals.setdefault(incident, []).append(arrived)

    def wait_for(self, incident: str, count: int, timeout_s: float) -> list[float]:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            with self._lock:
                got = list(self.arrivals.get(incident, []))
            if len(got) >= count:
                return got
            time.sleep(0.0005)
        return got

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def bench_alerts(world: World, policy: DispatchPolicy, incidents: int,
                 progress: Callable[[str], None], server_url: str | None = None,
                 ) -> dict[str, Any]:
    """POST an incident, wait for all its alerts on the broker; repeat; latency percentiles.

    The alarm core runs as its own process (`aedfleet alarm`), as in production; this
    process is the 112 centre's HTTP client and a subscriber on every responder's alerts.
    """
    from device_agents.local_broker import LocalMosquitto, free_port
    from fleet import migrate
    from fleet.db import make_engine
    from web.auth import create_token

    with tempfile.TemporaryDirectory(prefix="aedfleet-bench-dispatch-") as folder:
        root = Path(folder)
        now = datetime.now(UTC)
        database_url = (_fresh_database(server_url) if server_url
                        else f"sqlite:///{root / 'alarm.db'}")
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        started = time.perf_counter()
        store_world(engine, world, now)
        token = create_token(engine, "bench-112", now)
        engine.dispose()
        progress(f"database filled in {time.perf_counter() - started:.1f} s")
        broker = LocalMosquitto(root / "broker", devices=[], services=("fleet", "bench"))
        broker.start()
        port = free_port()
        env = {**os.environ, "AEDFLEET_DATABASE_URL": database_url,
               "AEDFLEET_MQTT_URL": broker.url("fleet"), "AEDFLEET_ALARM__CLIENT_ID": "bench",
               "AEDFLEET_CONFIG": str(_write_policy(root, policy))}
        aedfleet = Path(sys.executable).with_name("aedfleet")
        started = time.perf_counter()
        with (root / "alarm.log").open("wb") as log:
            alarm = subprocess.Popen([str(aedfleet), "alarm", "--http", f"127.0.0.1:{port}"],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        counter = AlertCounter(broker.port, "bench", broker.credentials["bench"])
        latencies: list[float] = []
        alerted: list[int] = []
        missing = 0
        try:
            _wait_for_http(port, alarm, root / "alarm.log")
            load_s = time.perf_counter() - started
            progress(f"alarm core up in {load_s:.1f} s; posting {incidents} incidents")
            # Steady state: the first refresh and the first reminder run are one-offs of a
            # service that then runs for months.
            time.sleep(SETTLE_S)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            for i in range(incidents):
                lat, lon = world.incidents[-1 - i].tolist()
                body = json.dumps({"reference": f"bench-{i}", "lat": lat, "lon": lon})
                sent = time.perf_counter()
                connection.request("POST", "/api/v1/incidents", body, headers)
                response = connection.getresponse()
                document = json.loads(response.read())
                if response.status != 201:
                    tail = (root / "alarm.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"intake failed: {response.status} {document}\n{tail}")
                count = document["counts"]["alerted"]
                if count:
                    got = counter.wait_for(document["id"], count, 10.0)
                    if len(got) < count:
                        missing += count - len(got)
                    else:
                        latencies.append((max(got) - sent) * 1000)
                        alerted.append(count)
                connection.request("POST", f"/api/v1/incidents/{document['id']}/close",
                                   json.dumps({"reason": "bench"}), headers)
                connection.getresponse().read()
        finally:
            counter.stop()
            alarm.terminate()
            try:
                alarm.wait(20)
            except subprocess.TimeoutExpired:
                alarm.kill()
            broker.stop()
    return {"alarm_core_start_s": round(load_s, 2),
            "alerts_incidents": len(latencies), "alerts_per_incident_mean":
            round(statistics.mean(alerted), 1) if alerted else 0,
            "alerts_p50_ms": round(percentile(latencies, 50), 1),
            "alerts_p99_ms": round(percentile(latencies, 99), 1),
            "alerts_missing": missing}


def _fresh_database(server_url: str) -> str:
    """An empty `bench_dispatch_alerts` database on this PostgreSQL server."""
    import psycopg

    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS bench_dispatch_alerts WITH (FORCE)")
        connection.execute("CREATE DATABASE bench_dispatch_alerts")
    base, _, _name = server_url.rpartition("/")
    return f"{base}/bench_dispatch_alerts"


def _write_policy(root: Path, policy: DispatchPolicy) -> Path:
    """A configuration file holding the benchmark's dispatch policy."""
    path = root / "aedfleet.toml"
    lines = ["[dispatch]"]
    for name, value in vars(policy).items():
        if isinstance(value, bool):
            lines.append(f"{name} = {str(value).lower()}")
        elif isinstance(value, int | float):
            lines.append(f"{name} = {value!r}")
        elif isinstance(value, str):
            lines.append(f"{name} = {json.dumps(str(value))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wait_for_http(port: int, process: subprocess.Popen[bytes], log: Path,
                   timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"aedfleet alarm exited: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("aedfleet alarm did not answer within two minutes")


def bench_dispatch(responders: int = 250_000, aeds: int = 25_000, incidents: int = 10_000,
                   naive_sample: int = 50, postgis_url: str | None = None,
                   postgis_sample: int = 1_000, alert_incidents: int = 200,
                   alerts_server: str | None = None,
                   progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """All dispatch figures in one run (see the module's description)."""
    now = datetime.now(UTC).replace(microsecond=0)
    policy = DispatchPolicy()
    started = time.perf_counter()
    world = build_world(responders, aeds, incidents, now)
    progress(f"world of {responders} responders, {aeds} AEDs, {incidents} incidents built in "
             f"{time.perf_counter() - started:.1f} s")
    figures: dict[str, Any] = {"responders": responders, "aeds": aeds, "incidents": incidents}
    figures.update(bench_selection(world, policy, naive_sample, postgis_url, postgis_sample,
                                   progress))
    if alert_incidents:
        # The intake run uses real time: calls are "now", not spread over the week.
        live = replace(world, times=[now] * len(world.times))
        figures.update(bench_alerts(live, policy, alert_incidents, progress, alerts_server))
        figures["alerts_database"] = "postgresql" if alerts_server else "sqlite"
    return figures


__all__ = ["bench_dispatch", "build_world", "naive_plan", "to_xyz"]
