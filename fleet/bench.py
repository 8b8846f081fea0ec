"""Benchmarks of the registry: readiness of a national fleet in one pass, and registry import.

Each benchmark measures the project's way and a straightforward baseline on the same machine in
the same run, and reports both with their ratio. Figures are wall-clock seconds, best of `repeat`.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from fleet import migrate
from fleet.db import make_engine
from fleet.models import Aed, Cabinet, Manager, Municipality, ReadinessDeclaration, TelemetryState
from fleet.readiness import evaluate_readiness
from fleet.registry import (
    aed_statuses,
    evaluate_status,
    import_registry,
    readiness_inputs,
    summarize,
)
from fleet.registry_file import read_registry_file
from fleet.settings import Settings

# The Netherlands' bounding box; AEDs of the synthetic national fleet are spread inside it.
NL_BOX = (50.75, 53.55, 3.36, 7.23)
HOURS = ["24/7"] * 8 + ["Mo-Fr 08:00-18:00", "Mo-Sa 07:00-22:00; Su 09:00-17:00; PH off"]


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass(frozen=True)
class SyntheticFleet:
    engine: Engine
    aeds: int
    with_cabinet: int
    declared: int


def build_fleet(url: str, count: int, now: datetime, seed: int = 25_000) -> SyntheticFleet:
    """A fleet of `count` AEDs with a realistic mix of cabinets, telemetry and declarations."""
    rng = random.Random(seed)
    engine = make_engine(url)
    migrate.upgrade(engine)
    south, north, west, east = NL_BOX
    aeds, cabinets, states, declarations = [], [], [], []
    today = now.date()
    for i in range(count):
        aed_id = f"BENCH-{i:06d}"
        aeds.append({
            "id": aed_id, "lat": rng.uniform(south, north), "lon": rng.uniform(west, east),
            "access": "public" if rng.random() < 0.95 else "private",
            "opening_hours": rng.choice(HOURS), "out_of_service": rng.random() < 0.01,
            "pads_expiry": today + timedelta(days=rng.randint(-60, 900)),
            "battery_expiry": today + timedelta(days=rng.randint(-60, 1500)),
            "municipality_id": 1, "manager_id": 1 + i % 500,
            "created_at": now, "updated_at": now, "source": "bench",
        })
        if rng.random() < 0.4:
            device_id = f"cab-{aed_id}"
            cabinets.append({"device_id": device_id, "aed_id": aed_id, "register_map": "rcc1",
                             "created_at": now})
            states.append(_random_state(rng, device_id, now, today))
        if rng.random() < 0.85:
            declarations.append({
                "aed_id": aed_id, "declared_by": "bench",
                "declared_at": now - timedelta(days=rng.randint(0, 450)), "recorded_at": now})
    with engine.begin() as connection:
        connection.execute(insert(Municipality), [{"id": 1, "name": "Benchmark"}])
        connection.execute(insert(Manager),
                           [{"id": m, "name": f"Manager {m}", "kind": "organisation"}
                            for m in range(1, 501)])
        for table, rows in ((Aed, aeds), (Cabinet, cabinets), (TelemetryState, states),
                            (ReadinessDeclaration, declarations)):
            for start in range(0, len(rows), 5_000):
                connection.execute(insert(table), rows[start:start + 5_000])
    return SyntheticFleet(engine, count, len(cabinets), len(declarations))


def _random_state(rng: random.Random, device_id: str, now: datetime, today: date) -> dict:
    return {
        "device_id": device_id, "seq": rng.randint(1, 100_000),
        "ts": now - timedelta(minutes=rng.choice([1, 5, 14, 20, 90])), "received_at": now,
        "online": rng.random() > 0.02, "battery_pct": rng.randint(5, 100),
        "pads_expiry": today + timedelta(days=rng.randint(-30, 900)),
        "self_test": rng.choices(["pass", "fail", "unknown"], [0.95, 0.02, 0.03])[0],
        "self_test_ts": now - timedelta(hours=rng.randint(1, 24 * 10)),
        "door_open": rng.random() < 0.02, "aed_present": rng.random() > 0.01,
        "temperature_c": rng.uniform(-5, 45), "power": "mains",
    }


def bench_readiness(count: int = 25_000, repeat: int = 3, baseline_sample: int = 2_000,
                    settings: Settings | None = None) -> dict[str, Any]:
    """Readiness of `count` AEDs in one pass, against a per-AED (N+1 query) baseline."""
    settings = settings or Settings()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        fleet = build_fleet(f"sqlite:///{Path(folder) / 'bench.db'}", count, now)
        engine = fleet.engine

        def one_pass() -> list:
            with Session(engine) as session:
                return aed_statuses(session, settings, now)

        statuses = one_pass()
        full_pass = best_of(repeat, one_pass)

        inputs = [readiness_inputs(
            s.aed, s.device_id, s.telemetry,
            s.declaration.declared_at if s.declaration is not None else None)
            for s in statuses]

        def rules_only() -> None:
            for facts, reading, declaration in inputs:
                evaluate_readiness(facts, reading, declaration, now, settings.readiness)

        rules = best_of(repeat, rules_only)

        sample = [s.aed.id for s in statuses[:baseline_sample]]

        def per_aed_queries() -> None:
            with Session(engine) as session:
                for aed_id in sample:
                    aed = session.get(Aed, aed_id)
                    assert aed is not None
                    cabinet = session.exec(select(Cabinet).where(Cabinet.aed_id == aed_id)).first()
                    telemetry = session.get(TelemetryState, cabinet.device_id) if cabinet else None
                    declaration = session.exec(
                        select(ReadinessDeclaration)
                        .where(ReadinessDeclaration.aed_id == aed_id)
                        .order_by(col(ReadinessDeclaration.declared_at).desc())).first()
                    municipality = session.get(Municipality, aed.municipality_id)
                    manager = session.get(Manager, aed.manager_id)
                    evaluate_status(aed, municipality.name if municipality else None,
                                    manager.name if manager else None,
                                    cabinet.device_id if cabinet else None, telemetry,
                                    declaration, settings, now)

        baseline = best_of(max(1, repeat - 1), per_aed_queries) * count / len(sample)
        engine.dispose()
    summary = summarize(statuses)
    return {
        "benchmark": "readiness", "aeds": count, "with_cabinet": fleet.with_cabinet,
        "declared": fleet.declared, "by_state": summary.by_state,
        "one_pass_s": round(full_pass, 4),
        "one_pass_aeds_per_s": round(count / full_pass),
        "rules_only_s": round(rules, 4),
        "rules_only_us_per_aed": round(rules / count * 1e6, 2),
        "baseline_per_aed_queries_s": round(baseline, 3),
        "baseline_sample": len(sample),
        "speedup_vs_baseline": round(baseline / full_pass, 1),
    }


def bench_import(path: Path, repeat: int = 3) -> dict[str, Any]:
    """Import of a registry file into a fresh database, against row-by-row transactions."""
    parse = best_of(repeat, lambda: read_registry_file(path))
    parsed = read_registry_file(path)
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1_000_000))

        def fresh_engine() -> Engine:
            engine = make_engine(f"sqlite:///{Path(folder) / f'import{next(counter)}.db'}")
            migrate.upgrade(engine)
            return engine

        def timed_import() -> float:
            engine = fresh_engine()
            start = time.perf_counter()
            import_registry(engine, parsed)
            elapsed = time.perf_counter() - start
            engine.dispose()
            return elapsed

        def timed_row_by_row() -> float:
            engine = fresh_engine()
            start = time.perf_counter()
            for line_record in parsed.records:
                import_registry(engine, type(parsed)(format=parsed.format, records=[line_record]))
            elapsed = time.perf_counter() - start
            engine.dispose()
            return elapsed

        batched = min(timed_import() for _ in range(repeat))
        baseline = min(timed_row_by_row() for _ in range(max(1, repeat - 1)))
        engine = fresh_engine()
        import_registry(engine, parsed)
        reimport_start = time.perf_counter()
        report = import_registry(engine, parsed)
        reimport = time.perf_counter() - reimport_start
        engine.dispose()
    rows = parsed.rows
    return {
        "benchmark": "import", "file": path.name, "format": parsed.format, "rows": rows,
        "imported": len(parsed.records), "rejected": len(parsed.rejections),
        "parse_s": round(parse, 4), "import_s": round(batched, 4),
        "rows_per_s": round(rows / (parse + batched)),
        "reimport_unchanged_s": round(reimport, 4), "reimport_unchanged": report.unchanged,
        "baseline_row_by_row_s": round(baseline, 3),
        "speedup_vs_baseline": round(baseline / batched, 1),
    }
