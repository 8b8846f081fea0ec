"""Maps: AEDs by readiness, a municipality's coverage with placement advice.

The maps draw municipality and postcode shapes as their base layer, so they work without map
tiles; a deployment with a tile server sets `[web] tile_url`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request

from fleet.coverage import report
from fleet.coverage.service import UnknownMunicipality, analyse_municipality
from web.authz import (
    COVERAGE_ROLES,
    FLEET_ROLES,
    account,
    coverage_municipality,
    roles_required,
)
from web.context import settings

bp = Blueprint("maps", __name__)


def _tiles() -> dict[str, str]:
    web = settings().web
    return {"url": web.tile_url, "attribution": web.tile_attribution}


@bp.get("/map")
@roles_required(*FLEET_ROLES)
def aed_map() -> str:
    who = account()
    return render_template("map.html", tiles=_tiles(), municipality=who.municipality)


@bp.get("/coverage")
@bp.get("/coverage/<name>")
@roles_required(*COVERAGE_ROLES)
def coverage(name: str | None = None) -> Any:
    """The national figure and a chooser (admin), or one municipality's coverage."""
    who = account()
    name = coverage_municipality(who, name or request.args.get("municipality") or None)
    live = current_app.config.get("COVERAGE")
    if live is None:
        return render_template("coverage.html", live=None, result=None, name=name), 503
    if name is None:
        national = live.national()
        return render_template("coverage.html", live=live, national=national, result=None,
                               names=sorted(set(live.inputs().areas.municipalities)),
                               name=None)
    try:
        result = analyse_municipality(live.inputs(), name, live.clock(),
                                      advice=live.settings.coverage.advice_count,
                                      profile=False)
    except UnknownMunicipality as exc:
        return render_template("coverage.html", live=live, result=None, name=name,
                               problem=str(exc)), 404
    # The map's shapes come with the page: the analysis above is done once, not again for
    # the map through the API.
    return render_template("coverage.html", live=live, result=result, name=result.municipality,
                           tiles=_tiles(), shapes=report.municipality_geojson(result))
