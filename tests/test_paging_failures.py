"""A page that fails (refused for good, dead, undelivered, a call not answered) moves its alert to
the next level at once, is in the alert's history, and shows on the triage page and the alert
page, whatever it is tied to."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.notifications.models import OutboxEntry
from app.notifications.signals import outbox_failed
from app.notifications.tasks import dispatch_outbox
from app.triage import oncall
from app.triage.escalation import _on_outbox_failed
from app.triage.models import Alert, AlertAction
from app.triage.paging import AlertPage
from app.triage.services import raise_alert
from app.triage.tasks import escalate_alerts
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    SID, clock_fixture, fake_fixture, signed_post, twilio_app_fixture, use_settings_fixture,
)

H = timedelta(hours=1)
MOBILE_FALLBACK = "+33611223344"


@pytest.fixture()
def chain(circuit, db, clock):
    """The oncologist on call, then the coordinating nurse; a mobile fallback."""
    oncall.add_shift(circuit.site, professional_id=circuit.oncologist.id, starts_at=clock.now - H,
                     ends_at=clock.now + 8 * H)
    oncall.add_step(circuit.site, kind="professional", professional_id=circuit.nurse.id)
    oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone=MOBILE_FALLBACK, fallback_label="Cadre")
    db.session.commit()
    return circuit


def _red(patient) -> int:
    alert = raise_alert(patient_id=patient.id, severity="red", source="checkin", reason_code="fever",
                        summary="Fever 39.4 C")
    return alert.id


def _pages(db, alert_id):
    db.session.rollback()
    return list(db.session.scalars(select(AlertPage).where(AlertPage.alert_id == alert_id).order_by(AlertPage.level)))


def _callback(client, fake, sid: str, status: str, error_code: int | None = None, *, call: bool = False):
    """The provider's signed status callback, posted to the webhook."""
    params = {"AccountSid": SID, "CallSid" if call else "MessageSid": sid,
              "CallStatus" if call else "MessageStatus": status}
    if error_code:
        params["ErrorCode"] = str(error_code)
    resp = signed_post(client, fake, "/webhooks/twilio/status", params)
    assert resp.status_code == 204


def _notes(db, alert_id, kind):
    return [a.note for a in db.session.scalars(select(AlertAction).where(
        AlertAction.alert_id == alert_id, AlertAction.kind == kind).order_by(AlertAction.id))]


def test_a_page_refused_for_good_moves_the_alert_on_at_once_and_shows_on_the_triage_page(
        twilio_app, fake, clock, chain, db, login):
    fake.error_for(chain.oncologist.phone, 21614)  # "not a valid mobile number"
    alert_id = _red(chain.patient)
    db.session.commit()
    stats = dispatch_outbox()  # the refusal escalates inside the dispatcher's transaction ...
    assert stats["failed"] == 1 and stats["sent"] == 1  # ... and the new page leaves in the same run
    pages = _pages(db, alert_id)
    assert [(p.level, p.target) for p in pages] == [(0, "on_call"), (1, "professional")]
    assert pages[0].failed_at is not None and pages[1].failed_at is None
    assert len(fake.messages_to(chain.nurse.phone)) == 1
    assert _notes(db, alert_id, "page_failed") == ["level 0: on-call oncologist (sms): failed 21614"]
    assert _notes(db, alert_id, "escalated") == ["level 1: coordinating_nurse"]
    assert escalate_alerts()["paged"] == 0  # nothing left for the pass

    html = login(chain.nurse).get("/triage").get_data(as_text=True)
    listed = html[html.index('id="undelivered-list"'):]
    assert f"/alerts/{alert_id}" in listed and "21614" in listed and chain.oncologist.display_name in listed
    alert_page = login(chain.nurse).get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert 'id="alert-pages"' in alert_page and "non remis" in alert_page and "21614" in alert_page


