"""Every step of the chain can receive its page: by text, by voice call or both; a landline
fallback is called; saving a policy, a step or a shift refuses a number that cannot receive
the channel it is given."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.notifications.tasks import dispatch_outbox
from app.triage import oncall
from app.triage.models import Alert
from app.triage.oncall_channels import can_receive_sms, resolve
from app.triage.paging import AlertPage
from app.triage.services import raise_alert
from tests import factories
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC, SENDER, SID, clock_fixture, fake_fixture, signed_post, twilio_app_fixture, use_settings_fixture,
)

LANDLINE = "+33472112233"  # a Lyon fixed line: a switchboard
MOBILE = "+33611223344"


def _red(patient):
    return raise_alert(patient_id=patient.id, severity="red", source="checkin", reason_code="fever",
                       summary="Fever 39.4 C")


def _twiml(resp) -> ET.Element:
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype == "application/xml"
    return ET.fromstring(resp.get_data(as_text=True))


def _call_params(call, **extra) -> dict:
    return {"CallSid": call["sid"], "AccountSid": SID, "From": SENDER, "To": call["to"],
            "CallStatus": "in-progress", **extra}


def test_kinds_of_numbers():
    assert can_receive_sms(MOBILE) and not can_receive_sms(LANDLINE)
    assert not can_receive_sms("+33972000000")  # a VoIP box number
    assert (resolve("auto", LANDLINE), resolve("auto", MOBILE)) == ("voice", "sms")
    assert resolve("sms", LANDLINE) == "voice"  # a number changed since the step was saved is still reached
    assert (resolve("both", MOBILE), resolve("both", LANDLINE)) == ("both", "voice")


def test_a_rota_gap_with_a_landline_fallback_is_a_call_where_pressing_1_acknowledges(
        twilio_app, fake, clock, circuit, db, client):
    """Nobody on call, no policy saved: the fallback is the hospital line, a landline."""
    site, patient = circuit.site, circuit.patient
    assert not can_receive_sms(site.hospital_phone)
    alert = _red(patient)
    db.session.commit()
    assert dispatch_outbox()["sent"] == 1

    assert fake.messages_to(site.hospital_phone) == []
    [call] = fake.calls
    assert call["to"] == site.hospital_phone and call["url"].startswith(PUBLIC + "/webhooks/twilio/page/")
    # Twilio fetches the TwiML from the signed URL, with its signature.
    page_path = call["url"].removeprefix(PUBLIC)
    root = _twiml(signed_post(client, fake, page_path, _call_params(call)))
    gathers = root.findall("Gather")
    assert len(gathers) == 3  # the message, repeated
    for gather in gathers:
        assert (gather.get("numDigits"), gather.get("input")) == ("1", "dtmf")
        say = gather.find("Say")
        assert say.get("language") == "fr-FR"
        assert "Onco'Link" in say.text and "L Y N" in say.text and "Appuyez sur 1" in say.text
        assert patient.last_name not in say.text and "39" not in say.text and "fièvre" not in say.text
    assert root.find("Hangup") is not None

    # A wrong key: the page again, nothing acknowledged.
    action = gathers[0].get("action")
    again = _twiml(signed_post(client, fake, action, _call_params(call, Digits="2")))
    assert again.find("Redirect").text == page_path
    assert db.session.get(Alert, alert.id).status == "open"

    spoken = _twiml(signed_post(client, fake, action, _call_params(call, Digits="1")))
    assert "prise en charge" in spoken.find("Say").text
    db.session.rollback()
    alert = db.session.get(Alert, alert.id)
    assert alert.status == "acknowledged" and alert.acknowledged_by_id is None
    page = db.session.scalar(select(AlertPage).where(AlertPage.alert_id == alert.id))
    assert (page.target, page.channel, page.acknowledged_via) == ("fallback", "voice", "voice")
    assert [a.note for a in alert.actions if a.kind == "acknowledged"] == [f"page level {page.level} via voice"]
    # Pressed again (Twilio retried the request): already acknowledged, nothing changes.
    later = _twiml(signed_post(client, fake, action, _call_params(call, Digits="1")))
    assert "déjà" in later.find("Say").text


def test_the_call_urls_refuse_forged_or_unsigned_requests(twilio_app, fake, clock, circuit, db, client):
    alert = _red(circuit.patient)
    db.session.commit()
    dispatch_outbox()
    [call] = fake.calls
    path = call["url"].removeprefix(PUBLIC)
    assert client.post(path, data=_call_params(call)).status_code == 403  # no signature
    assert signed_post(client, fake, path, _call_params(call), signature="bad").status_code == 403
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert signed_post(client, fake, forged, _call_params(call)).status_code == 404
    assert signed_post(client, fake, forged + "/key", _call_params(call, Digits="1")).status_code == 404
    assert db.session.get(Alert, alert.id).status == "open"


def test_an_english_speaker_is_called_in_english_by_a_voice_step(twilio_app, fake, clock, circuit, db, client):
    site = circuit.site
    circuit.oncologist.language = "en"
    oncall.add_shift(site, professional_id=circuit.oncologist.id, starts_at=clock.now - timedelta(hours=1),
                     ends_at=clock.now + timedelta(hours=8))
    oncall.add_step(site, kind="professional", professional_id=circuit.nurse.id)  # the chain made explicit
    on_call_step = next(s for s in oncall.steps_of(site.id) if s.kind == "on_call")
    oncall.set_step_channel(on_call_step, "voice")
    _red(circuit.patient)
    db.session.commit()
    dispatch_outbox()
    assert fake.messages_to(circuit.oncologist.phone) == []
    [call] = fake.calls
    root = _twiml(signed_post(client, fake, call["url"].removeprefix(PUBLIC), _call_params(call)))
    say = root.find("Gather").find("Say")
    assert say.get("language") == "en-GB" and "Press 1 to acknowledge" in say.text


def test_both_channels_send_a_text_and_a_call(twilio_app, fake, clock, circuit, db):
    mobile_onco = factories.create_professional(Role.ONCOLOGIST, site=circuit.site, phone=MOBILE)
    oncall.add_step(circuit.site, kind="professional", professional_id=mobile_onco.id, channel="both")
    oncall.remove_step(next(s for s in oncall.steps_of(circuit.site.id) if s.kind == "on_call"))
    alert = _red(circuit.patient)
    db.session.commit()
    assert dispatch_outbox()["sent"] == 2
    assert len(fake.messages_to(MOBILE)) == 1 and [c["to"] for c in fake.calls] == [MOBILE]
    page = db.session.scalar(select(AlertPage).where(AlertPage.alert_id == alert.id))
    assert page.channel == "both" and page.call_outbox_id is not None


# --- saving refuses what cannot be received --------------------------------------------------

def test_a_policy_with_a_landline_fallback_paged_by_text_is_refused(circuit, db):
    with pytest.raises(ValidationFailed) as exc:
        oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="04 72 11 22 33", fallback_label="Standard",
                           fallback_channel="sms")
    assert set(exc.value.errors) == {"fallback_channel"}
    assert "pas un portable" in " ".join(exc.value.errors["fallback_channel"])  # French by default
    for channel in ("auto", "voice"):
        oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone="04 72 11 22 33", fallback_label="Standard",
                           fallback_channel=channel)
    oncall.save_policy(circuit.site, ack_minutes=30, fallback_phone=MOBILE, fallback_label="Cadre",
                       fallback_channel="sms")


def test_a_landline_step_by_text_is_refused_and_by_call_accepted(circuit, db):
    desk = factories.create_professional(Role.COORDINATING_NURSE, site=circuit.site, phone=LANDLINE)
    with pytest.raises(ValidationFailed) as exc:
        oncall.add_step(circuit.site, kind="professional", professional_id=desk.id, channel="sms")
    assert set(exc.value.errors) == {"channel"}
    step = oncall.add_step(circuit.site, kind="professional", professional_id=desk.id, channel="voice")
    with pytest.raises(ValidationFailed):
        oncall.set_step_channel(step, "both")
    assert step.channel == "voice"


def test_a_shift_of_a_landline_while_the_on_call_step_texts_is_refused(circuit, db, clock):
    desk = factories.create_professional(Role.ONCOLOGIST, site=circuit.site, phone=LANDLINE)
    start, end = clock.now + timedelta(hours=1), clock.now + timedelta(hours=9)
    with pytest.raises(ValidationFailed) as exc:
        oncall.add_shift(circuit.site, professional_id=desk.id, starts_at=start, ends_at=end)
    assert "par SMS" in " ".join(exc.value.errors["professional_id"])
    oncall.add_step(circuit.site, kind="professional", professional_id=circuit.nurse.id)  # the chain made explicit
    on_call_step = next(s for s in oncall.steps_of(circuit.site.id) if s.kind == "on_call")
    oncall.set_step_channel(on_call_step, "voice")
    oncall.add_shift(circuit.site, professional_id=desk.id, starts_at=start, ends_at=end)
    with pytest.raises(ValidationFailed):  # back to texts while a landline is on the rota
        oncall.set_step_channel(on_call_step, "sms")


def test_the_policy_form_refuses_a_landline_by_text_in_french(circuit, login, csrf_of, db):
    client = login(circuit.admin)
    path = f"/admin/oncall/sites/{circuit.site.id}/policy"
    token = csrf_of(client.get(path).get_data(as_text=True))
    resp = client.post(path, data={
        "csrf_token": token, "ack_minutes": "30", "fallback_phone": "04 72 11 22 33", "fallback_label": "Standard",
        "fallback_channel": "sms", "orange_working_hours": "8", "yellow_days": "7", "workday_start": "8",
        "workday_end": "18", "out_of_hours_orange": "page", "holiday_country": "FR", "tech_contact_channel": "sms",
        "fault_delay_minutes": "5"})
    assert resp.status_code == 422
    assert "ne peut pas recevoir de SMS" in resp.get_data(as_text=True)
    assert oncall.effective_policy(circuit.site.id).configured is False
