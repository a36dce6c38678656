"""Escalation of alerts nobody acknowledged in time, or whose page failed: page the next level of
the site's chain.

One pass selects, in one query, every open red alert (and every other alert that was paged,
e.g. an orange one out of hours) whose latest page is older than its site's ``ack_minutes``, or
failed (refused for good, dead, undelivered, a call not answered), or that was never paged, with
that page. On PostgreSQL the alerts are locked ``FOR UPDATE SKIP LOCKED``, so two passes at once
share the work; on SQLite ``BEGIN IMMEDIATE`` runs them one after the other. Either way the
unique (alert, level) of the page and the outbox idempotency key make a level paged at most once.

A failure does not wait for the pass: the transport announces it (``outbox_failed`` from the
dispatcher, ``message_status_changed`` from a status callback) and ``fail_page`` moves the alert
on at once, in that transaction; the pass is the net for an announcement that was lost. A failed
page to the fallback is not repeated at once (it would fail again in a loop): the fallback is
paged again after ``ack_minutes``, as when nobody answers.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, literal, or_, select
from sqlalchemy.orm import aliased

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db
from app.notifications.models import Message, MessageChannel, OutboxEntry, OutboxState
from app.notifications.signals import FailedSend, message_status_changed, outbox_failed

from .models import Alert, AlertAction, AlertStatus, Severity
from .oncall import DEFAULT_ACK_MINUTES, EscalationPolicy
from .paging import AlertPage, TargetKind, send_pages, site_contexts

log = logging.getLogger("oncolink.triage")

# Final statuses that mean the page did not reach anyone.
SMS_FAILED = ("failed", "undelivered")
CALL_FAILED = ("failed", "busy", "no-answer", "canceled")


def _cutoff(now: datetime):
    """Per site, the send time before which a page is overdue (a CASE over the configured sites)."""
    rows = db.session.execute(select(EscalationPolicy.site_id, EscalationPolicy.ack_minutes)).all()
    default = literal(now - timedelta(minutes=DEFAULT_ACK_MINUTES), UTCDateTime())
    custom = {sid: literal(now - timedelta(minutes=m), UTCDateTime())
              for sid, m in rows if m != DEFAULT_ACK_MINUTES}
    if not custom:
        return default
    return case(custom, value=Alert.site_id, else_=default)


def _row_failed(outbox_id):
    """SQL: the outbox row ``outbox_id`` was refused, given up, or its message did not arrive."""
    message_failed = exists().where(
        Message.outbox_id == OutboxEntry.id,
        or_(and_(Message.channel == MessageChannel.SMS, Message.status.in_(SMS_FAILED)),
            and_(Message.channel == MessageChannel.VOICE, Message.status.in_(CALL_FAILED))))
    return exists().where(OutboxEntry.id == outbox_id,
                          or_(OutboxEntry.state.in_([OutboxState.FAILED, OutboxState.DEAD]), message_failed))


def _page_failed(page):
    """SQL: every channel of ``page`` (an aliased AlertPage) failed."""
    return or_(page.failed_at.is_not(None),
               and_(_row_failed(page.outbox_id),
                    or_(page.call_outbox_id.is_(None), _row_failed(page.call_outbox_id))))


def due_alerts(now: datetime):
    """(alert, latest page level, latest page target, whether that page failed) of every alert due
    for its next page."""
    latest = aliased(AlertPage)
    failed = and_(latest.id.is_not(None), _page_failed(latest))
    query = (
        select(Alert, latest.level, latest.target, failed.label("failed"))
        .outerjoin(latest, and_(latest.alert_id == Alert.id, latest.level == Alert.escalation_level))
        .where(Alert.status == AlertStatus.OPEN,
               Alert.paged_with_id.is_(None),  # riding on another alert's page: escalated with it
               or_(and_(latest.id.is_(None), Alert.severity == Severity.RED),
                   latest.sent_at <= _cutoff(now),
                   and_(latest.target != TargetKind.FALLBACK, failed)))
        .order_by(Alert.id)
        .with_for_update(of=Alert, skip_locked=True)
    )
    return db.session.execute(query).all()


def escalate_due(now: datetime | None = None) -> dict:
    """Page the next level of every overdue alert, or of one whose page failed (flushed, not committed)."""
    now = now or utcnow()
    rows = due_alerts(now)
    contexts = site_contexts({alert.site_id for alert, _level, _target, _failed in rows}, now)
    items = []
    for alert, level, target, failed in rows:
        context = contexts[alert.site_id]
        if failed:
            _note_failure(alert, level, now, "")
        nxt = context.first_target() if level is None else context.next_target(level, target)
        items.append((alert, nxt, context.code))
    paged = send_pages(items, kind="escalated", now=now)
    fallback = sum(1 for t in paged if t.kind == TargetKind.FALLBACK)
    return {"due": len(rows), "paged": len(paged), "fallback": fallback, "skipped": len(rows) - len(paged)}


def _note_failure(alert: Alert, level: int, now: datetime, reason: str) -> bool:
    """Mark the alert's page of ``level`` failed and say so in its history, once; True the first time."""
    page = db.session.scalar(select(AlertPage).where(AlertPage.alert_id == alert.id, AlertPage.level == level))
    if page is None or page.failed_at is not None:
        return False
    page.failed_at = now
    who = "fallback" if page.professional is None else (
        ("on-call " if page.target == TargetKind.ON_CALL else "") + page.professional.role)
    db.session.add(AlertAction(alert_id=alert.id, kind="page_failed", at=now,
                               note=f"level {level}: {who} ({page.channel})" + (f": {reason}" if reason else "")))
    db.session.flush()
    return True


