"""The Flask application: the console's pages for each role and the JSON API under /api/v1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, request
from prometheus_client import generate_latest

from alarm_core.metrics import AlarmMetrics
from fleet.settings import Settings, load_settings
from web.errors import register_error_handlers
from web.i18n import init_app as install_languages
from web.security import install, limit_logins


def _strings(document: Any) -> Iterator[str]:
    """Every key and string value in a parsed JSON document."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for key, value in document.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _strings(value)


def create_app(engine: Any, *, settings: Settings | None = None, alarm_core: Any = None,
               metrics: AlarmMetrics | None = None,
               clock: Callable[[], datetime] | None = None,
               ready: Callable[[], bool] | None = None, coverage: Any = None,
               active: Callable[[], bool] | None = None,
               config: dict[str, Any] | None = None) -> Flask:
    """The application around a database engine and, where they run, the alarm core and the
    live coverage (`fleet.coverage.live.LiveCoverage`). `active` says whether this node's
    alarm core is the active one (of an active/standby pair); a standby answers 503."""
    from web.api.aeds import bp as aeds_api
    from web.api.coverage import bp as coverage_api
    from web.api.incidents import bp as incidents_api
    from web.api.openapi import bp as api_docs
    from web.console.audit import bp as audit
    from web.console.auth import bp as auth
    from web.console.fleet import bp as fleet
    from web.console.inbox import bp as inbox
    from web.console.incidents import bp as dispatch
    from web.console.maps import bp as maps
    from web.console.news import bp as news
    from web.console.responder import bp as responder
    from web.console.responder import links as questionnaire_links

    settings = settings or (alarm_core.settings if alarm_core is not None else load_settings())
    app = Flask(__name__)
    app.config.update(ENGINE=engine, SETTINGS=settings, ALARM_CORE=alarm_core,
                      ALARM_METRICS=metrics or AlarmMetrics(), CLOCK=clock, COVERAGE=coverage,
                      ALARM_ACTIVE=active,
                      MAX_CONTENT_LENGTH=64 * 1024, **(config or {}))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    limiter = install(app, settings)
    app.extensions["aedfleet_limiter"] = limiter  # the limits' wrappers hold it weakly only
    install_languages(app)
    register_error_handlers(app)
    for blueprint in (auth, fleet, maps, dispatch, responder, questionnaire_links, inbox, news,
                      audit, api_docs):
        app.register_blueprint(blueprint)
    # Machine callers authenticate with bearer tokens, not cookies: no CSRF token to send.
    csrf = app.extensions["csrf"]
    for blueprint in (incidents_api, coverage_api, aeds_api):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    limit_logins(app, limiter, "auth.login", settings.web.login_limit,
                 settings.web.login_limit_per_user)

    # Scripts only from the application; images also from the configured tile server.
    tiles = urlsplit(settings.web.tile_url)  # validated by the settings: a plain host
    tile_origin = (f" {tiles.scheme}://{tiles.netloc.replace('{s}', '*')}"
                   if tiles.scheme and tiles.netloc else "")
    policy = (f"default-src 'self'; img-src 'self' data:{tile_origin}; "
              "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")

    @app.before_request
    def _no_nul() -> None:
        """A NUL character is in no id, name or address (PostgreSQL refuses it): 400."""
        values = [request.path, *(v for _, v in request.args.items(multi=True))]
        if request.method in ("POST", "PUT"):
            if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                values += [v for _, v in request.form.items(multi=True)]
            elif request.is_json:
                try:
                    values += list(_strings(request.get_json(silent=True)))
                except RecursionError:
                    abort(400, "the JSON body nests too deeply")
        if any("\x00" in value for value in values):
            abort(400, "the request holds a NUL character")

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", policy)
        return response

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(generate_latest(app.config["ALARM_METRICS"].registry),
                        mimetype="text/plain; version=0.0.4")

    @app.get("/healthz")
    def health() -> tuple[dict[str, str], int]:
        """200 when serving: where the alarm core runs, only on the active node, once it has
        reached the broker (later broker outages do not stop it taking calls); else 503."""
        if active is not None and not active():
            return {"status": "standby"}, 503
        if ready is not None and not ready():
            return {"status": "starting"}, 503
        return {"status": "ok"}, 200

    return app
