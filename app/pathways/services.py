"""Enrolment, sequence and lead changes, prescriptions and their events.

Every change of the pathway is an EnrolmentEvent with who and why; every
change to a prescription is a dated PrescriptionEvent. Services flush; the
request or job wrapper commits once.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from app.care import services as care_services
from app.care.models import Patient, PatientStatus, Professional, Site
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db

from .models import (
    Drug, EndReason, Enrolment, EnrolmentEvent, EnrolmentStatus, LeadTeam, Pathway,
    Prescription, PrescriptionEvent, PrescriptionEventKind, Sequence, review_due,
)

PRESCRIPTION_FIELDS = ("drug_id", "dose", "frequency_per_day", "days_on", "days_off",
                       "start_date", "end_date", "prescriber_id")


def _check_prescription(data: dict[str, Any], site_id: int) -> tuple[dict[str, Any], Drug | None]:
    errors: dict[str, str] = {}
    drug = db.session.get(Drug, data.get("drug_id")) if data.get("drug_id") is not None else None
    if drug is None or not drug.active:
        errors["drug_id"] = _("Unknown drug: choose one from the catalogue.")
    dose = (data.get("dose") or "").strip()
    if not dose:
        errors["dose"] = _("This field is required.")
    freq = data.get("frequency_per_day") or (drug.default_frequency_per_day if drug else 1)
    if not 1 <= int(freq) <= 6:
        errors["frequency_per_day"] = _("Between 1 and 6 intakes a day.")
    days_on = data.get("days_on") if data.get("days_on") is not None else (drug.default_days_on if drug else None)
    days_off = data.get("days_off") if data.get("days_off") is not None else (drug.default_days_off if drug else 0)
    if days_on is None or days_on < 1 or days_on > 366:
        errors["days_on"] = _("Days on treatment must be between 1 and 366.")
    if days_off is None or days_off < 0 or days_off > 366:
        errors["days_off"] = _("Days off must be between 0 and 366.")
    start, end = data.get("start_date"), data.get("end_date")
    if start is None:
        errors["start_date"] = _("This field is required.")
    if start and end and end < start:
        errors["end_date"] = _("The end date is before the start date.")
    prescriber = db.session.get(Professional, data.get("prescriber_id")) if data.get("prescriber_id") else None
    if prescriber is None or prescriber.role != Role.ONCOLOGIST or prescriber.site_id != site_id or not prescriber.active:
        errors["prescriber_id"] = _("Choose an oncologist of this site.")
    if errors:
        raise ValidationFailed(errors)
    return {
        "drug_id": drug.id, "dose": dose, "frequency_per_day": int(freq), "days_on": int(days_on),
        "days_off": int(days_off), "start_date": start, "end_date": end, "prescriber_id": prescriber.id,
    }, drug


def add_prescription(patient: Patient, data: dict[str, Any], *, actor: Professional) -> Prescription:
    clean, _drug = _check_prescription(data, patient.site_id)
    rx = Prescription(patient_id=patient.id, recorded_by_id=actor.id, **clean)
    db.session.add(rx)
    db.session.flush()
    audit.record("prescription_add", patient_id=patient.id, obj=rx, detail={"drug_id": rx.drug_id})
    return rx


def record_prescription_event(rx: Prescription, *, kind: str, effective_date: date, reason: str,
                              new_dose: str | None, actor: Professional) -> PrescriptionEvent:
    errors: dict[str, str] = {}
    if kind not in set(PrescriptionEventKind):
        errors["kind"] = _("Unknown kind of change.")
    if not (reason or "").strip():
        errors["reason"] = _("Say why.")
    if effective_date is None:
        errors["effective_date"] = _("This field is required.")
    elif effective_date < rx.start_date:
        errors["effective_date"] = _("The date is before the start of the prescription.")
    elif rx.end_date and effective_date > rx.end_date:
        errors["effective_date"] = _("The prescription has already ended.")
    if kind == PrescriptionEventKind.DOSE_CHANGE and not (new_dose or "").strip():
        errors["new_dose"] = _("Give the new dose.")
    if errors:
        raise ValidationFailed(errors)
    event = PrescriptionEvent(
        prescription=rx, kind=kind, effective_date=effective_date, reason=reason.strip(),
        new_dose=(new_dose or "").strip() or None, recorded_by_id=actor.id,
    )
    if kind == PrescriptionEventKind.DOSE_CHANGE:
        rx.dose = event.new_dose
    elif kind == PrescriptionEventKind.STOP:
        rx.end_date = effective_date
    db.session.add(event)
    db.session.flush()
    audit.record("prescription_event", patient_id=rx.patient_id, obj=event, detail={"kind": kind})
    return event


def _check_enrolment(pathway: str, sequence: str, lead_team: str) -> None:
    errors = {}
    if pathway not in set(Pathway):
        errors["pathway"] = _("Choose pathway A or B.")
    if sequence not in set(Sequence):
        errors["sequence"] = _("Choose S1, S2 or S3.")
    if lead_team not in set(LeadTeam):
        errors["lead_team"] = _("Choose hospital or community.")
    if errors:
        raise ValidationFailed(errors)


def enrol(patient: Patient, *, pathway: str, sequence: str, lead_team: str, started_on: date,
          reason: str, actor: Professional) -> Enrolment:
    _check_enrolment(pathway, sequence, lead_team)
    if current_enrolment(patient.id) is not None:
        raise ValidationFailed({"sequence": _("The patient is already enrolled.")})
    enrolment = Enrolment(
        patient_id=patient.id, pathway=pathway, sequence=sequence, lead_team=lead_team,
        started_on=started_on, sequence_started_on=started_on, active_patient_id=patient.id,
    )
    _set_review_due(enrolment)
    db.session.add(enrolment)
    db.session.flush()
    db.session.add(EnrolmentEvent(enrolment=enrolment, kind="enrolled", to_value=f"{pathway}/{sequence}/{lead_team}",
                                  reason=reason, actor_id=actor.id))
    audit.record("enrol", patient_id=patient.id, obj=enrolment)
    return enrolment


def enrol_new_patient(data: dict[str, Any], *, site: Site, actor: Professional, region: str = "FR") -> Patient:
    """Inclusion in one unit of work: identity and consent, enrolment, first prescription, care team."""
    errors: dict[str, list[str]] = {}
    patient = None
    savepoint = db.session.begin_nested()
    try:
        patient = care_services.create_patient(data, site=site, actor=actor, region=region)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        _check_enrolment(data.get("pathway"), data.get("sequence"), data.get("lead_team"))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        _check_prescription(data, site.id)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        savepoint.rollback()
        raise ValidationFailed(errors)
    started_on = data["start_date"]
    enrol(patient, pathway=data["pathway"], sequence=data["sequence"], lead_team=data["lead_team"],
          started_on=started_on, reason=_("Inclusion"), actor=actor)
    add_prescription(patient, data, actor=actor)
    _set_review_due(current_enrolment(patient.id))
    care_services.add_care_team_member(patient, professional_id=data["prescriber_id"], is_lead=True,
                                       start_date=started_on, actor=actor)
    if actor.id != data["prescriber_id"] and actor.role in (Role.COORDINATING_NURSE,):
        care_services.add_care_team_member(patient, professional_id=actor.id, is_lead=True,
                                           start_date=started_on, actor=actor)
    savepoint.commit()
    return patient


def _current_prescription(patient_id: int, on: date) -> Prescription | None:
    return db.session.scalar(
        select(Prescription).where(Prescription.patient_id == patient_id, Prescription.start_date <= on,
                                   (Prescription.end_date.is_(None)) | (Prescription.end_date >= on))
        .order_by(Prescription.start_date.desc(), Prescription.id.desc()).limit(1))


def _set_review_due(enrolment: Enrolment) -> None:
    rx = _current_prescription(enrolment.patient_id, enrolment.sequence_started_on)
    enrolment.review_due_on = review_due(enrolment.sequence, enrolment.sequence_started_on,
                                         rx.days_on if rx else None, rx.days_off if rx else None)


def current_enrolment(patient_id: int) -> Enrolment | None:
    return db.session.scalar(select(Enrolment).where(Enrolment.active_patient_id == patient_id))


def change_enrolment(enrolment: Enrolment, *, actor: Professional, reason: str, pathway: str | None = None,
                     sequence: str | None = None, lead_team: str | None = None,
                     effective_date: date | None = None, renew: bool = False) -> list[EnrolmentEvent]:
    """Change pathway, sequence or lead, or renew the current sequence for another period;
    each change is an event with who and why."""
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise ValidationFailed({"sequence": _("This enrolment has ended.")})
    if not (reason or "").strip():
        raise ValidationFailed({"reason": _("Say why.")})
    _check_enrolment(pathway or enrolment.pathway, sequence or enrolment.sequence, lead_team or enrolment.lead_team)
    if sequence == Sequence.S3 and actor.role != Role.ONCOLOGIST:
        raise ValidationFailed({"sequence": _("Only the referring doctor can move a patient to S3.")})
    events = []
    for kind, attr, value in (("pathway", "pathway", pathway), ("sequence", "sequence", sequence),
                              ("lead", "lead_team", lead_team)):
        old = getattr(enrolment, attr)
        if value and value != old:
            setattr(enrolment, attr, value)
            events.append(EnrolmentEvent(enrolment=enrolment, kind=kind, from_value=old, to_value=value,
                                         reason=reason.strip(), actor_id=actor.id))
    if renew and not any(e.kind == "sequence" for e in events):
        if enrolment.sequence == Sequence.S1:
            raise ValidationFailed({"sequence": _("S1 covers the first cycle only: move to S2.")})
        events.append(EnrolmentEvent(enrolment=enrolment, kind="renewal", from_value=enrolment.sequence,
                                     to_value=enrolment.sequence, reason=reason.strip(), actor_id=actor.id))
    db.session.add_all(events)
    if any(e.kind in ("sequence", "renewal") for e in events):
        enrolment.sequence_started_on = effective_date or utcnow().date()
        _set_review_due(enrolment)
    if not events:
        raise ValidationFailed({"sequence": _("Nothing changed.")})
    db.session.add_all(events)
    db.session.flush()
    audit.record("enrolment_change", patient_id=enrolment.patient_id, obj=enrolment,
                 detail={"changes": [e.kind for e in events]})
    return events


def end_enrolment(enrolment: Enrolment, *, reason_code: str, ended_on: date, note: str,
                  actor: Professional) -> None:
    if reason_code not in set(EndReason):
        raise ValidationFailed({"end_reason": _("Choose why the follow-up ends.")})
    if ended_on < enrolment.started_on:
        raise ValidationFailed({"ended_on": _("The end date is before the start date.")})
    enrolment.status = EnrolmentStatus.ENDED
    enrolment.ended_on = ended_on
    enrolment.end_reason = reason_code
    enrolment.active_patient_id = None
    enrolment.patient.status = PatientStatus.ENDED
    db.session.add(EnrolmentEvent(enrolment=enrolment, kind="ended", from_value=enrolment.sequence,
                                  to_value=reason_code, reason=note.strip() or reason_code, actor_id=actor.id))
    db.session.flush()
    audit.record("enrolment_end", patient_id=enrolment.patient_id, obj=enrolment, detail={"reason": reason_code})
