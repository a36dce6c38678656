"""Password checks, login throttling and API tokens."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.care.models import Professional
from app.core import audit
from app.core.time import utcnow
from app.extensions import db

from . import demo_guard
from .models import ApiToken, LoginAttempt

log = logging.getLogger("oncolink.auth")

# Checked when the login is unknown, so a wrong login costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-" + secrets.token_hex(8))
MIN_PASSWORD_LENGTH = 12


class PasswordPolicyError(ValueError):
    pass


def hash_password(password: str) -> str:
    check_password_policy(password)
    return generate_password_hash(password)  # scrypt, werkzeug's default


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(set(password)) < 5:
        raise PasswordPolicyError("too few different characters")


def _digest(login: str) -> str:
    return hashlib.sha256(login.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    professional: Professional | None
    throttled: bool = False


def authenticate(login: str, password: str, ip: str | None, *, max_failures: int,
                 max_failures_per_ip: int, lock_minutes: int, refuse_demo: bool = False) -> LoginResult:
    """Check credentials with throttling per login and per address.

    The answer never tells whether the login exists: a locked or unknown account
    and a wrong password look the same to the caller except for ``throttled``,
    which is decided before the account is looked up. ``refuse_demo`` (production):
    a demo account or the published demo password is a failed login.
    """
    digest = _digest(login)
    since = utcnow() - timedelta(minutes=lock_minutes)
    failures = db.session.scalar(
        select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.login_digest == digest, LoginAttempt.success.is_(False),
            LoginAttempt.at >= since,
        )
    )
    ip_failures = db.session.scalar(
        select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.at >= since,
        )
    ) if ip else 0
    if failures >= max_failures or ip_failures >= max_failures_per_ip:
        db.session.add(LoginAttempt(login_digest=digest, ip=ip, success=False))
        return LoginResult(None, throttled=True)

    user = db.session.scalar(
        select(Professional).where(func.lower(Professional.email) == login.strip().lower())
    )
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    if ok and refuse_demo and demo_guard.refused(user.email, password):
        log.warning("login with a demo account or the demo password refused in production")
        ok = False
    db.session.add(LoginAttempt(login_digest=digest, ip=ip, success=bool(ok)))
    if not ok:
        return LoginResult(None)
    user.last_login_at = utcnow()
    return LoginResult(user)


def issue_api_token(professional: Professional, name: str, days: int = 90) -> str:
    """Create a token and return it in clear (shown once)."""
    raw = "olk_" + secrets.token_urlsafe(32)
    token = ApiToken(
        professional_id=professional.id, name=name.strip()[:100] or "api",
        token_digest=hashlib.sha256(raw.encode()).hexdigest(), prefix=raw[:10],
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(token)
    db.session.flush()
    audit.record("api_token_created", obj=token)
    return raw


def revoke_api_token(token: ApiToken) -> None:
    token.revoked_at = utcnow()
    audit.record("api_token_revoked", obj=token)


def professional_for_token(raw: str) -> Professional | None:
    digest = hashlib.sha256(raw.encode()).hexdigest()
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_digest == digest))
    now = utcnow()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if not token.professional.active:
        return None
    if demo_guard.in_production() and demo_guard.is_demo_email(token.professional.email):
        return None
    token.last_used_at = now
    return token.professional
