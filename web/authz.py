"""Who may see and change what: one function per resource, used by every view and API of it.

A resource outside the caller's reach answers 404, as if it did not exist (a manager cannot
learn another manager's AED ids); a page the caller's role has no business with answers 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required
from sqlmodel import Session

from alarm_core.models import Incident, Questionnaire
from fleet.accounts import Account, Role
from fleet.health import FleetScope
from fleet.models import Aed

FLEET_ROLES = (Role.ADMIN, Role.MANAGER, Role.MUNICIPALITY)
AED_DETAIL_ROLES = (Role.ADMIN, Role.MANAGER)
COVERAGE_ROLES = (Role.ADMIN, Role.MUNICIPALITY)
INCIDENT_ROLES = (Role.ADMIN, Role.DISPATCHER)
AUDIT_ROLES = (Role.ADMIN,)


def account() -> Account:
    """The logged-in account (views reach here only through `roles_required`)."""
    if not current_user.is_authenticated:
        abort(401)
    return current_user.account  # type: ignore[no-any-return]


def roles_required(*roles: Role) -> Callable[[Any], Any]:
    """The view needs a logged-in account with one of these roles (403 otherwise)."""
    def decorate(view: Any) -> Any:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if account().role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorate


def fleet_scope(who: Account) -> FleetScope:
    """The AEDs whose health this account sees: all (or its region's), its manager's, or its
    municipality's."""
    if who.role == Role.ADMIN:
        return FleetScope(region=who.region)
    if who.role == Role.MANAGER and who.manager_id is not None:
        return FleetScope(manager_id=who.manager_id)
    if who.role == Role.MUNICIPALITY and who.municipality_id is not None:
        return FleetScope(municipality_id=who.municipality_id)
    abort(403)


def aed_for(who: Account, session: Session, aed_id: str) -> Aed:
    """One AED this account may open and change (admin: any, or any of its region; manager:
    its own); else 404."""
    aed = session.get(Aed, aed_id)
    if aed is None or who.role not in AED_DETAIL_ROLES:
        abort(404)
    if who.role == Role.ADMIN and who.region is not None and aed.region != who.region:
        abort(404)
    if who.role == Role.MANAGER and aed.manager_id != who.manager_id:
        abort(404)
    return aed


def assigned_manager(who: Account, requested: str | None) -> str | None:
    """The manager a new or edited AED belongs to: a manager account's own, always."""
    if who.role == Role.MANAGER:
        return who.manager
    return requested or None


def coverage_municipality(who: Account, name: str | None) -> str | None:
    """The municipality whose coverage this account may see (None: the national page)."""
    if who.role == Role.MUNICIPALITY:
        if name is not None and name.strip().lower() != (who.municipality or "").lower():
            abort(404)
        return who.municipality
    if who.role != Role.ADMIN:
        abort(403)
    return name


def incident_for(who: Account, session: Session, incident_id: str) -> Incident:
    if who.role not in INCIDENT_ROLES:
        abort(403)
    incident = session.get(Incident, incident_id)
    if incident is None or (who.region is not None and incident.region != who.region):
        abort(404)
    return incident


def own_responder(who: Account) -> str:
    """The responder profile of a responder account."""
    if who.role != Role.RESPONDER or who.responder_id is None:
        abort(403)
    return who.responder_id


def news_regions(who: Account) -> str | None:
    """The region an administrator posts news to (None: a platform admin, any region); other
    roles 403."""
    if who.role != Role.ADMIN:
        abort(403)
    return who.region


def news_region_for(who: Account, region: str) -> str:
    """A region this account may post news to (a region admin: only their own); else 404."""
    own = news_regions(who)
    if own is not None and region != own:
        abort(404)
    return region


def questionnaire_for(who: Account, session: Session, token: str) -> Questionnaire:
    """A questionnaire of this responder (another's answers 404)."""
    responder_id = own_responder(who)
    found = session.get(Questionnaire, token)
    if found is None or found.responder_id != responder_id:
        abort(404)
    return found
