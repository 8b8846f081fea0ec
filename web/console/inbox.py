"""The responder's inbox in the console: messages with unread marked, opening one marks it read;
the unread count for the navigation."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, render_template, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from alarm_core.inbox import Shown, inbox_page, mark_read, open_message, unread_count
from fleet.accounts import Role
from fleet.db import session_scope
from web.authz import account, own_responder, roles_required
from web.context import engine, now, settings, whole_number
from web.i18n import reader

logger = logging.getLogger(__name__)

bp = Blueprint("inbox", __name__, url_prefix="/responder/inbox")


def _shown() -> Shown:
    """The inbox in the page's language and the reader's time zone."""
    page_reader = reader()
    return Shown(page_reader.language, page_reader.locale, page_reader.timezone)


@bp.get("")
@roles_required(Role.RESPONDER)
def inbox() -> str:
    responder_id = own_responder(account())
    with Session(engine()) as session:
        found = inbox_page(session, settings(), responder_id, now(),
                           whole_number("page", 1, 1, 100_000), shown=_shown())
    return render_template("responder_inbox.html", inbox=found, opened=None)


@bp.get("/<int:message_id>")
@roles_required(Role.RESPONDER)
def message(message_id: int) -> str:
    """One message; opening it marks it read."""
    responder_id = own_responder(account())
    with session_scope(engine()) as session:
        mark_read(session, settings(), responder_id, message_id, now())
        opened = open_message(session, settings(), responder_id, message_id, _shown())
    return render_template("responder_inbox.html", inbox=None, opened=opened)


@bp.post("/<int:message_id>/read")
@roles_required(Role.RESPONDER)
def read(message_id: int) -> Response:
    responder_id = own_responder(account())
    with session_scope(engine()) as session:
        mark_read(session, settings(), responder_id, message_id, now())
    return redirect(url_for("inbox.inbox"), code=303)


@bp.app_context_processor
def unread() -> dict[str, Any]:
    """`inbox_unread` for the navigation of a responder's pages."""
    if not current_user.is_authenticated or current_user.account.role != Role.RESPONDER \
            or current_user.account.responder_id is None:
        return {}
    try:
        with Session(engine()) as session:
            return {"inbox_unread": unread_count(session, current_user.account.responder_id,
                                                 now())}
    except SQLAlchemyError:  # a count in the navigation never breaks a page (or an error page)
        logger.warning("inbox: unread count not available", exc_info=True)
        return {}
