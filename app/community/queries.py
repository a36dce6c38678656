"""Reads of the community portal: the patient page's section and the "My patients" work list."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import exists, func, select

from app.care.access import patient_scope
from app.care.models import Patient, PatientStatus, Professional
from app.core.roles import Role
from app.extensions import db
from app.pathways.models import Enrolment

from . import schedule
from .models import (
    MedicationReconciliation,
    PharmacistInterview,
    ReconciliationStatus,
    Visit,
)

MY_PATIENTS_LIMIT = 500


def interviews_of(patient_id: int) -> list[PharmacistInterview]:
    return list(db.session.scalars(select(PharmacistInterview).where(PharmacistInterview.patient_id == patient_id)
                                   .order_by(PharmacistInterview.held_on.desc(), PharmacistInterview.id.desc())))


def reconciliations_of(patient_id: int) -> list[MedicationReconciliation]:
    return list(db.session.scalars(
        select(MedicationReconciliation).where(MedicationReconciliation.patient_id == patient_id)
        .order_by(MedicationReconciliation.submitted_at.desc(), MedicationReconciliation.id.desc())))


def visits_of(patient_id: int, limit: int = 10) -> list[Visit]:
    return list(db.session.scalars(select(Visit).where(Visit.patient_id == patient_id)
                                   .order_by(Visit.visit_on.desc(), Visit.id.desc()).limit(limit)))


@dataclass
class DueItem:
    code: str  # interview, refill, visit, reconciliation
    on: date | None
    kind: str | None = None
    overdue: bool = False


@dataclass
class MyPatientRow:
    patient: Patient
    items: list[DueItem] = field(default_factory=list)

    @property
    def first_due(self) -> date:
        dates = [item.on for item in self.items if item.on is not None]
        return min(dates) if dates else date.max


def _latest(column, model, where):
    """Correlated scalar subquery: ``column`` of the patient's newest ``model`` row."""
    return select(column).where(where).order_by(model.id.desc()).limit(1).correlate(Patient).scalar_subquery()


def my_patients(prof: Professional, today: date) -> list[MyPatientRow]:
    """The professional's patients and what is due from them, most urgent first (one query)."""
    pharmacist = prof.role == Role.COMMUNITY_PHARMACIST
    visitor = prof.role in (Role.GP, Role.COMMUNITY_NURSE)
    hospital_pharmacist = prof.role == Role.HOSPITAL_PHARMACIST
    interview_where = PharmacistInterview.patient_id == Patient.id
    columns = [
        Patient,
        Enrolment.started_on,
        _latest(PharmacistInterview.next_due_on, PharmacistInterview, interview_where).label("due_on"),
        _latest(PharmacistInterview.next_due_kind, PharmacistInterview, interview_where).label("due_kind"),
        select(func.max(Visit.visit_on)).where(Visit.patient_id == Patient.id, Visit.professional_id == prof.id)
        .correlate(Patient).scalar_subquery().label("last_visit"),
        exists().where(MedicationReconciliation.patient_id == Patient.id,
                       MedicationReconciliation.status == ReconciliationStatus.SUBMITTED)
        .correlate(Patient).label("pending"),
    ]
    dispensing = db.metadata.tables.get("dispensing")  # owned by the adherence module, read only
    if dispensing is not None and pharmacist:
        columns += [_newest(dispensing, "dispensed_on"), _newest(dispensing, "days_supply")]
    query = (select(*columns)
             .outerjoin(Enrolment, Enrolment.active_patient_id == Patient.id)
             .where(patient_scope(prof), Patient.status != PatientStatus.ENDED)
             .order_by(Patient.last_name, Patient.first_name).limit(MY_PATIENTS_LIMIT))
    rows = []
    for row in db.session.execute(query):
        item = MyPatientRow(row.Patient)
        if pharmacist and row.started_on is not None:
            on = row.due_on or row.started_on
            kind = row.due_kind or schedule.YEAR_ONE_ORDER[0]
            item.items.append(DueItem("interview", on, kind, overdue=on < today))
        if pharmacist and dispensing is not None and row.dispensed_on is not None:
            runs_out = row.dispensed_on + timedelta(days=row.days_supply)
            if runs_out <= today + timedelta(days=schedule.REFILL_SOON_DAYS):
                item.items.append(DueItem("refill", runs_out, overdue=runs_out < today))
        if visitor:
            last = row.last_visit
            if last is None or last < today - timedelta(days=schedule.VISIT_OVERDUE_DAYS):
                due = (last + timedelta(days=schedule.VISIT_OVERDUE_DAYS)) if last else None
                item.items.append(DueItem("visit", due, overdue=True))
        if hospital_pharmacist and row.pending:
            item.items.append(DueItem("reconciliation", None))
        if hospital_pharmacist and not item.items:
            continue  # the whole site is in the dashboard; here only what waits for them
        rows.append(item)
    rows.sort(key=lambda r: (not r.items, r.first_due))
    return rows


def _newest(dispensing, column: str):
    return (select(dispensing.c[column]).where(dispensing.c.patient_id == Patient.id)
            .order_by(dispensing.c.dispensed_on.desc(), dispensing.c.id.desc()).limit(1)
            .correlate(Patient).scalar_subquery().label(column))

