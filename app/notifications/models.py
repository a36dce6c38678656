"""Outbox rows (what must leave the system) and messages (what did leave or arrive)."""
from __future__ import annotations

from enum import StrEnum

from app.core.db import UTCDateTime
from app.core.time import utcnow
from app.extensions import db


class OutboxState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a dispatcher, or its last attempt's outcome is unknown
    SENT = "sent"  # accepted by the provider (delivery is tracked on the Message)
    FAILED = "failed"  # refused for good by the provider; never retried
    DEAD = "dead"  # gave up after too many temporary failures; shown to nurses


class MessageChannel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class OutboxEntry(db.Model):
    """One SMS or call to make, written in the same transaction as the change that causes it."""

    __tablename__ = "outbox_entry"

    id = db.Column(db.Integer, primary_key=True)
    idempotency_key = db.Column(db.String(200), nullable=False, unique=True)
    channel = db.Column(db.String(10), nullable=False)
    to_number = db.Column(db.String(20), nullable=False)
    body = db.Column(db.Text)
    twiml_path = db.Column(db.String(300))
    purpose = db.Column(db.String(40), nullable=False)
    ref = db.Column(db.String(120), index=True)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), index=True)
    state = db.Column(db.String(10), nullable=False, default=OutboxState.PENDING)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    next_attempt_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    claimed_until = db.Column(UTCDateTime())
    # Who claimed it last: a scheduler's lease holder id ("host:pid:nonce") or a CLI run's own id.
    # A scheduler that takes the lease over recovers at once the rows its predecessor left sending.
    claimed_by = db.Column(db.String(255))
    # Start of the first attempt: reconciliation looks for provider messages from then on.
    first_attempt_at = db.Column(UTCDateTime())
    last_error_code = db.Column(db.Integer)
    last_error = db.Column(db.String(200))
    provider_sid = db.Column(db.String(64), unique=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    sent_at = db.Column(UTCDateTime())

    __table_args__ = (
        db.CheckConstraint("channel IN ('sms', 'voice')", name="channel"),
        db.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed', 'dead')", name="state"
        ),
        db.Index("ix_outbox_entry_state_next_attempt_at", "state", "next_attempt_at"),
    )

    def __repr__(self) -> str:
        return f"<OutboxEntry {self.id} {self.channel} {self.state} attempts={self.attempts}>"


class Message(db.Model):
    """An SMS or call as the provider knows it (outbound) or as it reached us (inbound)."""

    __tablename__ = "message"

    id = db.Column(db.Integer, primary_key=True)
    direction = db.Column(db.String(3), nullable=False)
    channel = db.Column(db.String(10), nullable=False, default=MessageChannel.SMS)
    provider_sid = db.Column(db.String(64), unique=True)
    from_number = db.Column(db.String(40))
    to_number = db.Column(db.String(40))
    body = db.Column(db.Text)
    status = db.Column(db.String(20), nullable=False)
    error_code = db.Column(db.Integer)
    patient_id = db.Column(db.Integer, db.ForeignKey("patient.id"), index=True)
    outbox_id = db.Column(db.Integer, db.ForeignKey("outbox_entry.id"), index=True)
    ref = db.Column(db.String(120), index=True)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    status_updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        db.CheckConstraint("direction IN ('in', 'out')", name="direction"),
        db.CheckConstraint("channel IN ('sms', 'voice')", name="channel"),
        # The inbound queue (status "queued"): small whatever the size of the message table.
        db.Index("ix_message_inbound_queue", "id", postgresql_where=db.text("status = 'queued'"),
                 sqlite_where=db.text("status = 'queued'")),
    )

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.direction} {self.channel} {self.status}>"
