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
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
