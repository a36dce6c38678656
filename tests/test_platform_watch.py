"""The platform reports its own faults: a health check failing longer than the technical contact's
delay is told once per incident, by a process that is not the one that failed, and the all-clear
once on recovery; delivery failure rates per sender on an admin page."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from app.core.db import sqlite_immediate_transactions
from app.core.time import set_clock
from app.jobs import lease
from app.monitoring.models import PlatformFault
from app.monitoring.watch import watch_once
from app.notifications.models import OutboxEntry
from app.notifications.outbox import enqueue_sms
from app.notifications.status import apply_status_callback
from app.notifications.tasks import dispatch_outbox
from app.triage import oncall
from tests.conftest import DATABASE_URL
from tests.jobs_for_tests import clear_scheduler_state
from tests.test_jobs_scheduler import wait_for
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC, SENDER, SID, TOKEN, clock_fixture, fake_fixture, signed_post, twilio_app_fixture, use_settings_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
TECH = "+33611223344"


@pytest.fixture()
def tech(circuit, db):
    oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="04 72 11 22 33", fallback_label="Standard",
                       tech_contact_phone=TECH, tech_contact_channel="sms", fault_delay_minutes=5)
    db.session.commit()
    yield circuit
    set_clock(None)


def _watch(app) -> dict:
    """``flask health watch``, once, as cron runs it (in this process: the test's clock applies)."""
    from app.extensions import db

    db.session.rollback()
    with sqlite_immediate_transactions():
        result = app.test_cli_runner().invoke(args=["health", "watch"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _spawn_scheduler(tmp_path: Path, name: str, lease_s: float, renew_s: float) -> subprocess.Popen:
    env = {**os.environ, "ONCOLINK_ENV": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "ONCOLINK_JOBS_MODULE": "tests.jobs_for_tests:QUIET_JOBS", "PYTHONUNBUFFERED": "1",
           "ONCOLINK_SCHEDULER_LEASE_SECONDS": str(lease_s), "ONCOLINK_SCHEDULER_RETRY_SECONDS": str(renew_s)}
    with open(tmp_path / f"{name}.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler", "run"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_scheduler_killed_with_no_standby_one_report_then_one_all_clear(app, twilio_app, fake, tech, db, tmp_path):
    clear_scheduler_state()
    procs = []
    try:
        procs.append(_spawn_scheduler(tmp_path, "first", 4.0, 1.0))
        wait_for(lambda: (s := lease.current()) is not None and s.active(), 45, what="the scheduler's lease")
        first_holder = lease.current().holder
        assert _watch(app)["failing"] == []

        procs[0].send_signal(signal.SIGKILL)  # no standby
        procs[0].wait(10)
        killed = datetime.now(timezone.utc)

        def at(seconds: float) -> dict:
            set_clock(killed + timedelta(seconds=seconds))
            return _watch(app)

        assert at(10) == {"failing": ["scheduler"], "reported": 0, "all_clear": 0}  # the lease has expired
        assert at(10 + 4 * 60 + 50)["reported"] == 0  # not yet 5 minutes
        assert fake.messages_to(TECH) == []
        told = at(10 + 5 * 60)  # the site's delay: told, from this process (the watcher sends it)
        assert (told["reported"], told["sent"]) == (1, 1)
        [report] = fake.messages_to(TECH)
        assert "planificateur" in report["body"] and "Onco'Link" in report["body"]
        assert at(10 + 6 * 60)["reported"] == 0 and at(10 + 30 * 60)["reported"] == 0
        assert len(fake.messages_to(TECH)) == 1  # once per incident

        # A scheduler starts again (a long lease: this test's clock is half an hour ahead).
        procs.append(_spawn_scheduler(tmp_path, "second", 7200.0, 5.0))
        wait_for(lambda: lease.current().holder != first_holder, 45, what="the new scheduler's lease")
        recovered = at(10 + 31 * 60)
        assert (recovered["failing"], recovered["all_clear"], recovered["sent"]) == ([], 1, 1)
        assert at(10 + 32 * 60)["all_clear"] == 0
        bodies = [m["body"] for m in fake.messages_to(TECH)]
        assert len(bodies) == 2 and "retour à la normale" in bodies[1].lower()
        db.session.rollback()
        [fault] = db.session.scalars(select(PlatformFault)).all()
        assert fault.check_name == "scheduler" and fault.notified_at is not None and fault.cleared_at is not None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_a_fault_shorter_than_the_delay_is_not_told(twilio_app, fake, tech, db, clock):
    state = {"scheduler": False}
    assert watch_once(clock.now, send=True) | state  # the real checks: no scheduler here
    clock.advance(minutes=3)
    holder = lease.new_holder_id()
    assert lease.acquire(holder, 600, now=clock.now)
    result = watch_once(clock.now)
    assert result["failing"] == [] and result["all_clear"] == 0  # nobody was told of it: no all-clear
    assert fake.messages == [] and db.session.scalar(select(PlatformFault)).cleared_at is not None
    lease.release(holder, now=clock.now)


def test_each_contact_is_told_after_its_own_delay_and_by_its_channel(twilio_app, fake, tech, db, clock, use_settings,
                                                                     client):
    use_settings(PLATFORM_TECH_CONTACT_PHONE="+33622334455", PLATFORM_TECH_CONTACT_CHANNEL="voice",
                 PLATFORM_FAULT_DELAY_MINUTES=2)
    watch_once(clock.now)
    clock.advance(minutes=2)
    assert watch_once(clock.now)["reported"] == 1  # the platform's contact, by a call
    [call] = fake.calls
    assert call["to"] == "+33622334455" and fake.messages == []
    twiml = ET.fromstring(signed_post(client, fake, call["url"].removeprefix(PUBLIC),
                                      {"CallSid": call["sid"], "AccountSid": SID}).get_data(as_text=True))
    said = [s.text for s in twiml.iter("Say")]
    assert len(said) == 2 and "planificateur" in said[0]
    clock.advance(minutes=3)
    assert watch_once(clock.now)["reported"] == 1  # the site's contact, after its 5 minutes
    assert len(fake.messages_to(TECH)) == 1


def test_the_watcher_iterates_over_the_health_checks(twilio_app, fake, tech, db, clock, monkeypatch):
    """A check added to /healthz (e.g. another branch's "spool") is watched with no change here."""
    from app.web import health

    monkeypatch.setitem(health.CHECKS, "spool", lambda now, config, report: False)
    holder = lease.new_holder_id()
    lease.acquire(holder, 3600, now=clock.now)
    assert watch_once(clock.now)["failing"] == ["spool"]
    clock.advance(minutes=5)
    assert watch_once(clock.now)["reported"] == 1
    assert "file locale" in fake.messages_to(TECH)[0]["body"]
    lease.release(holder, now=clock.now)


def test_a_high_send_error_rate_is_a_fault(twilio_app, fake, tech, db, clock):
    holder = lease.new_holder_id()
    lease.acquire(holder, 3600, now=clock.now)
    for i in range(12):
        enqueue_sms(to=f"+3361234{i:04d}", body=f"Test {i}", idempotency_key=f"err:{i}", purpose="test")
        fake.error_for(f"+3361234{i:04d}", 21211)
    db.session.commit()
    dispatch_outbox()
    assert watch_once(clock.now)["failing"] == ["send_errors"]
    lease.release(holder, now=clock.now)


def test_delivery_failure_rates_per_sender_on_the_admin_page(twilio_app, fake, circuit, db, clock, login):
    for i in range(4):
        enqueue_sms(to=f"+3361234{i:04d}", body=f"Texte {i}", idempotency_key=f"rate:{i}", purpose="test")
    db.session.commit()
    dispatch_outbox()
    sids = [m["sid"] for m in fake.messages]
    apply_status_callback(sid=sids[0], status="undelivered", channel="sms", error_code=30003)
    for sid in sids[1:]:
        apply_status_callback(sid=sid, status="delivered", channel="sms")
    db.session.commit()
    html = login(circuit.admin).get("/admin/platform/").get_data(as_text=True)
    table = html[html.index('id="delivery-rates"'):]
    row = table[table.index(SENDER):table.index("</tr>", table.index(SENDER))]
    assert "25.0 %" in row and ">4<" in row and ">3<" in row and ">1<" in row
    assert login(circuit.nurse).get("/admin/platform/").status_code == 403
    assert db.session.scalar(select(OutboxEntry.id).limit(1)) is not None
