"""The SMS conversation: keywords, then the answer to the current question of the open check-in.

Registered with the transport (``register_sms_handler``); called inside the inbound webhook's
transaction, it returns the reply texts, sent after the commit. One conversation per phone
number: the most recently started open check-in of the patients with that number.

Red flag: the safety reply goes first, as its own message, then the next question as a second
message. Chosen because the instruction to call reaches the patient at once and stands alone,
while the on-call team is already paged and the remaining answers (another red flag, say)
still reach them; a patient who stops there leaves a partial check-in with the alert open.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.care.models import Patient
from app.core import audit
from app.core.time import utcnow
from app.extensions import db
from app.notifications.inbound import tag_message
from app.triage import services as triage

from . import templates as t
from .engine import OK, REASK, Step, take_answer
from .models import LATE_STATUSES, OPEN_STATUSES, AnswerSource, CheckIn, CheckInStatus
from .parsing import FILLER, normalise, tokens

log = logging.getLogger("oncolink.checkins")

STOP_WORDS = frozenset({"STOP", "STOPALL", "ARRET", "ARRETER", "UNSUBSCRIBE"})
START_WORDS = frozenset({"START", "UNSTOP", "REPRENDRE"})
HELP_WORDS = frozenset({"HELP", "AIDE", "INFO"})


def keyword(body: str) -> str | None:
    """"STOP", "START" or "HELP" when the whole text is one of their keywords (any case, accents)."""
    word = normalise(body).strip(" .!").upper()
    if word in STOP_WORDS:
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
    stmt = (select(CheckIn)
            .where(CheckIn.patient_id.in_(patient_ids), CheckIn.started_at.is_not(None),
                   CheckIn.status.in_([*OPEN_STATUSES, *LATE_STATUSES]))
            .order_by(CheckIn.started_at.desc(), CheckIn.id.desc())
            .limit(5))
    if lock:
        stmt = stmt.with_for_update()
    for checkin in db.session.scalars(stmt):
        if checkin.status in OPEN_STATUSES:
            return checkin
        if now < checkin.closes_at + (checkin.closes_at - checkin.scheduled_at):
            return checkin
        return None  # the latest conversation is over; older ones are older still
    return None


def opt_out(patients: list[Patient], now: datetime) -> None:
    for patient in patients:
        if patient.opted_out_at is None:
            patient.opted_out_at = now
            audit.record("patient_opt_out", patient_id=patient.id, obj=patient, detail={"via": "sms"})
            triage.raise_alert(patient_id=patient.id, severity="info", source="checkin",
                               reason_code="patient_opted_out",
                               summary="The patient replied STOP: no more follow-up messages")
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


def replies_for(step: Step, language: str, hospital_phone: str) -> list[str]:
    if step.outcome == REASK:
        return [t.reask_sms(step.item, language)]
    replies = []
    if step.outcome == OK and step.red_flag:
        replies.append(t.render("safety", language, hospital_phone=hospital_phone))
    elif step.outcome == OK and step.instruction:
        replies.append(t.render(step.instruction, language, hospital_phone=hospital_phone))
    if step.next_item is not None:
        replies.append(t.question_sms(step.next_item, language))
    else:
        replies.append(t.render("thanks", language, hospital_phone=hospital_phone))
    return replies


def _message_outside(patient: Patient, body: str, *, reply: bool) -> list[str]:
    """A message with no open check-in: kept for the nurse (not just "thanks")."""
    if not [w for w in tokens(body) if w not in FILLER]:
        return []
    triage.raise_alert(patient_id=patient.id, severity="info", source="checkin", reason_code="patient_message",
                       summary="Message from the patient outside a check-in", detail={"text": body[:1000]})
    if not reply:
        return []
    return [t.render("received", patient.language, hospital_phone=patient.site.hospital_phone)]


def handle_inbound_sms(from_number: str, to_number: str, body: str, message_id: str) -> list[str]:
    """The transport's inbound hook: returns the reply texts (each within 2 segments)."""
    now = utcnow()
    body = body or ""
    patients = patients_for(from_number)
    if not patients:
        log.info("inbound SMS from an unknown number")
        return [t.UNKNOWN_NUMBER_REPLY]
    word = keyword(body)
    first = patients[0]
    if word == "STOP":
        opt_out(patients, now)
        return [t.render("stop", first.language, hospital_phone=first.site.hospital_phone)]
    if word == "START":
        opt_in(patients)
        return [t.render("start", first.language)]
    if word == "HELP":
        return [t.render("help", first.language, hospital_phone=first.site.hospital_phone)]
    active = [p for p in patients if p.opted_out_at is None]
    if not active:
        return _message_outside(first, body, reply=False)  # opted out: no text back
    checkin = open_checkin([p.id for p in active], now)
    if checkin is None:
        return _message_outside(active[0], body, reply=True)
    patient = checkin.patient
    _tag(message_id, checkin)
    step = take_answer(checkin, body, source=AnswerSource.SMS, now=now)
    if step is None:  # nothing left to ask (should not happen: completed check-ins are not open)
        return _message_outside(patient, body, reply=True)
    log.info("check-in %s: answer %s", checkin.id, step.outcome)
    return replies_for(step, patient.language, patient.site.hospital_phone)


def _tag(message_id: int, checkin: CheckIn) -> None:
    """Label the stored inbound message (and so its replies) with the check-in it answers."""
    try:
        tag_message(message_id, ref=f"checkin:{checkin.id}", patient_id=checkin.patient_id)
    except LookupError:  # called without a stored message (a direct call)
        pass