def test_without_the_announcement_the_next_escalation_pass_moves_it_on(twilio_app, fake, clock, chain, db):
    outbox_failed.disconnect(_on_outbox_failed)  # as if the listener had failed
    try:
        fake.error_for(chain.oncologist.phone, 21614)
        alert_id = _red(chain.patient)
        db.session.commit()
        dispatch_outbox()
    finally:
        outbox_failed.connect(_on_outbox_failed)
    assert [p.level for p in _pages(db, alert_id)] == [0]
    clock.advance(minutes=1)  # one pass later, not ack_minutes later
    assert escalate_alerts() == {"due": 1, "paged": 1, "fallback": 0, "skipped": 0}
    pages = _pages(db, alert_id)
    assert [p.level for p in pages] == [0, 1] and pages[0].failed_at is not None
    assert _notes(db, alert_id, "page_failed") == ["level 0: on-call oncologist (sms)"]


def test_an_undelivered_status_callback_moves_the_alert_on(twilio_app, fake, clock, chain, db, client):
    alert_id = _red(chain.patient)
    db.session.commit()
    dispatch_outbox()
    [sent] = fake.messages_to(chain.oncologist.phone)
    _callback(client, fake, sent["sid"], "undelivered", 30003)
    pages = _pages(db, alert_id)
    assert [p.level for p in pages] == [0, 1] and pages[0].failed_at is not None
    assert _notes(db, alert_id, "page_failed") == ["level 0: on-call oncologist (sms): undelivered 30003"]
    # A second callback for the same page changes nothing.
    _callback(client, fake, sent["sid"], "failed", 30003)
    assert [p.level for p in _pages(db, alert_id)] == [0, 1]


def test_a_dead_page_moves_the_alert_on(twilio_app, fake, clock, chain, db, use_settings):
    use_settings(OUTBOX_MAX_ATTEMPTS=1)
    fake.fail_next(1, status=503)
    alert_id = _red(chain.patient)
    db.session.commit()
    stats = dispatch_outbox()
    assert stats["dead"] == 1
    assert [p.level for p in _pages(db, alert_id)] == [0, 1]
    assert _notes(db, alert_id, "page_failed")[0].startswith("level 0: on-call oncologist (sms): dead")


def test_a_failed_page_to_the_fallback_is_not_repeated_in_a_loop(twilio_app, fake, clock, circuit, db):
    oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone=MOBILE_FALLBACK, fallback_label="Cadre")
    db.session.commit()
    fake.error_for(MOBILE_FALLBACK, 21612)
    alert_id = _red(circuit.patient)  # nobody on call: the fallback at once
    db.session.commit()
    dispatch_outbox()
    assert escalate_alerts()["paged"] == 0
    pages = _pages(db, alert_id)
    assert len(pages) == 1 and pages[0].failed_at is not None
    clock.advance(minutes=30)  # paged again after the site's delay, as when nobody answers
    assert escalate_alerts()["paged"] == 1


def test_a_page_by_text_and_call_fails_only_when_both_fail(twilio_app, fake, clock, chain, db, client):
    step = next(s for s in oncall.steps_of(chain.site.id) if s.kind == "on_call")
    oncall.set_step_channel(step, "both")
    db.session.commit()
    alert_id = _red(chain.patient)
    db.session.commit()
    # The text goes to a number the provider refuses (the fake refuses by number); the call is accepted.
    db.session.execute(OutboxEntry.__table__.update().where(OutboxEntry.channel == "sms",
                                                            OutboxEntry.purpose == "page")
                       .values(to_number="+33600000000"))
    db.session.commit()
    fake.error_for("+33600000000", 21614)
    dispatch_outbox()
    assert [p.level for p in _pages(db, alert_id)] == [0]
    assert _notes(db, alert_id, "page_failed") == ["level 0: one channel failed (failed 21614), the other goes on"]
    [call] = fake.calls
    _callback(client, fake, call["sid"], "no-answer", call=True)
    pages = _pages(db, alert_id)
    assert [p.level for p in pages] == [0, 1] and pages[0].failed_at is not None
    assert db.session.get(Alert, alert_id).escalation_level == 1
