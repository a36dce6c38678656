"""Paging on a new red alert, and acknowledgement by SMS reply and by signed link."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.audit import AuditEvent
from app.extensions import db as _db
from app.notifications.models import OutboxEntry
from app.notifications.segments import fits
from app.triage import oncall
from app.triage.models import Alert
from app.triage.paging import AlertPage, handle_professional_sms
from app.triage.services import raise_alert
from app.triage.tasks import escalate_alerts
from tests.oncall_helpers import english  # noqa: F401  (autouse: English texts)
from tests.oncall_helpers import SYMPTOM_WORDS, T0, actions, at, page_bodies, pages_of, red_alert, shift

H = timedelta(hours=1)


@pytest.fixture()
def c(circuit, db):
    """The site's oncologist is on call from an hour ago for 12 hours."""
    at(0)
    shift(circuit.site, circuit.oncologist, T0 - H, T0 + 12 * H)
    db.session.commit()
    return circuit


def _token(body: str) -> str:
    match = re.search(r"/a/([A-Za-z0-9_-]+)", body)
    assert match, body
    return match.group(1)


def _assert_no_patient_data(text: str, patient) -> None:
    text = re.sub(r"/a/[A-Za-z0-9_-]+", "/a/<token>", text)  # a random token may contain "39"
    lowered = text.lower()
    assert patient.last_name.lower() not in lowered and patient.first_name.lower() not in lowered
    assert patient.mrn.lower() not in lowered and patient.phone not in text
    for word in SYMPTOM_WORDS:
        assert word not in lowered, (word, text)


def test_a_red_alert_pages_the_on_call_oncologist_in_the_same_transaction(c, db):
    alert = red_alert(c.patient)
    [entry] = page_bodies(alert.id)
    assert entry.to_number == c.oncologist.phone and entry.idempotency_key == f"page:{alert.id}:0"
    assert entry.patient_id is None  # a page is not a message to the patient
    [page] = pages_of(alert.id)
    assert (page.level, page.target, page.professional_id, page.outbox_id) == (0, "on_call", c.oncologist.id,
                                                                                entry.id)
    assert alert.escalation_level == 0
    assert [a.note for a in actions(alert.id, "paged")] == ["level 0: on-call oncologist"]
    assert f"OK {alert.id}" in entry.body and "LYN" in entry.body and fits(entry.body, 2)
    _assert_no_patient_data(entry.body, c.patient)
    alert_id = alert.id
    db.session.rollback()  # the change that raised the alert is rolled back: no page leaves
    assert db.session.get(Alert, alert_id) is None
    assert db.session.scalar(select(func.count()).select_from(OutboxEntry)) == 0
    assert db.session.scalar(select(func.count()).select_from(AlertPage)) == 0


def test_orange_alerts_page_nobody(c, db):
    raise_alert(patient_id=c.patient.id, severity="orange", source="checkin", reason_code="diarrhoea_g2",
                summary="Diarrhoea grade 2")
    assert page_bodies() == []


def test_a_red_alert_during_a_rota_gap_pages_the_fallback_at_once(c, db):
    oncall.save_policy(c.site, ack_minutes=20, fallback_phone="+33472112233", fallback_label="Standard")
    oncall.add_step(c.site, kind="professional", professional_id=c.nurse.id)
    at(13 * 60)  # the shift is over: nobody on call
    alert = red_alert(c.patient)
    [entry] = page_bodies(alert.id)
    assert entry.to_number == "+33472112233"
    [page] = pages_of(alert.id)
    assert (page.target, page.professional_id, page.level) == ("fallback", None, 2)
    # A landline (the switchboard) cannot receive a text: it is called (tests/test_oncall_voice.py).
    assert (entry.channel, entry.body, page.channel) == ("voice", None, "voice")
    assert entry.twiml_path.startswith("/webhooks/twilio/page/") and entry.priority == 0


def test_a_mobile_fallback_is_texted_and_acknowledges_by_link(c, db):
    oncall.save_policy(c.site, ack_minutes=20, fallback_phone="+33611223344", fallback_label="Cadre de garde")
    at(13 * 60)  # nobody on call
    alert = red_alert(c.patient)
    [entry] = page_bodies(alert.id)
    assert (entry.to_number, entry.channel, entry.priority) == ("+33611223344", "sms", 0)
    assert "OK" not in entry.body and "/a/" in entry.body  # the fallback acknowledges by link
    _assert_no_patient_data(entry.body, c.patient)


