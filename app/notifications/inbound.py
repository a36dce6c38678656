"""Inbound SMS: store once, hand to whoever owns the conversation, send the replies.

The transport does not know what a check-in is: the owner of the conversation registers
one handler (``register_sms_handler``) and returns the reply texts.

Two ways in:

* The Twilio webhook only *accepts* (``accept_sms``): one ``INSERT ... ON CONFLICT DO
  NOTHING`` on the provider SID, committed before Twilio gets its 200, status ``queued``.
  The scheduler's ``process-inbound`` job (``process_queued``) then reads the queue in
  arrival order, runs the handler for each message and writes the replies to the outbox
  in the same transaction, so a reply exists once the answer is recorded, never before, and
  a crash in between replays the message with nothing duplicated (the replies' idempotency
  keys name the message). This keeps the webhook cheap under a burst of answers.
* ``receive_sms`` stores and handles at once and returns the replies (the development
  "patient phone" page, and tests of the conversation).
"""
from __future__ import annotations

import functools
import logging
import time
import zlib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.care.models import Patient
from app.core import batching
from app.core.db import is_postgres
from app.core.time import utcnow
from app.extensions import db

from .models import PRIORITY_ROUTINE, PRIORITY_URGENT, Direction, Message, MessageChannel
from .outbox import check_sms, enqueue_sms_rows

log = logging.getLogger("oncolink.notifications")

SmsHandler = Callable[[str, str, str, int], list[str]]
#: The webhook's own reading of an inbound text, before it is stored: ``(from, body) -> reply``, a
#: text to answer at once in the TwiML (a safety reply), or None. Must not need the database.
SmsScreen = Callable[[str, str], "str | None"]


class Reply(str):
    """A reply text; ``urgent`` ones (safety replies) go before routine traffic."""

    urgent: bool

    def __new__(cls, text: str, urgent: bool = False) -> Reply:
        reply = super().__new__(cls, text)
        reply.urgent = urgent
        return reply
MAX_BODY = 1600  # Twilio's own limit for a concatenated SMS
MAX_NUMBER = 40
STATUS_QUEUED = "queued"  # accepted by the webhook, not yet read by the conversation
STATUS_RECEIVED = "received"
STATUS_HANDLER_ERROR = "handler_error"
STATUS_REPLIED = "replied"
STATUS_TWIML = "replied_in_webhook"  # an outbound reply given in the webhook's TwiML answer

_handler: SmsHandler | None = None
_screen: SmsScreen | None = None


def register_sms_handler(fn: SmsHandler | None) -> SmsHandler | None:
    """Make ``fn`` the one handler of inbound SMS; returns the previous one (tests restore it)."""
    global _handler
    previous, _handler = _handler, fn
    return previous


def current_sms_handler() -> SmsHandler | None:
    return _handler


def register_sms_screen(fn: SmsScreen | None) -> SmsScreen | None:
    """Make ``fn`` the webhook's screen of inbound texts; returns the previous one."""
    global _screen
    previous, _screen = _screen, fn
    return previous


def screen_reply(from_number: str, body: str) -> str | None:
    """What the webhook answers at once in its TwiML for this text (a safety reply), or None.
    Never raises: a failing screen answers nothing, and the text is read as usual."""
    screen = _screen
    if screen is None:
        return None
    try:
        reply = screen(clean_text(from_number, MAX_NUMBER), clean_text(body, MAX_BODY))
    except Exception as exc:  # noqa: BLE001 - the text must still be stored whatever happens here
        log.error("inbound screen failed with %s", type(exc).__name__)
        return None
    return clean_text(reply, MAX_BODY) if reply else None


def message_facts(message_id: int) -> tuple[datetime | None, str | None]:
    """(when it reached the webhook, the reply the webhook already gave) of a stored inbound text."""
    row = db.session.execute(select(Message.created_at, Message.webhook_reply).where(Message.id == message_id)).first()
    return (row.created_at, row.webhook_reply) if row is not None else (None, None)

