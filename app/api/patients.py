"""Patients and their care team. Views: parse, call one service, commit once, dump."""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from app.care import services as care_services
from app.care.models import Patient
from app.core import audit
from app.core.roles import PATIENT_EDITORS
from app.extensions import db
from app.pathways import queries
from app.pathways import services as pathway_services

from .base import bp, current_professional, deny
from .docs import ID, operation
from .payload import call_service, load_patient, parse_body, parse_query, require_role
from .schemas import (
    CareTeamAddSchema,
    CareTeamMemberSchema,
    CareTeamSchema,
    EnrolmentSchema,
    EnrolSchema,
    PatientDetailSchema,
    PatientPageSchema,
    PatientQuerySchema,
    PatientSchema,
    PatientUpdateSchema,
)

MAX_PER_PAGE = 100


def patient_detail(patient: Patient) -> dict[str, Any]:
    body = PatientSchema().dump(patient)
    enrolment = pathway_services.current_enrolment(patient.id)
    body["enrolment"] = EnrolmentSchema().dump(enrolment) if enrolment is not None else None
    return body


def _region() -> str:
    return current_app.config["DEFAULT_PHONE_REGION"]


@bp.get("/patients")
@operation(summary="List the patients you may see", tag="patients", query=PatientQuerySchema,
           response=PatientPageSchema)
def list_patients():
    """Hospital staff see their site's patients; community professionals only the patients
    whose care team they belong to. Sorted by name; `per_page` is at most 100."""
    args = parse_query(PatientQuerySchema())
    filters = queries.PatientFilters(
        q=args.get("q", ""), sequence=args.get("sequence", ""), status=args.get("status", ""),
        lead_team=args.get("lead_team", ""), drug_id=args.get("drug_id"),
    )
    per_page = args.get("per_page") or min(current_app.config["PAGE_SIZE"], MAX_PER_PAGE)
    page = queries.patient_list(current_professional(), filters, args["page"], per_page)
    audit.record("list", object_type="Patient",
                 detail={"page": page.page, "results": len(page.rows), "via": "api"})
    body = PatientPageSchema().dump(page)
    db.session.commit()
    return body


@bp.post("/patients")
@operation(summary="Enrol a new patient", tag="patients", body=EnrolSchema, response=PatientDetailSchema,
           status=201)
def create_patient():
    """Inclusion in one transaction: identity and consent, pathway and sequence, first
    prescription, and the care team (prescriber, and the coordinating nurse who enrols).
    Coordinating nurses and oncologists only; the patient joins the enroller's own site."""
    require_role(PATIENT_EDITORS, "role:enrol")
    prof = current_professional()
    if prof.site is None:
        deny(403, reason="enrol:no_site")
    data, errors = parse_body(EnrolSchema())
    patient = call_service(
        lambda d: pathway_services.enrol_new_patient(d, site=prof.site, actor=prof, region=_region()),
        data, errors)
    body = patient_detail(patient)
    db.session.commit()
    return body, 201, {"Location": url_for("api.get_patient", patient_id=patient.id)}


@bp.get(f"/patients/<{ID}:patient_id>")
@operation(summary="A patient's identity, contact, consent and current enrolment", tag="patients",
           response=PatientDetailSchema)
def get_patient(patient_id: int):
    """The read is recorded in the audit log."""
    patient = load_patient(patient_id, "view")
    audit.record("read", patient_id=patient.id, object_type="Patient", object_id=patient.id,
                 detail={"via": "api"})
    body = patient_detail(patient)
    db.session.commit()
    return body


@bp.patch(f"/patients/<{ID}:patient_id>")
@operation(summary="Change a patient's identity, contact, preferences, consent or status",
           tag="patients", body=PatientUpdateSchema, response=PatientDetailSchema)
def update_patient(patient_id: int):
    """Send only the fields to change. Coordinating nurses and oncologists of the patient's site."""
    patient = load_patient(patient_id, "edit")
    prof = current_professional()
    data, errors = parse_body(PatientUpdateSchema())
    call_service(lambda d: care_services.update_patient(patient, d, actor=prof, region=_region()),
                 data, errors)
    body = patient_detail(patient)
    db.session.commit()
    return body


@bp.get(f"/patients/<{ID}:patient_id>/care-team")
@operation(summary="The patient's care team, past and present", tag="care team", response=CareTeamSchema)
def get_care_team(patient_id: int):
    """Members with their role, lead flag and dates; ended memberships keep their end date."""
    patient = load_patient(patient_id, "view")
    audit.record("read", patient_id=patient.id, object_type="CareTeam", object_id=patient.id,
                 detail={"via": "api"})
    body = CareTeamSchema().dump({"items": patient.care_team})
    db.session.commit()
    return body


@bp.post(f"/patients/<{ID}:patient_id>/care-team")
@operation(summary="Add a professional to the care team", tag="care team", body=CareTeamAddSchema,
           response=CareTeamMemberSchema, status=201)
def add_care_team_member(patient_id: int):
    """A lead replaces the current lead of the same role. Coordinating nurses and oncologists."""
    patient = load_patient(patient_id, "edit")
    prof = current_professional()
    data, errors = parse_body(CareTeamAddSchema())
    member = call_service(
        lambda d: care_services.add_care_team_member(
            patient, professional_id=d["professional_id"], is_lead=d["is_lead"],
            start_date=d["start_date"], actor=prof),
        data, errors, dry_run=False)
    body = CareTeamMemberSchema().dump(member)
    db.session.commit()
    return body, 201
