"""Read-side queries for the dashboard and the patient page (constant query count)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from app.care.access import patient_scope
from app.care.models import CareTeamMember, Patient, Professional
from app.core.time import utcnow
from app.extensions import db

from .models import Drug, Enrolment, EnrolmentEvent, Prescription, PrescriptionEvent


REVIEW_HORIZON_DAYS = 7


@dataclass(frozen=True)
class PatientFilters:
    q: str = ""
    sequence: str = ""
    status: str = ""
    lead_team: str = ""
    drug_id: int | None = None
    review_due: bool = False  # sequence review due within REVIEW_HORIZON_DAYS


@dataclass(frozen=True)
class PatientRow:
    patient: Patient
    sequence: str | None
    lead_team: str | None
    pathway: str | None
    drug: str | None
    review_due_on: object = None


@dataclass(frozen=True)
class Page:
    rows: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _current_drug_subquery():
    today = utcnow().date()
    return (
        select(Drug.inn)
        .join(Prescription, Prescription.drug_id == Drug.id)
        .where(
            Prescription.patient_id == Patient.id,
            Prescription.start_date <= today,
            or_(Prescription.end_date.is_(None), Prescription.end_date >= today),
        )
        .order_by(Prescription.start_date.desc(), Prescription.id.desc())
        .limit(1)
        .correlate(Patient)
        .scalar_subquery()
    )


def patient_list(prof: Professional, filters: PatientFilters, page: int, per_page: int) -> Page:
    """The patients ``prof`` may see, filtered and paginated: two statements whatever the size."""
    drug = _current_drug_subquery().label("drug")
    base = (
        select(Patient, Enrolment.sequence, Enrolment.lead_team, Enrolment.pathway, drug, Enrolment.review_due_on)
        .outerjoin(Enrolment, Enrolment.active_patient_id == Patient.id)
        .where(patient_scope(prof))
    )
    conditions = []
    q = (filters.q or "").strip()
    if q:
        like = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(
            func.lower(Patient.last_name).like(like, escape="\\"),
            func.lower(Patient.first_name).like(like, escape="\\"),
            Patient.mrn == q,
        ))
    if filters.sequence:
        conditions.append(Enrolment.sequence == filters.sequence)
    if filters.lead_team:
        conditions.append(Enrolment.lead_team == filters.lead_team)
    if filters.status:
        conditions.append(Patient.status == filters.status)
    if filters.review_due:
        conditions.append(Enrolment.review_due_on <= utcnow().date() + timedelta(days=REVIEW_HORIZON_DAYS))
    if filters.drug_id:
        today = utcnow().date()
        conditions.append(Patient.id.in_(select(Prescription.patient_id).where(
            Prescription.drug_id == filters.drug_id, Prescription.start_date <= today,
            or_(Prescription.end_date.is_(None), Prescription.end_date >= today))))
    if conditions:
        base = base.where(and_(*conditions))
    total = db.session.scalar(select(func.count()).select_from(base.order_by(None).subquery()))
    page = max(1, page)
    rows = db.session.execute(
        base.order_by(Patient.last_name, Patient.first_name, Patient.id)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(
        rows=[PatientRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows],
        total=total, page=page, per_page=per_page,
    )


@dataclass(frozen=True)
class PatientRecord:
    patient: Patient
    enrolment: Enrolment | None
    enrolments: list
    prescriptions: list
    care_team: list


def patient_record(patient_id: int) -> PatientRecord | None:
    """Everything the patient page shows, in a fixed number of statements."""
    patient = db.session.scalar(
        select(Patient).where(Patient.id == patient_id).options(
            selectinload(Patient.site),
            selectinload(Patient.care_team).selectinload(CareTeamMember.professional)
            .selectinload(Professional.organisation),
        )
    )
    if patient is None:
        return None
    enrolments = db.session.scalars(
        select(Enrolment).where(Enrolment.patient_id == patient_id)
        .options(selectinload(Enrolment.events).selectinload(EnrolmentEvent.actor))
        .order_by(Enrolment.started_on.desc())
    ).all()
    prescriptions = db.session.scalars(
        select(Prescription).where(Prescription.patient_id == patient_id)
        .options(selectinload(Prescription.drug), selectinload(Prescription.prescriber),
                 selectinload(Prescription.events).selectinload(PrescriptionEvent.recorded_by))
        .order_by(Prescription.start_date.desc(), Prescription.id.desc())
    ).all()
    current = next((e for e in enrolments if e.active_patient_id == patient_id), None)
    return PatientRecord(patient, current, list(enrolments), list(prescriptions), list(patient.care_team))
