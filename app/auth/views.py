"""Sign in, sign out, language, and API tokens for the signed-in professional."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from app.care.models import Professional
from app.core import audit
from app.core.time import utcnow
from app.extensions import db

from . import demo_guard, services
from .forms import ApiTokenForm, LoginForm
from .models import ApiToken

bp = Blueprint("auth", __name__)


def load_user(user_id: str):
    try:
        pid, version = (int(x) for x in user_id.split(":"))
    except (ValueError, AttributeError):
        return None
    user = db.session.get(Professional, pid)
    if user is None or user.session_version != version or not user.active:
        return None
    if demo_guard.in_production() and demo_guard.is_demo_email(user.email):
        return None
    return user


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _home_for(user: Professional) -> str:
    if user.is_admin:
        return url_for("admin.index")
    if user.is_hospital:
        return url_for("triage.queue")  # the nurse's first screen is the work queue
    return url_for("web.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        cfg = current_app.config
        result = services.authenticate(
            form.email.data, form.password.data, request.remote_addr,
            max_failures=cfg["LOGIN_MAX_FAILURES"], max_failures_per_ip=cfg["LOGIN_MAX_FAILURES_PER_IP"],
            lock_minutes=cfg["LOGIN_LOCK_MINUTES"], refuse_demo=cfg["ENV_NAME"] == "production",
        )
        if result.professional is not None:
            user = result.professional
            session.clear()
            login_user(user)
            now = utcnow().isoformat()
            session["login_at"] = now
            session["seen_at"] = now
            audit.set_context(audit.AuditContext(user.id, user.email, request.remote_addr))
            audit.record("login", obj=user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")) or _home_for(user))
        db.session.commit()
        if result.throttled:
            flash(_("Too many failed attempts. Wait %(minutes)s minutes and try again.",
                    minutes=cfg["LOGIN_LOCK_MINUTES"]), "error")
        else:
            flash(_("Wrong e-mail or password."), "error")
        return render_template("auth/login.html", form=form), 401 if not result.throttled else 429
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        audit.record("logout", obj=current_user._get_current_object())
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language/<code>", methods=["POST"])
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.form.get("next")) or url_for("web.dashboard"))


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def api_tokens():
    form = ApiTokenForm()
    new_token = None
    if form.validate_on_submit():
        new_token = services.issue_api_token(current_user, form.name.data)
        db.session.commit()
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.professional_id == current_user.id).order_by(ApiToken.created_at.desc())
    ).all()
    return render_template("auth/tokens.html", form=form, tokens=tokens, new_token=new_token)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.professional_id != current_user.id:
        from flask import abort

        abort(404)
    services.revoke_api_token(token)
    db.session.commit()
    flash(_("Token revoked."), "info")
    return redirect(url_for("auth.api_tokens"))
