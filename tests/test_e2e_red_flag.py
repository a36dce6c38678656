"""End to end across the real boundaries: a patient texts 39 °C to the signed webhook; once the
process-inbound job has read it, a red alert exists, and one dispatch cycle brings the safety reply
to the patient's phone and the page to the on-call oncologist's (the Twilio-compatible server,
reached by the real SDK); without acknowledgement the next person of the chain is paged after the
site's delay."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

from sqlalchemy import select

from app.pathways.checkins import templates as t
from app.pathways.checkins.models import CheckIn
from app.pathways.checkins.start import start_checkin
from app.notifications.tasks import dispatch_outbox, process_inbound
from app.triage.models import Alert
from app.triage.oncall import add_shift, add_step
from app.triage.tasks import escalate_alerts
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    SENDER, SID, clock_fixture, fake_fixture, signed_post, twilio_app_fixture, use_settings_fixture,
)


def _sms(client, fake, patient, body, sid):
    """Post the answer, read it as the job does, dispatch: the texts the patient's phone received."""
    before = len(fake.messages_to(patient.phone))
    resp = signed_post(client, fake, "/webhooks/twilio/sms",
                       {"From": patient.phone, "To": SENDER, "Body": body, "MessageSid": sid, "AccountSid": SID})
    assert resp.status_code == 200
    assert ET.fromstring(resp.get_data(as_text=True)).findall("Message") == []
    assert process_inbound()["processed"] == 1
    dispatch_outbox()
    return [m["body"] for m in fake.messages_to(patient.phone)[before:]]


def test_fever_answer_reaches_the_on_call_team_and_escalates(twilio_app, fake, clock, circuit, db, client):
    now = clock.now
    add_shift(circuit.site, professional_id=circuit.oncologist.id, starts_at=now - timedelta(hours=1),
              ends_at=now + timedelta(hours=12))
    add_step(circuit.site, kind="professional", professional_id=circuit.nurse.id)
    patient = circuit.patient
    checkin = CheckIn(patient_id=patient.id, period_key="2026-W01", sequence="S2", scheduled_at=now,
                      closes_at=now + timedelta(days=7), channel="sms", status="scheduled")
    db.session.add(checkin)
    db.session.flush()
    assert start_checkin(checkin, now, respect_window=False) == "sms"
    db.session.commit()
    dispatch_outbox()
    assert "combien de prises" in fake.messages_to(patient.phone)[-1]["body"]

    assert len(_sms(client, fake, patient, "0", "SM" + "1" * 32)) == 1
    replies = _sms(client, fake, patient, "39", "SM" + "2" * 32)
    # The safety reply first, in the same dispatch cycle as the page.
    assert replies[0] == t.render("safety", "fr", hospital_phone=patient.site.hospital_phone)
    alert = db.session.scalar(select(Alert).where(Alert.patient_id == patient.id, Alert.severity == "red"))
    assert alert is not None and alert.reason_code == "fever" and alert.rule_id is not None

    (page,) = fake.messages_to(circuit.oncologist.phone)
    shown = re.sub(r"/a/[A-Za-z0-9_-]+", "/a/<token>", page["body"])  # the random token may hold digits
    assert "OK" in shown and patient.last_name not in shown and "39" not in shown
    assert fake.messages_to(circuit.nurse.phone) == []

    clock.advance(minutes=29)
    escalate_alerts()
    dispatch_outbox()
    assert fake.messages_to(circuit.nurse.phone) == []  # not before the delay
    clock.advance(minutes=2)
    escalate_alerts()
    dispatch_outbox()
    assert len(fake.messages_to(circuit.nurse.phone)) == 1  # the next person of the chain
    db.session.rollback()
    assert db.session.get(Alert, alert.id).escalation_level == 1


def test_with_the_scheduler_running_a_red_flag_reaches_the_phones_with_no_one_running_a_job(
        app, twilio_app, fake, circuit, db, client, monkeypatch):
    """The real scheduler service (in this process) with only process-inbound on its tick and the
    dispatcher on a weekly tick: the safety reply and the page can only go out because reading the
    queue brings the dispatcher forward."""
    from app.core.time import utcnow
    from app.jobs.scheduler import start_in_background
    from tests.jobs_for_tests import clear_scheduler_state
    from tests.test_jobs_scheduler import wait_for

    now = utcnow()
    add_shift(circuit.site, professional_id=circuit.oncologist.id, starts_at=now - timedelta(hours=1),
              ends_at=now + timedelta(hours=12))
    patient = circuit.patient
    checkin = CheckIn(patient_id=patient.id, period_key="2026-W02", sequence="S2", scheduled_at=now,
                      closes_at=now + timedelta(days=7), channel="sms", status="scheduled")
    db.session.add(checkin)
    db.session.flush()
    start_checkin(checkin, now, respect_window=False)
    db.session.commit()
    dispatch_outbox()
    asked = len(fake.messages_to(patient.phone))
    phone, oncologist_phone = patient.phone, circuit.oncologist.phone
    safety = t.render("safety", "fr", hospital_phone=patient.site.hospital_phone)
    patient_id = patient.id

    def text(sid, body):
        resp = signed_post(client, fake, "/webhooks/twilio/sms",
                           {"From": phone, "To": SENDER, "Body": body, "MessageSid": sid, "AccountSid": SID})
        assert resp.status_code == 200

    text("SM" + "3" * 32, "0")
    db.session.remove()

    monkeypatch.setitem(app.config, "SCHEDULER_LEASE_SECONDS", 4.0)
    monkeypatch.setitem(app.config, "SCHEDULER_RETRY_SECONDS", 1.0)
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests:INBOUND_JOBS")
    clear_scheduler_state()
    service = start_in_background(app)
    try:
        # The patient answers the fever question once it has reached the phone (an answer that
        # arrived before its question was asked would answer the earlier one, issue 10).
        wait_for(lambda: any("fièvre" in m["body"] for m in fake.messages_to(phone)[asked:]), 30,
                 what="the fever question at the patient's phone")
        text("SM" + "4" * 32, "39")
        db.session.remove()
        wait_for(lambda: safety in [m["body"] for m in fake.messages_to(phone)], 30,
                 what="the safety reply at the patient's phone")
        wait_for(lambda: fake.messages_to(oncologist_phone), 30, what="the page")
    finally:
        service.shutdown(timeout=15)
    received = [m["body"] for m in fake.messages_to(phone)][asked:]
    # The safety reply is urgent: it leaves before anything routine queued with it, and right after
    # the fever question that was already on its way.
    assert received.index(safety) == 1 and len(received) == 3
    db.session.rollback()
    assert db.session.scalar(select(Alert).where(Alert.patient_id == patient_id, Alert.severity == "red"))
