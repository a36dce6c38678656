"""Ending a check-in: closed at the end of its period (missed or partial), or cancelled, and
what the nurses are told. Shared by the starter, the chaser and the shared-phone hand-over."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.core import audit
from app.extensions import db
from app.triage import services as triage

from . import signals
from .models import CheckIn, CheckInStatus


def cancel(checkin: CheckIn, reason: str, now: datetime) -> None:
    checkin.status, checkin.cancel_reason, checkin.closed_at = CheckInStatus.CANCELLED, reason, now
    audit.record("checkin_cancelled", patient_id=checkin.patient_id, obj=checkin, detail={"reason": reason})


def cannot_ask(checkin: CheckIn, reason: str, now: datetime) -> None:
    """A check-in that could not be put to the patient (never sent in its period, nothing to ask):
    cancelled, and never silently: the nurses get a task to call the patient instead."""
    cancel(checkin, reason, now)
    triage.create_task(patient_id=checkin.patient_id, kind="call_patient", reason_code=f"checkin_{reason}"[:60],
                       checkin_id=checkin.id)


def close_checkin(checkin: CheckIn, now: datetime) -> str:
    if checkin.status == CheckInStatus.SCHEDULED:
        cannot_ask(checkin, "not_sent", now)
        return "cancelled"
    checkin.status = CheckInStatus.NO_RESPONSE if checkin.status == CheckInStatus.SENT else CheckInStatus.PARTIAL
    checkin.closed_at = now
    audit.record("checkin_closed", patient_id=checkin.patient_id, obj=checkin, detail={"status": checkin.status})
    signals.checkin_closed.send(checkin)
    if checkin.status == CheckInStatus.NO_RESPONSE:
        _alert_second_miss(checkin, now)
    return checkin.status


def _alert_second_miss(checkin: CheckIn, now: datetime) -> None:
    """Orange alert when this is the second no-response in a row (once per run of misses)."""
    if checkin.no_response_alert_at is not None:
        return
    before = db.session.scalars(
        select(CheckIn).where(CheckIn.patient_id == checkin.patient_id, CheckIn.id != checkin.id,
                              CheckIn.scheduled_at < checkin.scheduled_at,
                              CheckIn.status != CheckInStatus.CANCELLED)
        .order_by(CheckIn.scheduled_at.desc()).limit(2)
    ).all()
    if not before or before[0].status != CheckInStatus.NO_RESPONSE:
        return
    if len(before) > 1 and before[1].status == CheckInStatus.NO_RESPONSE:
        return  # a longer run: its alert was raised at the second miss
    triage.raise_alert(
        patient_id=checkin.patient_id, severity="orange", source="no_response",
        reason_code="two_checkins_unanswered", summary="No answer to the last two check-ins",
        detail={"checkins": [before[0].id, checkin.id]}, checkin_id=checkin.id,
    )
    checkin.no_response_alert_at = now
