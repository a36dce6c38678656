"""Per-record access rules: who may see and change which patient.

Hospital staff see the patients of their own site; community professionals see
only the patients whose care team they currently belong to; admins manage the
directory and see no patient record.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import false, or_, select

from app.core.roles import HOSPITAL_ROLES, COMMUNITY_ROLES, PATIENT_EDITORS, PRESCRIPTION_EDITORS
from app.core.time import utcnow

from .models import CareTeamMember, Patient, Professional


def _today() -> date:
    return utcnow().date()


def active_membership_clause(professional_id: int):
    today = _today()
    return select(CareTeamMember.patient_id).where(
        CareTeamMember.professional_id == professional_id,
        CareTeamMember.start_date <= today,
        or_(CareTeamMember.end_date.is_(None), CareTeamMember.end_date >= today),
    )


def patient_scope(prof: Professional):
    """A WHERE clause on Patient limiting rows to what ``prof`` may see."""
    if prof.role in HOSPITAL_ROLES and prof.site_id is not None:
        return Patient.site_id == prof.site_id
    if prof.role in COMMUNITY_ROLES:
        return Patient.id.in_(active_membership_clause(prof.id))
    return false()


def can_view(prof: Professional, patient: Patient) -> bool:
    if prof.role in HOSPITAL_ROLES:
        return prof.site_id is not None and patient.site_id == prof.site_id
    if prof.role in COMMUNITY_ROLES:
        today = _today()
        return any(
            m.professional_id == prof.id and m.start_date <= today
            and (m.end_date is None or m.end_date >= today)
            for m in patient.care_team
        )
    return False


def can_edit(prof: Professional, patient: Patient) -> bool:
    return prof.role in PATIENT_EDITORS and can_view(prof, patient)


def can_prescribe(prof: Professional, patient: Patient) -> bool:
    return prof.role in PRESCRIPTION_EDITORS and can_view(prof, patient)


@dataclass(frozen=True)
class Refusal:
    """Why ``prof`` may not have a record: ``hidden`` means answer as if it did not exist."""

    hidden: bool
    reason: str


def refusal(prof: Professional, patient: Patient | None, need: str = "view") -> Refusal | None:
    """None when ``prof`` may ``need`` (view, edit, prescribe) this patient, else the refusal.

    A patient outside the professional's scope is hidden (its existence is not
    revealed); one in scope without the right to change it is refused openly.
    """
    if patient is None or not can_view(prof, patient):
        return Refusal(True, f"out_of_scope:{need}")
    if need == "edit" and not can_edit(prof, patient):
        return Refusal(False, "edit")
    if need == "prescribe" and not can_prescribe(prof, patient):
        return Refusal(False, "prescribe")
    return None
