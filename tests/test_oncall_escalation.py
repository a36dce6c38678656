"""Escalation of unacknowledged red alerts along the site's chain, then the fallback."""
from __future__ import annotations

import re

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.roles import Role
from app.core.time import utcnow
from app.triage import oncall
from app.triage.models import Alert, AlertStatus
from app.triage.paging import AlertPage, handle_professional_sms
from app.triage.services import raise_alert, resolve
from app.triage.tasks import escalate_alerts
from tests import factories
from tests.oncall_helpers import english  # noqa: F401  (autouse: English texts)
from tests.oncall_helpers import SYMPTOM_WORDS, T0, actions, at, page_bodies, pages_of, red_alert, shift

H = timedelta(hours=1)


@pytest.fixture()
def c(circuit, db):
    """Oncologist on call; chain: on call, then the coordinating nurse; fallback the switchboard."""
    at(0)
    shift(circuit.site, circuit.oncologist, T0 - H, T0 + 12 * H)
    oncall.add_step(circuit.site, kind="professional", professional_id=circuit.nurse.id)
    oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="+33472112233", fallback_label="Standard")
    db.session.commit()
    return circuit


def _targets(alert_id):
    return [(p.level, p.target, p.phone) for p in pages_of(alert_id)]


def test_no_acknowledgement_in_30_minutes_pages_the_next_person_then_the_fallback(c, db):
    alert = red_alert(c.patient)
    db.session.commit()
    at(29)
    assert escalate_alerts() == {"due": 0, "paged": 0, "fallback": 0, "skipped": 0}
    at(30)
    assert escalate_alerts()["paged"] == 1
    assert _targets(alert.id) == [(0, "on_call", c.oncologist.phone), (1, "professional", c.nurse.phone)]
    assert [a.note for a in actions(alert.id, "escalated")] == ["level 1: coordinating_nurse"]
    at(45)
    assert escalate_alerts()["paged"] == 0  # the nurse has 30 minutes too
    at(60)
    assert escalate_alerts() == {"due": 1, "paged": 1, "fallback": 1, "skipped": 0}
    at(90)
    escalate_alerts()  # the fallback is paged again every 30 minutes
    at(120)
    escalate_alerts()
    assert [t[1:] for t in _targets(alert.id)][2:] == [("fallback", "+33472112233")] * 3
    assert [p.level for p in pages_of(alert.id)] == [0, 1, 2, 3, 4]
    assert [e.idempotency_key for e in page_bodies(alert.id)] == [f"page:{alert.id}:{n}" for n in range(5)]
    assert db.session.get(Alert, alert.id).escalation_level == 4
    notes = [a.note for a in actions(alert.id, "escalated")]
    # The switchboard is a landline: it is called, never texted.
    assert notes == ["level 1: coordinating_nurse", "level 2: fallback (voice)", "level 3: fallback (voice)",
                     "level 4: fallback (voice)"]
    assert [e.channel for e in page_bodies(alert.id)] == ["sms", "sms", "voice", "voice", "voice"]


def test_the_default_chain_goes_from_the_on_call_person_to_the_fallback(c, db):
    oncall.remove_step(oncall.steps_of(c.site.id)[1])
    alert = red_alert(c.patient)
    db.session.commit()
    at(30)
    escalate_alerts()
    assert [t[1] for t in _targets(alert.id)] == ["on_call", "fallback"]


def test_people_without_a_phone_or_inactive_are_skipped(c, db):
    extra = factories.create_professional(Role.ONCOLOGIST, site=c.site, phone="+33639980050")
    oncall.add_step(c.site, kind="professional", professional_id=extra.id)
    c.nurse.phone = None
    extra.active = False
    db.session.commit()
    alert = red_alert(c.patient)
    db.session.commit()
    at(30)
    escalate_alerts()
    assert [(p.level, p.target) for p in pages_of(alert.id)] == [(0, "on_call"), (3, "fallback")]


def test_acknowledgement_by_sms_stops_the_escalation(c, db):
    alert = red_alert(c.patient)
    db.session.commit()
    at(30)
    escalate_alerts()
    at(35)
    assert handle_professional_sms(c.nurse.phone, "oui")  # the nurse, paged at level 1, takes it
    db.session.commit()
    assert db.session.get(Alert, alert.id).acknowledged_by_id == c.nurse.id
    for minutes in (60, 90, 300):
        at(minutes)
        assert escalate_alerts()["paged"] == 0
    assert len(pages_of(alert.id)) == 2


def test_only_open_red_alerts_escalate(c, db):
    red = red_alert(c.patient)
    orange = raise_alert(patient_id=c.patient.id, severity="orange", source="checkin", reason_code="x",
                         summary="x")
    resolved = red_alert(c.patient_no_team)
    resolve(resolved, actor=c.nurse, note="Called the patient; fine.")
    db.session.commit()
    at(30)
    assert escalate_alerts()["paged"] == 1
    assert [p.alert_id for p in db.session.scalars(select(AlertPage).where(AlertPage.level > 0))] == [red.id]
    assert pages_of(orange.id) == []


