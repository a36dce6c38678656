"""Starting due check-ins: choose the items for the day, then send the first question or place the call.

Items are fixed when the check-in starts, from the treatment on the patient's local date (cycle
day, interruptions). Nothing leaves here: the SMS or call is an outbox row written in the same
transaction as the check-in's new status, and the dispatcher sends it after the commit.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from app.care.models import Channel, Patient
from app.core import audit
from app.core.db import is_postgres
from app.core.time import utcnow
from app.extensions import db
from app.notifications.outbox import enqueue_call, enqueue_sms
from app.pathways.models import Enrolment
from app.triage import services as triage

from . import templates as t
from .closing import cancel, cannot_ask, close_checkin
from .models import OPEN_STATUSES, CheckIn, CheckInStatus, Phase
from .planning import eligible_patients, zone
from .questionnaire import active_items, current_treatment, items_by_code, select_items

log = logging.getLogger("oncolink.checkins")


def checkin_ref(checkin_id: int) -> str:
    return f"checkin:{checkin_id}"


def _eligible(patient_id: int) -> bool:
    return db.session.scalar(
        select(Patient.id).join(Enrolment, Enrolment.active_patient_id == Patient.id)
        .where(Patient.id == patient_id, eligible_patients())
    ) is not None


def phone_busy(patient: Patient, checkin_id: int) -> CheckIn | None:
    """Another check-in already talking with this phone number (one conversation per number)."""
    return db.session.scalar(
        select(CheckIn).join(Patient, Patient.id == CheckIn.patient_id)
        .where(Patient.phone == patient.phone, CheckIn.id != checkin_id,
               CheckIn.status.in_(OPEN_STATUSES))
        .order_by(CheckIn.started_at).limit(1)
    )


def sharers(patient: Patient) -> int:
    """How many patients have this phone number (two: a couple, a parent and a carer's phone)."""
    return db.session.scalar(select(func.count()).select_from(Patient).where(Patient.phone == patient.phone)) or 0


def _yield_shared_phone(other: CheckIn, now: datetime) -> bool:
    """On a shared phone, the conversation in progress gives way when it has been silent for
    ``CHECKIN_SHARED_PHONE_YIELD_HOURS``: it is closed as a missed or partial check-in with a call
    task for the nurses, so the next patient on that phone is asked the same week."""
    idle = now - (other.last_activity_at or other.started_at or now)
    if idle < timedelta(hours=current_app.config.get("CHECKIN_SHARED_PHONE_YIELD_HOURS", 24)):
        return False
    close_checkin(other, now)
    triage.create_task(patient_id=other.patient_id, kind="call_patient", reason_code="checkin_unanswered",
                       checkin_id=other.id)
    return True



def within_send_window(patient: Patient, now: datetime) -> bool:
    """Texts and calls start only from the patient's check-in hour to ``CHECKIN_SEND_WINDOW_HOURS``
    later, local time: a check-in started late (scheduler down, phone busy) or a reminder never
    reaches the patient in the middle of the night."""
    window = current_app.config.get("CHECKIN_SEND_WINDOW_HOURS", 12)
    local = now.astimezone(zone(patient.timezone))
    minutes_since = ((local.hour - patient.checkin_hour) % 24) * 60 + local.minute
    return minutes_since < window * 60


def place_call(checkin: CheckIn, patient: Patient, label: str) -> None:
    from .voice import voice_path

    enqueue_call(to=patient.phone, idempotency_key=f"{checkin_ref(checkin.id)}:{label}", purpose="checkin_call",
                 twiml_path=voice_path(checkin.id), patient_id=patient.id, ref=checkin_ref(checkin.id))
    checkin.call_attempts += 1
    checkin.next_call_at = None


def start_checkin(checkin: CheckIn, now: datetime, *, respect_window: bool = True) -> str:
    """Start one scheduled check-in: "sms", "voice", "waiting" (outside the patient's hours),
    "deferred" (the phone is in another conversation) or "cancelled". ``respect_window=False``
    is for the development phone simulator only."""
    patient = checkin.patient
    if not _eligible(patient.id):
        cancel(checkin, "not_eligible", now)
        return "cancelled"
    if now >= checkin.closes_at:
        cannot_ask(checkin, "not_sent_in_time", now)
        return "cancelled"
    if respect_window and not within_send_window(patient, now):
        return "waiting"
    other = phone_busy(patient, checkin.id)
    if other is not None and not _yield_shared_phone(other, now):
        return "deferred"  # asked once the other patient's questions are done
    local_day = now.astimezone(zone(patient.timezone)).date()
    treatment = current_treatment(patient.id, local_day)
    channel = patient.channel
    codes = select_items(active_items(), treatment, voice=channel == Channel.VOICE)
    if not codes:
        cannot_ask(checkin, "no_items", now)
        return "cancelled"
    checkin.item_codes, checkin.phase, checkin.channel = codes, treatment.phase, channel
    checkin.current_index, checkin.reask_count = 0, 0
    checkin.status, checkin.started_at, checkin.last_activity_at = CheckInStatus.SENT, now, now
    checkin.asked_at = now
    if channel == Channel.VOICE:
        place_call(checkin, patient, "call:1")
    else:
        first = items_by_code([codes[0]])[codes[0]]
        name = patient.first_name if sharers(patient) > 1 else None
        prefix = t.label(patient.language, number=1, total=len(codes), name=name)
        body = t.first_sms(first, patient.language, off_week=treatment.phase == Phase.OFF, prefix=prefix)
        enqueue_sms(to=patient.phone, body=body, idempotency_key=f"{checkin_ref(checkin.id)}:first",
                    purpose="checkin", patient_id=patient.id, ref=checkin_ref(checkin.id))
    audit.record("checkin_started", patient_id=patient.id, obj=checkin, detail={"channel": channel})
    return channel


def _batch(stmt, size: int) -> list[CheckIn]:
    stmt = stmt.options(joinedload(CheckIn.patient)).limit(size)
    if is_postgres():  # two starters at once: each takes its own rows
        stmt = stmt.with_for_update(of=CheckIn, skip_locked=True)
    return list(db.session.scalars(stmt).unique())


def start_due_checkins(now: datetime | None = None) -> dict:
    """Start every scheduled check-in whose time has come, and retry unanswered calls that are due."""
    now = now or utcnow()
    size = current_app.config.get("CHECKIN_BATCH_SIZE", 500)
    summary = {"sms": 0, "voice": 0, "waiting": 0, "deferred": 0, "cancelled": 0, "call_retries": 0}
    last_id = 0
    while True:
        rows = _batch(select(CheckIn).where(CheckIn.status == CheckInStatus.SCHEDULED, CheckIn.scheduled_at <= now,
                                            CheckIn.id > last_id).order_by(CheckIn.id), size)
        if not rows:
            break
        for checkin in rows:
            summary[start_checkin(checkin, now)] += 1
        last_id = rows[-1].id
        db.session.commit()
    summary["call_retries"] = retry_calls(now, size)
    log.info("check-ins started: %s", summary)
    return summary


def retry_calls(now: datetime, size: int) -> int:
    """Place the second call of voice check-ins whose first call was not answered."""
    max_attempts = current_app.config.get("CHECKIN_CALL_MAX_ATTEMPTS", 2)
    done, last_id = 0, 0
    while True:
        rows = _batch(select(CheckIn).where(
            CheckIn.status == CheckInStatus.SENT, CheckIn.next_call_at.is_not(None),
            CheckIn.next_call_at <= now, CheckIn.closes_at > now, CheckIn.id > last_id,
        ).order_by(CheckIn.id), size)
        if not rows:
            break
        for checkin in rows:
            if not within_send_window(checkin.patient, now):
                continue  # kept for the patient's hours
            if checkin.call_attempts < max_attempts and _eligible(checkin.patient_id):
                place_call(checkin, checkin.patient, f"call:{checkin.call_attempts + 1}")
                done += 1
            else:
                checkin.next_call_at = None
        last_id = rows[-1].id
        db.session.commit()
    return done


def schedule_call_retry(checkin: CheckIn, now: datetime) -> bool:
    """After an unanswered call (no answer, busy, failed, answering machine): try once more later."""
    max_attempts = current_app.config.get("CHECKIN_CALL_MAX_ATTEMPTS", 2)
    if checkin.status != CheckInStatus.SENT or checkin.call_attempts >= max_attempts or checkin.next_call_at:
        return False
    checkin.next_call_at = now + timedelta(minutes=current_app.config.get("CHECKIN_CALL_RETRY_MINUTES", 30))
    return True