def clean_text(value: object, limit: int) -> str:
    """Any input as storable text: no NUL (PostgreSQL refuses it), no lone surrogate, bounded."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    text = text.replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


def _single_patient_with(phone: str) -> int | None:
    """The patient with this phone, when exactly one has it (a shared phone stays anonymous)."""
    ids = db.session.scalars(select(Patient.id).where(Patient.phone == phone).limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def receive_sms(*, from_number: str, to_number: str, body: str, provider_sid: str | None) -> list[str]:
    """Store an inbound SMS once and return the handler's replies (flushed, not committed).

    A message whose provider SID is already stored is a retry of the provider: nothing
    is stored and no reply is given. Never raises on what the sender typed.
    """
    from_number = clean_text(from_number, MAX_NUMBER)
    to_number = clean_text(to_number, MAX_NUMBER)
    body = clean_text(body, MAX_BODY)
    provider_sid = clean_text(provider_sid, 64) or None
    if provider_sid and db.session.scalar(select(Message.id).where(Message.provider_sid == provider_sid)):
        return []
    now = utcnow()
    patient_id = _single_patient_with(from_number) if from_number else None
    inbound = Message(direction=Direction.IN, channel=MessageChannel.SMS, provider_sid=provider_sid,
                      from_number=from_number, to_number=to_number, body=body,
                      status=STATUS_RECEIVED, patient_id=patient_id, created_at=now,
                      status_updated_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(inbound)
    except IntegrityError:  # the same SID stored meanwhile by a concurrent request
        return []
    replies = _run_handler(from_number, to_number, body, inbound)
    for reply in replies:
        db.session.add(Message(direction=Direction.OUT, channel=MessageChannel.SMS,
                               from_number=to_number, to_number=from_number, body=reply,
                               status=STATUS_REPLIED, patient_id=inbound.patient_id,
                               ref=inbound.ref, created_at=now, status_updated_at=now))
    db.session.flush()
    return replies


def accept_sms(*, from_number: str, to_number: str, body: str, provider_sid: str | None,
               webhook_reply: str | None = None, received_at: datetime | None = None) -> bool:
    """Queue an inbound SMS for ``process_queued``, durably, before returning; False for a
    provider retry.

    One statement, committed on its own connection (on PostgreSQL in autocommit: one round
    trip): the unique provider SID makes a retry, or the same message posted twice at once, a
    no-op. Nothing else is written, so nothing of the caller's session is committed with it.
    Never raises on what the sender typed. ``received_at``: when the webhook received it, for a
    text stored late from the webhook spool (``app.notifications.spool``); default now.
    ``webhook_reply``: the safety reply the webhook already gave in its TwiML (recorded, never
    sent again).
    """
    now = received_at or utcnow()
    values = dict(direction=Direction.IN, channel=MessageChannel.SMS,
                  provider_sid=clean_text(provider_sid, 64) or None,
                  from_number=clean_text(from_number, MAX_NUMBER), to_number=clean_text(to_number, MAX_NUMBER),
                  body=clean_text(body, MAX_BODY), status=STATUS_QUEUED, created_at=now, status_updated_at=now,
                  webhook_reply=clean_text(webhook_reply, MAX_BODY) or None)
    engine = db.engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        with connection.begin():
            # The new row's id; none for a known SID. (Without an explicit RETURNING, psycopg's
            # rowcount did not say 1 for a new row: every text looked like a retry.)
            return connection.execute(_accept_statement(engine.dialect.name), values).scalar() is not None


@functools.cache
def _accept_statement(dialect: str):
    """Built once per dialect (the webhook's hot path): insert, or nothing on a known SID."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Message.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["provider_sid"]).returning(table.c.id)


# Any constant shared by all processors: the transaction-level advisory lock that lets one
# process at a time read the queue (so one phone's answers are read in the order they came).
_QUEUE_LOCK = zlib.crc32(b"oncolink:inbound-sms")


def process_queued(*, batch_size: int = 50, time_budget_s: float = 30.0) -> dict[str, int]:
    """Hand the queued inbound SMS to the handler, oldest first; one commit per batch.

    Stops when the queue is empty, or after ``time_budget_s`` (0: not before it is empty).

    Each message runs in its own savepoint: a handler failure keeps the message (status
    ``handler_error``, shown to nurses with the raw text) and the rest of the batch. Replies
    go to the outbox with the key ``sms-reply:<message id>:<n>``. Safe to run from several
    processes at once (on PostgreSQL the others wait for the lock and find an empty queue;
    on SQLite the write lock serialises them).
    """
    deadline = time.monotonic() + time_budget_s
    stats = {"processed": 0, "replies": 0, "handler_errors": 0, "batches": 0}
    while True:
        if is_postgres():
            db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _QUEUE_LOCK})
        batch = list(db.session.scalars(
            select(Message).where(Message.status == STATUS_QUEUED, Message.direction == Direction.IN)
            .order_by(Message.id).limit(batch_size)))
        if not batch:
            db.session.commit()
            return stats
        rows: list[dict] = []
        with batching.batch_scope() as scope:  # reference data read once, follow-ups run once
            for inbound in batch:
                replies = _handle(inbound)
                stats["processed"] += 1
                stats["handler_errors"] += inbound.status == STATUS_HANDLER_ERROR
                rows += _reply_rows(inbound, replies)
            scope.run_deferred()
        stats["replies"] += enqueue_sms_rows(rows)  # in arrival order: a safety reply before the next question
        db.session.commit()
        stats["batches"] += 1
        if time_budget_s and time.monotonic() >= deadline:
            stats["left"] = queued_count()
            return stats


