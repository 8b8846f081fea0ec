"""The OpenAPI 3.1 description of /api/v1, served by the app, and a page that lists it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template

bp = Blueprint("api_docs", __name__)

ERROR = {"$ref": "#/components/responses/Error"}
JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
JSON_LIST = {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}
GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}}


def _param(name: str, where: str, description: str, kind: str = "string",
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "description": description, "schema": {"type": kind}}


def _op(summary: str, scope: str, ok: str = "200", content: Any = JSON_OBJECT,
        params: list[dict[str, Any]] | None = None, body: bool = False,
        also: tuple[str, ...] = ()) -> dict[str, Any]:
    """An operation; every one may answer 400, 401, 403, 404, 409 (a conflict with what is
    stored), 422 and 503 (a part this server does not run, or an alarm core on standby)."""
    operation: dict[str, Any] = {
        "summary": summary, "tags": [scope],
        "security": [{"bearer": []}],
        "parameters": params or [],
        "responses": {ok: {"description": "done", "content": content},
                      **{code: {"description": "done", "content": content} for code in also},
                      "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "409": ERROR,
                      "422": ERROR, "503": ERROR}}
    if body:
        operation["requestBody"] = {"required": True, "content": JSON_OBJECT}
        operation["responses"]["413"] = ERROR  # over 64 KiB
    elif scope in ("dispatch", "coverage", "fleet"):  # reads: also a console log-in
        operation["security"].append({"session": []})
    return operation


INCIDENT = _param("incident_id", "path", "incident id")
NAME = _param("name", "path", "municipality name (case and spacing forgiven)")
AT = _param("at", "query", "RFC 3339 time with zone (default now)")

PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/incidents": {
        "post": _op("A cardiac-arrest call from a 112 centre: 201 new, 200 known reference",
                    "dispatch", ok="201", body=True, also=("200",)),
        "get": _op("Incidents (a 112 centre: its own; a dispatcher: all)", "dispatch",
                   content=JSON_LIST, params=[_param("state", "query", "only this state")])},
    "/api/v1/incidents/{incident_id}": {
        "get": _op("One incident: alerts, answers, AEDs, plan", "dispatch", params=[INCIDENT])},
    "/api/v1/incidents/{incident_id}/close": {
        "post": _op("Close an incident", "dispatch", params=[INCIDENT], body=True)},
    "/api/v1/incidents/{incident_id}/responses": {
        "post": _op("A responder's answer (accept/decline) from the app backend",
                    "responders", params=[INCIDENT], body=True)},
    "/api/v1/responders/{responder_id}/position": {
        "put": _op("An accepted responder's position on the way", "responders",
                   params=[_param("responder_id", "path", "responder id")], body=True)},
    "/api/v1/questionnaires/{token}": {
        "post": {**_op("A responder's questionnaire answers (the link's token authorises)",
                       "questionnaire", ok="201",
                       params=[_param("token", "path", "link token")], body=True),
                 "security": []}},
    "/api/v1/coverage": {
        "get": _op("National coverage now, municipalities weakest first", "coverage",
                   params=[_param("limit", "query", "at most this many", "integer")])},
    "/api/v1/coverage/municipalities/{name}": {
        "get": _op("A municipality's coverage per PC4, day profile, placement advice",
                   "coverage", params=[NAME, AT,
                                       _param("advice", "query", "sites to advise", "integer"),
                                       _param("profile", "query", "0: no day profile")])},
    "/api/v1/coverage/municipalities/{name}/geojson": {
        "get": _op("The same as GeoJSON", "coverage", content=GEOJSON,
                   params=[NAME, AT, _param("cells", "query", "1: every grid cell too")])},
    "/api/v1/coverage/municipalities/{name}/csv": {
        "get": _op("Per PC4 the share covered at each hour", "coverage",
                   content={"text/csv": {"schema": {"type": "string"}}}, params=[NAME, AT])},
    "/api/v1/aeds": {
        "get": _op("AEDs in the order they need action, with counts by state", "fleet",
                   params=[_param("state", "query", "ready|unverified|not_ready|unknown"),
                           _param("limit", "query", "at most 1000", "integer"),
                           _param("offset", "query", "skip this many", "integer")])},
    "/api/v1/aeds/{aed_id}": {
        "get": _op("One AED with live readiness, reasons and accessibility", "fleet",
                   params=[_param("aed_id", "path", "AED id")])},
    "/api/v1/map/aeds": {
        "get": _op("AEDs as GeoJSON points with their state", "fleet", content=GEOJSON)},
    "/api/v1/map/boundaries": {
        "get": _op("Municipality outlines (simplified) as GeoJSON", "fleet", content=GEOJSON,
                   params=[_param("municipality", "query", "only this one")])},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "aedfleet API", "version": "1",
             "description": "AED readiness, coverage and the citizen-responder alarm. Machine "
                            "callers send `Authorization: Bearer <token>` (tokens have one "
                            "scope: dispatch, responders, coverage or fleet); the console's "
                            "pages read with their log-in session (GET only)."},
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "aedfleet_session"}},
        "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                              "properties": {"error": {"type": "string"},
                                             "message": {"type": "string"}}}},
        "responses": {"Error": {"description": "refused, with a stable code and words",
                                "content": {"application/json": {"schema": {
                                    "$ref": "#/components/schemas/Error"}}}}}},
}


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    return jsonify(SPEC)


@bp.get("/api/docs")
def docs() -> str:
    return render_template("api_docs.html", spec=SPEC)