def test_each_site_waits_its_own_ack_minutes(c, db):
    other_onco = factories.create_professional(Role.ONCOLOGIST, site=c.other_site, phone="+33639980051")
    shift(c.other_site, other_onco, T0 - H, T0 + 12 * H)
    oncall.save_policy(c.other_site, ack_minutes=10, fallback_phone="+33247000000", fallback_label="Standard")
    db.session.commit()
    here, there = red_alert(c.patient), red_alert(c.other_patient)
    db.session.commit()
    at(10)
    assert escalate_alerts()["paged"] == 1
    assert len(pages_of(there.id)) == 2 and len(pages_of(here.id)) == 1


def test_a_red_alert_never_paged_is_paged_by_the_next_pass(c, db):
    alert = Alert(patient_id=c.patient.id, site_id=c.site.id, severity="red", source="checkin",
                  reason_code="x", summary="x", due_at=utcnow(), created_at=utcnow())
    db.session.add(alert)
    db.session.commit()
    assert escalate_alerts()["paged"] == 1
    assert _targets(alert.id) == [(0, "on_call", c.oncologist.phone)]


def test_running_twice_at_the_same_instant_pages_each_level_once(c, db):
    alert = red_alert(c.patient)
    db.session.commit()
    escalate_alerts(T0 + timedelta(minutes=30))
    escalate_alerts(T0 + timedelta(minutes=30))
    assert [p.level for p in pages_of(alert.id)] == [0, 1]


def test_two_passes_at_once_page_each_level_once(app, c, db):
    # Five patients: a second red alert of one patient rides on the first one's page (one page per
    # check-in, tests/test_red_flags.py), so each alert here is another patient's.
    patients = [c.patient, c.patient_no_team, *(factories.create_patient(c.site) for _ in range(3))]
    alerts = [red_alert(patient).id for patient in patients]
    db.session.commit()
    now = at(30)
    barrier, results, errors = threading.Barrier(2), [], []

    def run():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                results.append(escalate_alerts(now))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(r["paged"] for r in results) == 5
    for alert_id in alerts:
        assert [p.level for p in pages_of(alert_id)] == [0, 1]
    total = db.session.scalar(select(func.count()).select_from(AlertPage))
    assert total == 10 and len(page_bodies()) == 10


def test_no_page_or_history_note_names_the_patient_or_a_symptom(c, db):
    alerts = [red_alert(c.patient, summary="Fever 39.5 C, chest pain", reason="fever_high"),
              red_alert(c.patient_no_team, summary="Bleeding and vomiting", reason="bleeding")]
    db.session.commit()
    for minutes in (30, 60, 90):
        at(minutes)
        escalate_alerts()
    entries = page_bodies()
    bodies = [e.body for e in entries if e.channel == "sms"]  # the calls speak a fixed text (test_oncall_voice)
    notes = [a.note for alert in alerts for kind in ("paged", "escalated") for a in actions(alert.id, kind)]
    assert len(entries) == 8 and len(bodies) == 4 and len(notes) == 8
    for text in bodies + notes:
        lowered = re.sub(r"/a/[a-z0-9_-]+", "/a/<token>", text.lower())  # a random token may hold "39"
        for patient in (c.patient, c.patient_no_team):
            assert patient.last_name.lower() not in lowered and patient.first_name.lower() not in lowered
        for word in SYMPTOM_WORDS + ("bleeding",):
            assert word not in lowered, (word, text)


def test_the_page_reaches_the_oncologist_phone_through_twilio_in_one_dispatch(app, c, db, monkeypatch):
    from app.notifications.tasks import dispatch_outbox
    from tests.twilio_fake import FakeTwilio

    sid, token = "AC" + "b2" * 16, "fake-token-oncall-0123456789"
    with FakeTwilio(sid, token) as fake:
        for key, value in {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token,
                           "TWILIO_FROM_NUMBER": "+33700000001", "TWILIO_API_BASE_URL": fake.base_url,
                           "OUTBOX_RATE_PER_SECOND": 100.0, "TWILIO_TIMEOUT_SECONDS": 2.0}.items():
            monkeypatch.setitem(app.config, key, value)
        alert = red_alert(c.patient)
        db.session.commit()
        dispatch_outbox(time_budget_s=5)
        received = fake.messages_to(c.oncologist.phone)
    assert len(received) == 1
    assert f"OK {alert.id}" in received[0]["body"] and c.patient.last_name not in received[0]["body"]
    assert page_bodies(alert.id)[0].state == "sent"
    assert db.session.get(Alert, alert.id).status == AlertStatus.OPEN
