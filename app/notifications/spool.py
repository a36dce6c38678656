"""A durable local spool for the Twilio webhooks while the database cannot take their requests.

Twilio does not retry an inbound-message webhook that fails (it calls the number's Fallback URL
once, if one is set), so a text refused during a database outage or a fail-over would reach
nobody. The webhooks therefore store *or spool*: when the database cannot take a signed request,
the request is written to an SQLite file on this host (``SPOOL_PATH``, by default
``<instance>/webhook-spool.sqlite3``; WAL, ``synchronous=FULL``: the write is on disk before
Twilio gets its answer) and Twilio gets its normal answer. A spool that cannot be written is the
only case that answers 503 (then Twilio calls the Fallback URL).

The spooled items are moved into the database, oldest first, as soon as it answers again
(``drain``), by whichever process gets there first: a drain thread of the web worker that spooled
(``drain_in_background``: it stops when the spool is empty), any web worker that serves a webhook
while the spool holds items, a worker booting (``gunicorn.conf.py``), the scheduler's
``drain-spool`` job on the same host, or ``flask spool drain``. One process drains at a time (an
exclusive ``flock`` on ``<spool>.lock``, released by the kernel when the process dies, even by
kill -9), so items go in arrival order; each inbound text is stored once whatever happens
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
import fcntl
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
from sqlalchemy import text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

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
        drain_in_background(current_app._get_current_object())
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
    drain_in_background(current_app._get_current_object())
    return "spooled"


def apply_or_spool_status(**callback: Any) -> str:
    """Apply a status callback and commit, or spool it: "stored" or "spooled". Raises
    ``SpoolUnavailable`` only when it could do neither. (Statuses only move forward, so a
    callback applied after a later one changes nothing: no order to keep here.)"""
    received_at = utcnow()
    anything_waits = waiting(None)[1]
    if anything_waits:
        drain_in_background(current_app._get_current_object())
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
    drain_in_background(current_app._get_current_object())
    return "spooled"


def _store_sms(payload: dict[str, Any], received_at: datetime) -> bool:
    from .inbound import accept_sms

    # TODO(issue 10): pass webhook_reply=payload["webhook_reply"] once message.webhook_reply exists.
    return accept_sms(from_number=payload["from_number"], to_number=payload["to_number"], body=payload["body"],
                      provider_sid=payload["provider_sid"], received_at=received_at)


def _store_status(callback: dict[str, Any]) -> None:
    from .status import apply_status_callback

    apply_status_callback(**callback)
    db.session.commit()


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the session is reset either way
        db.session.remove()


# -- draining ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _drain_lock(path: Path, wait_s: float) -> Iterator[bool]:
    """Hold the exclusive drain lock of ``path`` (True), or not within ``wait_s`` (False).

    ``flock``: the kernel releases it when the holder dies, even by kill -9.
    """
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def database_answers() -> bool:
    """The database takes writes now (a PostgreSQL standby in recovery, or read only while a
    fail-over completes, does not)."""
    try:
        with db.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                return connection.execute(text("SELECT current_setting('transaction_read_only') = 'off'")).scalar()
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not now"
        return False


def _is_outage(exc: Exception) -> bool:
    """An error that says the database is unreachable, overloaded or busy, not that it refuses
    this item: counted as an outage (the item waits), never as one of the item's attempts."""
    return isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)) or (
        getattr(getattr(exc, "orig", None), "sqlstate", None) == "25006")  # read_only_sql_transaction


