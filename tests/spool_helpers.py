"""Helpers of the webhook spool tests: a database that refuses connections, in this process."""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import event


@contextlib.contextmanager
def database_refusing(db) -> Iterator[None]:
    """Every new connection of the application's engine fails as the driver fails when the server
    is down, and the pooled connections are dropped: the database is "down" for this process."""
    engine = db.engine
    error = engine.dialect.dbapi.OperationalError

    def refuse(dialect, conn_rec, cargs, cparams):
        raise error("connection refused (the test cut the database)")

    db.session.rollback()
    event.listen(engine, "do_connect", refuse)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "do_connect", refuse)


def spool_rows(path: Path) -> list[tuple]:
    """(id, kind, phone, sid, state, attempts) of every item, read straight from the file."""
    if not path.exists():
        return []
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT id, kind, phone, sid, state, attempts FROM spool_item ORDER BY id").fetchall()
    finally:
        connection.close()
