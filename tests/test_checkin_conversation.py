"""The SMS conversation through the transport's inbound path (``receive_sms``)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.audit import AuditEvent
from app.extensions import db as _db
from app.notifications.models import Message
from app.pathways.checkins import templates as t
from app.pathways.checkins.chase import chase_non_responders
from app.pathways.checkins.models import CheckInStatus
from app.pathways.checkins.start import start_due_checkins
from app.triage.models import Alert, NurseTask
from tests import factories as f
from tests.test_checkin_support import (  # noqa: F401
    answers_of,
    checkins_of,
    clock,
    outbox_for,
    sms,
    start_one,
    world,
)

HOSPITAL = "+33478000000"  # the factories' site line


def _alerts(patient, **where):
    query = select(Alert).where(Alert.patient_id == patient.id)
    for key, value in where.items():
        query = query.where(getattr(Alert, key) == value)
    return list(_db.session.scalars(query))


CAPECITABINE_ON = ["doses_missed", "temperature", "bleeding", "breathlessness", "vomiting", "diarrhoea", "nausea",
                   "mouth_sores", "hand_foot", "fatigue", "wants_call"]


def asked(code, number, total=len(CAPECITABINE_ON), lang="fr", name=None):
    """The text that asks question ``code``, numbered as the conversation numbers it."""
    return t.question_sms(_item(code), lang, t.label(lang, number=number, total=total, name=name))


def test_full_conversation_with_a_red_flag_at_the_answer(world):
    patient = world.patient
    checkin = start_one(patient)
    assert checkin.item_codes == CAPECITABINE_ON  # the universal red flags, then the drug's symptoms
    (first,) = outbox_for(checkin)
    assert first.body.startswith("Bonjour") and "combien de prises" in first.body and "Q1/11" in first.body
    assert "15" in first.body  # what to do in an emergency, in the first text
    assert first.to_number == patient.phone and first.purpose == "checkin"

    assert sms(patient, "0") == [asked("temperature", 2)]
    replies = sms(patient, "39")
    # The safety reply at once, first and on its own, then the next question.
    assert replies[0] == t.render("safety", "fr", hospital_phone=HOSPITAL)
    assert HOSPITAL in replies[0] and "15" in replies[0]
    assert replies[1] == asked("bleeding", 3)
    (alert,) = _alerts(patient)
    assert (alert.severity, alert.source, alert.reason_code, alert.checkin_id) == \
        ("red", "checkin", "fever", checkin.id)  # the grading rule's reason
    assert alert.detail["value"] == 39.0 and alert.detail["raw_text"] == "39"
    _db.session.commit()

    for body in ("non", "non", "non", "1", "non"):  # bleeding, breathing, vomiting, stools, nausea
        assert len(sms(patient, body)) == 1
    assert sms(patient, "zéro") == [asked("hand_foot", 9)]
    # Capecitabine hand-foot grade 2: the grading rule tells the patient to pause until the nurse calls.
    pause, next_question = sms(patient, "deux")
    assert pause == t.render("pause_until_call", "fr", hospital_phone=HOSPITAL)
    assert next_question == asked("fatigue", 10)
    assert len(sms(patient, "1")) == 1
    assert sms(patient, "0") == [t.render("thanks", "fr", hospital_phone=HOSPITAL)]
    _db.session.commit()
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.COMPLETED and checkin.completed_at is not None
    answers = answers_of(checkin)
    assert {code: a.value for code, a in answers.items()} == {
        "doses_missed": 0, "temperature": 39.0, "bleeding": False, "breathlessness": False, "vomiting": False,
        "diarrhoea": 1, "nausea": 0, "mouth_sores": 0, "hand_foot": 2, "fatigue": 1, "wants_call": 0,
    }
    assert all(a.parsed and a.source == "sms" for a in answers.values())
    assert [code for code, a in answers.items() if a.red_flag] == ["temperature"]
    assert answers["hand_foot"].grade == 2
    assert sorted((a.severity, a.reason_code) for a in _alerts(patient)) == [
        ("orange", "hand_foot_grade_2_interrupt"), ("red", "fever"),
        ("yellow", "diarrhoea_grade_1"), ("yellow", "fatigue_grade_1")]  # grade 1: review at next contact
    # The inbound messages are tagged with the check-in; no handler failed.
    inbound = _db.session.scalars(select(Message).where(Message.direction == "in")).all()
    assert {m.status for m in inbound} == {"received"}


def _item(code):
    from app.pathways.checkins.models import QuestionnaireItem

    return _db.session.scalar(select(QuestionnaireItem).where(QuestionnaireItem.code == code))


def test_red_flag_alert_is_in_the_same_transaction_as_the_answer(world):
    patient = world.patient
    checkin = start_one(patient)
    sms(patient, "0")
    _db.session.commit()
    sms(patient, "39,2")  # flushed, not committed: as inside the webhook
    assert _alerts(patient, severity="red")
    assert answers_of(checkin)["temperature"].value == 39.2
    _db.session.rollback()  # the webhook fails before its commit: neither survives
    assert _alerts(patient) == []
    assert "temperature" not in answers_of(checkin)


def test_unclear_answer_is_asked_again_then_a_nurse_is_asked_to_call(world):
    patient = world.patient
    checkin = start_one(patient)
    reply = sms(patient, "je ne sais plus trop")
    assert reply == [t.reask_sms(_item("doses_missed"), "fr", "Q1/11")]
    assert "Exemple : 0" in reply[0] and "Urgence : 15" in reply[0]
    assert _alerts(patient) == []  # a first unclear answer is only asked again
    reply = sms(patient, "je ne me souviens plus du tout")
    assert reply == [asked("temperature", 2)]
    answer = answers_of(checkin)["doses_missed"]
    assert not answer.parsed and answer.value is None
    assert answer.raw_text == "je ne sais plus trop\nje ne me souviens plus du tout"  # free text kept
    # Never a silent "not understood": an orange alert with the texts, and a call task.
    (alert,) = _alerts(patient)
    assert (alert.severity, alert.reason_code, alert.checkin_id) == ("orange", "answer_not_understood", checkin.id)
    assert alert.detail["texts"][0]["text"] == "je ne me souviens plus du tout"
    (task,) = _db.session.scalars(select(NurseTask).where(NurseTask.patient_id == patient.id)).all()
    assert task.kind == "call_patient" and task.reason_code == "answer_not_understood"
    # A clear answer after one re-ask counts normally, and both texts are kept.
    assert sms(patient, "je sais pas") == [t.reask_sms(_item("temperature"), "fr", "Q2/11")]
    assert sms(patient, "38,5 ?") == [t.render("safety", "fr", hospital_phone=HOSPITAL), asked("bleeding", 3)]
    answer = answers_of(checkin)["temperature"]
    assert (answer.value, answer.parsed, answer.raw_text) == (38.5, True, "je sais pas\n38,5 ?")
    _db.session.refresh(checkin)
    assert checkin.reask_count == 0 and checkin.current_code == "bleeding"


@pytest.mark.parametrize("word", ["STOP", " stop ", "Stop", "ARRET", "ARRÊT", "arrêt", "Arret."])
def test_stop_opts_out_at_once(world, word):
    patient = world.patient
    checkin = start_one(patient)
    assert sms(patient, word) == [t.render("stop", "fr", hospital_phone=HOSPITAL)]
    _db.session.refresh(patient)
    _db.session.refresh(checkin)
    assert patient.opted_out_at is not None
    assert checkin.status == CheckInStatus.CANCELLED and checkin.cancel_reason == "opt_out"
    assert _db.session.scalar(select(AuditEvent).where(AuditEvent.patient_id == patient.id,
                                                       AuditEvent.action == "patient_opt_out"))
    # During a check-in, STOP may mean "I stopped my treatment", and nobody asks them any more:
    # an orange alert with a call task (issue 10).
    (alert,) = _alerts(patient, reason_code="stopped_during_checkin")
    assert alert.severity == "orange" and alert.checkin_id == checkin.id
    assert _db.session.scalar(select(NurseTask).where(NurseTask.patient_id == patient.id,
                                                     NurseTask.kind == "call_patient"))
    # Nothing is sent back to an opted-out patient's other texts, but a safety reply.
    assert sms(patient, "j'ai mal") == []
    assert sms(patient, "je saigne du nez depuis une heure") == [t.render("safety", "fr", hospital_phone=HOSPITAL)]
    assert _alerts(patient, severity="red")


def test_stop_outside_a_checkin_is_an_orange_call_too(world):
    patient = world.patient
    assert sms(patient, "STOP") == [t.render("stop", "fr", hospital_phone=HOSPITAL)]
    (alert,) = _alerts(patient)
    assert (alert.severity, alert.reason_code) == ("orange", "patient_opted_out")


def test_start_resumes_and_help_gives_the_hospital_line(world):
    patient = world.patient
    sms(patient, "STOP")
    assert sms(patient, "start") == [t.render("start", "fr")]
    _db.session.refresh(patient)
    assert patient.opted_out_at is None
    for word in ("HELP", "aide", " Aide "):
        (reply,) = sms(patient, word)
        assert HOSPITAL in reply and "STOP" in reply


def test_english_patient_gets_english_texts(world):
    patient = world.patient
    patient.language = "en"
    _db.session.commit()
    start_one(patient)
    assert sms(patient, "none") == [asked("temperature", 2, lang="en")]
    assert sms(patient, "HELP")[0].startswith("Follow-up messages")


def test_unknown_number_gets_a_neutral_reply(world):
    (reply,) = sms("+33611223344", "oui")
    assert reply == t.UNKNOWN_NUMBER_REPLY
    for secret in ("Lyon", HOSPITAL, "suivi", "follow-up", "patient"):
        assert secret.lower() not in reply.lower()


def test_message_outside_a_checkin_reaches_the_nurse(world):
    patient = world.patient
    assert sms(patient, "merci !") == []  # a bare thank-you is no work for anyone
    (reply,) = sms(patient, "j'ai vomi deux fois ce matin")
    assert reply == t.render("received", "fr", hospital_phone=HOSPITAL)
    (alert,) = _alerts(patient)  # a symptom in words: a nurse reads it within a working day
    assert alert.severity == "orange" and alert.detail["texts"][0]["text"] == "j'ai vomi deux fois ce matin"
    assert sms(patient, "quand est mon prochain rendez-vous ?") == [t.render("received", "fr", hospital_phone=HOSPITAL)]
    assert _alerts(patient, severity="info")  # kept for the nurse, no alarm


def test_late_answer_after_the_period_closed_still_counts(world, clock):
    patient = world.patient
    checkin = start_one(patient)
    clock.advance(days=7)
    chase_non_responders()
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.NO_RESPONSE
    clock.advance(hours=2)  # within the next period; the next check-in is not started yet
    sms(patient, "1")
    _db.session.commit()
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.IN_PROGRESS
    assert answers_of(checkin)["doses_missed"].value == 1
    clock.advance(days=7)  # beyond the next period: over
    chase_non_responders()
    _db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.PARTIAL


def test_one_conversation_per_phone_number(db, clock):
    site = f.create_site()
    first = f.create_patient(site, phone="+33698765432")
    second = f.create_patient(site, phone="+33698765432", drug_inn="imatinib")  # a shared phone
    db.session.commit()
    checkin = start_one(first)
    assert start_due_checkins()["deferred"] == 1
    waiting = checkins_of(second)[0]
    assert waiting.status == CheckInStatus.SCHEDULED
    for _ in checkin.item_codes:
        sms(first, "0")
    db.session.commit()
    db.session.refresh(checkin)
    assert checkin.status == CheckInStatus.COMPLETED
    assert start_due_checkins()["sms"] == 1
    db.session.refresh(waiting)
    assert waiting.status == CheckInStatus.SENT
    sms(second, "1")
    assert answers_of(waiting)["doses_missed"].value == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=400))
def test_any_text_gets_an_answer_within_two_segments(world, body):
    from app.notifications.segments import fits

    patient = world.patient
    if not checkins_of(patient):
        start_one(patient)
    replies = sms(patient, body)
    assert replies and all(fits(reply, 2) for reply in replies)
    inbound = _db.session.scalars(select(Message).where(Message.direction == "in")).all()
    assert all(m.status != "handler_error" for m in inbound)
    _db.session.rollback()
