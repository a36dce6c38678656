"""Database helpers: UTC datetimes, SQLite pragmas, one commit per unit of work."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from app.extensions import db

from .time import utcnow


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; SQLite returns them aware again."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class TimestampMixin:
    created_at = db.Column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at = db.Column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record):
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin) instead of pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_sqlite_begin_mode: ContextVar[str] = ContextVar("sqlite_begin_mode", default="IMMEDIATE")


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    # BEGIN IMMEDIATE takes the write lock up front: a read-then-write transaction
    # can then never lose an update to a concurrent writer (DESIGN.md section 10).
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"BEGIN {_sqlite_begin_mode.get()}")


@contextmanager
def sqlite_deferred_transactions():
    """Read-only inspection (tests, reports) that must not hold SQLite's write lock."""
    token = _sqlite_begin_mode.set("DEFERRED")
    try:
        yield
    finally:
        _sqlite_begin_mode.reset(token)


@contextmanager
def sqlite_immediate_transactions():
    token = _sqlite_begin_mode.set("IMMEDIATE")
    try:
        yield
    finally:
        _sqlite_begin_mode.reset(token)


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


@contextmanager
def unit_of_work():
    """Commit once at the end of a job or command; roll back on any error."""
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
