"""Issue 10: a red flag reaches a person whatever the patient types, whatever the question, the
channel or the phone; nothing is "not understood" in silence; answers land on their question."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db as _db
from app.notifications.models import Message, OutboxEntry
from app.notifications.tasks import dispatch_outbox, process_inbound
from app.pathways.checkins import templates as t
from app.pathways.checkins.models import CheckIn, CheckInStatus
from app.pathways.checkins.start import start_checkin, start_due_checkins
from app.pathways.checkins.voice import voice_path
from app.triage.models import Alert, AlertStatus, NurseTask
from app.triage.oncall import add_shift
from app.triage.paging import AlertPage
from tests import factories as f
from tests.test_checkin_support import answers_of, checkins_of, clock, outbox_for, sms, start_one, world  # noqa: F401
from tests.test_checkin_voice import Twiml, post
from tests.test_checkin_voice import voice as voice_fixture  # noqa: F401
from tests.test_notifications_helpers import (  # noqa: F401  (fixtures, by their names)
    PUBLIC, SENDER, SID, TOKEN, fake_fixture, signed_post, twilio_app_fixture, use_settings_fixture,
)

HOSPITAL = "+33478000000"


def _alerts(patient, **where):
    query = select(Alert).where(Alert.patient_id == patient.id)
    for key, value in where.items():
        query = query.where(getattr(Alert, key) == value)
    return list(_db.session.scalars(query.order_by(Alert.id)))


def _tasks(patient):
    return list(_db.session.scalars(select(NurseTask).where(NurseTask.patient_id == patient.id)))


def _pages(patient) -> int:
    return _db.session.scalar(select(func.count()).select_from(AlertPage).join(Alert, Alert.id == AlertPage.alert_id)
                              .where(Alert.patient_id == patient.id))


def _to(checkin, code):
    """Move the check-in to the question ``code`` (as if the earlier ones were answered)."""
    checkin.current_index = checkin.item_codes.index(code)
    checkin.status = CheckInStatus.IN_PROGRESS
    _db.session.commit()


# --- emergencies typed anywhere ------------------------------------------------------------------

def test_an_emergency_sent_as_the_answer_to_another_question_is_red_and_the_question_asked_again(world):
    patient = world.patient
    checkin = start_one(patient)
    _to(checkin, "fatigue")
    replies = sms(patient, "j'ai du sang dans les selles depuis ce matin")
    assert replies[0] == t.render("safety", "fr", hospital_phone=HOSPITAL)
    assert "fatigu" in replies[1] and not replies[1].startswith("Je n'ai pas compris")
    (alert,) = _alerts(patient)
    assert (alert.severity, alert.reason_code) == ("red", "emergency_text_bleeding")
    assert alert.detail["text"] == "j'ai du sang dans les selles depuis ce matin"  # for the team, not an SMS
    assert alert.detail["lexicon"] and alert.detail["item"] == "fatigue"
    _db.session.refresh(checkin)
    assert checkin.current_code == "fatigue" and checkin.reask_count == 0  # not counted as a re-ask
    assert sms(patient, "2")[0].startswith("Q11/11")  # the answer to fatigue still counts


@pytest.mark.parametrize("text, reply", [
    ("help I can't breathe", "safety"), ("je suis aux urgences", "safety"), ("jsuis essouflé g mal ds la poitrine",
                                                                              "safety"),
    ("envie d'en finir", "safety_self_harm"), ("AIDE je saigne du nez ca s'arrete pas", "safety"),
])
def test_outside_a_checkin_an_emergency_is_red_not_information(world, text, reply):
    patient = world.patient
    assert sms(patient, text) == [t.render(reply, "fr", hospital_phone=HOSPITAL)]
    (alert,) = _alerts(patient)
    assert alert.severity == "red" and alert.due_at - alert.created_at <= timedelta(minutes=30)


def test_a_patient_who_opted_out_still_gets_the_safety_reply_and_the_team_is_paged(world):
    patient = world.patient
    sms(patient, "STOP")
    assert sms(patient, "mon mari est tombé, il ne répond plus") == [t.render("safety", "fr", hospital_phone=HOSPITAL)]
    assert _alerts(patient, severity="red")


@pytest.mark.parametrize("text", ["pas de sang", "no chest pain", "prise de sang lundi", "mort de rire 😂",
                                  "je respire bien merci", "ni fièvre ni saignement"])
def test_clear_negations_and_look_alikes_do_not_fire(world, text):
    patient = world.patient
    sms(patient, text)
    assert _alerts(patient, severity="red") == []


# --- the words patients are told to use, and plausibility -------------------------------------------

def test_the_hint_words_of_the_scale_are_understood(world):
    patient = world.patient
    checkin = start_one(patient)
    _to(checkin, "fatigue")
    replies = sms(patient, "beaucoup")  # the hint says "3 (beaucoup)": grade 3, red
    assert replies[0] == t.render("safety", "fr", hospital_phone=HOSPITAL)
    assert answers_of(checkin)["fatigue"].value == 3


def test_39_to_the_doses_question_is_asked_again_not_stored(world):
    patient = world.patient
    checkin = start_one(patient)
    assert sms(patient, "39")[0].startswith("Je n'ai pas compris")  # 14 doses at most in a week
    assert answers_of(checkin)["doses_missed"].parsed is False


def test_several_answers_in_one_text_follow_the_pending_questions(world):
    patient = world.patient
    checkin = start_one(patient)
    replies = sms(patient, "0, 37,2, non, oui, non")  # doses, fever, bleeding, breathing (yes!), vomiting
    assert replies[0] == t.render("safety", "fr", hospital_phone=HOSPITAL)
    values = {code: a.value for code, a in answers_of(checkin).items()}
    assert values == {"doses_missed": 0, "temperature": 37.2, "bleeding": False, "breathlessness": True,
                      "vomiting": False}
    assert replies[1].startswith("Q6/11")  # the stools question comes next
    assert [a.reason_code for a in _alerts(patient)] == ["chest_pain_or_breathlessness"]


# --- answers land on the right question ----------------------------------------------------------------

def test_a_text_that_arrived_before_its_question_answers_the_earlier_one(twilio_app, fake, client, db, clock, world):
    patient = world.patient
    checkin = start_one(patient)
    for sid, body in (("SM" + "a" * 32, "0"), ("SM" + "b" * 32, "oui j'en ai oublié une en fait")):
        signed_post(client, fake, "/webhooks/twilio/sms",
                    {"From": patient.phone, "To": SENDER, "Body": body, "MessageSid": sid, "AccountSid": SID})
    clock.advance(seconds=5)  # read after both arrived: the fever question was asked after the second text
    assert process_inbound()["processed"] == 2
    db.session.refresh(checkin)
    answers = answers_of(checkin)
    assert checkin.current_code == "temperature" and "temperature" not in answers
    assert answers["doses_missed"].raw_text == "0\noui j'en ai oublié une en fait"
    assert answers["doses_missed"].value == 1  # the later text corrects the earlier one, on its own question
    # A text naming its question lands there too.
    clock.advance(minutes=1)
    sms(patient, "38")
    sms(patient, "Q1: 2")
    assert answers_of(checkin)["doses_missed"].value == 2
    db.session.refresh(checkin)
    assert checkin.current_code == "bleeding"


# --- keywords ------------------------------------------------------------------------------------------

def test_arret_during_a_checkin_opts_out_and_asks_a_nurse_to_call(world):
    patient = world.patient
    checkin = start_one(patient)
    assert sms(patient, "ARRÊT") == [t.render("stop", "fr", hospital_phone=HOSPITAL)]
    _db.session.refresh(patient)
    assert patient.opted_out_at is not None
    (alert,) = _alerts(patient)
    assert (alert.severity, alert.reason_code, alert.checkin_id) == ("orange", "stopped_during_checkin", checkin.id)
    assert [(task.kind, task.reason_code) for task in _tasks(patient)] == [("call_patient", "stopped_during_checkin")]


def test_the_provider_reporting_an_opt_out_21610_asks_a_nurse_to_call(twilio_app, fake, db, world):
    patient = world.patient
    fake.error_for(patient.phone, 21610)
    checkin = start_one(patient)
    dispatch_outbox()
    db.session.rollback()
    (entry,) = outbox_for(checkin)
    assert (entry.state, entry.last_error_code) == ("failed", 21610)
    db.session.refresh(patient)
    assert patient.opted_out_at is not None
    (alert,) = _alerts(patient)
    assert (alert.severity, alert.reason_code) == ("orange", "provider_opt_out")
    assert [(task.kind, task.reason_code) for task in _tasks(patient)] == [("call_patient", "provider_opt_out")]


# --- voice ------------------------------------------------------------------------------------------------

def test_a_keypad_red_answer_speaks_the_safety_message_and_pages(client, voice_fixture, db, clock):
    patient = voice_fixture
    oncologist = f.create_professional("oncologist", site=patient.site, phone="+33639980099")
    add_shift(patient.site, professional_id=oncologist.id, starts_at=clock.now - timedelta(hours=1),
              ends_at=clock.now + timedelta(hours=8))
    db.session.commit()
    checkin = start_one(patient)
    twiml = Twiml(post(client, voice_path(checkin.id)))
    for digits in ("0", "0"):  # no dose missed, no fever
        twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": digits}))
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "1"}))  # bleeding: yes
    assert twiml.said.startswith(t.render("voice_safety", "fr", hospital_phone="04 78 00 00 00"))
    (alert,) = _alerts(patient)
    assert alert.severity == "red"
    (page,) = db.session.scalars(select(OutboxEntry).where(OutboxEntry.purpose == "page")).all()
    assert page.to_number == oncologist.phone


def test_a_keypad_grade_2_capecitabine_diarrhoea_speaks_the_pause_instruction(client, voice_fixture, db):
    checkin = start_one(voice_fixture)
    twiml = Twiml(post(client, voice_path(checkin.id)))
    for digits in ("0", "0", "2", "2", "2"):  # doses, fever, bleeding, breathing, vomiting
        twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": digits}))
    assert "selles" in twiml.said and twiml.gather.get("numDigits") == "2"
    twiml = Twiml(post(client, twiml.gather.get("action"), {"Digits": "5"}))  # 5 a day above usual: grade 2
    assert twiml.said.startswith(t.render("voice_pause_until_call", "fr", hospital_phone="04 78 00 00 00"))
    assert [(a.severity, a.reason_code) for a in _alerts(voice_fixture)] == [("orange",
                                                                            "diarrhoea_grade_2_interrupt")]


# --- one page per check-in ------------------------------------------------------------------------------------

def test_two_red_answers_in_one_checkin_give_one_alert_group_and_one_page(world, clock):
    patient = world.patient
    add_shift(world.site, professional_id=world.oncologist.id, starts_at=clock.now - timedelta(hours=1),
              ends_at=clock.now + timedelta(hours=8))
    _db.session.commit()
    start_one(patient)
    sms(patient, "0")
    sms(patient, "39,5")  # red: fever
    sms(patient, "oui")  # red: bleeding
    _db.session.commit()
    first, second = _alerts(patient)
    assert first.severity == second.severity == "red" and first.group_id == second.group_id
    assert second.paged_with_id == first.id and _pages(patient) == 1
    # Nobody acknowledges: escalation pages the next level once, for the group, not twice.
    from app.triage.tasks import escalate_alerts

    clock.advance(minutes=31)
    escalate_alerts()
    assert _pages(patient) == 2
    # Acknowledging the paged alert acknowledges the one that rode on its page.
    from app.triage.services import acknowledge

    acknowledge(first, actor=world.nurse)
    _db.session.commit()
    _db.session.refresh(second)
    assert second.status == AlertStatus.ACKNOWLEDGED


# --- shared phones ------------------------------------------------------------------------------------------------

def _couple(db):
    site = f.create_site()
    marie = f.create_patient(site, phone="+33698765400", first_name="Marie")
    jean = f.create_patient(site, phone="+33698765400", first_name="Jean", drug_inn="imatinib")
    db.session.commit()
    return marie, jean


def test_two_patients_on_one_phone_are_both_asked_in_one_week_each_text_naming_its_patient(db, clock):
    marie, jean = _couple(db)
    first = start_one(marie)
    assert start_due_checkins()["deferred"] == 1
    assert outbox_for(first)[0].body.count("Pour Marie :") == 1
    for _ in first.item_codes:
        replies = sms(marie, "0")
        assert all(r.startswith("Pour Marie") or r.startswith("Merci") for r in replies), replies
    db.session.commit()
    assert start_due_checkins()["sms"] == 1
    (second,) = checkins_of(jean)
    assert second.status == CheckInStatus.SENT and "Pour Jean :" in outbox_for(second)[0].body
    assert sms(jean, "0")[0].startswith("Pour Jean : Q2/")
    assert not [c for c in checkins_of(marie) + checkins_of(jean) if c.status == CheckInStatus.CANCELLED]


def test_a_stalled_conversation_on_a_shared_phone_gives_way_the_next_day(db, clock):
    marie, jean = _couple(db)
    first = start_one(marie)
    sms(marie, "0")
    db.session.commit()
    clock.advance(hours=1)
    assert start_due_checkins()["deferred"] == 1  # Marie is answering: Jean waits his turn
    clock.advance(hours=23, minutes=5)  # Marie silent for a day: Jean is asked, Marie's nurse calls her
    start_due_checkins()
    db.session.refresh(first)
    assert first.status == CheckInStatus.PARTIAL
    assert [(t_.kind, t_.checkin_id) for t_ in _tasks(marie)] == [("call_patient", first.id)]
    (second,) = checkins_of(jean)
    assert second.status == CheckInStatus.SENT


def test_a_checkin_that_could_not_be_sent_becomes_a_nurse_task_never_a_silent_cancel(db, clock):
    patient = f.create_patient(f.create_site())
    db.session.commit()
    checkin = CheckIn(patient_id=patient.id, period_key="2027-W09", sequence="S2",
                      scheduled_at=clock.now - timedelta(days=8), closes_at=clock.now - timedelta(hours=1),
                      channel="sms", status="scheduled")
    db.session.add(checkin)
    db.session.flush()
    assert start_checkin(checkin, clock.now) == "cancelled"
    db.session.commit()
    assert checkin.cancel_reason == "not_sent_in_time"
    assert [(t_.kind, t_.reason_code) for t_ in _tasks(patient)] == [("call_patient", "checkin_not_sent_in_time")]


def test_enrolment_warns_when_the_phone_is_another_patients(circuit, login, csrf_of, db):
    client = login(circuit.nurse)
    page = client.get("/patients/new").get_data(as_text=True)
    form = {"csrf_token": csrf_of(page), "mrn": "NEW-1", "last_name": "Nouveau", "first_name": "Paul",
            "birth_date": "1950-01-01", "phone": circuit.patient.phone, "language": "fr", "channel": "sms",
            "checkin_weekday": "0", "checkin_hour": "10", "timezone": "Europe/Paris", "consent_given": "y",
            "consent_date": "2026-01-02", "pathway": "A", "sequence": "S1", "lead_team": "hospital",
            "drug_id": str(f.drug("imatinib").id), "dose": "400 mg", "start_date": "2026-01-02",
            "prescriber_id": str(circuit.oncologist.id)}
    response = client.post("/patients/new", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "shared_phone_confirmed" in html
    assert circuit.patient.last_name not in html and circuit.patient.mrn not in html  # the other is not named
    form["shared_phone_confirmed"] = "y"
    assert client.post("/patients/new", data=form).status_code == 302


# --- the webhook's own safety reply -------------------------------------------------------------------------------

def test_with_the_scheduler_stopped_a_red_text_gets_its_safety_reply_in_the_webhook_answer(
        app, twilio_app, fake, db, circuit, live_server, monkeypatch):
    """Across real HTTP: the webhook answers the safety reply in its TwiML while no scheduler runs;
    once the scheduler is back the alert is raised, the on-call phone is paged, and the safety reply
    is recorded, not sent a second time."""
    from app.core.time import utcnow
    from app.jobs.scheduler import start_in_background
    from tests.jobs_for_tests import clear_scheduler_state
    from tests.test_jobs_scheduler import wait_for

    now = utcnow()
    add_shift(circuit.site, professional_id=circuit.oncologist.id, starts_at=now - timedelta(hours=1),
              ends_at=now + timedelta(hours=12))
    db.session.commit()
    patient_phone, oncologist_phone, patient_id = circuit.patient.phone, circuit.oncologist.phone, circuit.patient.id
    params = {"From": patient_phone, "To": SENDER, "Body": "jai du sang ds les urines depuis ce matin",
              "MessageSid": "SM" + "c" * 32, "AccountSid": SID}
    response = requests.post(live_server.url + "/webhooks/twilio/sms", data=params, timeout=10,
                             headers={"X-Twilio-Signature": fake.sign(PUBLIC + "/webhooks/twilio/sms", params)})
    assert response.status_code == 200
    said = [m.text for m in ET.fromstring(response.text).findall("Message")]
    safety = t.render("safety", "fr", hospital_phone=circuit.patient.site.hospital_phone)
    assert said == [safety]
    db.session.rollback()
    assert db.session.scalar(select(Alert.id).where(Alert.patient_id == patient_id)) is None  # nobody read it yet

    monkeypatch.setitem(app.config, "SCHEDULER_LEASE_SECONDS", 4.0)
    monkeypatch.setitem(app.config, "SCHEDULER_RETRY_SECONDS", 1.0)
    monkeypatch.setitem(app.config, "JOBS_MODULE", "tests.jobs_for_tests:INBOUND_JOBS")
    clear_scheduler_state()
    service = start_in_background(app)
    try:
        wait_for(lambda: fake.messages_to(oncologist_phone), 30, what="the page")
    finally:
        service.shutdown(timeout=15)
    db.session.rollback()
    assert [a.severity for a in db.session.scalars(select(Alert).where(Alert.patient_id == patient_id))] == ["red"]
    assert fake.messages_to(patient_phone) == []  # the safety reply went in the TwiML, once
    recorded = db.session.scalars(select(Message).where(Message.to_number == patient_phone,
                                                        Message.direction == "out")).all()
    assert [(m.body, m.status) for m in recorded] == [(safety, "replied_in_webhook")]
