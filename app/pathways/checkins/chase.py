"""Chasing non-responders: reminder, then a nurse call task, then closing, then an alert.

- no answer for ``CHECKIN_REMINDER_HOURS`` (since the start or the last answer): one reminder
  with the pending question (SMS; a call for voice patients), idempotency key per check-in, sent
  within the patient's hours (``start.within_send_window``);
- no answer for ``CHECKIN_CALL_TASK_HOURS``: a "call the patient" task for the nurses;
- at the end of the period: ``no_response`` (no answer at all) or ``partial``; a check-in never
  sent (scheduler down, phone busy all period) is cancelled, not counted against the patient;
- two consecutive ``no_response`` periods: one orange alert (source "no_response").
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.care.models import Channel
from app.core import audit
from app.core.time import utcnow
from app.extensions import db
from app.notifications.outbox import enqueue_sms
from app.triage import services as triage

from . import templates as t
from .closing import cancel, close_checkin
from .engine import current_item
from .models import OPEN_STATUSES, AnswerType, CheckIn, CheckInStatus
from .start import _batch, _eligible, checkin_ref, place_call, sharers, within_send_window

log = logging.getLogger("oncolink.checkins")


def _remind(checkin: CheckIn, now: datetime) -> None:
    patient = checkin.patient
    item = current_item(checkin)
    if checkin.channel == Channel.VOICE and (item is None or item.answer_type != AnswerType.BLOOD_PRESSURE):
        place_call(checkin, patient, "reminder-call")
    else:
        name = patient.first_name if sharers(patient) > 1 else None
        total = len(checkin.item_codes or [])
        prefix = t.label(patient.language, number=checkin.current_index + 1 if item else None, total=total, name=name)
        enqueue_sms(to=patient.phone, body=t.reminder_sms(item, patient.language, prefix),
                    idempotency_key=f"{checkin_ref(checkin.id)}:reminder", purpose="checkin_reminder",
                    patient_id=patient.id, ref=checkin_ref(checkin.id))
    checkin.reminder_sent_at = now
    audit.record("checkin_reminder", patient_id=patient.id, obj=checkin)


def _call_task(checkin: CheckIn, now: datetime) -> None:
    triage.create_task(patient_id=checkin.patient_id, kind="call_patient", reason_code="checkin_unanswered",
                       checkin_id=checkin.id)
    checkin.call_task_created_at = now


def chase_non_responders(now: datetime | None = None) -> dict:
    """Close ended periods, then remind and create call tasks; a batch per commit."""
    now = now or utcnow()
    size = current_app.config.get("CHECKIN_BATCH_SIZE", 500)
    reminder_after = timedelta(hours=current_app.config.get("CHECKIN_REMINDER_HOURS", 24))
    task_after = timedelta(hours=current_app.config.get("CHECKIN_CALL_TASK_HOURS", 72))
    summary = {"closed": 0, "no_response": 0, "partial": 0, "cancelled": 0, "reminders": 0, "call_tasks": 0}

    last_id = 0
    while rows := _batch(select(CheckIn).where(
        CheckIn.status.in_([CheckInStatus.SCHEDULED, *OPEN_STATUSES]), CheckIn.closes_at <= now, CheckIn.id > last_id,
    ).order_by(CheckIn.id), size):
        # Oldest period first, so a patient's earlier miss is closed before the later one is judged.
        for checkin in sorted(rows, key=lambda c: c.scheduled_at):
            summary[close_checkin(checkin, now)] += 1
            summary["closed"] += 1
        last_id = rows[-1].id
        db.session.commit()

    last_id = 0
    while rows := _batch(select(CheckIn).where(
        CheckIn.status.in_(OPEN_STATUSES), CheckIn.closes_at > now, CheckIn.id > last_id,
        CheckIn.last_activity_at <= now - min(reminder_after, task_after),
        (CheckIn.reminder_sent_at.is_(None)) | (CheckIn.call_task_created_at.is_(None)),
    ).order_by(CheckIn.id), size):
        for checkin in rows:
            if not _eligible(checkin.patient_id):
                cancel(checkin, "not_eligible", now)
                summary["cancelled"] += 1
                continue
            idle = now - checkin.last_activity_at
            if checkin.reminder_sent_at is None and idle >= reminder_after \
                    and within_send_window(checkin.patient, now):
                _remind(checkin, now)
                summary["reminders"] += 1
            if checkin.call_task_created_at is None and idle >= task_after:
                _call_task(checkin, now)
                summary["call_tasks"] += 1
        last_id = rows[-1].id
        db.session.commit()
    log.info("check-in chase: %s", summary)
    return summary
