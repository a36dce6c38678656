"""Triage's listeners to the transport's signals, connected by ``create_app`` (never at import)."""
from __future__ import annotations

from sqlalchemy import select

from app.care.models import Patient
from app.extensions import db
from app.notifications.signals import recipient_opted_out

from .assessment import Context, keyword_alert


def on_recipient_opted_out(phone: str, patient_ids: list[int] | None = None, **_extra) -> None:
    """The provider refuses our texts to this phone (21610): the patient is opted out and nobody
    asks them anything any more; they may also have stopped the treatment. A nurse must call."""
    for patient_id, site_id in db.session.execute(
            select(Patient.id, Patient.site_id).where(Patient.id.in_(patient_ids or []))):
        keyword_alert(Context(patient_id=patient_id, site_id=site_id), reason="provider_opt_out")


def connect() -> None:
    recipient_opted_out.connect(on_recipient_opted_out)
