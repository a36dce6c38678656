"""``GET /healthz``: what an external monitor needs to page someone when the platform stops
looking after patients, with nothing about any patient in it.

200 when every check passes, 503 otherwise (uptime monitors alert on the status code):

* ``database``: a statement goes through;
* ``scheduler``: a scheduler process holds an unexpired lease (check-ins, the outbox and the
  reading of patients' answers all depend on it: hazards H18 and H21);
* ``inbound_queue``: no patient's text has waited unread for ``INBOUND_STALE_SECONDS``;
* ``outbox``: no due message has waited for ``HEALTH_OUTBOX_STALE_SECONDS`` (provider down,
  dispatcher stuck, or a backlog the configured rate cannot clear);
* ``spool``: this web host's webhook spool holds nothing older than ``HEALTH_SPOOL_STALE_SECONDS``
  and nothing set aside, and its disk has room (``app.notifications.spool``). Checked even when
  the database is down: it needs only the local file.

Only booleans and ages in seconds: no count, name, number or text.
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.core.time import utcnow
from app.extensions import db

bp = Blueprint("health", __name__)


def _age(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round(max(0.0, (now - since).total_seconds()), 1)


def platform_health(now: datetime | None = None) -> dict:
    """The checks above as a dict (``ok`` is their conjunction)."""
    from app.jobs import lease
    from app.notifications.inbound import oldest_queued
    from app.notifications.outbox import oldest_due

    from app.notifications import spool

    now = now or utcnow()
    spool_ok, spooled_age = spool.health(now)
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - the answer is "the database is down", not a 500
        db.session.rollback()
        return {"ok": False, "checks": {"database": False, "spool": spool_ok}, "oldest_spooled_age_s": spooled_age}
    config = current_app.config
    state = lease.current()
    unread_age = _age(oldest_queued(), now)
    due_age = _age(oldest_due(now), now)
    db.session.rollback()  # read only
    checks = {
        "database": True,
        "scheduler": state is not None and state.active(now),
        "inbound_queue": unread_age is None or unread_age < config["INBOUND_STALE_SECONDS"],
        "outbox": due_age is None or due_age < config["HEALTH_OUTBOX_STALE_SECONDS"],
        "spool": spool_ok,
    }
    return {"ok": all(checks.values()), "checks": checks,
            "oldest_unread_inbound_age_s": unread_age, "oldest_due_outbox_age_s": due_age,
            "oldest_spooled_age_s": spooled_age,
            "scheduler_lease_expires_in_s": (round((state.expires_at - now).total_seconds(), 1)
                                             if state is not None else None)}


@bp.get("/healthz")
def healthz():
    report = platform_health()
    report["status"] = "ok" if report.pop("ok") else "degraded"
    return jsonify(report), 200 if report["status"] == "ok" else 503
