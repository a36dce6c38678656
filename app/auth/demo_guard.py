"""The demo's published accounts and password never work in production.

``make demo`` seeds accounts under ``DEMO_EMAIL_DOMAIN`` with ``DEMO_PASSWORD``, both printed in
the README. With ``ONCOLINK_ENV=production`` a login with either (any account whose e-mail is
under that domain, or any account whose password is the published one), an API token of such an
account and a session of one are refused, whatever database they were seeded into.
"""
from __future__ import annotations

import hmac

from flask import current_app

DEMO_EMAIL_DOMAIN = "demo.oncolink.fr"
DEMO_PASSWORD = "oncolink-demo-2026"


def in_production() -> bool:
    return current_app.config.get("ENV_NAME") == "production"


def is_demo_email(email: str | None) -> bool:
    return (email or "").strip().lower().endswith("@" + DEMO_EMAIL_DOMAIN)


def is_demo_password(password: str | None) -> bool:
    return password is not None and hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())


def refused(email: str | None, password: str | None = None) -> bool:
    """True for a demo account or the demo password (to be refused in production)."""
    return is_demo_email(email) or is_demo_password(password)
