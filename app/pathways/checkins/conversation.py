"""The SMS conversation: keywords, then the text handed to triage, as an answer or as a message.

Registered with the transport (``register_sms_handler``); called when the ``process-inbound``
job reads a stored text, it returns the reply texts, sent after the commit. Also registered as the
webhook's screen (``screen_inbound_sms``): an emergency read in the text is answered at once in the
webhook's TwiML, and the reading here records that reply instead of sending it again.

Every text is read by triage's emergency scan before anything else, inside or outside a
check-in, from opted-out patients too. One conversation per phone number: a text answers the
question that was put to that phone last before the text arrived (a text that arrived before the
current question answers an earlier one, never this one), or the question it names ("Q2 oui").

Red flag: the safety reply goes first, as its own message, then the next question as a second
message. Chosen because the instruction to call reaches the patient at once and stands alone,
while the on-call team is already paged and the remaining answers (another red flag, say)
still reach them; a patient who stops there leaves a partial check-in with the alert open.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from app.care.models import Patient, Site
from app.core import audit
from app.core.db import sqlite_deferred_transactions
from app.core.time import utcnow
from app.extensions import db
from app.notifications import spool
from app.notifications.inbound import Reply, message_facts, tag_message
from app.triage import assessment as triage
from app.triage import emergency
from app.triage.parsing import FILLER, normalise, strip_label, tokens

from . import templates as t
from .engine import REASK, Step, take_answer, take_late_answer
from .models import LATE_STATUSES, OPEN_STATUSES, AnswerSource, CheckIn, CheckInStatus

log = logging.getLogger("oncolink.checkins")

STOP_WORDS = frozenset({"STOP", "STOPALL", "ARRET", "ARRETER", "UNSUBSCRIBE", "STOP SVP", "ARRET SVP"})
START_WORDS = frozenset({"START", "UNSTOP", "REPRENDRE"})
HELP_WORDS = frozenset({"HELP", "AIDE", "INFO"})


# Words that may follow STOP without changing what it asks ("STOP svp", "arrêtez les messages").
STOP_TAIL = frozenset({"SVP", "STP", "PLEASE", "PLS", "PLZ", "MERCI", "THANKS", "THANK", "YOU", "LES", "DES", "CES",
                       "MESSAGES", "MESSAGE", "SMS", "TEXTO", "TEXTOS", "TEXTS", "TEXT", "TEXTING", "NO", "MORE",
                       "PLUS", "DE", "ME", "MOI", "MAINTENANT", "NOW", "ALL", "TOUT", "ENVOYER", "SENDING"})
STOP_LEADS = frozenset({"STOP", "STOPALL", "ARRET", "ARRETER", "ARRETEZ", "STOPPEZ", "UNSUBSCRIBE", "NO", "PLUS"})


def keyword(body: str) -> str | None:
    """"STOP", "START" or "HELP" when the whole text is one of their keywords (any case, accents);
    STOP also with words that only repeat it ("STOP svp", "arrêtez les messages", "no more texts"),
    never inside a sentence ("I can't stop bleeding")."""
    word = " ".join(normalise(body).strip(" .!").upper().split())
    if word in STOP_WORDS:
        return "STOP"
    words = normalise(body).upper().replace("'", " ").split()
    words = [w.strip(".,!?;:") for w in words if w.strip(".,!?;:")]
    if words and words[0] in STOP_LEADS and len(words) > 1 and all(w in STOP_TAIL for w in words[1:]) and (
            words[0] not in ("NO", "PLUS") or any(w in ("MESSAGES", "SMS", "TEXTS", "TEXTOS") for w in words)):
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def patients_for(phone: str) -> list[Patient]:
    return list(db.session.scalars(
        select(Patient).options(joinedload(Patient.site))  # the replies name the site's hospital line
        .where(Patient.phone == (phone or "").strip()).order_by(Patient.id)
    ))


def open_checkin(patient_ids: list[int], now: datetime, *, lock: bool = True) -> CheckIn | None:
    """The conversation of a phone number: its most recently started open check-in, or a closed
    one still within the next period (late answers count)."""
    found = conversation_for(patient_ids, now, now, lock=lock)
    return found[0] if found else None


def conversation_for(patient_ids: list[int], arrival: datetime, now: datetime, *,
                     lock: bool = True) -> tuple[CheckIn, int, bool] | None:
    """(check-in, question index, late) that a text which reached us at ``arrival`` answers.

    The question put to the phone last before the text arrived: the current question of the most
    recently started check-in, or, when the text came before that question was asked, the one
    before it (a late answer); a text older than a check-in's first question belongs to the
    check-in before (a late answer to last week's questions), or to none."""
    stmt = (select(CheckIn)
            .where(CheckIn.patient_id.in_(patient_ids), CheckIn.started_at.is_not(None),
                   CheckIn.status.in_([*OPEN_STATUSES, *LATE_STATUSES]))
            .order_by(CheckIn.started_at.desc(), CheckIn.id.desc())
            .limit(5))
    if lock:
        stmt = stmt.with_for_update()
    for checkin in db.session.scalars(stmt):
        if checkin.status not in OPEN_STATUSES and not now < checkin.closes_at + (
                checkin.closes_at - checkin.scheduled_at):
            return None  # the latest conversation is over; older ones are older still
        asked = checkin.asked_at or checkin.started_at
        if arrival >= asked:
            return checkin, checkin.current_index, False
        if checkin.current_index > 0:
            return checkin, checkin.current_index - 1, True
        # the text came before this check-in's first question: it answers an older one
    return None


def _context(patient: Patient, checkin_id: int | None = None) -> triage.Context:
    return triage.Context(patient_id=patient.id, site_id=patient.site_id, checkin_id=checkin_id)


def opt_out(patients: list[Patient], now: datetime, *, during: CheckIn | None = None, body: str = "") -> None:
    """STOP/ARRET opt out at once (the law). The team is told with an orange alert and a call
    task: the patient may have meant "I stopped my treatment" (above all during a check-in), and
    nobody asks them anything by text any more."""
    for patient in patients:
        if patient.opted_out_at is None:
            patient.opted_out_at = now
            audit.record("patient_opt_out", patient_id=patient.id, obj=patient, detail={"via": "sms"})
            in_checkin = during is not None and during.patient_id == patient.id
            triage.keyword_alert(_context(patient, during.id if in_checkin else None),
                                 reason="stopped_during_checkin" if in_checkin else "patient_opted_out", raw=body)
        open_rows = db.session.scalars(select(CheckIn).where(
            CheckIn.patient_id == patient.id,
            CheckIn.status.in_([CheckInStatus.SCHEDULED, *OPEN_STATUSES]),
        ))
        for checkin in open_rows:
            checkin.status, checkin.cancel_reason, checkin.closed_at = CheckInStatus.CANCELLED, "opt_out", now
            audit.record("checkin_cancelled", patient_id=patient.id, obj=checkin, detail={"reason": "opt_out"})


def opt_in(patients: list[Patient]) -> None:
    for patient in patients:
        if patient.opted_out_at is not None:
            patient.opted_out_at = None
            audit.record("patient_opt_in", patient_id=patient.id, obj=patient, detail={"via": "sms"})


def shared_name(checkin: CheckIn, patients: list[Patient]) -> str | None:
    """The patient's first name when the phone is shared, so that each text says whom it is for."""
    return checkin.patient.first_name if len(patients) > 1 else None


def prefix_for(checkin: CheckIn, language: str, name: str | None) -> str:
    """"Pour Marie : Q3/8": whom (shared phone) and which question of the check-in."""
    total = len(checkin.item_codes or [])
    number = checkin.current_index + 1 if checkin.current_index < total else None
    return t.label(language, number=number, total=total, name=name)


def _safety(key: str | None, language: str, hospital_phone: str) -> list[Reply]:
    return [Reply(t.render(key, language, hospital_phone=hospital_phone), urgent=True)] if key else []


def replies_for(step: Step, language: str, hospital_phone: str, *, prefix: str = "",
                already_replied: bool = False) -> list[str]:
    replies: list[str] = [] if already_replied else _safety(step.safety, language, hospital_phone)
    if step.outcome == REASK:
        if step.repeat:
            return replies + [t.question_sms(step.item, language, prefix)]
        return replies + [t.reask_sms(step.item, language, prefix)]
    replies += [t.render(key, language, hospital_phone=hospital_phone) for key in step.instructions
                if key in t.TEMPLATES]
    if step.next_item is not None:
        replies.append(t.question_sms(step.next_item, language, prefix))
    else:
        replies.append(t.render("thanks", language, hospital_phone=hospital_phone))
    return replies


def _meaningful(body: str) -> bool:
    return bool([w for w in tokens(body) if w not in FILLER])


def _message_outside(patient: Patient, body: str, *, reply: bool, already_replied: bool) -> list[str]:
    """A text with no check-in to answer: triage reads it (red pages, concerns go to a nurse, the
    rest is kept as information); the patient is told what to do in an emergency."""
    if not _meaningful(body) and not emergency.scan(body).hits:
        return []
    result = triage.assess_message(body, _context(patient))
    language, line = patient.language, patient.site.hospital_phone
    if result.safety_reply:
        return [] if already_replied else _safety(result.safety_reply, language, line)
    if not reply:
        return []  # opted out: no text back but a safety reply
    return [t.render("received", language, hospital_phone=line)]


def handle_inbound_sms(from_number: str, to_number: str, body: str, message_id: int) -> list[str]:
    """The transport's inbound hook: returns the reply texts (each within 2 segments)."""
    now = utcnow()
    body = body or ""
    arrival, webhook_reply = message_facts(message_id) if message_id is not None else (None, None)
    arrival = arrival or now
    patients = patients_for(from_number)
    if not patients:
        log.info("inbound SMS from an unknown number")
        return [] if webhook_reply else [t.UNKNOWN_NUMBER_REPLY]
    word = keyword(body)
    first = patients[0]
    if word == "STOP":
        found = conversation_for([p.id for p in patients], arrival, now)
        opt_out(patients, now, during=found[0] if found and not found[2] else None, body=body)
        return [t.render("stop", first.language, hospital_phone=first.site.hospital_phone)]
    if word == "START":
        opt_in(patients)
        return [t.render("start", first.language)]
    if word == "HELP":
        return [t.render("help", first.language, hospital_phone=first.site.hospital_phone)]
    active = [p for p in patients if p.opted_out_at is None]
    found = conversation_for([p.id for p in active], arrival, now) if active else None
    if found is None:
        return _message_outside(active[0] if active else first, body, reply=bool(active),
                                already_replied=bool(webhook_reply))
    checkin, index, late = found
    patient = checkin.patient
    _tag(message_id, checkin)
    label, text = strip_label(body)
    total = len(checkin.item_codes or [])
    if label is not None and 1 <= label <= total and label - 1 < checkin.current_index:
        index, late = label - 1, True  # "Q2 oui": the patient names an earlier question
    language, line = patient.language, patient.site.hospital_phone
    if late:
        step = take_late_answer(checkin, index, text if label else body, source=AnswerSource.SMS, now=now)
        log.info("check-in %s: late answer to item %s (%s)", checkin.id, index, step.outcome)
        replies = [] if webhook_reply else _safety(step.safety, language, line)
        return replies + [t.render(key, language, hospital_phone=line) for key in step.instructions
                          if key in t.TEMPLATES]
    step = take_answer(checkin, text if label == checkin.current_index + 1 else body, source=AnswerSource.SMS,
                       now=now)
    if step is None:  # nothing left to ask (should not happen: completed check-ins are not open)
        return _message_outside(patient, body, reply=True, already_replied=bool(webhook_reply))
    log.info("check-in %s: answer %s", checkin.id, step.outcome)
    prefix = prefix_for(checkin, language, shared_name(checkin, patients))
    return replies_for(step, language, line, prefix=prefix, already_replied=bool(webhook_reply))


def screen_inbound_sms(from_number: str, body: str) -> str | None:
    """The webhook's screen: the safety reply for a text that reads as an emergency, else None.

    The scan needs no database; the patient's language and care team line are looked up when the
    database answers, else the reply is the bilingual one with the emergency numbers only."""
    scan = emergency.scan(body or "")
    if not scan.red:
        return None
    key = scan.reply_key() or "safety"
    if spool.database_suspect():  # the database just failed here: no lookup that could hang
        return t.render("safety_generic", "fr")
    try:
        with sqlite_deferred_transactions():  # a read: never SQLite's write lock, which the store needs next
            found = db.session.execute(
                select(Patient.language, Site.hospital_phone).join(Site, Site.id == Patient.site_id)
                .where(Patient.phone == (from_number or "").strip()).order_by(Patient.id).limit(1)).first()
    except SQLAlchemyError:
        found = None
    finally:
        db.session.rollback()
    if found is None:
        return t.render("safety_generic", "fr")
    return t.render(key, found.language, hospital_phone=found.hospital_phone)


def _tag(message_id: int, checkin: CheckIn) -> None:
    """Label the stored inbound message (and so its replies) with the check-in it answers."""
    try:
        tag_message(message_id, ref=f"checkin:{checkin.id}", patient_id=checkin.patient_id)
    except LookupError:  # called without a stored message (a direct call)
        pass
