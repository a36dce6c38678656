"""A lease in the database naming the one process allowed to schedule jobs.

The holder renews it well before it expires; anyone may take it once it has expired. Each
operation is one short transaction of its own (never the caller's session), and taking the lease
is a single conditional UPDATE, so two candidates can never both win. On PostgreSQL "now" is the
database server's clock, so hosts with drifting clocks still agree on who holds it; SQLite lives
on one host and uses the local clock.
"""
from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core.db import sqlite_deferred_transactions, sqlite_immediate_transactions
from app.extensions import db

from .models import SchedulerLease

SCHEDULER_LEASE = "scheduler"
_table = SchedulerLease.__table__


@dataclass(frozen=True)
class Acquired:
    """The lease is ours; ``previous_holder`` is who held it before, if it was someone else."""

    previous_holder: str | None


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def active(self, now: datetime | None = None) -> bool:
        return self.expires_at > (now or datetime.now(timezone.utc))


def new_holder_id() -> str:
    """host:pid:nonce; the nonce tells apart two lease users inside one process."""
    return f"{socket.gethostname()[:200]}:{os.getpid()}:{secrets.token_hex(3)}"


def parse_holder(holder: str) -> tuple[str, int] | None:
    """(host, pid) of a holder id, or None if it was not made by ``new_holder_id``."""
    host_pid = holder.rpartition(":")[0]
    host, _, pid = host_pid.rpartition(":")
    return (host, int(pid)) if host and pid.isdigit() else None


def _now(conn: Connection, now: datetime | None) -> datetime:
    if now is not None:
        return now
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return datetime.now(timezone.utc)


@contextmanager
def _transaction(seconds: float, cutoff: float | None = None) -> Iterator[Connection]:
    """A short write transaction that neither waits long for a lock nor holds one long.

    On PostgreSQL a holder frozen in the middle of it (a paused VM, a stopped process, a lost
    host) is cut off by the server after ``cutoff`` seconds (default: half the lease, at least
    1 s), so its row lock never keeps a standby from taking over for longer; a standby waits at
    most as long for a lock. (On SQLite a frozen writer stalls every writer of the database, the
    scheduler's and the web's alike, until busy_timeout: one host, one writer.)
    """
    limit = cutoff if cutoff is not None else max(seconds / 2, 1.0)
    with sqlite_immediate_transactions(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            ms = str(max(int(limit * 1000), 100))
            conn.execute(text("SELECT set_config('lock_timeout', :ms, true), "
                              "set_config('idle_in_transaction_session_timeout', :ms, true)"), {"ms": ms})
        yield conn


def _insert_if_absent(conn: Connection, values: dict) -> bool:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = pg_insert(_table).values(**values).on_conflict_do_nothing(index_elements=["name"])
    elif dialect == "sqlite":
        stmt = sqlite_insert(_table).values(**values).on_conflict_do_nothing(index_elements=["name"])
    else:  # pragma: no cover - the project runs on these two only
        raise NotImplementedError(f"scheduler lease on {dialect}")
    return conn.execute(stmt).rowcount == 1


def acquire(holder: str, seconds: float, *, name: str = SCHEDULER_LEASE,
            now: datetime | None = None, cutoff: float | None = None) -> Acquired | None:
    """Take the lease if it is free, expired or already ours; None if someone else holds it."""
    with _transaction(seconds, cutoff) as conn:
        now = _now(conn, now)
        expires = now + timedelta(seconds=seconds)
        if _insert_if_absent(conn, {"name": name, "holder": holder, "acquired_at": now,
                                    "renewed_at": now, "expires_at": expires}):
            return Acquired(previous_holder=None)
        # Locked until commit (SQLite: the whole database is, by BEGIN IMMEDIATE), so the
        # previous holder read here is the one the UPDATE replaces.
        row = conn.execute(select(_table.c.holder, _table.c.acquired_at)
                           .where(_table.c.name == name).with_for_update()).one()
        ours = row.holder == holder
        taken = conn.execute(
            update(_table)
            .where(_table.c.name == name, or_(_table.c.holder == holder, _table.c.expires_at < now))
            .values(holder=holder, acquired_at=row.acquired_at if ours else now, renewed_at=now,
                    expires_at=expires)
        ).rowcount == 1
    if not taken:
        return None
    return Acquired(previous_holder=None if ours else row.holder)


def renew(holder: str, seconds: float, *, name: str = SCHEDULER_LEASE, now: datetime | None = None,
          cutoff: float | None = None) -> bool:
    """Extend our lease; False if another process holds it now (we must stop scheduling)."""
    with _transaction(seconds, cutoff) as conn:
        now = _now(conn, now)
        return conn.execute(
            update(_table)
            .where(_table.c.name == name, _table.c.holder == holder)
            .values(renewed_at=now, expires_at=now + timedelta(seconds=seconds))
        ).rowcount == 1


def release(holder: str, *, name: str = SCHEDULER_LEASE, now: datetime | None = None) -> bool:
    """Give the lease up at once (a standby may take it on its next try); the row keeps our name."""
    with _transaction(2.0) as conn:
        now = _now(conn, now)
        return conn.execute(
            update(_table)
            .where(_table.c.name == name, _table.c.holder == holder, _table.c.expires_at > now)
            .values(renewed_at=now, expires_at=now)
        ).rowcount == 1


def is_held(holder: str, *, name: str = SCHEDULER_LEASE, now: datetime | None = None) -> bool:
    """True while ``holder`` holds an unexpired lease (checked before every scheduled run)."""
    with sqlite_deferred_transactions(), db.engine.connect() as conn:
        now = _now(conn, now)
        found = conn.execute(
            select(_table.c.id).where(_table.c.name == name, _table.c.holder == holder,
                                      _table.c.expires_at > now)
        ).first()
        conn.rollback()
    return found is not None


def current(name: str = SCHEDULER_LEASE) -> LeaseState | None:
    with sqlite_deferred_transactions(), db.engine.connect() as conn:
        row = conn.execute(select(_table).where(_table.c.name == name)).first()
        conn.rollback()
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.acquired_at, row.renewed_at, row.expires_at)
