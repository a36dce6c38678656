"""What the phone simulator does: show a patient's texts, answer as the patient, start a check-in now."""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, or_, select

from app.care.models import Patient
from app.core.time import utcnow
from app.extensions import db
from app.notifications.inbound import receive_sms
from app.notifications.models import Message, OutboxEntry
from app.pathways.checkins.models import CheckIn, CheckInStatus
from app.pathways.checkins.planning import period_key, zone
from app.pathways.checkins.start import start_checkin
from app.pathways.models import Enrolment


def sender_number() -> str:
    return current_app.config.get("TWILIO_FROM_NUMBER") or "ONCOLINK"


def conversation(patient: Patient, limit: int = 60) -> list:
    """The patient's phone as they see it: texts in and out, and texts still waiting to be sent."""
    messages = list(db.session.scalars(
        select(Message).where(or_(Message.to_number == patient.phone, Message.from_number == patient.phone))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    ))
    sent_outbox = {m.outbox_id for m in messages if m.outbox_id}
    pending = [o for o in db.session.scalars(
        select(OutboxEntry).where(OutboxEntry.to_number == patient.phone,
                                  OutboxEntry.state.in_(["pending", "sending"])).order_by(OutboxEntry.id)
    ) if o.id not in sent_outbox]
    return list(reversed(messages)), pending


def reply_as_patient(patient: Patient, body: str) -> list[str]:
    """Exactly what the Twilio webhook does with an inbound text, minus the signature."""
    return receive_sms(from_number=patient.phone, to_number=sender_number(), body=body,
                       provider_sid="SMdev" + uuid.uuid4().hex)


def start_checkin_now(patient: Patient) -> str:
    """Plan and start a check-in for this patient at once (outside the weekly schedule)."""
    now = utcnow()
    if db.session.scalar(select(Enrolment.id).where(Enrolment.active_patient_id == patient.id)) is None:
        return "not_enrolled"
    local = now.astimezone(zone(patient.timezone)).date()
    taken = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.patient_id == patient.id))
    checkin = CheckIn(patient_id=patient.id, period_key=f"{period_key(local)}-demo{taken + 1}",
                      sequence=db.session.scalar(select(Enrolment.sequence).where(
                          Enrolment.active_patient_id == patient.id)),
                      scheduled_at=now, closes_at=now + timedelta(days=7), channel=patient.channel,
                      status=CheckInStatus.SCHEDULED)
    db.session.add(checkin)
    db.session.flush()
    return start_checkin(checkin, now, respect_window=False)