def test_without_a_policy_the_fallback_is_the_hospital_line(c, db):
    at(13 * 60)
    alert = red_alert(c.patient)
    assert [e.to_number for e in page_bodies(alert.id)] == [c.site.hospital_phone]


# --- acknowledgement by SMS ------------------------------------------------------------------

def test_ok_with_the_code_acknowledges_and_stops_the_escalation(c, db):
    alert = red_alert(c.patient)
    db.session.commit()
    at(5)
    replies = handle_professional_sms(c.oncologist.phone, f"OK {alert.id}")
    db.session.commit()
    assert len(replies) == 1 and str(alert.id) in replies[0]
    _assert_no_patient_data(replies[0], c.patient)
    alert = db.session.get(Alert, alert.id)
    assert (alert.status, alert.acknowledged_by_id) == ("acknowledged", c.oncologist.id)
    [page] = pages_of(alert.id)
    assert page.acknowledged_via == "sms" and page.acknowledged_at is not None
    audit_row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "alert_acknowledged"))
    assert audit_row.actor_id == c.oncologist.id
    at(120)
    assert escalate_alerts()["paged"] == 0
    assert len(page_bodies(alert.id)) == 1


@pytest.mark.parametrize("text", ["ok", "OK", "oui", " Oui ! ", "yes."])
def test_a_bare_ok_acknowledges_the_latest_page(c, db, text):
    first = red_alert(c.patient)
    at(1)
    latest = red_alert(c.patient_no_team)
    db.session.commit()
    assert handle_professional_sms(c.oncologist.phone, text)
    db.session.commit()
    assert db.session.get(Alert, latest.id).status == "acknowledged"
    assert db.session.get(Alert, first.id).status == "open"
    assert handle_professional_sms(c.oncologist.phone, f"ok {first.id}")
    db.session.commit()
    assert db.session.get(Alert, first.id).status == "acknowledged"
    # Nothing left to acknowledge: a polite answer, nothing changes.
    assert handle_professional_sms(c.oncologist.phone, "ok") == ["This alert was already acknowledged. Thank you."]


def test_messages_that_are_not_for_the_pager(c, db):
    assert handle_professional_sms("+33600000009", "ok") is None  # nobody's number
    assert handle_professional_sms(c.nurse.phone, "oui") is None  # a professional never paged
    alert = red_alert(c.patient)
    db.session.commit()
    help_reply = handle_professional_sms(c.oncologist.phone, "what is it?")
    assert help_reply and f"OK {alert.id}" in help_reply[0]
    assert handle_professional_sms(c.oncologist.phone, "OK 999999") == ["No alert 999999 is waiting for you."]
    c.oncologist.active = False
    db.session.commit()
    assert handle_professional_sms(c.oncologist.phone, "ok") is None
    assert db.session.get(Alert, alert.id).status == "open"


def test_someone_else_cannot_acknowledge_a_page_by_sms(c, db):
    alert = red_alert(c.patient)
    db.session.commit()
    assert handle_professional_sms(c.nurse.phone, f"OK {alert.id}") is None
    assert db.session.get(Alert, alert.id).status == "open"


# --- acknowledgement by link -----------------------------------------------------------------

