"""A durable local spool for the Twilio webhooks while the database cannot take their requests.

Twilio does not retry an inbound-message webhook that fails (it calls the number's Fallback URL
once, if one is set), so a text refused during a database outage or a fail-over would reach
nobody. The webhooks therefore store *or spool*: when the database cannot take a signed request,
the request is written to an SQLite file on this host (``SPOOL_PATH``, by default
``<instance>/webhook-spool.sqlite3``; WAL, ``synchronous=FULL``: the write is on disk before
Twilio gets its answer) and Twilio gets its normal answer. A spool that cannot be written is the
only case that answers 503 (then Twilio calls the Fallback URL).

The spooled items are moved into the database, oldest first, as soon as it answers again
(``spool_drain.drain``), by whichever process gets there first: a drain thread of the web worker
that spooled (it stops when the spool is empty), any web worker that serves a webhook while the
spool holds items, a worker booting (``gunicorn.conf.py``), the scheduler's ``drain-spool`` job on
the same host, or ``flask spool drain``. One process drains at a time (an exclusive ``flock`` on
``<spool>.lock``, released by the kernel when the process dies, even by kill -9), so items go in
arrival order; each inbound text is stored once whatever happens
(``accept_sms``' ``ON CONFLICT`` on the MessageSid), and a status callback applied twice changes
nothing (statuses only move forward). While the spool holds a text from a phone, the next texts
from that phone are spooled behind it, so a newer text never overtakes an older one.

An item the database refuses while it answers (not an outage: a bug, a constraint) is tried
``SPOOL_MAX_ATTEMPTS`` times, then set aside (state ``failed``, kept in the file, shown to admins
and failing ``/healthz``) so that it does not hold that phone's later texts forever.

``status()`` gives (how many items wait, when the oldest arrived) for the admin page, ``/healthz``
and the platform's own fault reporting. Logs name counts, ages and exception types only.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context

from app.core.time import utcnow
from app.extensions import db

log = logging.getLogger("oncolink.notifications.spool")

SMS = "sms"
STATUS = "status"
PENDING = "pending"
FAILED = "failed"  # refused by a database that answers, SPOOL_MAX_ATTEMPTS times: set aside
DEFAULT_FILENAME = "webhook-spool.sqlite3"
MIN_FREE_BYTES = 64 * 1024 * 1024  # less free space than this beside the spool fails /healthz
_BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_item (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order, never reused
    kind TEXT NOT NULL CHECK (kind IN ('sms', 'status')),
    phone TEXT NOT NULL DEFAULT '',        -- the sender of a text: the order is kept per phone
    sid TEXT,
    payload TEXT NOT NULL,                 -- JSON: what the webhook would have stored
    received_at TEXT NOT NULL,             -- ISO 8601, UTC
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,                       -- an exception type, never a message
    pid INTEGER                            -- the process that spooled it
);
CREATE INDEX IF NOT EXISTS spool_item_state_phone ON spool_item (state, phone, id);
"""


class SpoolUnavailable(RuntimeError):
    """The spool file cannot be written (disk full, read-only, missing folder, over its cap)."""


@dataclass(frozen=True)
class SpoolItem:
    id: int
    kind: str
    phone: str
    sid: str | None
    payload: dict[str, Any]
    received_at: datetime
    attempts: int


@dataclass(frozen=True)
class SpoolStatus:
    pending: int
    failed: int
    oldest: datetime | None  # arrival of the oldest item not yet in the database (either state)
    path: Path

    @property
    def count(self) -> int:
        return self.pending + self.failed


# -- the file ---------------------------------------------------------------------------------

def spool_path(app: Flask | None = None) -> Path:
    app = app or current_app
    configured = app.config.get("SPOOL_PATH")
    return Path(configured) if configured else Path(app.instance_path) / DEFAULT_FILENAME


_local = threading.local()


def _connection(path: Path, *, create: bool) -> sqlite3.Connection | None:
    """This thread's connection to the spool at ``path`` (None when the file does not exist and
    ``create`` is false). Every connection syncs each commit to disk (``synchronous=FULL``)."""
    key = (os.getpid(), str(path))
    cached = getattr(_local, "connections", None)
    if cached is None or cached[0] != os.getpid():  # a forked worker never reuses its parent's
        cached = _local.connections = (os.getpid(), {})
    connections = cached[1]
    connection = connections.get(key)
    if connection is not None:
        return connection
    if not create and not path.exists():
        return None
    connection = _open(path)
    connections[key] = connection
    return connection


def _open(path: Path) -> sqlite3.Connection:
    max_mb = float(current_app.config.get("SPOOL_MAX_MB") or 0) if has_app_context() else 0.0
    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The texts are health data: readable by this service's user only.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # each commit fsync'd before Twilio's answer
        connection.execute("PRAGMA secure_delete=ON")  # a drained text leaves no copy in free pages
        if max_mb:
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
            connection.execute(f"PRAGMA max_page_count={max(16, int(max_mb * 1024 * 1024 / page_size))}")
        connection.executescript(_SCHEMA)
    except Exception:
        connection.close()
        raise
    if created:
        _fsync_directory(path.parent)  # the new file's name is on disk too, not only its content
    return connection


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _forget_connection(path: Path) -> None:
    cached = getattr(_local, "connections", None)
    if cached is not None:
        connection = cached[1].pop((os.getpid(), str(path)), None)
        if connection is not None:
            connection.close()


