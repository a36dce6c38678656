"""Escalation of red alerts nobody acknowledged in time: page the next level of the site's chain.

One pass selects, in one query, every open red alert whose latest page is older than its
site's ``ack_minutes`` (or that was never paged), with that page. On PostgreSQL the alerts
are locked ``FOR UPDATE SKIP LOCKED``, so two passes at once share the work; on SQLite
``BEGIN IMMEDIATE`` runs them one after the other. Either way the unique (alert, level) of
the page and the outbox idempotency key make a level paged at most once.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, literal, or_, select
from sqlalchemy.orm import aliased

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db

from .models import Alert, AlertStatus, Severity
from .oncall import DEFAULT_ACK_MINUTES, EscalationPolicy
from .paging import AlertPage, TargetKind, send_pages, site_contexts


def _cutoff(now: datetime):
    """Per site, the send time before which a page is overdue (a CASE over the configured sites)."""
    rows = db.session.execute(select(EscalationPolicy.site_id, EscalationPolicy.ack_minutes)).all()
    default = literal(now - timedelta(minutes=DEFAULT_ACK_MINUTES), UTCDateTime())
    custom = {sid: literal(now - timedelta(minutes=m), UTCDateTime())
              for sid, m in rows if m != DEFAULT_ACK_MINUTES}
    if not custom:
        return default
    return case(custom, value=Alert.site_id, else_=default)


def due_alerts(now: datetime):
    """(alert, latest page level, latest page target) of every alert due for its next page."""
    latest = aliased(AlertPage)
    query = (
        select(Alert, latest.level, latest.target)
        .outerjoin(latest, and_(latest.alert_id == Alert.id, latest.level == Alert.escalation_level))
        .where(Alert.severity == Severity.RED, Alert.status == AlertStatus.OPEN,
               Alert.paged_with_id.is_(None),  # riding on another alert's page: escalated with it
               or_(latest.id.is_(None), latest.sent_at <= _cutoff(now)))
        .order_by(Alert.id)
        .with_for_update(of=Alert, skip_locked=True)
    )
    return db.session.execute(query).all()


def escalate_due(now: datetime | None = None) -> dict:
    """Page the next level of every overdue red alert (flushed, not committed)."""
    now = now or utcnow()
    rows = due_alerts(now)
    contexts = site_contexts({alert.site_id for alert, _level, _target in rows}, now)
    items = []
    for alert, level, target in rows:
        context = contexts[alert.site_id]
        nxt = context.first_target() if level is None else context.next_target(level, target)
        items.append((alert, nxt, context.code))
    paged = send_pages(items, kind="escalated", now=now)
    fallback = sum(1 for t in paged if t.kind == TargetKind.FALLBACK)
    return {"due": len(rows), "paged": len(paged), "fallback": fallback, "skipped": len(rows) - len(paged)}
