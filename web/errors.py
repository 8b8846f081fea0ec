"""One shape for every JSON error: `{"error": code, "message": words}`; pages get a page."""

from __future__ import annotations

from typing import Any

from flask import (
    Flask,
    Response,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from alarm_core.errors import Refused
from fleet.i18n import N_

CSRF_MESSAGE = N_("The form's security token is missing or no longer valid: reload the page "
                  "and send it again.")


def json_error(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/metrics", "/healthz")


def _error(code: str, name: str, message: str, status: int) -> Any:
    if _wants_json():
        return json_error(code, message, status)
    return render_template("error.html", code=status, name=name, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> Any:
        return _error(exc.code, exc.code.replace("_", " ").capitalize(), exc.message, exc.status)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        # The JSON API's words are a machine contract: only the page is translated.
        page = not _wants_json()
        return _error("csrf_failed", gettext("Form expired") if page else "Form expired",
                      gettext(CSRF_MESSAGE) if page else CSRF_MESSAGE, 400)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        if exc.code == 401 and not _wants_json():
            return redirect(url_for("auth.login", next=request.path))
        response = make_response(_error(code, exc.name or code, exc.description or code,
                                         exc.code or 500))
        for name, value in exc.get_headers():  # e.g. a 405's Allow
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unexpected error")
        return _error("internal_error", "Internal error", "the request could not be completed",
                      500)