def _pending_after(connection: sqlite3.Connection, after_id: int, limit: int) -> list[SpoolItem]:
    rows = connection.execute(
        "SELECT id, kind, phone, sid, payload, received_at, attempts FROM spool_item "
        "WHERE state = 'pending' AND id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
    return [SpoolItem(r[0], r[1], r[2], r[3], json.loads(r[4]), datetime.fromisoformat(r[5]), r[6]) for r in rows]


def _pending_count(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT count(*) FROM spool_item WHERE state = 'pending'").fetchone()[0]


def drain(*, path: Path | None = None, batch_size: int = 50, time_budget_s: float = 0.0,
          wait_s: float = 0.0) -> dict[str, int]:
    """Move the spooled items into the database, oldest first; returns counts.

    Stops when nothing is left, when the database stops answering (``database_down``: 1), or after
    ``time_budget_s`` (0: no limit). When another process drains this spool it waits up to
    ``wait_s`` for it, then returns ``busy``: 1. Safe to run anywhere, at any time, from several
    processes and threads at once.
    """
    path = path or spool_path()
    stats = {"sms": 0, "duplicates": 0, "statuses": 0, "retried": 0, "set_aside": 0, "left": 0,
             "database_down": 0, "busy": 0, "oldest_wait_s": 0}
    connection = _connection(path, create=False)
    if connection is None:
        return stats
    max_attempts = int(current_app.config.get("SPOOL_MAX_ATTEMPTS") or 10)
    deadline = time.monotonic() + time_budget_s if time_budget_s else None
    started = time.monotonic()
    with _drain_lock(path, wait_s) as held:
        if not held:
            stats["busy"] = 1
        else:
            _drain_held(connection, stats, batch_size, max_attempts, deadline)
        stats["left"] = _pending_count(connection)
    moved = stats["sms"] + stats["duplicates"] + stats["statuses"]
    if moved or stats["set_aside"]:
        log.info("webhook spool drained in %.1f s: %d texts (%d already stored), %d status callbacks, "
                 "%d set aside, %d left%s; the oldest had waited %d s", time.monotonic() - started,
                 stats["sms"] + stats["duplicates"], stats["duplicates"], stats["statuses"], stats["set_aside"],
                 stats["left"], " (database down)" if stats["database_down"] else "", stats["oldest_wait_s"])
    return stats


def _drain_held(connection: sqlite3.Connection, stats: dict[str, int], batch_size: int, max_attempts: int,
                deadline: float | None) -> None:
    if _pending_count(connection) == 0:
        return
    if not database_answers():
        stats["database_down"] = 1
        return
    _note_database_back()
    blocked: set[str] = set()  # phones whose older text failed this pass: their next ones wait
    after = 0
    while deadline is None or time.monotonic() < deadline:
        batch = _pending_after(connection, after, batch_size)
        if not batch:
            return
        done: list[int] = []
        try:
            for item in batch:
                after = item.id
                if item.kind == SMS and item.phone in blocked:
                    continue
                try:
                    _deliver(item, stats)
                except Exception as exc:  # noqa: BLE001 - classified just below
                    _rollback()
                    if _is_outage(exc) or not database_answers():
                        stats["database_down"] = 1
                        return
                    set_aside = _failed_once(connection, item, type(exc).__name__, max_attempts, stats)
                    if item.kind == SMS and not set_aside:
                        blocked.add(item.phone)
                    continue
                if item.kind == SMS and not item.payload.get("provider_sid"):
                    _delete(connection, [item.id])  # nothing to dedupe it on: never delivered twice
                else:
                    done.append(item.id)
        finally:
            # Delivered then deleted: a crash in between delivers those again, which the
            # MessageSid dedupe and the forward-only statuses make harmless.
            _delete(connection, done)


def _deliver(item: SpoolItem, stats: dict[str, int]) -> None:
    stats["oldest_wait_s"] = max(stats["oldest_wait_s"], int((utcnow() - item.received_at).total_seconds()))
    if item.kind == SMS:
        stored = _store_sms(item.payload, item.received_at)
        stats["sms" if stored else "duplicates"] += 1
    else:
        _store_status(item.payload)
        stats["statuses"] += 1


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


def drain_job() -> dict[str, int]:
    """The scheduler's ``drain-spool`` job: drain this host's spool (the web workers' drain
    threads usually got there first; this one covers a worker that died)."""
    return drain(time_budget_s=50.0)


# -- the drain thread of a web process ---------------------------------------------------------

THREAD_NAME = "oncolink-spool-drain"
_thread_lock = threading.Lock()
_thread: threading.Thread | None = None
_thread_pid: int | None = None


def drain_in_background(app: Flask) -> bool:
    """Make sure this process runs a drain thread (True when one was started now).

    The thread drains, waits (0.2 s, doubling up to ``SPOOL_RETRY_MAX_SECONDS``) while the
    database is down or another process drains, and ends as soon as nothing waits: it is not a
    scheduler, and a web process that never spools never starts one.
    """
    global _thread, _thread_pid
    with _thread_lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return False
        _thread = threading.Thread(target=_drain_loop, args=(app,), name=THREAD_NAME, daemon=True)
        _thread_pid = os.getpid()
        _thread.start()
        return True


def _drain_loop(app: Flask) -> None:
    global _thread
    delay = 0.2
    while True:
        with app.app_context():
            try:
                stats = drain(time_budget_s=30.0)
            except Exception as exc:  # noqa: BLE001 - keep trying; the items stay in the file
                log.error("webhook spool drain failed (%s)", type(exc).__name__)
                stats = {"left": 1, "database_down": 1}
            finally:
                db.session.remove()
            cap = float(app.config.get("SPOOL_RETRY_MAX_SECONDS") or 1.0)
        if stats["left"] == 0:
            with _thread_lock:  # decided under the lock: a request that spools now starts a new one
                try:
                    with app.app_context():
                        if waiting(None, spool_path(app))[1]:
                            continue
                except Exception:  # noqa: BLE001 - keep going rather than leave items behind
                    continue
                if _thread is threading.current_thread():
                    _thread = None
                return
        if stats.get("database_down") or stats.get("busy") or not stats.get("sms", 0) + stats.get("statuses", 0):
            time.sleep(delay)
            delay = min(delay * 2, cap)
        else:
            delay = 0.2


def drain_if_pending(app: Any) -> bool:
    """At a web worker's start (``gunicorn.conf.py``): drain in the background when the spool holds
    items, e.g. those of a worker that was killed. Harmless for any other WSGI app."""
    if not isinstance(app, Flask) or "SPOOL_MAX_ATTEMPTS" not in app.config:
        return False
    try:
        with app.app_context():
            if not waiting(None, spool_path(app))[1]:
                return False
    except Exception:  # noqa: BLE001 - the next webhook or the scheduler's job will try again
        return False
    return drain_in_background(app)
