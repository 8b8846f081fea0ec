"""Coverage for the console's map and for municipalities' own tools (read-only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, request

from alarm_core.errors import Refused
from fleet.accounts import Role
from fleet.coverage import report
from fleet.coverage.live import LiveCoverage
from fleet.coverage.service import (
    MunicipalityCoverage,
    UnknownMunicipality,
    analyse_municipality,
)
from web.auth import token_required
from web.authz import coverage_municipality
from web.context import served, whole_number

bp = Blueprint("coverage", __name__, url_prefix="/api/v1/coverage")


def _live() -> LiveCoverage:
    return served("COVERAGE", "coverage_unavailable",  # type: ignore[no-any-return]
                  "this server does not compute coverage")


def _moment(live: LiveCoverage) -> datetime:
    value = request.args.get("at")
    if value is None:
        return live.clock()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused("invalid_time", f"at={value!r} is not an RFC 3339 time",
                      status=400) from None
    if moment.tzinfo is None:
        raise Refused("invalid_time", "at needs a time zone (e.g. 2026-11-27T14:00:00Z)",
                      status=400)
    if not 1970 <= moment.year <= 2200:
        raise Refused("invalid_time", "at must lie between the years 1970 and 2200", status=400)
    return moment.astimezone(UTC)


def _analyse(name: str) -> MunicipalityCoverage:
    if g.account is not None:  # a municipality's console user: only its own
        name = coverage_municipality(g.account, name) or name
    live = _live()
    advice = whole_number("advice", live.settings.coverage.advice_count, 0, 200)
    profile = request.args.get("profile", "1") not in ("0", "false")
    moment = _moment(live)
    try:
        return analyse_municipality(live.inputs(), name, moment, advice=advice, profile=profile)
    except UnknownMunicipality as exc:
        raise Refused("unknown_municipality", str(exc), status=404) from exc


@bp.get("")
@token_required("coverage")
def national() -> Response:
    """The whole country now: share covered, municipalities weakest first."""
    if g.account is not None and g.account.role != Role.ADMIN:
        raise Refused("forbidden", "the national picture is for administrators", status=403)
    limit = whole_number("limit", 400, 1, 10_000)
    return jsonify(report.national_json(_live().national(), limit=limit))


@bp.get("/municipalities/<name>")
@token_required("coverage")
def municipality(name: str) -> Response:
    """One municipality: per PC4 (weakest first), the day's profile, placement advice."""
    return jsonify(report.municipality_json(_analyse(name)))


@bp.get("/municipalities/<name>/geojson")
@token_required("coverage")
def municipality_geojson(name: str) -> Response:
    """The same as a map: PC4 polygons, advised sites, critical AEDs (and cells on request)."""
    cells = request.args.get("cells", "0") in ("1", "true")
    if cells and g.account is not None and g.account.role != Role.ADMIN:
        # Cell times at night trace where responders live: not for a municipality's users.
        raise Refused("forbidden", "single cells are for administrators and coverage tokens",
                      status=403)
    document = report.municipality_geojson(_analyse(name), cells=cells)
    return Response(json.dumps(document), mimetype="application/geo+json")


@bp.get("/municipalities/<name>/csv")
@token_required("coverage")
def municipality_csv(name: str) -> Response:
    """The municipality's report: one row per PC4 with its share at each hour."""
    result = _analyse(name)
    filename = "".join(c if c.isalnum() else "-" for c in result.municipality)
    return Response(report.municipality_csv(result), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="coverage-{filename}.csv"'})