def write(kind: str, payload: dict[str, Any], *, phone: str = "", sid: str | None = None,
          received_at: datetime | None = None, path: Path | None = None) -> int:
    """Append one item, on disk when this returns; its id. Raises ``SpoolUnavailable``."""
    path = path or spool_path()
    received_at = received_at or utcnow()
    row = (kind, phone or "", sid, json.dumps(payload, ensure_ascii=False), received_at.isoformat(), os.getpid())
    try:
        connection = _connection(path, create=True)
        with _transaction(connection):
            cursor = connection.execute(
                "INSERT INTO spool_item (kind, phone, sid, payload, received_at, pid) VALUES (?, ?, ?, ?, ?, ?)",
                row)
        return int(cursor.lastrowid)
    except (OSError, sqlite3.Error) as exc:
        _forget_connection(path)
        log.error("webhook spool %s cannot be written (%s)", path, type(exc).__name__)
        raise SpoolUnavailable(type(exc).__name__) from exc


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def waiting(phone: str | None, path: Path | None = None) -> tuple[bool, bool]:
    """(the spool holds a text from ``phone`` waiting to go in, it holds anything waiting).

    Cheap (a stat, then one indexed query on a local file): every webhook asks it. When the spool
    cannot be read it answers (False, False) and says so in the log.
    """
    path = path or spool_path()
    try:
        connection = _connection(path, create=False)
        if connection is None:
            return False, False
        row = connection.execute(
            "SELECT EXISTS (SELECT 1 FROM spool_item WHERE state = 'pending' AND phone = ?), "
            "EXISTS (SELECT 1 FROM spool_item WHERE state = 'pending')", (phone or "",)).fetchone()
    except sqlite3.Error as exc:
        _forget_connection(path)
        log.error("webhook spool %s cannot be read (%s)", path, type(exc).__name__)
        return False, False
    return bool(row[0]), bool(row[1])


def details(path: Path | None = None) -> SpoolStatus:
    """How many items wait (pending, set aside) and when the oldest arrived."""
    path = path or spool_path()
    connection = _connection(path, create=False)
    if connection is None:
        return SpoolStatus(0, 0, None, path)
    rows = dict(((state, (n, oldest)) for state, n, oldest in connection.execute(
        "SELECT state, count(*), min(received_at) FROM spool_item GROUP BY state")))
    pending, first_pending = rows.get(PENDING, (0, None))
    failed, first_failed = rows.get(FAILED, (0, None))
    firsts = [datetime.fromisoformat(v) for v in (first_pending, first_failed) if v]
    return SpoolStatus(pending, failed, min(firsts) if firsts else None, path)


def status(path: Path | None = None) -> tuple[int, datetime | None]:
    """(items held in this host's spool and not yet in the database, arrival of the oldest).

    The plain call for admins' pages, ``/healthz`` and the platform's own fault reporting:
    (0, None) when nothing waits. Needs an app context (for ``SPOOL_PATH``) unless given ``path``.
    """
    state = details(path)
    return state.count, state.oldest


def health(now: datetime | None = None) -> tuple[bool, float | None]:
    """(the spool is healthy, age in seconds of its oldest item): unhealthy when an item has
    waited longer than ``HEALTH_SPOOL_STALE_SECONDS``, when an item was set aside, or when the
    spool's disk has less than 64 MB free. Never raises."""
    now = now or utcnow()
    path = spool_path()
    try:
        state = details(path)
    except (OSError, sqlite3.Error):
        return False, None
    age = None if state.oldest is None else round(max(0.0, (now - state.oldest).total_seconds()), 1)
    ok = state.failed == 0 and (age is None or age < current_app.config["HEALTH_SPOOL_STALE_SECONDS"])
    return ok and _free_bytes(path) >= MIN_FREE_BYTES, age


def _free_bytes(path: Path) -> int:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


# -- the webhooks' side -----------------------------------------------------------------------

# Set when a webhook of this process found the database failing; cleared when a drain finds it
# answering. Meanwhile, as long as the spool holds items, requests go straight to the spool:
# a database that hangs (host lost) costs one connection timeout per process, not one per request.
_outage_seen: float | None = None


def _note_outage() -> None:
    global _outage_seen
    if _outage_seen is None:
        _outage_seen = time.monotonic()


def database_suspect() -> bool:
    """True while this process has seen the database fail and no drain has seen it back: a
    lookup that could wait for a connection timeout is better skipped (the webhook's screen)."""
    return _outage_seen is not None


def _note_database_back() -> None:
    global _outage_seen
    _outage_seen = None


