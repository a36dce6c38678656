"""Priority lanes in the outbox: safety replies and pages are claimed before routine texts, with part
of the rate kept for them, so they leave within seconds whatever the backlog; routine traffic still
drains in order at the configured rate."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.notifications.dispatcher import Dispatcher, DispatchSettings
from app.notifications.inbound import Reply, _reply_priority
from app.notifications.models import OutboxEntry
from app.notifications.outbox import PRIORITY_URGENT, enqueue_sms, enqueue_sms_rows
from app.notifications.pacing import SendPacer
from app.notifications.providers import get_provider
from app.notifications.tasks import dispatch_outbox, process_inbound
from app.pathways.checkins import templates as t
from app.pathways.checkins.models import CheckIn
from app.pathways.checkins.start import start_checkin
from app.triage.oncall import add_shift
from tests.conftest import DATABASE_URL
from tests.test_jobs_scheduler import wait_for
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC, SENDER, SID, TOKEN, clock_fixture, fake_fixture, signed_post, twilio_app_fixture, use_settings_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
BACKLOG = 2000


def test_the_conversation_marks_its_safety_replies_urgent_and_nothing_else(db, circuit):
    """The engine flags its safety replies (``Reply(urgent=True)``); the transport gives them the
    urgent lane, and every other reply the routine one."""
    from app.pathways.checkins.conversation import replies_for
    from app.pathways.checkins.engine import OK, Step
    from app.pathways.checkins.questionnaire import items_by_code

    item = items_by_code(["fatigue"])["fatigue"]
    for language in ("fr", "en"):
        safety, question = replies_for(Step(OK, item, red_flag=True, safety="safety", next_item=item), language,
                                       "+33478000000")
        assert safety == t.render("safety", language, hospital_phone="+33478000000")
        assert _reply_priority(0, safety) == PRIORITY_URGENT and _reply_priority(1, question) == 1
    assert _reply_priority(0, Reply("texte", urgent=False)) == 1
    assert _reply_priority(0, "a plain string") == 1


def test_urgent_rows_are_claimed_first_then_routine_in_order(twilio_app, db, fake, clock):
    for i in range(5):
        enqueue_sms(to=f"+3361100{i:04d}", body=f"Routine {i}", idempotency_key=f"r{i}", purpose="checkin")
    clock.advance(seconds=1)
    enqueue_sms(to="+33611009999", body="Page", idempotency_key="p", purpose="page", priority=PRIORITY_URGENT)
    db.session.commit()
    clock.advance(seconds=1)
    provider = get_provider(twilio_app)
    try:
        dispatcher = Dispatcher(provider, DispatchSettings.from_config(twilio_app.config))
        claims = dispatcher.claim(3)
        assert [c.body for c in claims] == ["Page", "Routine 0", "Routine 1"] and claims[0].urgent
        assert dispatcher.claim(10, urgent_only=True) == []  # the urgent lane is empty now
        dispatcher.release(claims)
    finally:
        provider.close()
    with pytest.raises(ValueError):
        enqueue_sms(to="+33611009998", body="x", idempotency_key="bad", purpose="x", priority=5)


def test_the_routine_lane_never_uses_the_reserved_share_of_the_rate():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    pacer = SendPacer(10.0, burst=1.0, monotonic=lambda: now[0], sleep=sleep, reserve=0.5)
    for _ in range(21):
        pacer.done(pacer.acquire())
    assert now[0] == pytest.approx(4.0, abs=0.01)  # routine: 5/s, half of the 10/s
    start = now[0]
    for _ in range(10):
        pacer.done(pacer.acquire(urgent=True))
    assert now[0] - start <= 1.0 + 1e-6  # urgent: the whole rate


def test_the_claim_reads_the_lane_index_in_order(twilio_app, db):
    """The dispatcher's own claim statement, explained: it reads ix_outbox_entry_claim in order (no
    sort of the backlog), whatever the size of the outbox."""
    from sqlalchemy import event, text

    enqueue_sms_rows([dict(to=f"+3361300{i:04d}", body=f"R {i}", idempotency_key=f"ix{i}", purpose="checkin")
                      for i in range(200)])
    db.session.commit()
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "ORDER BY outbox_entry.priority" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    provider = get_provider(twilio_app)
    try:
        dispatcher = Dispatcher(provider, DispatchSettings.from_config(twilio_app.config))
        dispatcher.release(dispatcher.claim(30))
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
        provider.close()
    [(statement, parameters)] = seen
    raw = db.session.connection().connection.driver_connection
    cursor = raw.cursor()
    if DATABASE_URL.startswith("postgresql"):
        db.session.execute(text("ANALYZE outbox_entry"))
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would be read whole anyway
        cursor.execute("EXPLAIN " + statement, parameters)
    else:
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
    plan = "\n".join(str(row[-1]) if not DATABASE_URL.startswith("postgresql") else row[0] for row in cursor)
    db.session.rollback()
    assert "ix_outbox_entry_claim" in plan, plan
    assert "TEMP B-TREE" not in plan.upper() and "Sort" not in plan, plan


# --- the red answer behind 2,000 routine texts, across the real boundaries ----------------------

class DispatcherProcess:
    """``flask outbox dispatch --time-budget 0`` at 1 message/s, in a subprocess (as the scheduler's job)."""

    def __init__(self, fake):
        env = dict(os.environ)
        env.update(
            ONCOLINK_ENV="testing", TEST_DATABASE_URL=DATABASE_URL, ONCOLINK_SMS_PROVIDER="twilio",
            ONCOLINK_TWILIO_ACCOUNT_SID=SID, ONCOLINK_TWILIO_AUTH_TOKEN=TOKEN, ONCOLINK_TWILIO_FROM_NUMBER=SENDER,
            ONCOLINK_TWILIO_API_BASE_URL=fake.base_url, ONCOLINK_PUBLIC_BASE_URL=PUBLIC,
            ONCOLINK_TWILIO_TIMEOUT_SECONDS="2", ONCOLINK_OUTBOX_RATE_PER_SECOND="1",
        )
        self.out = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "dispatch", "--time-budget", "0"],
            cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.out.seek(0)
        output = self.out.read()
        self.out.close()
        return output


