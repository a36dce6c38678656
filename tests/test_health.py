"""GET /healthz: 200 only when the database answers, a scheduler holds the lease, no patient's text
waits unread and no due message waits in the outbox; never any patient data."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.time import set_clock, utcnow
from app.jobs import lease
from app.notifications.inbound import accept_sms
from app.notifications.outbox import enqueue_sms


@pytest.fixture
def scheduler_running(db):
    holder = lease.new_holder_id()
    assert lease.acquire(holder, 60)
    db.session.commit()
    yield holder
    lease.release(holder)
    db.session.commit()


def _health(client):
    response = client.get("/healthz")
    return response.status_code, response.get_json()


def test_all_well_is_200(client, db, scheduler_running):
    status, body = _health(client)
    assert (status, body["status"]) == (200, "ok")
    assert body["checks"] == {"database": True, "scheduler": True, "inbound_queue": True, "outbox": True,
                              "dispatcher": True, "send_errors": True, "spool": True}
    assert 0 < body["scheduler_lease_expires_in_s"] <= 60


def test_no_scheduler_is_503(client, db):
    status, body = _health(client)
    assert (status, body["status"], body["checks"]["scheduler"]) == (503, "degraded", False)


def test_unread_texts_and_a_stuck_outbox_are_503_without_patient_data(client, db, circuit, scheduler_running):
    patient = circuit.patient
    phone, last_name, patient_id = patient.phone, patient.last_name, patient.id
    enqueue_sms(to=phone, body="Bonjour", idempotency_key="health:1", purpose="checkin", patient_id=patient_id)
    db.session.commit()
    # as the webhook does, on its own connection, with no transaction of the session open
    accept_sms(from_number=phone, to_number="+33700000000", body="39,5 et je saigne", provider_sid="SMhealth0001")
    assert _health(client)[0] == 200  # just arrived, just queued

    set_clock(utcnow() + timedelta(minutes=11))  # nobody read or sent anything for 11 minutes
    try:
        assert lease.renew(scheduler_running, 60, now=utcnow())
        db.session.commit()
        response = client.get("/healthz")
    finally:
        set_clock(None)
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"] == {"database": True, "scheduler": True, "inbound_queue": False, "outbox": False,
                              "dispatcher": True, "send_errors": True, "spool": True}
    assert body["oldest_unread_inbound_age_s"] >= 600 and body["oldest_due_outbox_age_s"] >= 600
    text = response.get_data(as_text=True)
    for secret in (phone, last_name, "39,5", "saigne", "Bonjour"):
        assert secret not in text
