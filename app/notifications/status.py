"""Message statuses: they only move forward, whatever order the provider's callbacks come in.

Callbacks can arrive twice, out of order, and even before the dispatcher has recorded
the message it sent (the provider may call back within milliseconds). A callback for
an unknown SID therefore creates a bare outbound row that the dispatcher fills in later.
"""
from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app.core.db import is_postgres
from app.core.time import utcnow
from app.extensions import db

from .models import Direction, Message, MessageChannel
from .signals import message_status_changed

SMS_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3, "undelivered": 3, "failed": 3, "canceled": 3, "partially_delivered": 3,
}
CALL_RANK = {
    "queued": 0, "initiated": 0,
    "ringing": 1,
    "in-progress": 2, "answered": 2,
    "completed": 3, "busy": 3, "no-answer": 3, "failed": 3, "canceled": 3,
}
TERMINAL_RANK = 3


def rank(channel: str, status: str | None) -> int | None:
    table = CALL_RANK if channel == MessageChannel.VOICE else SMS_RANK
    return table.get((status or "").lower())


def is_forward(channel: str, current: str | None, new: str) -> bool:
    """True when ``new`` is a later status than ``current`` and ``current`` is not final."""
    new_rank = rank(channel, new)
    if new_rank is None:
        return False
    current_rank = rank(channel, current)
    if current_rank is None:
        return True
    return current_rank < TERMINAL_RANK and new_rank > current_rank


def _by_sid(sid: str, lock: bool = False) -> Message | None:
    query = select(Message).where(Message.provider_sid == sid)
    if lock and is_postgres():
        query = query.with_for_update()  # two callbacks for one SID: one after the other
    return db.session.scalar(query)


def _insert_or_get(sid: str, make) -> tuple[Message, bool]:
    """The row for ``sid``, created by ``make()`` when missing; True when created."""
    message = _by_sid(sid, lock=True)
    if message is not None:
        return message, False
    try:
        with db.session.begin_nested():
            message = make()
            db.session.add(message)
    except IntegrityError:  # created meanwhile by a concurrent transaction
        message = _by_sid(sid, lock=True)
        if message is None:
            raise
        return message, False
    return message, True


def apply_status_callback(*, sid: str, status: str, channel: str, error_code: int | None = None,
                          to_number: str | None = None, from_number: str | None = None) -> Message | None:
    """Record a provider status; the Message when its status moved forward, else None."""
    status = (status or "").strip().lower()
    if not sid or rank(channel, status) is None:
        return None
    now = utcnow()

    def make() -> Message:
        return Message(direction=Direction.OUT, channel=channel, provider_sid=sid, status=status,
                       error_code=error_code, to_number=to_number, from_number=from_number,
                       created_at=now, status_updated_at=now)

    message, created = _insert_or_get(sid, make)
    if created:
        db.session.flush()
        return message
    if not is_forward(message.channel, message.status, status):
        return None
    message.status = status
    message.status_updated_at = now
    if error_code is not None:
        message.error_code = error_code
    db.session.flush()
    if message.outbox_id is not None:  # a bare row is announced once the dispatcher links it
        message_status_changed.send(message)
    return message


def record_outbound(*, sid: str, status: str, channel: str, body: str | None, to_number: str,
                    from_number: str | None, patient_id: int | None, outbox_id: int,
                    ref: str | None, optimistic: bool = False) -> Message:
    """The Message for a send the provider accepted, merged with any early callback.

    ``optimistic``: insert straight away, without looking for an early callback's row
    first (three statements fewer); an ``IntegrityError`` then tells the caller to roll
    back and call again without it.
    """
    now = utcnow()

    def make() -> Message:
        return Message(direction=Direction.OUT, channel=channel, provider_sid=sid, status=status,
                       body=body, to_number=to_number, from_number=from_number,
                       patient_id=patient_id, outbox_id=outbox_id, ref=ref,
                       created_at=now, status_updated_at=now)

    if optimistic:
        message = make()
        db.session.add(message)
        db.session.flush()
        return message
    message, created = _insert_or_get(sid, make)
    if created:
        db.session.flush()
        return message
    early_status = message.status
    message.body, message.to_number, message.patient_id = body, to_number, patient_id
    message.from_number = message.from_number or from_number
    message.outbox_id, message.ref = outbox_id, ref
    if is_forward(channel, early_status, status):
        message.status = status
        message.status_updated_at = now
    db.session.flush()
    if (rank(channel, message.status) or 0) > 0:
        message_status_changed.send(message)  # the early callbacks, announced now with their ref
    return message


def insert_outbound_messages(rows: list[dict]) -> None:
    """Messages for several accepted sends in one statement (``record_outbound`` optimistic, in
    bulk): each dict has sid, status, channel, body, to_number, from_number, patient_id,
    outbox_id, ref. An ``IntegrityError`` (an early callback stored one of these SIDs) tells the
    caller to roll back and record them one by one."""
    if not rows:
        return
    now = utcnow()
    db.session.execute(insert(Message.__table__), [
        dict(direction=Direction.OUT, channel=row["channel"], provider_sid=row["sid"], status=row["status"],
             body=row["body"], to_number=row["to_number"], from_number=row["from_number"],
             patient_id=row["patient_id"], outbox_id=row["outbox_id"], ref=row["ref"], error_code=None,
             created_at=now, status_updated_at=now)
        for row in rows
    ])
