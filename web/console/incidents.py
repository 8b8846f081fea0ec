"""The dispatcher's incidents: the list, and one incident's live view."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from sqlmodel import Session

from alarm_core.reports import incident_document, incident_map, recent_incidents
from fleet.health import municipality_boundaries
from fleet.municipalities import outlines
from web.api.aeds import geojson
from web.authz import INCIDENT_ROLES, account, incident_for, roles_required
from web.context import engine, now, settings

bp = Blueprint("dispatch", __name__, url_prefix="/incidents")


def why_words(code: str) -> str:
    """A reason of the plan (`alarm_core.selection.Why`) in the reader's language."""
    kind, _sep, region = code.partition(":")
    if kind == "cross_border":
        return _("from the neighbouring region %(region)s", region=region)
    return {"nearest": _("nearest"),
            "cpr_share": _("among the nearest: straight to the victim"),
            "cpr_no_aed": _("no AED to fetch: straight to the victim"),
            "fastest_with_aed": _("brings the AED fastest"),
            "backup_fetcher": _("backup for the AED"),
            "medical_training": _("medically trained, as this call needs"),
            "paediatric_competence": _("paediatric life support, as this call needs"),
            }.get(code, code)


@bp.get("")
@roles_required(*INCIDENT_ROLES)
def incidents() -> str:
    only_open = request.args.get("open") == "1"
    with Session(engine()) as session:
        rows = recent_incidents(session, only_open, region=account().region)
    return render_template("incidents.html", incidents=rows, only_open=only_open)


@bp.get("/<incident_id>")
@roles_required(*INCIDENT_ROLES)
def incident(incident_id: str) -> tuple[str, int, dict[str, str]]:
    """Victim, alerted responders by role, chosen AEDs and answers; `?part=live` is the part
    the page's script fetches again every few seconds."""
    moment = now()
    with Session(engine()) as session:
        found = incident_for(account(), session, incident_id)
        document = incident_document(session, found, settings().dispatch, with_plan=False)
        map_data = incident_map(session, found, document, moment)
    for responder in document["responders"]:
        responder["why_words"] = [why_words(code) for code in responder["why"]]
    live = request.args.get("part") == "live"
    page = render_template("incident_live.html" if live else "incident.html",
                           incident=document, map_data=map_data, moment=moment)
    return page, 200, {"X-Aedfleet-Part": "live"} if live else {}


@bp.get("/<incident_id>/outlines")
@roles_required(*INCIDENT_ROLES)
def outlines_near(incident_id: str) -> Response:
    """The municipality outlines around the victim: the incident map's base layer."""
    with Session(engine()) as session:
        found = incident_for(account(), session, incident_id)
        rows = municipality_boundaries(session)
    return geojson(outlines(rows, near=(found.lat, found.lon)))
