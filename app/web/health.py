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
* ``dispatcher``: the last finished run of the dispatcher job did not fail;
* ``send_errors``: of the sends tried in the last ``HEALTH_SEND_ERROR_WINDOW_SECONDS``, at most
  ``HEALTH_SEND_ERROR_RATE`` failed (refused, given up, retrying, undelivered), once at least
  ``HEALTH_SEND_ERROR_MIN_SENDS`` were tried.

Only booleans and ages in seconds: no count, name, number or text. The same checks drive the
platform's own fault reports (``app.monitoring.watch``), which read ``checks`` as a mapping of
name to boolean: a check added to ``CHECKS`` is watched too.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Blueprint, current_app, jsonify
from sqlalchemy import and_, case, func, or_, select, text

from app.core.time import utcnow
from app.extensions import db

bp = Blueprint("health", __name__)


def _age(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round(max(0.0, (now - since).total_seconds()), 1)


def _scheduler(now: datetime, config, report: dict) -> bool:
    from app.jobs import lease

    state = lease.current()
    report["scheduler_lease_expires_in_s"] = (round((state.expires_at - now).total_seconds(), 1)
                                              if state is not None else None)
    return state is not None and state.active(now)


def _inbound_queue(now: datetime, config, report: dict) -> bool:
    from app.notifications.inbound import oldest_queued

    age = report["oldest_unread_inbound_age_s"] = _age(oldest_queued(), now)
    return age is None or age < config["INBOUND_STALE_SECONDS"]


def _outbox(now: datetime, config, report: dict) -> bool:
    from app.notifications.outbox import oldest_due

    age = report["oldest_due_outbox_age_s"] = _age(oldest_due(now), now)
    return age is None or age < config["HEALTH_OUTBOX_STALE_SECONDS"]


def _dispatcher(now: datetime, config, report: dict) -> bool:
    from app.jobs.models import JobRun, Outcome

    outcome = db.session.scalar(
        select(JobRun.outcome).where(JobRun.job == "dispatch-outbox", JobRun.finished_at.is_not(None))
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1))
    return outcome != Outcome.ERROR


def send_error_rate(now: datetime, window_s: float) -> tuple[int, float]:
    """(sends tried, fraction of them failed) in the window: refused for good, given up, waiting for
    a retry after an error, or reported undelivered by the provider."""
    from app.notifications.models import Message, OutboxEntry, OutboxState, given_up, undelivered as lost

    since = now - timedelta(seconds=window_s)
    tried, errored = db.session.execute(  # ix_outbox_entry_first_attempt
        select(func.count(), func.sum(case((or_(
            given_up(), and_(OutboxEntry.state == OutboxState.PENDING, OutboxEntry.last_error_code.is_not(None))),
            1), else_=0)))
        .where(OutboxEntry.first_attempt_at >= since)).one()
    undelivered = db.session.scalar(select(func.count()).select_from(Message).where(  # ix_message_undelivered
        lost(), Message.status_updated_at >= since)) or 0
    tried = tried or 0
    return tried, (min(1.0, ((errored or 0) + undelivered) / tried) if tried else 0.0)


def _send_errors(now: datetime, config, report: dict) -> bool:
    tried, rate = send_error_rate(now, float(config["HEALTH_SEND_ERROR_WINDOW_SECONDS"]))
    return tried < int(config["HEALTH_SEND_ERROR_MIN_SENDS"]) or rate <= float(config["HEALTH_SEND_ERROR_RATE"])


def _spool(now: datetime, config, report: dict) -> bool:
    from app.notifications import spool

    ok, age = spool.health(now)
    report["oldest_spooled_age_s"] = age
    return ok


#: name -> check(now, config, report) -> passes; a check may add ages to the report.
CHECKS: dict[str, Callable[[datetime, object, dict], bool]] = {
    "scheduler": _scheduler,
    "inbound_queue": _inbound_queue,
    "outbox": _outbox,
    "dispatcher": _dispatcher,
    "send_errors": _send_errors,
    "spool": _spool,
}


def platform_health(now: datetime | None = None) -> dict:
    """The checks above as a dict (``ok`` is their conjunction)."""
    from app.notifications import spool

    now = now or utcnow()
    spool_ok, spooled_age = spool.health(now)
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - the answer is "the database is down", not a 500
        db.session.rollback()
        return {"ok": False, "checks": {"database": False, "spool": spool_ok}, "oldest_spooled_age_s": spooled_age}
    config = current_app.config
    report: dict = {}
    checks = {"database": True}
    for name, check in CHECKS.items():
        checks[name] = bool(check(now, config, report))
    db.session.rollback()  # read only
    return {"ok": all(checks.values()), "checks": checks, **report}


@bp.get("/healthz")
def healthz():
    report = platform_health()
    report["status"] = "ok" if report.pop("ok") else "degraded"
    return jsonify(report), 200 if report["status"] == "ok" else 503
