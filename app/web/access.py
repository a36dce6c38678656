"""Route guards: role checks and per-record patient loading, with denials logged."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from app.care import access
from app.care.models import Patient
from app.core import audit
from app.extensions import db
from app.pathways.queries import PatientRecord, patient_record


def deny(status: int, *, patient_id: int | None = None, reason: str) -> None:
    """Log the refusal in the audit trail (its own commit) and stop the request."""
    db.session.rollback()
    audit.record("denied", patient_id=patient_id, detail={"reason": reason, "status": status})
    db.session.commit()
    abort(status)


def roles_required(*roles):
    """Allow only these roles; anyone else gets 403 and an audit row."""
    allowed = {str(r) for r in roles}

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                abort(401)
            if current_user.role not in allowed:
                deny(403, reason=f"role:{view.__name__}")
            return view(*args, **kwargs)
        return wrapped
    return decorator


def load_patient(patient_id: int, need: str = "view") -> Patient:
    """The patient if the current professional may ``need`` it (view, edit, prescribe).

    A patient outside the professional's scope answers 404 (its existence is not
    revealed); one in scope without the right to change it answers 403.
    """
    user = current_user._get_current_object()
    patient = db.session.get(Patient, patient_id)
    refused = access.refusal(user, patient, need)
    if refused is not None:
        deny(404 if refused.hidden else 403, patient_id=patient.id if patient else None, reason=refused.reason)
    return patient


def load_record(patient_id: int) -> PatientRecord:
    load_patient(patient_id, "view")
    return patient_record(patient_id)
