"""Sessions, CSRF and log-in throttling of the console (flask-login, flask-wtf, flask-limiter)."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from fleet.accounts import Account, load_account
from fleet.i18n import N_
from fleet.settings import Settings

SECRET_FILE = Path("var/secret_key")


class SessionUser(UserMixin):
    """The logged-in account as flask-login wants it."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        """The id kept in the session, with a key that a new password changes."""
        return f"{self.account.id}:{self.account.session_key}"


def secret_key(settings: Settings, secret_file: Path = SECRET_FILE) -> str:
    """The configured key, else one made once and kept beside the database."""
    if settings.web.secret_key:
        return settings.web.secret_key
    if secret_file.exists() and secret_file.read_text().strip():
        return secret_file.read_text().strip()
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    secret_file.touch(mode=0o600)
    secret_file.write_text(key)
    return key


def install(app: Flask, settings: Settings) -> Limiter:
    """Cookie flags, the log-in manager, CSRF on every form, and the log-in rate limiter."""
    web = settings.web
    app.config.update(
        SECRET_KEY=app.config.get("SECRET_KEY") or secret_key(settings),
        SESSION_COOKIE_NAME="aedfleet_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        RATELIMIT_STORAGE_URI=web.rate_limit_storage,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    logins = LoginManager(app)
    logins.login_view = "auth.login"
    logins.login_message = N_("Log in to see this page.")
    logins.localize_callback = gettext
    logins.session_protection = "strong"

    @logins.user_loader
    def _load(session_id: str) -> SessionUser | None:
        user_id, _, key = session_id.partition(":")
        if not user_id.isascii() or not user_id.isdigit():
            return None
        account = load_account(current_app.config["ENGINE"], int(user_id))
        if account is None or not hmac.compare_digest(account.session_key, key):
            return None  # disabled, or its password changed since this session began
        return SessionUser(account)

    if web.proxy_hops:
        # Every proxy appends the client address; only the outermost one sets the scheme.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=web.proxy_hops,  # type: ignore[method-assign]
                                x_proto=1)
    CSRFProtect(app)
    return Limiter(get_remote_address, app=app, storage_uri=web.rate_limit_storage,
                   headers_enabled=True)


def limit_logins(app: Flask, limiter: Limiter, view_name: str, per_address: str,
                 per_user: str) -> None:
    """Count failed log-ins per client address and per user name; a success costs nothing."""
    def failed(response: Response) -> bool:
        return response.status_code != 303

    def username() -> str:
        return "user:" + (request.form.get("username") or "").strip().lower()

    view: Any = app.view_functions[view_name]
    view = limiter.limit(per_address, methods=["POST"], deduct_when=failed,
                         scope="login-address")(view)
    view = limiter.limit(per_user, methods=["POST"], deduct_when=failed, key_func=username,
                         scope="login-user")(view)
    app.view_functions[view_name] = view
