"""The check-in by automated call: signed TwiML views, keypad answers, silences, machines, retries."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.extensions import db as _db
from app.notifications.models import OutboxEntry
from app.notifications.status import apply_status_callback, record_outbound
from app.pathways.checkins import templates as t
from app.pathways.checkins.chase import chase_non_responders
from app.pathways.checkins.models import CheckIn, CheckInStatus
from app.pathways.checkins.start import start_due_checkins
from app.pathways.checkins.voice import parse_keypad, voice_path
from app.triage.models import Alert
from tests import factories as f
from tests.test_checkin_support import answers_of, clock, outbox_for, sms, start_one  # noqa: F401

TOKEN = "voice-test-token-0123456789abcdef"
PUBLIC = "https://oncolink.example.test"


@pytest.fixture()
def voice(app, db, clock, monkeypatch):
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    site = f.create_site()
    patient = f.create_patient(site, channel="voice")  # capecitabine, on-week
    db.session.commit()
    return patient


def post(client, path, params=None, *, sign=True):
    params = {k: str(v) for k, v in (params or {}).items()}
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)} if sign else {}
    return client.post(path, data=params, headers=headers)


class Twiml:
    def __init__(self, response):
        assert response.status_code == 200, response.status_code
        assert response.mimetype == "application/xml"
        self.root = ET.fromstring(response.get_data(as_text=True))

    @property
    def said(self) -> str:
        return " ".join(el.text or "" for el in self.root.iter("Say"))

    @property
    def gather(self):
        return self.root.find("Gather")

    @property
    def hangs_up(self) -> bool:
        return self.root.find("Hangup") is not None

    def next_paths(self) -> tuple[str, str]:
        return self.gather.get("action"), self.root.find("Redirect").text


def _started(patient) -> CheckIn:
    checkin = start_one(patient)
    assert checkin.channel == "voice"
    return checkin


def test_the_call_url_is_signed_and_unguessable(client, voice):
    checkin = _started(voice)
    (call,) = outbox_for(checkin)
    assert call.channel == "voice" and call.purpose == "checkin_call" and call.body is None
    assert call.twiml_path == voice_path(checkin.id)
    prefix = f"/webhooks/twilio/voice/{checkin.id}/"
    assert call.twiml_path.startswith(prefix) and len(call.twiml_path) > len(prefix) + 10
    assert post(client, call.twiml_path, sign=False).status_code == 403
    assert post(client, prefix + "forged-token").status_code == 404
    other = voice_path(checkin.id + 1).rsplit("/", 1)[1]
    assert post(client, prefix + other).status_code == 404  # a token is valid for its own check-in only


def test_keypad_conversation_with_a_red_flag(client, voice):
    checkin = _started(voice)
    twiml = Twiml(post(client, voice_path(checkin.id)))
    assert twiml.said.startswith("Bonjour")
    gather = twiml.gather
    assert (gather.get("input"), gather.get("numDigits"), gather.get("language")) == ("dtmf", "2", "fr-FR")
    assert "combien de prises" in twiml.said and "dièse" in twiml.said
    action, redirect = twiml.next_paths()
    assert action.endswith("/answer/0") and redirect.endswith("/silence/0")

    twiml = Twiml(post(client, action, {"Digits": "0"}))
    assert twiml.gather.get("numDigits") == "3" and "fièvre" in twiml.said
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "390"}))
    assert twiml.said.startswith(t.render("voice_safety", "fr", hospital_phone="04 78 00 00 00"))
    (alert,) = _db.session.scalars(select(Alert).where(Alert.patient_id == voice.id)).all()
    assert (alert.severity, alert.reason_code) == ("red", "fever")
    # bleeding, breathlessness, vomiting (no), 1 stool above usual, nausea 0, mouth 0
    for digits in ("2", "2", "2", "1", "0", "0"):
        twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": digits}))
    # Capecitabine hand-foot grade 2: the pause instruction is spoken, as it is texted (H08).
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "2"}))
    assert twiml.said.startswith(t.render("voice_pause_until_call", "fr", hospital_phone="04 78 00 00 00"))
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "1"}))
    assert twiml.gather.get("numDigits") == "1" and "0 pour non" in twiml.said
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "0"}))
    assert twiml.said == t.render("voice_thanks", "fr") and twiml.hangs_up
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.COMPLETED
    answers = answers_of(checkin)
    assert answers["temperature"].value == 39.0 and answers["hand_foot"].value == 2
    assert {a.source for a in answers.values()} == {"voice"}
    # A repeated request from the provider does not answer twice.
    again = Twiml(post(client, voice_path(checkin.id) + "/answer/10", {"Digits": "2"}))
    assert again.hangs_up and answers_of(checkin)["wants_call"].value == 0


def test_wrong_key_is_asked_again_then_silence_moves_on(client, voice):
    checkin = _started(voice)
    twiml = Twiml(post(client, voice_path(checkin.id)))
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "0"}))
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "999"}))  # 99.9 C: not a temperature
    assert twiml.said.startswith(t.render("voice_unclear", "fr")) and twiml.gather.get("action").endswith("/answer/1")
    twiml = Twiml(post(client, twiml.next_paths()[1]))  # silence after the re-ask: next question
    assert twiml.said.startswith(t.render("voice_skipped", "fr")) and twiml.gather.get("action").endswith("/answer/2")
    temperature = answers_of(checkin)["temperature"]
    assert (temperature.parsed, temperature.raw_text) == (False, "999")
    twiml = Twiml(post(client, twiml.next_paths()[1]))  # silence once: asked again
    assert twiml.said.startswith(t.render("voice_no_input", "fr")) and twiml.gather.get("action").endswith("/answer/2")
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "1"}))  # yes to bleeding
    assert answers_of(checkin)["bleeding"].value is True and "avis rapide" in twiml.said


def test_answering_machine_gets_no_health_data_and_one_more_call(client, voice, clock):
    checkin = _started(voice)
    twiml = Twiml(post(client, voice_path(checkin.id), {"AnsweredBy": "machine_end_beep"}))
    assert twiml.hangs_up and twiml.gather is None
    assert "04 78 00 00 00" in twiml.said
    for word in ("fièvre", "traitement", "température", "diarrh"):
        assert word not in twiml.said.lower()
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.SENT and answers_of(checkin) == {}
    assert checkin.next_call_at == clock.now + timedelta(minutes=30)
    clock.advance(minutes=29)
    assert start_due_checkins()["call_retries"] == 0
    clock.advance(minutes=1)
    assert start_due_checkins()["call_retries"] == 1
    keys = [e.idempotency_key for e in outbox_for(checkin)]
    assert keys == [f"checkin:{checkin.id}:call:1", f"checkin:{checkin.id}:call:2"]
    # The second call is not answered either: no third call, the chase takes over.
    _unanswered(outbox_for(checkin)[-1], "busy")
    _db.session.refresh(checkin)
    assert checkin.next_call_at is None


def test_no_key_ever_pressed_is_not_a_questionnaire_answered(client, voice):
    checkin = _started(voice)
    twiml = Twiml(post(client, voice_path(checkin.id)))
    silence = twiml.next_paths()[1]
    twiml = Twiml(post(client, silence))
    assert twiml.gather is not None  # asked once more
    twiml = Twiml(post(client, silence))
    assert twiml.hangs_up and "rappeler" in twiml.said
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.SENT and checkin.current_index == 0 and answers_of(checkin) == {}
    assert checkin.next_call_at is not None


def _unanswered(entry: OutboxEntry, status: str) -> None:
    sid = f"CA{entry.id:032d}"
    record_outbound(sid=sid, status="queued", channel="voice", body=None, to_number=entry.to_number,
                    from_number="+33700000001", patient_id=entry.patient_id, outbox_id=entry.id, ref=entry.ref)
    apply_status_callback(sid=sid, status=status, channel="voice")
    _db.session.commit()


def test_unanswered_call_is_tried_once_more(client, voice, clock):
    checkin = _started(voice)
    _unanswered(outbox_for(checkin)[0], "no-answer")
    _db.session.refresh(checkin)
    assert checkin.next_call_at == clock.now + timedelta(minutes=30)
    clock.advance(minutes=31)
    start_due_checkins()
    assert len(outbox_for(checkin)) == 2


def test_blood_pressure_is_asked_by_sms_after_the_call(client, db, voice):
    patient = f.create_patient(f.create_site(), channel="voice", drug_inn="abiraterone")
    db.session.commit()
    checkin = _started(patient)
    assert checkin.item_codes[-1] == "blood_pressure"
    twiml = Twiml(post(client, voice_path(checkin.id)))
    for code in checkin.item_codes[:-1]:
        twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "2" if code == "breathlessness" else "0"}))
    assert twiml.said == t.render("voice_bp_by_sms", "fr") and twiml.hangs_up
    question = outbox_for(checkin)[-1]
    assert question.channel == "sms" and question.body == t.question_sms(_bp_item(), "fr")
    replies = sms(patient, "19/9")  # 190/90, French habit
    assert replies[0] == t.render("safety", "fr", hospital_phone=patient.site.hospital_phone)
    assert replies[1].startswith("Merci")
    db.session.commit()
    db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.COMPLETED
    assert answers_of(checkin)["blood_pressure"].value == {"systolic": 190, "diastolic": 90}


def _bp_item():
    from app.pathways.checkins.models import QuestionnaireItem

    return _db.session.scalar(select(QuestionnaireItem).where(QuestionnaireItem.code == "blood_pressure"))


def test_voice_reminder_is_a_call(client, voice, clock):
    checkin = _started(voice)
    clock.advance(hours=24)
    chase_non_responders()
    assert outbox_for(checkin)[-1].idempotency_key == f"checkin:{checkin.id}:reminder-call"


@pytest.mark.parametrize("kind, digits, expected", [
    ("yes_no", "1", (True, True)), ("yes_no", "2", (False, True)), ("yes_no", "3", (None, False)),
    ("scale_0_3", "3", (3, True)), ("scale_0_3", "4", (None, False)), ("count", "12", (12, True)),
    ("count", "123", (None, False)), ("temperature", "385", (38.5, True)), ("temperature", "39", (39.0, True)),
    ("temperature", "0", (False, True)), ("temperature", "500", (None, False)), ("temperature", "", (None, False)),
    ("choice", "2", (2, True)), ("choice", "5", (None, False)), ("yes_no", "١", (None, False)),
])
def test_keypad_values(kind, digits, expected):
    from app.pathways.checkins.models import QuestionnaireItem

    item = QuestionnaireItem(code="x", answer_type=kind, choices={"0": [], "1": [], "2": []})
    assert parse_keypad(item, digits) == expected
