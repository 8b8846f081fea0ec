"""Log-in, log-out and the start page of each role."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from fleet.accounts import Role, authenticate
from web.authz import account
from web.context import engine
from web.security import SessionUser

bp = Blueprint("auth", __name__)
SAFE_NEXT = re.compile(r"/(?![/\\])[!-~]*")

START_PAGES = {Role.ADMIN: "fleet.overview", Role.MANAGER: "fleet.overview",
               Role.MUNICIPALITY: "maps.coverage", Role.DISPATCHER: "dispatch.incidents",
               Role.RESPONDER: "responder.profile"}


@bp.get("/")
def home() -> Response:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(START_PAGES[account().role]))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """A failed log-in answers 401 and counts against the rate limit; a success 303."""
    if request.method == "GET":
        return render_template("login.html")
    found = authenticate(engine(), request.form.get("username", ""),
                         request.form.get("password", ""))
    if found is None:
        flash(_("Unknown user name or wrong password."), "error")
        return render_template("login.html", username=request.form.get("username", "")), 401
    login_user(SessionUser(found))
    target = request.args.get("next", "")
    # Only a path on this site, in plain printable characters: never an open redirect (a
    # browser or werkzeug would drop a tab or newline and read "/\t/host" as "//host").
    if SAFE_NEXT.fullmatch(target) is None:
        target = url_for(START_PAGES[found.role])
    return redirect(target, code=303)


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"), code=303)
