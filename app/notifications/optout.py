"""Opt-out learnt from the provider: Twilio refuses (21610) to text a number that sent STOP."""
from __future__ import annotations

from sqlalchemy import select

from app.care.models import Patient
from app.core import audit
from app.core.time import utcnow
from app.extensions import db

from .signals import recipient_opted_out


def mark_unsubscribed(phone: str, *, source: str) -> list[int]:
    """Set ``opted_out_at`` on every patient with this phone not yet opted out (flushed, audited)."""
    patients = db.session.scalars(
        select(Patient).where(Patient.phone == phone, Patient.opted_out_at.is_(None))
    ).all()
    now = utcnow()
    for patient in patients:
        patient.opted_out_at = now
        audit.record("opt_out", patient_id=patient.id, obj=patient,
                     detail={"source": source, "by": "provider"})
    db.session.flush()
    ids = [p.id for p in patients]
    if ids:
        recipient_opted_out.send(phone, patient_ids=ids)
    return ids
