"""Read side of the platform page: delivery outcomes per sender, recent faults."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from app.core.time import utcnow
from app.extensions import db
from app.notifications.models import Direction, Message, MessageChannel, OutboxEntry, OutboxState

from .models import PlatformFault

SMS_FAILED = ("failed", "undelivered")
CALL_FAILED = ("failed", "busy", "no-answer", "canceled")
DELIVERED = ("delivered", "read", "completed")


@dataclass(frozen=True)
class SenderStats:
    sender: str | None  # the number or messaging service the provider sent from; None: refused before
    channel: str
    total: int
    delivered: int
    failed: int

    @property
    def failure_rate(self) -> float:
        return self.failed / self.total if self.total else 0.0


def delivery_by_sender(days: int = 7, now: datetime | None = None) -> list[SenderStats]:
    """Outbound messages and calls of the last ``days`` per sender and channel: how many, delivered,
    failed (undelivered, not answered); plus the sends the provider refused outright. Two statements."""
    since = (now or utcnow()) - timedelta(days=days)
    failed = or_(and_(Message.channel == MessageChannel.SMS, Message.status.in_(SMS_FAILED)),
                 and_(Message.channel == MessageChannel.VOICE, Message.status.in_(CALL_FAILED)))
    rows = db.session.execute(
        select(Message.from_number, Message.channel, func.count(),
               func.sum(case((Message.status.in_(DELIVERED), 1), else_=0)), func.sum(case((failed, 1), else_=0)))
        .where(Message.direction == Direction.OUT, Message.created_at >= since)
        .group_by(Message.from_number, Message.channel).order_by(Message.from_number, Message.channel)).all()
    out = [SenderStats(sender, channel, n, int(ok or 0), int(ko or 0)) for sender, channel, n, ok, ko in rows]
    refused = db.session.execute(
        select(OutboxEntry.channel, func.count())
        .where(OutboxEntry.state.in_([OutboxState.FAILED, OutboxState.DEAD]), OutboxEntry.provider_sid.is_(None),
               OutboxEntry.first_attempt_at >= since)
        .group_by(OutboxEntry.channel).order_by(OutboxEntry.channel)).all()
    out += [SenderStats(None, channel, n, 0, n) for channel, n in refused]
    return out


def recent_faults(limit: int = 20) -> list[PlatformFault]:
    return list(db.session.scalars(select(PlatformFault).order_by(PlatformFault.started_at.desc(),
                                                                   PlatformFault.id.desc()).limit(limit)))
