"""Region news for responders: administrators post it (a region's administrator to their region
only, the platform's to any region); responders read it in their inbox."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import Session

from alarm_core.errors import Refused
from alarm_core.inbox import post_news, recent_news
from fleet.accounts import Role
from fleet.db import session_scope
from fleet.region_store import region_rows
from web.authz import account, news_region_for, news_regions, roles_required
from web.context import engine, now

bp = Blueprint("news", __name__, url_prefix="/news")

MAX_DAYS = 3_650


def _page(values: dict[str, Any], problem: str | None, status: int) -> Any:
    with Session(engine()) as session:
        own = news_regions(account())
        regions = [r for r in region_rows(session) if own is None or r.code == own]
        posted = recent_news(session, None if own is None else [own])
    return render_template("news.html", regions=regions, posted=posted, values=values,
                           problem=problem), status


@bp.route("", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def news() -> Any:
    """The form, and the news posted lately."""
    values = {"region": "", "subject": "", "body": "", "days": "30"}
    if request.method == "GET":
        return _page(values, None, 200)
    values = {name: request.form.get(name, "").strip() for name in values}
    days = values["days"]
    if days and (re.fullmatch(r"[0-9]{1,5}", days) is None or not 0 < int(days) <= MAX_DAYS):
        return _page(values, _("Show it for 1 to %(days)s days, or leave it empty.",
                               days=MAX_DAYS), 422)
    moment = now()
    try:
        with session_scope(engine()) as session:
            region = news_region_for(account(), values["region"])
            post_news(session, region, values["subject"], values["body"], account().username,
                      moment, moment + timedelta(days=int(days)) if days else None)
    except Refused as exc:
        return _page(values, exc.message, 422 if exc.status != 404 else 404)
    flash(_("News sent to the responders of %(region)s.", region=region), "success")
    return redirect(url_for("news.news"), code=303)