def _handle(inbound: Message) -> list[str]:
    patient_id = _single_patient_with(inbound.from_number) if inbound.from_number else None
    now = utcnow()
    inbound.status, inbound.status_updated_at, inbound.patient_id = STATUS_RECEIVED, now, patient_id
    replies = _run_handler(inbound.from_number or "", inbound.to_number or "", inbound.body or "", inbound)
    if inbound.webhook_reply:  # already answered in the webhook's TwiML: recorded here, never sent again
        db.session.add(Message(direction=Direction.OUT, channel=MessageChannel.SMS, from_number=inbound.to_number,
                               to_number=inbound.from_number, body=inbound.webhook_reply, status=STATUS_TWIML,
                               patient_id=inbound.patient_id, ref=inbound.ref, created_at=now,
                               status_updated_at=now))
    return replies


def _reply_rows(inbound: Message, replies: list[str]) -> list[dict]:
    """The replies as outbox rows; none to a sender we cannot text, none that would be refused."""
    rows = []
    for n, reply in enumerate(replies):
        row = dict(to=inbound.from_number or "", body=str(reply), idempotency_key=f"sms-reply:{inbound.id}:{n}",
                   purpose="sms_reply", patient_id=inbound.patient_id, ref=inbound.ref,
                   priority=_reply_priority(n, reply))
        try:
            check_sms(row["to"], row["body"], row["idempotency_key"])
        except ValueError as exc:  # not a phone number we can text, or a reply too long
            log.warning("no reply to inbound message %s: %s", inbound.id, exc)
            continue
        rows.append(row)
    return rows


def _reply_priority(n: int, reply: str) -> int:
    """Urgent for a reply the conversation marked urgent (its safety reply), routine for the rest."""
    return PRIORITY_URGENT if getattr(reply, "urgent", False) else PRIORITY_ROUTINE


def queued_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Message).where(
        Message.status == STATUS_QUEUED, Message.direction == Direction.IN)) or 0


def oldest_queued() -> datetime | None:
    """When the longest-waiting unread inbound SMS arrived (None when the queue is empty)."""
    return db.session.scalar(select(func.min(Message.created_at)).where(
        Message.status == STATUS_QUEUED, Message.direction == Direction.IN))


def stale_backlog(stale_after_s: float) -> tuple[int, datetime] | None:
    """(count, oldest arrival) of the unread inbound SMS when the oldest has waited longer than
    ``stale_after_s``: the sign that no process reads the queue (scheduler stopped). Else None."""
    oldest = oldest_queued()
    if oldest is None or (utcnow() - oldest).total_seconds() < stale_after_s:
        return None
    return queued_count(), oldest


def tag_message(message_id: int, *, ref: str | None = None, patient_id: int | None = None) -> None:
    """Let the conversation owner label a stored message (e.g. ``checkin:12:item:fever``)."""
    message = db.session.get(Message, message_id)
    if message is None:
        raise LookupError(f"no message {message_id}")
    if ref is not None:
        message.ref = ref
    if patient_id is not None:
        message.patient_id = patient_id  # flushed with the caller's next statement


def _run_handler(from_number: str, to_number: str, body: str, inbound: Message) -> list[str]:
    handler = _handler
    if handler is None:
        return []
    try:
        # A savepoint: a failing handler loses its own changes, never the inbound message.
        with db.session.begin_nested():
            replies = handler(from_number, to_number, body, inbound.id)
    except Exception as exc:  # noqa: BLE001 - whatever the patient typed, the message is kept
        log.error("inbound SMS handler failed with %s (message %s)", type(exc).__name__, inbound.id)
        inbound.status = STATUS_HANDLER_ERROR
        return []
    return [Reply(clean_text(reply, MAX_BODY), getattr(reply, "urgent", False)) for reply in (replies or []) if reply]
