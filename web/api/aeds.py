"""AEDs and their readiness as JSON, and the maps' layers (GeoJSON)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from sqlmodel import Session

from alarm_core.errors import Refused
from fleet.accounts import Role
from fleet.errors import UnknownAedError
from fleet.health import (
    STATES,
    FleetScope,
    fleet_rows,
    map_points,
    municipality_boundaries,
    recorded_states,
    state_counts,
)
from fleet.municipalities import outlines
from fleet.registry import aed_status, iso_time
from web.auth import token_required
from web.authz import aed_for, fleet_scope
from web.context import engine, now, settings, whole_number

bp = Blueprint("aeds_api", __name__, url_prefix="/api/v1")


def _scope() -> FleetScope:
    """A console user's own AEDs; a `fleet` token reads them all."""
    return FleetScope() if g.account is None else fleet_scope(g.account)


@bp.get("/aeds")
@token_required("fleet")
def list_aeds() -> Response:
    """AEDs in the order they need action, `limit` (<= 1000) from `offset`, with counts."""
    state = request.args.get("state")
    if state is not None and state not in STATES:
        raise Refused("invalid_argument", f"state must be one of {', '.join(STATES)}",
                      status=400)
    if g.account is not None and g.account.role == Role.MUNICIPALITY:
        raise Refused("forbidden", "a municipality sees its AEDs aggregated: counts, map "
                      "and coverage", status=403)
    limit = whole_number("limit", 100, 1, 1000)
    offset = whole_number("offset", 0, 0, 10_000_000)
    scope = _scope()
    with Session(engine()) as session:
        checked_at, trusted = recorded_states(session, now(), settings())
        counts = state_counts(session, scope, trusted)
        rows = fleet_rows(session, scope, state=state, limit=limit, offset=offset,
                          trusted=trusted)
    return jsonify({"total": counts[state] if state else sum(counts.values()),
                    "by_state": counts, "states_checked_at": iso_time(checked_at),
                    "states_current": trusted, "offset": offset, "limit": limit,
                    "items": [row.to_json() for row in rows]})


@bp.get("/aeds/<aed_id>")
@token_required("fleet")
def show_aed(aed_id: str) -> Response:
    """One AED with its live readiness, reasons and accessibility now."""
    with Session(engine()) as session:
        if g.account is not None:
            aed_for(g.account, session, aed_id)
        try:
            status = aed_status(session, settings(), aed_id, now())
        except UnknownAedError:
            raise Refused("unknown_aed", f"no AED {aed_id}", status=404) from None
        return jsonify(status.to_json())


@bp.get("/map/aeds")
@token_required("fleet")
def aed_points() -> Response:
    """Every AED in scope as a GeoJSON point with its readiness state."""
    with Session(engine()) as session:
        _, trusted = recorded_states(session, now(), settings())
        points = map_points(session, _scope(), trusted)
    detail = g.account is None or g.account.role in (Role.ADMIN, Role.MANAGER)
    features = [{"type": "Feature", "geometry": {"type": "Point",
                                                 "coordinates": [round(lon, 6), round(lat, 6)]},
                 "properties": {"id": aed_id if detail else None, "state": state,
                                "detail": detail}}
                for aed_id, lat, lon, state in points]
    return geojson(features)


@bp.get("/map/boundaries")
@token_required("fleet")
def boundaries() -> Response:
    """Municipality outlines (simplified): the maps' base layer when there are no tiles."""
    wanted = request.args.get("municipality")
    if g.account is not None and g.account.role == Role.MUNICIPALITY:
        wanted = g.account.municipality
    with Session(engine()) as session:
        rows = municipality_boundaries(session, wanted)
    return geojson(outlines(rows))


def geojson(features: list[dict[str, Any]]) -> Response:
    return Response(json.dumps({"type": "FeatureCollection", "features": features}),
                    mimetype="application/geo+json")
