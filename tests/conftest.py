"""Test fixtures: a real database per run (SQLite file or PostgreSQL from TEST_DATABASE_URL),
emptied between tests; role fixtures; a guard against reaching any real provider."""
from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from tests import factories

_TMP = Path(tempfile.mkdtemp(prefix="oncolink-tests-"))
DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.db'}"
os.environ.setdefault("TEST_DATABASE_URL", DATABASE_URL)


def _is_loopback(host) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost",)


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch):
    """Fail any test that would reach a real provider (only loopback and sockets files are allowed)."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise RuntimeError(f"test tried to reach the network: {address[0]}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context (own ``g`` and database session), as in production,
    even while the test holds an app context to inspect the database."""

    def open(self, *args, **kwargs):
        from app.core.db import sqlite_immediate_transactions

        from app.extensions import db

        with sqlite_immediate_transactions(), self.application.app_context():
            response = super().open(*args, **kwargs)
        # Let the test's own session see what the request committed.
        db.session.rollback()
        return response


def make_app(**overrides):
    from app import create_app

    config = {"SQLALCHEMY_DATABASE_URI": DATABASE_URL, "WTF_CSRF_ENABLED": True,
              "SPOOL_PATH": str(_TMP / "webhook-spool.sqlite3")}
    config.update(overrides)
    app = create_app("testing", config)
    app.test_client_class = FreshContextClient
    return app


@pytest.fixture(scope="session")
def app():
    from flask_migrate import downgrade, upgrade

    app = make_app()
    with app.app_context():
        from app.extensions import db

        _drop_everything(db)
        upgrade()  # the schema comes from the migrations, as in production
    yield app
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        if not os.environ.get("KEEP_TEST_DB"):
            _purge_audit_guard(db)
            downgrade(revision="base")
        db.engine.dispose()


def _purge_audit_guard(db):
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL oncolink.audit_purge = 'on'"))


def _drop_everything(db):
    """Start from an empty database even if an earlier run was killed half-way."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def empty_tables(db):
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL oncolink.audit_purge = 'on'"))
        db.session.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
    else:
        for name in tables:
            db.session.execute(text(f"DELETE FROM {name}"))
    db.session.commit()


@pytest.fixture()
def db(app):
    from app.core.time import set_clock
    from app.extensions import db as _db
    from app.pathways.catalogue import seed_catalogue

    from app.core.db import sqlite_deferred_transactions

    with app.app_context():
        empty_tables(_db)
        seed_catalogue()
        _db.session.commit()
        # The test's own session only inspects: it must not hold SQLite's write lock
        # while the requests it makes write.
        with sqlite_deferred_transactions():
            yield _db
        _db.session.remove()
    set_clock(None)


@pytest.fixture()
def client(app, db):
    return app.test_client()


class Circuit:
    """Two hospital sites, their staff, community professionals and patients."""

    def __init__(self):
        f = factories
        from app.core.roles import Role

        self.site = f.create_site(code="LYN", name="Lyon")
        self.other_site = f.create_site(code="TRS", name="Tours")
        self.nurse = f.create_professional(Role.COORDINATING_NURSE, site=self.site, phone="+33639980001")
        self.oncologist = f.create_professional(Role.ONCOLOGIST, site=self.site, phone="+33639980002")
        self.hospital_pharmacist = f.create_professional(Role.HOSPITAL_PHARMACIST, site=self.site)
        self.community_pharmacist = f.create_professional(Role.COMMUNITY_PHARMACIST)
        self.gp = f.create_professional(Role.GP)
        self.community_nurse = f.create_professional(Role.COMMUNITY_NURSE)
        self.admin = f.create_professional(Role.ADMIN)
        self.other_nurse = f.create_professional(Role.COORDINATING_NURSE, site=self.other_site)
        self.other_oncologist = f.create_professional(Role.ONCOLOGIST, site=self.other_site)
        self.other_pharmacist = f.create_professional(Role.COMMUNITY_PHARMACIST)
        team = [self.oncologist, self.nurse, self.community_pharmacist, self.gp, self.community_nurse]
        # patient: in the site, with the community professionals in the care team.
        self.patient = f.create_patient(self.site, care_team=team, prescriber=self.oncologist,
                                        last_name="Durand", first_name="Marie")
        # patient_no_team: same site, no community professional.
        self.patient_no_team = f.create_patient(self.site, care_team=[self.oncologist],
                                                prescriber=self.oncologist, last_name="Lefevre")
        # other_patient: other site; only the other pharmacy is in its team.
        self.other_patient = f.create_patient(self.other_site, care_team=[self.other_oncologist,
                                                                           self.other_pharmacist],
                                              prescriber=self.other_oncologist, last_name="Moreau")

    def role(self, name):
        return getattr(self, name)


@pytest.fixture()
def circuit(db):
    c = Circuit()
    db.session.commit()
    return c


@pytest.fixture()
def nurse(circuit):
    return circuit.nurse


@pytest.fixture()
def login(app, db):
    """Sign ``user`` in through the real form; each call gives a new client (its own cookies)."""
    def do_login(user, password=factories.PASSWORD):
        client = app.test_client()
        resp = client.get("/login")
        token = _csrf_from(resp.get_data(as_text=True))
        resp = client.post("/login", data={"email": user.email, "password": password, "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        return client
    return do_login


def _csrf_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


@pytest.fixture()
def csrf_of():
    return _csrf_from


@pytest.fixture()
def live_server(app, db):
    """The application served over real HTTP on 127.0.0.1, in a thread, for the browser."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"browser tests need Debian chromium at {CHROMIUM} (make test installs it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture()
def phone_page(browser, live_server):
    """A phone-sized screen (iPhone SE class: 375 x 667, touch)."""
    context = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport={"width": 375, "height": 667},
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def browser_login(page, user, password=None):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", password or factories.PASSWORD)
    with page.expect_navigation():  # the sign-in POST and its redirect, before the test goes on
        page.click("#login-submit")
    page.wait_for_load_state()
