"""Per-request hooks: session timeouts, audit context, security headers."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from app.core.audit import AuditContext, reset_context, set_context
from app.core.time import utcnow


def _session_expired(app: Flask) -> bool:
    now = utcnow()
    try:
        login_at = datetime.fromisoformat(session["login_at"])
        seen_at = datetime.fromisoformat(session["seen_at"])
    except (KeyError, ValueError, TypeError):
        return True
    if now - seen_at > timedelta(minutes=app.config["SESSION_IDLE_MINUTES"]):
        return True
    return now - login_at > timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])


def init_hooks(app: Flask) -> None:
    @app.before_request
    def enforce_session_timeouts():
        if request.endpoint == "static" or request.blueprint == "api":
            return None
        if current_user.is_authenticated:
            if _session_expired(app):
                logout_user()
                session.clear()
                flash(_("Your session has expired; please sign in again."), "warning")
                return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
            # The status poll must not keep an idle session alive.
            if request.endpoint not in app.config.get("PASSIVE_ENDPOINTS", ()):
                session["seen_at"] = utcnow().isoformat()
        return None

    @app.before_request
    def bind_audit_context():
        user = current_user if current_user and current_user.is_authenticated else None
        ctx = AuditContext(user.id if user else None, user.email if user else "anonymous", request.remote_addr)
        request.environ["oncolink.audit_token"] = set_context(ctx)

    @app.teardown_request
    def unbind_audit_context(exc):
        token = request.environ.pop("oncolink.audit_token", None)
        if token is not None:
            try:
                reset_context(token)
            except ValueError:  # token from another context (streamed responses)
                pass

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        if request.endpoint != "static":
            # Patient data must not stay in browser or proxy caches.
            response.headers["Cache-Control"] = "no-store"
        return response
