"""Writing to the outbox: every SMS or call starts as a row in the caller's transaction.

Nothing is sent here. The dispatcher (``dispatcher.py``) picks rows up only once the
transaction that wrote them has committed, so a rolled-back change never reaches a
patient. The idempotency key is the caller's way to say "this message, once": it is
stored, never shown to the patient.
"""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.core.time import utcnow
from app.extensions import db

from .models import PRIORITY_ROUTINE, PRIORITY_URGENT, MessageChannel, OutboxEntry, OutboxState, given_up, to_send
from .segments import count_segments

MAX_SEGMENTS = 2
# Rows written by this thread since it started counting (``counting_writes``): a job that wrote
# any (a page, a reply) brings the dispatcher forward rather than wait for its next tick.
_writes = threading.local()
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _check_number(to: str) -> None:
    if not isinstance(to, str) or not _E164.match(to):
        raise ValueError("the recipient must be an E.164 phone number")


def _check_key(idempotency_key: str) -> None:
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("the idempotency key must be 1 to 200 characters")


def find_by_key(idempotency_key: str) -> OutboxEntry | None:
    return db.session.scalar(select(OutboxEntry).where(OutboxEntry.idempotency_key == idempotency_key))


def _add_once(entry: OutboxEntry) -> OutboxEntry:
    existing = find_by_key(entry.idempotency_key)
    if existing is not None:
        return existing
    try:
        # A savepoint, so a concurrent writer of the same key costs only this insert.
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:
        existing = find_by_key(entry.idempotency_key)
        if existing is None:
            raise
        return existing
    _count_writes(1)
    return entry


def _count_writes(n: int) -> None:
    if getattr(_writes, "count", None) is not None:
        _writes.count += n


@contextmanager
def counting_writes():
    """Count the outbox rows this thread writes inside the block: ``with counting_writes() as n: ...; n()``."""
    previous = getattr(_writes, "count", None)
    _writes.count = 0
    try:
        yield lambda: _writes.count
    finally:
        _writes.count = previous


def _check_priority(priority: int) -> int:
    if priority not in (PRIORITY_URGENT, PRIORITY_ROUTINE):
        raise ValueError("priority is 0 (urgent) or 1 (routine)")
    return priority


def check_sms(to: str, body: str, idempotency_key: str) -> None:
    """ValueError unless this SMS can be queued: E.164 recipient, key, 1 to 2 segments."""
    _check_number(to)
    _check_key(idempotency_key)
    encoding, segments = count_segments(body or "")
    if segments == 0:
        raise ValueError("an SMS needs a body")
    if segments > MAX_SEGMENTS:
        raise ValueError(f"the SMS takes {segments} {encoding} segments; at most {MAX_SEGMENTS} allowed")


def enqueue_sms(*, to: str, body: str, idempotency_key: str, purpose: str,
                patient_id: int | None = None, ref: str | None = None,
                not_before: datetime | None = None, priority: int = PRIORITY_ROUTINE) -> OutboxEntry:
    """Queue one SMS (flushed, not committed); the same key twice returns the first row.

    ``priority``: ``PRIORITY_URGENT`` (a safety reply, a page) leaves before any routine row
    and has part of the sending rate kept for it; ``PRIORITY_ROUTINE`` otherwise."""
    check_sms(to, body, idempotency_key)
    return _add_once(OutboxEntry(
        idempotency_key=idempotency_key, channel=MessageChannel.SMS, to_number=to, body=body,
        purpose=purpose, patient_id=patient_id, ref=ref, priority=_check_priority(priority),
        state=OutboxState.PENDING,
        attempts=0, next_attempt_at=not_before or utcnow(), created_at=utcnow(),
    ))


def enqueue_sms_rows(rows: list[dict]) -> int:
    """Queue many SMS in one statement (flushed with it, not committed); keys already present are
    skipped, as ``enqueue_sms`` would return their first row. Each row: ``to``, ``body``,
    ``idempotency_key``, ``purpose``, optional ``patient_id``, ``ref`` and ``priority`` (default
    routine); rows that ``enqueue_sms``
    would refuse raise ``ValueError`` before anything is written. Returns the rows written."""
    if not rows:
        return 0
    now = utcnow()
    values = []
    for row in rows:
        check_sms(row["to"], row["body"], row["idempotency_key"])
        values.append(dict(idempotency_key=row["idempotency_key"], channel=MessageChannel.SMS, to_number=row["to"],
                           body=row["body"], purpose=row["purpose"], patient_id=row.get("patient_id"),
                           ref=row.get("ref"), priority=_check_priority(row.get("priority", PRIORITY_ROUTINE)),
                           state=OutboxState.PENDING, attempts=0, next_attempt_at=now, created_at=now))
    db.session.flush()
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = OutboxEntry.__table__
    stmt = insert(table).values(values).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(table.c.id)
    written = len(db.session.execute(stmt).all())
    _count_writes(written)
    return written


def enqueue_call(*, to: str, idempotency_key: str, purpose: str, twiml_path: str,
                 patient_id: int | None = None, ref: str | None = None,
                 not_before: datetime | None = None, priority: int = PRIORITY_ROUTINE) -> OutboxEntry:
    """Queue one automated call; the provider fetches its TwiML from PUBLIC_BASE_URL + twiml_path."""
    _check_number(to)
    _check_key(idempotency_key)
    if not twiml_path or not twiml_path.startswith("/"):
        raise ValueError("twiml_path must be an absolute path such as /voice/checkin/12")
    return _add_once(OutboxEntry(
        idempotency_key=idempotency_key, channel=MessageChannel.VOICE, to_number=to,
        twiml_path=twiml_path, purpose=purpose, patient_id=patient_id, ref=ref,
        priority=_check_priority(priority), state=OutboxState.PENDING, attempts=0, next_attempt_at=not_before or utcnow(),
        created_at=utcnow(),
    ))


def entries_for_ref(ref: str) -> list[OutboxEntry]:
    return list(db.session.scalars(select(OutboxEntry).where(OutboxEntry.ref == ref)
                                   .order_by(OutboxEntry.id)))


def dead_entries(limit: int = 100) -> list[OutboxEntry]:
    """Messages the dispatcher gave up on, newest first: a nurse has to reach these patients."""
    return list(db.session.scalars(
        select(OutboxEntry).where(given_up())
        .order_by(OutboxEntry.created_at.desc(), OutboxEntry.id.desc()).limit(limit)))


def state_counts() -> dict[str, int]:
    rows = db.session.execute(select(OutboxEntry.state, func.count()).group_by(OutboxEntry.state))
    counts = {state.value: 0 for state in OutboxState}
    counts.update({state: n for state, n in rows})
    return counts


def oldest_due(now: datetime | None = None) -> datetime | None:
    """When the longest-waiting due row became due (None when nothing waits)."""
    now = now or utcnow()
    return db.session.scalar(select(func.min(OutboxEntry.next_attempt_at)).where(
        to_send(), OutboxEntry.state == OutboxState.PENDING, OutboxEntry.next_attempt_at <= now))


def requeue_dead(entry: OutboxEntry) -> None:
    """Give a dead row a fresh set of attempts (after the cause was fixed)."""
    if entry.state != OutboxState.DEAD:
        raise ValueError("only dead messages can be queued again")
    entry.state = OutboxState.PENDING
    entry.attempts = 0
    # first_attempt_at stays: an earlier attempt may have reached the provider, so the
    # next one still reconciles before sending.
    entry.next_attempt_at = utcnow()
    db.session.flush()