def accept_or_spool_sms(*, from_number: str, to_number: str, body: str, provider_sid: str | None,
                        webhook_reply: str | None = None) -> str:
    """Store an inbound text as ``accept_sms`` does, or spool it: "stored", "duplicate" (a known
    MessageSid) or "spooled". Raises ``SpoolUnavailable`` only when it could do neither.

    A text from a phone that still has a text in the spool goes to the spool behind it.
    """
    from .inbound import MAX_BODY, MAX_NUMBER, clean_text

    received_at = utcnow()
    payload = {"from_number": clean_text(from_number, MAX_NUMBER), "to_number": clean_text(to_number, MAX_NUMBER),
               "body": clean_text(body, MAX_BODY), "provider_sid": clean_text(provider_sid, 64) or None,
               "webhook_reply": webhook_reply}
    phone_waits, anything_waits = waiting(payload["from_number"])
    if anything_waits:
        _drain_soon()
    if phone_waits:
        reason = "behind an earlier text"
    elif anything_waits and _outage_seen is not None:
        reason = "database down"
    else:
        try:
            return "stored" if _store_sms(payload, received_at) else "duplicate"
        except Exception as exc:  # noqa: BLE001 - whatever failed, the text must be kept
            _note_outage()
            reason = type(exc).__name__
    write(SMS, payload, phone=payload["from_number"], sid=payload["provider_sid"], received_at=received_at)
    log.warning("inbound SMS spooled (%s)", reason)
    _drain_soon()
    return "spooled"


def apply_or_spool_status(**callback: Any) -> str:
    """Apply a status callback and commit, or spool it: "stored" or "spooled". Raises
    ``SpoolUnavailable`` only when it could do neither. (Statuses only move forward, so a
    callback applied after a later one changes nothing: no order to keep here.)"""
    received_at = utcnow()
    anything_waits = waiting(None)[1]
    if anything_waits:
        _drain_soon()
    if anything_waits and _outage_seen is not None:
        reason = "database down"
    else:
        try:
            _store_status(callback)
            return "stored"
        except Exception as exc:  # noqa: BLE001 - whatever failed, the callback must be kept
            _rollback()
            _note_outage()
            reason = type(exc).__name__
    write(STATUS, callback, sid=callback.get("sid"), received_at=received_at)
    log.warning("status callback spooled (%s)", reason)
    _drain_soon()
    return "spooled"


def _drain_soon() -> None:
    from .spool_drain import drain_in_background

    drain_in_background(current_app._get_current_object())


def _store_sms(payload: dict[str, Any], received_at: datetime) -> bool:
    from .inbound import accept_sms

    return accept_sms(from_number=payload["from_number"], to_number=payload["to_number"], body=payload["body"],
                      provider_sid=payload["provider_sid"], received_at=received_at,
                      webhook_reply=payload.get("webhook_reply"))


def _store_status(callback: dict[str, Any]) -> None:
    from .status import apply_status_callback

    apply_status_callback(**callback)
    db.session.commit()


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the session is reset either way
        db.session.remove()


# -- reading and updating items (used by the drain) ----------------------------------------

def _pending_after(connection: sqlite3.Connection, after_id: int, limit: int) -> list[SpoolItem]:
    rows = connection.execute(
        "SELECT id, kind, phone, sid, payload, received_at, attempts FROM spool_item "
        "WHERE state = 'pending' AND id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
    return [SpoolItem(r[0], r[1], r[2], r[3], json.loads(r[4]), datetime.fromisoformat(r[5]), r[6]) for r in rows]


def _pending_count(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT count(*) FROM spool_item WHERE state = 'pending'").fetchone()[0]


def _failed_once(connection: sqlite3.Connection, item: SpoolItem, error: str, max_attempts: int,
                 stats: dict[str, int]) -> bool:
    """Count a refusal of ``item``; True when that was its last attempt (set aside)."""
    attempts = item.attempts + 1
    state = FAILED if attempts >= max_attempts else PENDING
    with _transaction(connection):
        connection.execute("UPDATE spool_item SET attempts = ?, last_error = ?, state = ? WHERE id = ?",
                           (attempts, error, state, item.id))
    stats["set_aside" if state == FAILED else "retried"] += 1
    log.error("spooled %s item %d refused by the database (%s), attempt %d of %d%s", item.kind, item.id, error,
              attempts, max_attempts, ": set aside" if state == FAILED else "")
    return state == FAILED


def _delete(connection: sqlite3.Connection, ids: list[int]) -> None:
    if not ids:
        return
    with _transaction(connection):
        connection.executemany("DELETE FROM spool_item WHERE id = ?", [(i,) for i in ids])


def retry_failed(path: Path | None = None) -> int:
    """Put the items set aside back in line (after the cause was fixed); how many."""
    connection = _connection(path or spool_path(), create=False)
    if connection is None:
        return 0
    with _transaction(connection):
        return connection.execute("UPDATE spool_item SET state = 'pending', attempts = 0 "
                                  "WHERE state = 'failed'").rowcount
