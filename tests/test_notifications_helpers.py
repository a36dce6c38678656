"""Fixtures shared by the notification tests: the app pointed at a FakeTwilio, signed posts.

Imported by the ``test_notifications_*`` modules (``*_fixture`` names, so the fixtures'
names stay free for test arguments); holds no test of its own.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core.time import set_clock
from tests.twilio_fake import FakeTwilio

SID = "AC" + "5e" * 16
TOKEN = "notif-test-token-0123456789abcdef"
SENDER = "+33700000099"
PUBLIC = "https://oncolink.example.test"
STATUS_URL = PUBLIC + "/webhooks/twilio/status"
SMS_URL = PUBLIC + "/webhooks/twilio/sms"


@pytest.fixture(name="fake")
def fake_fixture() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        yield server


def twilio_settings(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    settings = {
        "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": SENDER, "TWILIO_MESSAGING_SERVICE_SID": None,
        "TWILIO_API_BASE_URL": fake.base_url, "PUBLIC_BASE_URL": PUBLIC, "TWILIO_TIMEOUT_SECONDS": 1.0,
        "OUTBOX_RATE_PER_SECOND": 0.0, "OUTBOX_RATE_BURST": 0.0, "OUTBOX_BATCH_SIZE": 50,
        "OUTBOX_TIME_BUDGET_SECONDS": 0.0, "OUTBOX_LEASE_SECONDS": 60.0, "OUTBOX_MAX_ATTEMPTS": 8,
        "OUTBOX_BACKOFF_BASE_SECONDS": 30.0, "OUTBOX_BACKOFF_MAX_SECONDS": 3600.0,
        "OUTBOX_BACKOFF_JITTER": 0.2, "OUTBOX_RECONCILE_SKEW_SECONDS": 120.0,
    }
    settings.update(extra)
    return settings


@pytest.fixture(name="use_settings")
def use_settings_fixture(app):
    """Change the session app's settings for one test; restored afterwards."""
    saved: dict[str, Any] = {}

    def apply(**settings: Any) -> None:
        for key, value in settings.items():
            saved.setdefault(key, app.config.get(key))
            app.config[key] = value

    yield apply
    app.config.update(saved)


@pytest.fixture(name="twilio_app")
def twilio_app_fixture(app, db, fake, use_settings):
    """The app sends through the real Twilio SDK to ``fake``; no rate limit, no time budget."""
    use_settings(**twilio_settings(fake))
    return app


class Clock:
    """The application clock, fixed at the real time and moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        set_clock(self.now)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        set_clock(self.now)
        return self.now


@pytest.fixture(name="clock")
def clock_fixture() -> Iterator[Clock]:
    yield Clock()
    set_clock(None)


def signed_post(client, fake: FakeTwilio, path: str, params: dict[str, str], *, url: str | None = None,
                signature: str | None = None):
    """POST ``params`` to ``path`` signed as Twilio would sign ``url`` (default: the public URL)."""
    params = {k: str(v) for k, v in params.items()}
    sig = signature if signature is not None else fake.sign(url or PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))