def _at_the_temperature_question(client, fake, circuit, db, now):
    add_shift(circuit.site, professional_id=circuit.oncologist.id, starts_at=now - timedelta(hours=1),
              ends_at=now + timedelta(hours=12))
    patient = circuit.patient
    checkin = CheckIn(patient_id=patient.id, period_key="2026-W20", sequence="S2", scheduled_at=now,
                      closes_at=now + timedelta(days=7), channel="sms", status="scheduled")
    db.session.add(checkin)
    db.session.flush()
    start_checkin(checkin, now, respect_window=False)
    db.session.commit()
    dispatch_outbox()
    resp = signed_post(client, fake, "/webhooks/twilio/sms", {"From": patient.phone, "To": SENDER, "Body": "0",
                                                              "MessageSid": "SM" + "a" * 32, "AccountSid": SID})
    assert resp.status_code == 200 and process_inbound()["processed"] == 1
    dispatch_outbox()
    db.session.refresh(checkin)
    assert checkin.current_code == "temperature"
    return patient


@pytest.mark.slow
def test_a_red_answer_behind_2000_routine_texts_reaches_the_phones_within_5_seconds(
        twilio_app, fake, circuit, db, client):
    from app.core.time import utcnow

    patient = _at_the_temperature_question(client, fake, circuit, db, utcnow())
    before = len(fake.messages)
    enqueue_sms_rows([dict(to=f"+336{20000000 + i}", body=f"Routine {i:04d}", idempotency_key=f"monday:{i}",
                           purpose="checkin") for i in range(BACKLOG)])
    db.session.commit()
    safety = t.render("safety", "fr", hospital_phone=patient.site.hospital_phone)

    dispatcher = DispatcherProcess(fake)
    try:
        # The Monday batch is leaving at 1 message/s, in order.
        wait_for(lambda: len(fake.messages) >= before + 3, 30, what="the routine batch to start leaving")
        posted = datetime.now(UTC)
        resp = signed_post(client, fake, "/webhooks/twilio/sms", {"From": patient.phone, "To": SENDER, "Body": "39",
                                                                  "MessageSid": "SM" + "b" * 32, "AccountSid": SID})
        assert resp.status_code == 200
        assert process_inbound()["processed"] == 1

        def arrived(to, body=None):
            return [m for m in fake.messages_to(to) if body is None or m["body"] == body]
        wait_for(lambda: arrived(patient.phone, safety) and arrived(circuit.oncologist.phone), 15,
                 what="the safety reply and the page")
        [reply] = arrived(patient.phone, safety)
        [page] = arrived(circuit.oncologist.phone)
        assert (reply["created_at"] - posted).total_seconds() < 5.0
        assert (page["created_at"] - posted).total_seconds() < 5.0
        time.sleep(2)
    finally:
        output = dispatcher.stop()
    routine = [m for m in fake.messages if m["body"].startswith("Routine ")]
    assert 3 <= len(routine) < 60, output[-2000:]  # the backlog is far from drained ...
    # ... oldest first: what left is the head of the queue (the sending threads may swap neighbours)
    sent = sorted(int(m["body"].split()[1]) for m in routine)
    assert len(set(sent)) == len(sent) and sent[-1] < len(sent) + 8, sent
    stamps = sorted(m["created_at"] for m in fake.messages[before:])
    for i, first in enumerate(stamps):  # and never above the rate, urgent messages included
        assert sum(1 for s in stamps[i:] if (s - first).total_seconds() < 1.0) <= 1
    db.session.rollback()
    urgent = db.session.scalars(select(OutboxEntry.purpose).where(OutboxEntry.priority == PRIORITY_URGENT)).all()
    assert sorted(urgent) == ["page", "sms_reply"]
