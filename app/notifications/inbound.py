"""Inbound SMS: store once, hand to whoever owns the conversation, store the replies.

The transport does not know what a check-in is: the owner of the conversation registers
one handler (``register_sms_handler``) and returns the reply texts. The webhook puts the
replies in its TwiML answer; the development "patient phone" page shows them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.care.models import Patient
from app.core.time import utcnow
from app.extensions import db

from .models import Direction, Message, MessageChannel

log = logging.getLogger("oncolink.notifications")

SmsHandler = Callable[[str, str, str, int], list[str]]
MAX_BODY = 1600  # Twilio's own limit for a concatenated SMS
MAX_NUMBER = 40
STATUS_RECEIVED = "received"
STATUS_HANDLER_ERROR = "handler_error"
STATUS_REPLIED = "replied"

_handler: SmsHandler | None = None


def register_sms_handler(fn: SmsHandler | None) -> SmsHandler | None:
    """Make ``fn`` the one handler of inbound SMS; returns the previous one (tests restore it)."""
    global _handler
    previous, _handler = _handler, fn
    return previous


def current_sms_handler() -> SmsHandler | None:
    return _handler


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


def tag_message(message_id: int, *, ref: str | None = None, patient_id: int | None = None) -> None:
    """Let the conversation owner label a stored message (e.g. ``checkin:12:item:fever``)."""
    message = db.session.get(Message, message_id)
    if message is None:
        raise LookupError(f"no message {message_id}")
    if ref is not None:
        message.ref = ref
    if patient_id is not None:
        message.patient_id = patient_id
    db.session.flush()


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
    return [clean_text(reply, MAX_BODY) for reply in (replies or []) if reply]
