"""The migration chain builds exactly the models' schema, on SQLite and on PostgreSQL,
and every revision downgrades cleanly."""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from tests.conftest import DATABASE_URL, make_app

# Tables owned by libraries, not by our models.
EXTERNAL_TABLES = {"alembic_version", "apscheduler_jobs"}


def _scratch_database():
    """A database of the same kind as the test run's, empty, dropped afterwards."""
    if DATABASE_URL.startswith("postgresql"):
        name = f"oncolink_mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = DATABASE_URL.rsplit("/", 1)[0] + "/" + name

        def drop():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return url, drop
    path = Path(tempfile.mkdtemp()) / "migrations.db"
    return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)


@pytest.fixture()
def scratch_app():
    url, drop = _scratch_database()
    app = make_app(SQLALCHEMY_DATABASE_URI=url)
    yield app
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    drop()


def _diff(app):
    from app.extensions import db

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, db.metadata)
    return [d for d in diff if not _external(d)]


def _external(entry) -> bool:
    item = entry[0] if isinstance(entry, list) else entry
    for part in item[1:]:
        table = getattr(part, "name", None) if hasattr(part, "columns") else getattr(getattr(part, "table", None), "name", None)
        if table in EXTERNAL_TABLES:
            return True
    return False


def test_migrated_schema_equals_models(scratch_app):
    with scratch_app.app_context():
        upgrade()
        assert _diff(scratch_app) == []


def test_every_revision_downgrades_and_upgrades_again(scratch_app):
    with scratch_app.app_context():
        from app.extensions import db

        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as conn:
            tables = set(db.inspect(conn).get_table_names()) - EXTERNAL_TABLES
        assert tables == set()
        upgrade()
        assert _diff(scratch_app) == []


@pytest.mark.skipif(not DATABASE_URL.startswith("postgresql"), reason="database trigger exists on PostgreSQL only")
def test_postgres_trigger_refuses_audit_changes(scratch_app):
    import sqlalchemy.exc

    with scratch_app.app_context():
        from app.extensions import db

        upgrade()
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_event (at, actor_label, action) VALUES (now(), 'x', 'read')"))
        for statement in ("UPDATE audit_event SET action = 'y'", "DELETE FROM audit_event", "TRUNCATE audit_event"):
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(text(statement))


def test_answers_take_their_checkins_patient_on_upgrade(scratch_app):
    """0010 copies each answer's patient from its check-in (answers written before it)."""
    from datetime import timedelta

    from app.core.time import utcnow
    from tests import factories

    with scratch_app.app_context():
        from app.extensions import db

        upgrade(revision="0009")
        site = factories.create_site()
        patients = [factories.create_patient(site, drug_inn=None) for _ in range(2)]
        now = utcnow()
        # The check-ins as revision 0009 knows them (SQL, not today's model, which has more columns).
        stamp = now.replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else now
        expected = {}
        for k, p in enumerate(patients * 2):
            checkin_id = db.session.execute(text(
                "INSERT INTO checkin (patient_id, period_key, sequence, scheduled_at, closes_at, channel, status, "
                "current_index, reask_count, call_attempts, created_at, updated_at) VALUES "
                "(:p, :k, 'S2', :at, :closes, 'sms', 'scheduled', 0, 0, 0, :at, :at) RETURNING id"),
                {"p": p.id, "k": f"k{k}", "at": stamp, "closes": stamp + timedelta(days=7)}).scalar_one()
            db.session.execute(text(
                "INSERT INTO checkin_answer (checkin_id, item_code, raw_text, parsed, red_flag, answered_at, source) "
                "VALUES (:c, 'doses_missed', '1', :t, :f, :at, 'sms')"),
                {"c": checkin_id, "t": True, "f": False, "at": stamp})
            expected[checkin_id] = p.id
        db.session.commit()
        db.session.remove()
        upgrade(revision="0010")
        with db.engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT checkin_id, patient_id FROM checkin_answer")).all())
        assert rows == expected
        assert len(set(rows.values())) == 2