def fail_page(outbox_id: int, reason: str, now: datetime | None = None) -> bool:
    """A page's outbox row failed: when every channel of that page has, and it is the alert's
    latest page, record it and page the next level at once (in the caller's transaction).
    True when the alert was moved on."""
    now = now or utcnow()
    page = db.session.scalar(select(AlertPage).where(
        or_(AlertPage.outbox_id == outbox_id, AlertPage.call_outbox_id == outbox_id)))
    if page is None or page.acknowledged_at is not None or page.failed_at is not None:
        return False
    other = page.call_outbox_id if page.outbox_id == outbox_id else page.outbox_id
    if other is not None and page.call_outbox_id is not None:
        if not db.session.scalar(select(_row_failed(other))):
            db.session.add(AlertAction(alert_id=page.alert_id, kind="page_failed", at=now,
                                       note=f"level {page.level}: one channel failed ({reason}), the other goes on"))
            return False
    alert = db.session.get(Alert, page.alert_id, with_for_update=True)
    if alert is None:
        return False
    _note_failure(alert, page.level, now, reason)
    if alert.status != AlertStatus.OPEN or alert.escalation_level != page.level or \
            page.target == TargetKind.FALLBACK:
        return False  # acknowledged, already moved on, or the fallback (paged again after the delay)
    context = site_contexts([alert.site_id], now)[alert.site_id]
    nxt = context.next_target(page.level, page.target)
    return bool(send_pages([(alert, nxt, context.code)], kind="escalated", now=now))


# --- the transport's announcements -----------------------------------------------------------

def _on_outbox_failed(failed: FailedSend, **_extra) -> None:
    if (failed.ref or "").startswith("alert:"):
        code = f" {failed.error_code}" if failed.error_code else ""
        fail_page(failed.id, f"{failed.state}{code}")


def _on_status_changed(message: Message, **_extra) -> None:
    if message.outbox_id is None or not (message.ref or "").startswith("alert:"):
        return
    failures = CALL_FAILED if message.channel == MessageChannel.VOICE else SMS_FAILED
    if message.status not in failures:
        return
    code = f" {message.error_code}" if message.error_code else ""
    try:
        with db.session.begin_nested():  # the callback's own record is kept whatever happens here
            fail_page(message.outbox_id, f"{message.status}{code}")
    except Exception as exc:  # noqa: BLE001 - the next escalation pass sees the failure too
        log.error("page failure of outbox %s not handled at once (%s)", message.outbox_id, type(exc).__name__)


def connect_signals() -> None:
    """Listen to the transport's failures (called once by ``create_app``; connecting twice is harmless)."""
    outbox_failed.connect(_on_outbox_failed)
    message_status_changed.connect(_on_status_changed)
