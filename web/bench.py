"""`aedfleet bench web`: server time of the fleet page and the AED list API at national size.

A synthetic fleet of 25,000 AEDs (readiness recorded as the ingest does) in a fresh database;
requests go through the whole Flask application (routing, session, authorization, queries,
templates) in-process, so the figures are server time without the network. The baseline is
what a page would cost that evaluated every AED's readiness live on each request.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from fleet.accounts import create_account
from fleet.bench import build_fleet
from fleet.db import session_scope
from fleet.ingest.readiness import ReadinessRecorder, mark_sweep
from fleet.models import Aed
from fleet.registry import aed_statuses
from fleet.settings import Settings
from web import create_app

PASSWORD = "bench-password-1"


def _timings(run: Callable[[], Any], requests: int) -> list[float]:
    run()  # warm caches and the template
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def bench_web(count: int, requests: int, settings: Settings, database_url: str | None = None,
              progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        progress(f"building a fleet of {count:,} AEDs")
        fleet = build_fleet(url, count, now)
        engine = fleet.engine
        with session_scope(engine) as session:
            ReadinessRecorder(session, settings, now).refresh(None, "benchmark")
            mark_sweep(session, now)
        create_account(engine, "bench-admin", PASSWORD, "admin", now)
        create_account(engine, "bench-manager", PASSWORD, "manager", now, manager="Manager 1")
        app = create_app(engine, settings=settings, clock=lambda: now,
                         config={"SECRET_KEY": "benchmark", "WTF_CSRF_ENABLED": False,
                                 "RATELIMIT_ENABLED": False})
        figures: dict[str, Any] = {"aeds": count, "requests": requests,
                                   "database": engine.url.get_backend_name()}
        clients = {}
        for name in ("bench-admin", "bench-manager"):
            client = app.test_client()
            answer = client.post("/login", data={"username": name, "password": PASSWORD})
            assert answer.status_code == 303, answer.status_code
            clients[name] = client

        def get(client: Any, path: str) -> Callable[[], None]:
            def run() -> None:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
            return run

        admin, manager = clients["bench-admin"], clients["bench-manager"]
        progress(f"{requests} requests per page")
        cases = {"fleet_page": get(admin, "/fleet"),
                 "fleet_page_last": get(admin, f"/fleet?page={count // 50}"),
                 "api_list": get(admin, "/api/v1/aeds?limit=100"),
                 "manager_fleet_page": get(manager, "/fleet"),
                 "api_map": get(admin, "/api/v1/map/aeds")}
        for name, run in cases.items():
            times = _timings(run, requests if name != "api_map" else max(5, requests // 10))
            figures[f"{name}_p50_ms"] = _p(times, 0.5)
            figures[f"{name}_p99_ms"] = _p(times, 0.99)

        progress("baseline: live readiness of every AED per request")
        with Session(engine) as session:
            first = session.exec(select(Aed.id).order_by(col(Aed.id))).first()
        assert first is not None

        def live_everything() -> None:
            with Session(engine) as session:
                statuses = aed_statuses(session, settings, now)
                sorted(statuses, key=lambda s: (s.readiness.state.value, s.aed.id))[:50]
        baseline = _timings(live_everything, 3)
        figures["baseline_live_page_ms"] = round(statistics.median(baseline), 1)
        figures["speedup_vs_baseline"] = round(
            figures["baseline_live_page_ms"] / figures["fleet_page_p50_ms"], 1)
        engine.dispose()
    return figures