def test_the_link_shows_a_button_then_acknowledges_once(c, db, client, csrf_of):
    alert = red_alert(c.patient)
    db.session.commit()
    token = _token(page_bodies(alert.id)[0].body)
    resp = client.get(f"/a/{token}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "LYN" in html
    assert resp.headers["Referrer-Policy"] == "no-referrer" and resp.headers["Cache-Control"] == "no-store"
    _assert_no_patient_data(re.sub(r"<[^>]+>", " ", html), c.patient)
    assert db.session.get(Alert, alert.id).status == "open"  # opening the link acknowledges nothing
    resp = client.post(f"/a/{token}", data={"csrf_token": csrf_of(html)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    alert = db.session.get(Alert, alert.id)
    assert (alert.status, alert.acknowledged_by_id) == ("acknowledged", c.oncologist.id)
    assert pages_of(alert.id)[0].acknowledged_via == "link"
    # Used: refused, and nothing more happens.
    assert client.get(f"/a/{token}").status_code == 410
    assert client.post(f"/a/{token}", data={"csrf_token": csrf_of(html)}).status_code == 410
    assert len(actions(alert.id, "acknowledged")) == 1
    at(120)
    assert escalate_alerts()["paged"] == 0


def test_a_link_without_its_csrf_token_acknowledges_nothing(c, db, client):
    alert = red_alert(c.patient)
    db.session.commit()
    token = _token(page_bodies(alert.id)[0].body)
    client.get(f"/a/{token}")
    assert client.post(f"/a/{token}", data={}).status_code == 400
    assert db.session.get(Alert, alert.id).status == "open"


def test_an_expired_link_is_refused(c, db, client, csrf_of):
    alert = red_alert(c.patient)
    db.session.commit()
    token = _token(page_bodies(alert.id)[0].body)
    html = client.get(f"/a/{token}").get_data(as_text=True)
    at(24 * 60 + 1)
    assert client.get(f"/a/{token}").status_code == 410
    assert client.post(f"/a/{token}", data={"csrf_token": csrf_of(html)}).status_code == 410
    assert db.session.get(Alert, alert.id).status == "open"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "page_link_refused"))


@pytest.mark.parametrize("token", ["A" * 22, "not-a-token", "x" * 200, "abc%00def"])
def test_a_forged_link_is_refused(c, db, client, csrf_of, token):
    alert = red_alert(c.patient)
    db.session.commit()
    real = _token(page_bodies(alert.id)[0].body)
    html = client.get(f"/a/{real}").get_data(as_text=True)
    assert client.get(f"/a/{token}").status_code == 404
    assert client.post(f"/a/{token}", data={"csrf_token": csrf_of(html)}).status_code == 404
    assert db.session.get(Alert, alert.id).status == "open"


def test_the_digest_not_the_token_is_stored(c, db):
    alert = red_alert(c.patient)
    token = _token(page_bodies(alert.id)[0].body)
    page = pages_of(alert.id)[0]
    assert token not in page.token_digest and len(page.token_digest) == 64


def test_a_link_to_an_alert_a_colleague_took_is_refused(c, db, client):
    alert = red_alert(c.patient)
    db.session.commit()
    token = _token(page_bodies(alert.id)[0].body)
    from app.triage.services import acknowledge

    acknowledge(db.session.get(Alert, alert.id), actor=c.nurse)
    db.session.commit()
    resp = client.get(f"/a/{token}")
    assert resp.status_code == 410 and "already acknowledged" in resp.get_data(as_text=True)


def test_the_fallback_acknowledges_by_link_without_an_account(c, db, client, csrf_of):
    oncall.save_policy(c.site, ack_minutes=30, fallback_phone="+33611223344", fallback_label="Cadre de garde")
    at(13 * 60)
    alert = red_alert(c.patient)
    db.session.commit()
    token = _token(page_bodies(alert.id)[0].body)
    html = client.get(f"/a/{token}").get_data(as_text=True)
    assert client.post(f"/a/{token}", data={"csrf_token": csrf_of(html)}).status_code == 200
    alert = db.session.get(Alert, alert.id)
    assert alert.status == "acknowledged" and alert.acknowledged_by_id is None
    assert actions(alert.id, "acknowledged")[0].note == f"page level {pages_of(alert.id)[0].level} via link"
    row = _db.session.scalar(select(AuditEvent).where(AuditEvent.action == "page_acknowledged"))
    assert row.actor_label == "fallback phone"


def test_a_page_too_long_for_two_segments_drops_the_link(app, c, db, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://" + "long-host-name." * 20 + "fr")
    alert = red_alert(c.patient)
    [entry] = page_bodies(alert.id)
    assert fits(entry.body, 2) and f"OK {alert.id}" in entry.body and "/a/" not in entry.body


def test_the_escalation_job_is_registered():
    from app.jobs.registry import JOBS

    assert JOBS["escalate-alerts"].resolve() is escalate_alerts


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_page_fits_two_segments_and_the_fallback_always_gets_the_link(app, language):
    from app.notifications.segments import count_segments
    from app.triage.paging import page_text

    link = "https://oncolink.hopital-exemple.fr/a/" + "x" * 43
    for can_reply in (True, False):
        text = page_text(site_code="CHU-LONG", alert_id=123456, link=link, can_reply=can_reply, language=language)
        assert count_segments(text)[1] <= 2, text
        if not can_reply:  # the switchboard has no account: the link is its only way to acknowledge
            assert link in text, text
    french = page_text(site_code="LYN", alert_id=1, link=link, can_reply=True, language="fr")
    assert count_segments(french)[0] == "GSM-7", french  # no character that halves the segment
