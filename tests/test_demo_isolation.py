"""A demo that cannot touch a real database, and demo accounts that never work in production.

``make demo`` itself (the Make target, in a subprocess) runs on its own ``instance/demo.db``
whatever ``ONCOLINK_DATABASE_URL`` says, leaving the database that variable names untouched
(the test database: SQLite or PostgreSQL); ``--database`` naming a database that holds anything
the demo did not make is refused with nothing changed. The Make target runs in a copy of the
source tree (with this checkout's virtualenv), so the demo's own file lands in a temporary
instance folder and not in the developer's.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from app.auth.demo_guard import DEMO_PASSWORD
from app.auth.services import hash_password
from app.care.models import Professional
from app.core.roles import Role
from app.demo import DEMO_MARKER_TABLE, DemoRefused, check_demo_database, seed_demo
from tests import factories
from tests.api_helpers import bearer
from tests.conftest import DATABASE_URL, _csrf_from

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
READY = "Onco'Link demo: http://"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the sources the demo needs (file times kept, so make finds the virtualenv up to date)."""
    copy = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("app", "config", "migrations"):
        shutil.copytree(ROOT / name, copy / name, ignore=ignore, copy_function=shutil.copy2)
    for name in ("wsgi.py", "Makefile", "setup.cfg", "pyproject.toml"):
        shutil.copy2(ROOT / name, copy / name)
    return copy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_demo(tree: Path, log: Path, args: str, **env: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ONCOLINK_")}
    environment.update(env)
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["make", "--no-print-directory", "-o", str(VENV / ".installed"), "demo", f"VENV={VENV}",
             f"DEMO_ARGS={args}"],
            cwd=tree, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _serve_then_stop(proc: subprocess.Popen, log: Path, port: int) -> str:
    """Wait until the demo serves its login page, then stop it (Ctrl-C); returns its output."""
    try:
        deadline = time.monotonic() + 180
        while READY not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as response:
            assert response.status == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    return log.read_text(errors="replace")


def _snapshot(db) -> dict[str, tuple[int, str]]:
    """Every table of the database with its row count and a digest of its rows."""
    db.session.rollback()
    with db.engine.connect() as conn:
        found = {}
        for name in sorted(inspect(conn).get_table_names()):
            rows = sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"')))
            found[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        conn.rollback()
    return found


def _demo_file_has_the_demo(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        demo_accounts = conn.execute(
            "SELECT COUNT(*) FROM professional WHERE email LIKE '%@demo.oncolink.fr'").fetchone()[0]
    finally:
        conn.close()
    return DEMO_MARKER_TABLE in tables and demo_accounts > 0


def test_make_demo_ignores_an_exported_database_url_and_says_why(app, db, tree, tmp_path):
    factories.create_professional(Role.ADMIN, email="real.admin@hopital.fr")
    db.session.commit()
    before = _snapshot(db)
    assert "professional" in before and before["professional"][0] == 1

    port = _free_port()
    log = tmp_path / "demo.log"
    output = _serve_then_stop(_make_demo(tree, log, f"--port {port}", ONCOLINK_DATABASE_URL=DATABASE_URL,
                                         ONCOLINK_SMS_PROVIDER="twilio"), log, port)

    assert "ONCOLINK_DATABASE_URL is set in this environment: the demo ignores it" in output
    assert "ONCOLINK_SMS_PROVIDER is set in this environment: the demo ignores it" in output
    assert str(tree / "instance" / "demo.db") in output
    assert DATABASE_URL not in output  # a URL may carry a password: never printed
    assert _snapshot(db) == before  # same tables, same rows
    assert _demo_file_has_the_demo(tree / "instance" / "demo.db")


def test_make_demo_refuses_a_database_named_with_the_flag_that_holds_what_it_did_not_make(app, db, tree, tmp_path):
    before = _snapshot(db)
    log = tmp_path / "demo.log"
    proc = _make_demo(tree, log, f"--database {DATABASE_URL} --port {_free_port()}")
    try:
        assert proc.wait(120) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert "refused: the database" in output and "the demo did not create" in output
    assert "nothing was changed" in output
    assert _snapshot(db) == before


def test_the_flag_accepts_an_empty_database_and_marks_it_as_the_demos(app, db, tree, tmp_path):
    chosen = tmp_path / "my-demo.db"
    port = _free_port()
    log = tmp_path / "demo.log"
    output = _serve_then_stop(_make_demo(tree, log, f"--database sqlite:///{chosen} --port {port}"), log, port)
    assert "ignores it" not in output
    assert _demo_file_has_the_demo(chosen)
    check_demo_database(f"sqlite:///{chosen}")  # its own: accepted again


def test_a_foreign_sqlite_file_is_refused_byte_for_byte_untouched(tmp_path):
    foreign = tmp_path / "hospital.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE patient_records (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patient_records (name) VALUES ('x'), ('y')")
    conn.commit()
    conn.close()
    digest = hashlib.sha256(foreign.read_bytes()).hexdigest()
    with pytest.raises(DemoRefused, match=r"1 table\(s\) the demo did not create \(patient_records\)"):
        check_demo_database(f"sqlite:///{foreign}")
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hospital.db"]  # no -wal, no -shm
    check_demo_database(f"sqlite:///{tmp_path / 'absent.db'}")  # nothing there yet: accepted
    assert not (tmp_path / "absent.db").exists()


# -- production ---------------------------------------------------------------------------------

@pytest.fixture()
def production(app, db, monkeypatch):
    """An app with ONCOLINK_ENV=production settings on the test database (same secret key as the
    test app, so that a session opened there is presented here)."""
    monkeypatch.setenv("ONCOLINK_ALLOW_SQLITE", "1")
    from app import create_app

    prod = create_app("production", {
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL, "SECRET_KEY": app.config["SECRET_KEY"],
        "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_FROM_NUMBER": "+33700000001"})
    prod.test_client_class = app.test_client_class
    yield prod
    with prod.app_context():
        from app.extensions import db as _db

        _db.engine.dispose()


def _post_login(client, email: str, password: str, base: str):
    token = _csrf_from(client.get("/login", base_url=base).get_data(as_text=True))
    return client.post("/login", base_url=base, headers={"Referer": base + "/login"},  # CSRF over HTTPS
                       data={"email": email, "password": password, "csrf_token": token})


def test_demo_accounts_and_the_demo_password_never_work_in_production(app, db, production):
    seed_demo(n_patients=2)
    own = factories.create_professional(Role.COORDINATING_NURSE, email="nurse@hopital.fr")
    own.password_hash = hash_password(DEMO_PASSWORD)  # someone kept the published password
    factories.create_professional(Role.ADMIN, email="admin@hopital.fr")
    db.session.commit()
    demo_nurse = db.session.scalar(select(Professional).where(Professional.email == "idec.lyn@demo.oncolink.fr"))
    headers = bearer(db, demo_nurse)

    # Outside production the demo accounts work: that is what they are for.
    test_client = app.test_client()
    assert _post_login(test_client, "admin@demo.oncolink.fr", DEMO_PASSWORD, "http://localhost").status_code == 302
    assert test_client.get("/admin/", base_url="http://localhost").status_code == 200
    assert app.test_client().get("/api/v1/patients", headers=headers).status_code == 200

    prod = production.test_client()
    https = "https://localhost"
    for email in ("admin@demo.oncolink.fr", "idec.lyn@demo.oncolink.fr", "nurse@hopital.fr"):
        assert _post_login(prod, email, DEMO_PASSWORD, https).status_code == 401, email
    assert _post_login(prod, "admin@hopital.fr", factories.PASSWORD, https).status_code == 302  # others do

    # A session or an API token of a demo account is refused too.
    carried = production.test_client()
    carried.set_cookie("session", test_client.get_cookie("session").value, domain="localhost")
    assert carried.get("/admin/", base_url=https).status_code == 302  # back to the login page
    assert production.test_client().get("/api/v1/patients", base_url=https, headers=headers).status_code == 401

    # And demo data is refused in production.
    with production.app_context(), pytest.raises(DemoRefused, match="refused in production"):
        seed_demo(n_patients=1)
