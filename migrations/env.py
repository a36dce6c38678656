"""Alembic environment: runs with the Flask app's engine and the models' metadata."""
from alembic import context
from flask import current_app

from app.core.db import UTCDateTime

config = context.config
target_metadata = current_app.extensions["migrate"].db.metadata


def render_item(type_, obj, autogen_context):
    # Migrations hold plain SQL types, never application classes.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs):
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def run_migrations_offline():
    _configure(url=str(current_app.extensions["migrate"].db.engine.url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite's batch mode rebuilds a table by copying it and dropping the old one, which a
            # table that others refer to cannot survive with foreign keys enforced. The pragma only
            # takes effect outside a transaction (the driver connection is in autocommit here); the
            # references are checked once the migration is done.
            raw = connection.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = raw.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows with broken references: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
