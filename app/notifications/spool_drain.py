"""Draining the webhook spool (``app.notifications.spool``) into the database.

One drainer at a time per spool file: an exclusive ``flock`` on ``<spool>.lock``, which the kernel
releases when the holder dies, even by kill -9. Items go oldest first; a batch is deleted from the
file after the database has it, so a drain cut short delivers that batch again, which the
MessageSid dedupe and the forward-only statuses make harmless. An outage stops the drain (the items
wait and are not counted as attempts); any other refusal counts an attempt (``spool._failed_once``).

Who drains: the web worker that spooled (``drain_in_background``: a daemon thread that ends when the
spool is empty; not a scheduler), any webhook that finds items waiting, a gunicorn worker starting
(``drain_if_pending``, from ``gunicorn.conf.py``), the scheduler's ``drain-spool`` job
(``drain_job``) and ``flask spool drain``.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core.time import utcnow
from app.extensions import db

from . import spool

log = logging.getLogger("oncolink.notifications.spool")


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



def drain(*, path: Path | None = None, batch_size: int = 50, time_budget_s: float = 0.0,
          wait_s: float = 0.0) -> dict[str, int]:
    """Move the spooled items into the database, oldest first; returns counts.

    Stops when nothing is left, when the database stops answering (``database_down``: 1), or after
    ``time_budget_s`` (0: no limit). When another process drains this spool it waits up to
    ``wait_s`` for it, then returns ``busy``: 1. Safe to run anywhere, at any time, from several
    processes and threads at once.
    """
    path = path or spool.spool_path()
    stats = {"sms": 0, "duplicates": 0, "statuses": 0, "retried": 0, "set_aside": 0, "left": 0,
             "database_down": 0, "busy": 0, "oldest_wait_s": 0}
    connection = spool._connection(path, create=False)
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
        stats["left"] = spool._pending_count(connection)
    moved = stats["sms"] + stats["duplicates"] + stats["statuses"]
    if moved or stats["set_aside"]:
        log.info("webhook spool drained in %.1f s: %d texts (%d already stored), %d status callbacks, "
                 "%d set aside, %d left%s; the oldest had waited %d s", time.monotonic() - started,
                 stats["sms"] + stats["duplicates"], stats["duplicates"], stats["statuses"], stats["set_aside"],
                 stats["left"], " (database down)" if stats["database_down"] else "", stats["oldest_wait_s"])
    return stats


def _drain_held(connection: sqlite3.Connection, stats: dict[str, int], batch_size: int, max_attempts: int,
                deadline: float | None) -> None:
    if spool._pending_count(connection) == 0:
        return
    if not database_answers():
        stats["database_down"] = 1
        return
    spool._note_database_back()
    blocked: set[str] = set()  # phones whose older text failed this pass: their next ones wait
    after = 0
    while deadline is None or time.monotonic() < deadline:
        batch = spool._pending_after(connection, after, batch_size)
        if not batch:
            return
        done: list[int] = []
        try:
            for item in batch:
                after = item.id
                if item.kind == spool.SMS and item.phone in blocked:
                    continue
                try:
                    _deliver(item, stats)
                except Exception as exc:  # noqa: BLE001 - classified just below
                    spool._rollback()
                    if _is_outage(exc) or not database_answers():
                        stats["database_down"] = 1
                        return
                    set_aside = spool._failed_once(connection, item, type(exc).__name__, max_attempts, stats)
                    if item.kind == spool.SMS and not set_aside:
                        blocked.add(item.phone)
                    continue
                if item.kind == spool.SMS and not item.payload.get("provider_sid"):
                    spool._delete(connection, [item.id])  # nothing to dedupe it on: never delivered twice
                else:
                    done.append(item.id)
        finally:
            # Delivered then deleted: a crash in between delivers those again, which the
            # MessageSid dedupe and the forward-only statuses make harmless.
            spool._delete(connection, done)


def _deliver(item: spool.SpoolItem, stats: dict[str, int]) -> None:
    stats["oldest_wait_s"] = max(stats["oldest_wait_s"], int((utcnow() - item.received_at).total_seconds()))
    if item.kind == spool.SMS:
        stored = spool._store_sms(item.payload, item.received_at)
        stats["sms" if stored else "duplicates"] += 1
    else:
        spool._store_status(item.payload)
        stats["statuses"] += 1



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
                        if spool.waiting(None, spool.spool_path(app))[1]:
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
            if not spool.waiting(None, spool.spool_path(app))[1]:
                return False
    except Exception:  # noqa: BLE001 - the next webhook or the scheduler's job will try again
        return False
    return drain_in_background(app)
