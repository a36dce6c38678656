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


# Predicates of the outbox's partial indexes. Written out literally in the queries that use them
# (bound parameters would hide them from the planners), see ``to_send()`` and ``given_up()``.
TO_SEND = "state IN ('pending', 'sending')"
GIVEN_UP = "state IN ('failed', 'dead')"
# Final statuses of an outbound text or call that did not reach anyone (both channels).
UNDELIVERED = "status IN ('failed', 'undelivered', 'busy', 'no-answer', 'canceled')"


def to_send():
    """SQL: the outbox row is still to send (the claim index's own predicate, literally)."""
    return db.text("outbox_entry." + TO_SEND)


def undelivered():
    """SQL: the message's final status says it did not arrive (its index's predicate, literally)."""
    return db.text("message." + UNDELIVERED)


def given_up():
    """SQL: the outbox row was refused for good or given up (its index's predicate, literally)."""
    return db.text("outbox_entry." + GIVEN_UP)

# Outbox lanes: the dispatcher claims urgent rows first and keeps part of the rate for them.
PRIORITY_URGENT = 0  # a safety reply to a patient, a page to a professional, a platform fault
PRIORITY_ROUTINE = 1  # everything else (check-in questions, reminders, ...)


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
    # 0 urgent, 1 routine (checked by the outbox service): the claim order is (priority, due, id).
    priority = db.Column(db.Integer, nullable=False, default=PRIORITY_ROUTINE, server_default="1")
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
        # The dispatcher's claim, in its order, over the rows still to send only (a few
        # thousand at most, whatever the size of the table): urgent first, then by due time.
        # Also the oldest due row (health). No index on state alone: SQLite would pick it for the
        # claim and sort the whole backlog.
        db.Index("ix_outbox_entry_claim", "priority", "next_attempt_at", "id",
                 postgresql_where=db.text(TO_SEND), sqlite_where=db.text(TO_SEND)),
        # Messages given up (nurses' and triage lists), newest first.
        db.Index("ix_outbox_entry_given_up", "created_at",
                 postgresql_where=db.text(GIVEN_UP), sqlite_where=db.text(GIVEN_UP)),
        # Sends tried in a recent window (the send error rate of the health checks).
        db.Index("ix_outbox_entry_first_attempt", "first_attempt_at",
                 postgresql_where=db.text("first_attempt_at IS NOT NULL"),
                 sqlite_where=db.text("first_attempt_at IS NOT NULL")),
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
    # Inbound: the reply already given in the webhook's own answer (a safety reply in TwiML), so
    # the reading job records it and never sends it again.
    webhook_reply = db.Column(db.Text)
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    status_updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        db.CheckConstraint("direction IN ('in', 'out')", name="direction"),
        db.CheckConstraint("channel IN ('sms', 'voice')", name="channel"),
        # The inbound queue (status "queued"): small whatever the size of the message table.
        db.Index("ix_message_inbound_queue", "id", postgresql_where=db.text("status = 'queued'"),
                 sqlite_where=db.text("status = 'queued'")),
        # Messages reported undelivered, by when (health checks, delivery failures).
        db.Index("ix_message_undelivered", "status_updated_at",
                 postgresql_where=db.text(UNDELIVERED), sqlite_where=db.text(UNDELIVERED)),
    )

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.direction} {self.channel} {self.status}>"
