"""Prescriptions and their events, the enrolment, and the drug catalogue."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.core import audit
from app.extensions import db
from app.pathways import services as pathway_services
from app.pathways.models import Drug, Enrolment, Prescription

from .base import ApiError, bp, current_professional
from .docs import ID, operation
from .payload import call_service, load_patient, parse_body
from .schemas import (
    DrugListSchema,
    EnrolmentChangeSchema,
    EnrolmentSchema,
    PrescriptionEventInputSchema,
    PrescriptionEventSchema,
    PrescriptionInputSchema,
    PrescriptionListSchema,
    PrescriptionSchema,
)


@bp.get(f"/patients/<{ID}:patient_id>/prescriptions")
@operation(summary="The patient's prescriptions and their dated events", tag="prescriptions",
           response=PrescriptionListSchema)
def list_prescriptions(patient_id: int):
    """Newest first, ended ones included."""
    patient = load_patient(patient_id, "view")
    rows = db.session.scalars(
        select(Prescription).where(Prescription.patient_id == patient.id)
        .options(selectinload(Prescription.drug), selectinload(Prescription.prescriber),
                 selectinload(Prescription.events))
        .order_by(Prescription.start_date.desc(), Prescription.id.desc())
    ).all()
    audit.record("read", patient_id=patient.id, object_type="Prescription", detail={"via": "api"})
    body = PrescriptionListSchema().dump({"items": rows})
    db.session.commit()
    return body


@bp.post(f"/patients/<{ID}:patient_id>/prescriptions")
@operation(summary="Record a prescription", tag="prescriptions", body=PrescriptionInputSchema,
           response=PrescriptionSchema, status=201)
def add_prescription(patient_id: int):
    """Cycle values left out take the drug's defaults. The prescriber is an oncologist of the
    patient's site. Oncologists, coordinating nurses and hospital pharmacists."""
    patient = load_patient(patient_id, "prescribe")
    prof = current_professional()
    data, errors = parse_body(PrescriptionInputSchema())
    rx = call_service(lambda d: pathway_services.add_prescription(patient, d, actor=prof), data, errors)
    body = PrescriptionSchema().dump(rx)
    db.session.commit()
    return body, 201


@bp.post(f"/patients/<{ID}:patient_id>/prescriptions/<{ID}:rx_id>/events")
@operation(summary="Record a dose change, interruption, resumption or stop", tag="prescriptions",
           body=PrescriptionEventInputSchema, response=PrescriptionEventSchema, status=201)
def add_prescription_event(patient_id: int, rx_id: int):
    """A dose change sets the prescription's dose; a stop sets its end date."""
    patient = load_patient(patient_id, "prescribe")
    rx = db.session.get(Prescription, rx_id)
    if rx is None or rx.patient_id != patient.id:
        raise ApiError(404, _("Not found."))
    prof = current_professional()
    data, errors = parse_body(PrescriptionEventInputSchema())
    event = call_service(
        lambda d: pathway_services.record_prescription_event(
            rx, kind=d.get("kind"), effective_date=d.get("effective_date"), reason=d.get("reason"),
            new_dose=d.get("new_dose"), actor=prof),
        data, errors)
    body = PrescriptionEventSchema().dump(event)
    db.session.commit()
    return body, 201


def _active_enrolment(patient_id: int) -> Enrolment:
    enrolment = pathway_services.current_enrolment(patient_id)
    if enrolment is None:
        raise ApiError(404, _("The patient has no active enrolment."))
    return enrolment


@bp.get(f"/patients/<{ID}:patient_id>/enrolment")
@operation(summary="The active enrolment: pathway, sequence, lead team and its history",
           tag="enrolment", response=EnrolmentSchema)
def get_enrolment(patient_id: int):
    """404 when the patient's follow-up has ended."""
    patient = load_patient(patient_id, "view")
    enrolment = _active_enrolment(patient.id)
    audit.record("read", patient_id=patient.id, obj=enrolment, detail={"via": "api"})
    body = EnrolmentSchema().dump(enrolment)
    db.session.commit()
    return body


@bp.patch(f"/patients/<{ID}:patient_id>/enrolment")
@operation(summary="Change pathway, sequence or lead team, with the reason", tag="enrolment",
           body=EnrolmentChangeSchema, response=EnrolmentSchema)
def change_enrolment(patient_id: int):
    """Each change is an event with who and why. Only an oncologist moves a patient to S3.
    Coordinating nurses and oncologists."""
    patient = load_patient(patient_id, "edit")
    enrolment = _active_enrolment(patient.id)
    prof = current_professional()
    data, errors = parse_body(EnrolmentChangeSchema())
    call_service(
        lambda d: pathway_services.change_enrolment(
            enrolment, actor=prof, reason=d.get("reason"), pathway=d.get("pathway"),
            sequence=d.get("sequence"), lead_team=d.get("lead_team"), effective_date=d.get("effective_date")),
        data, errors)
    body = EnrolmentSchema().dump(enrolment)
    db.session.commit()
    return body


@bp.get("/drugs")
@operation(summary="The drug catalogue", tag="catalogue", response=DrugListSchema)
def list_drugs():
    """Active drugs with their default regimen and the symptoms monitored."""
    drugs = db.session.scalars(select(Drug).where(Drug.active.is_(True)).order_by(Drug.inn)).all()
    return DrugListSchema().dump({"items": drugs})
