"""The Flask application: the JSON API (and, later, the console)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response
from prometheus_client import generate_latest

from alarm_core.metrics import AlarmMetrics
from web.errors import register_error_handlers


def create_app(engine: Any, *, alarm_core: Any = None, metrics: AlarmMetrics | None = None,
               clock: Callable[[], datetime] | None = None,
               ready: Callable[[], bool] | None = None, coverage: Any = None) -> Flask:
    """The application around a database engine and, where they run, the alarm core and the
    live coverage (`fleet.coverage.live.LiveCoverage`)."""
    from web.api.coverage import bp as coverage_api
    from web.api.incidents import bp as incidents

    app = Flask(__name__)
    app.config.update(ENGINE=engine, ALARM_CORE=alarm_core,
                      ALARM_METRICS=metrics or AlarmMetrics(), CLOCK=clock, COVERAGE=coverage,
                      MAX_CONTENT_LENGTH=64 * 1024)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    app.register_blueprint(incidents)
    app.register_blueprint(coverage_api)

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(generate_latest(app.config["ALARM_METRICS"].registry),
                        mimetype="text/plain; version=0.0.4")

    @app.get("/healthz")
    def health() -> tuple[dict[str, str], int]:
        """200 when serving; 503 while a dependency (the alarm core's broker) is not there."""
        if ready is not None and not ready():
            return {"status": "starting"}, 503
        return {"status": "ok"}, 200

    return app
