"""Patient identity, contact and care team changes. Services flush; the caller commits."""
from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import CLINICAL_ROLES, Role
from app.core.time import utcnow
from app.core.validators import check_ins, check_timezone, normalise_phone
from app.extensions import db

from .models import CareTeamMember, Channel, Patient, PatientStatus, Professional, Site

PATIENT_FIELDS = (
    "mrn", "ins", "first_name", "last_name", "birth_date", "phone", "language", "channel",
    "checkin_weekday", "checkin_hour", "timezone", "consent_given", "consent_date", "status",
)


def _clean_patient_fields(data: dict[str, Any], *, site_id: int, patient: Patient | None,
                          region: str) -> dict[str, Any]:
    """Validate what can only be checked here (formats, uniqueness, consent); raise all at once."""
    errors: dict[str, str] = {}
    clean = {k: data[k] for k in PATIENT_FIELDS if k in data}
    for name in ("mrn", "first_name", "last_name"):
        if name in clean:
            clean[name] = (clean[name] or "").strip()
            if not clean[name]:
                errors[name] = _("This field is required.")
    if "channel" in clean and clean["channel"] not in (Channel.SMS, Channel.VOICE):
        errors["channel"] = _("Choose SMS or voice call.")
    channel = clean.get("channel", patient.channel if patient else Channel.SMS)
    if "phone" in clean or "channel" in clean:
        raw_phone = clean.get("phone", patient.phone if patient else "")
        try:
            clean["phone"] = normalise_phone(raw_phone, region, mobile_required=channel == Channel.SMS)
        except ValueError as exc:
            errors["phone"] = str(exc)
    if clean.get("ins"):
        try:
            clean["ins"] = check_ins(clean["ins"])
        except ValueError as exc:
            errors["ins"] = str(exc)
    elif "ins" in clean:
        clean["ins"] = None
    if "timezone" in clean:
        try:
            check_timezone(clean["timezone"])
        except ValueError as exc:
            errors["timezone"] = str(exc)
    if "language" in clean and clean["language"] not in ("fr", "en"):
        errors["language"] = _("Choose French or English.")
    if "status" in clean and clean["status"] not in set(PatientStatus):
        errors["status"] = _("Unknown status.")
    if "checkin_weekday" in clean and not 0 <= int(clean["checkin_weekday"]) <= 6:
        errors["checkin_weekday"] = _("Choose a day of the week.")
    if "checkin_hour" in clean and not 0 <= int(clean["checkin_hour"]) <= 23:
        errors["checkin_hour"] = _("Choose an hour between 0 and 23.")
    today = utcnow().date()
    birth = clean.get("birth_date")
    if birth is not None and (birth > today or birth < date(1900, 1, 1)):
        errors["birth_date"] = _("The birth date must be in the past.")
    consent = clean.get("consent_given", patient.consent_given if patient else False)
    consent_date = clean.get("consent_date", patient.consent_date if patient else None)
    if not consent:
        errors["consent_given"] = _("The patient's consent is required for remote follow-up.")
    elif consent_date is None:
        errors["consent_date"] = _("Give the date of consent.")
    elif consent_date > today:
        errors["consent_date"] = _("The consent date cannot be in the future.")
    if "mrn" in clean and "mrn" not in errors:
        clash = db.session.scalar(
            select(Patient.id).where(Patient.site_id == site_id, Patient.mrn == clean["mrn"])
        )
        if clash is not None and (patient is None or clash != patient.id):
            errors["mrn"] = _("This MRN is already used at this site.")
    if clean.get("phone") and "phone" not in errors and (patient is None or clean["phone"] != patient.phone) \
            and not data.get("shared_phone_confirmed"):
        sharer = db.session.scalar(select(Patient.id).where(
            Patient.phone == clean["phone"], Patient.id != (patient.id if patient is not None else -1)).limit(1))
        if sharer is not None:  # the other patient may be at another site: not named
            errors["phone"] = _("This number is already the phone of another patient followed on the platform. "
                                "If the phone is shared (a couple, a relative), tick the box below to confirm: "
                                "each patient is then asked in turn, and each text gives the first name of "
                                "the patient it is for.")
    if clean.get("ins") and "ins" not in errors:
        clash = db.session.scalar(select(Patient.id).where(Patient.ins == clean["ins"]))
        if clash is not None and (patient is None or clash != patient.id):
            errors["ins"] = _("This INS is already registered.")
    if errors:
        raise ValidationFailed(errors)
    return clean


def create_patient(data: dict[str, Any], *, site: Site, actor: Professional, region: str = "FR") -> Patient:
    clean = _clean_patient_fields(data, site_id=site.id, patient=None, region=region)
    patient = Patient(site_id=site.id, consent_recorded_by_id=actor.id, **clean)
    patient.timezone = patient.timezone or site.timezone
    db.session.add(patient)
    db.session.flush()
    audit.record("create", patient_id=patient.id, obj=patient,
                 detail={"fields": sorted(k for k in clean if k != "consent_given") + ["consent_given"]})
    return patient


def update_patient(patient: Patient, data: dict[str, Any], *, actor: Professional, region: str = "FR") -> Patient:
    clean = _clean_patient_fields(data, site_id=patient.site_id, patient=patient, region=region)
    for key, value in clean.items():
        setattr(patient, key, value)
    changed = audit.changed_fields(patient)
    if "consent_given" in changed or "consent_date" in changed:
        patient.consent_recorded_by_id = actor.id
    if changed:
        db.session.flush()
        audit.record("update", patient_id=patient.id, obj=patient, detail={"fields": sorted(changed)})
    return patient


def add_care_team_member(patient: Patient, *, professional_id: int, is_lead: bool, start_date: date,
                         actor: Professional) -> CareTeamMember:
    member_prof = db.session.get(Professional, professional_id)
    if member_prof is None or not member_prof.active or member_prof.role not in CLINICAL_ROLES:
        raise ValidationFailed({"professional_id": _("Choose an active professional.")})
    if member_prof.site_id is not None and member_prof.site_id != patient.site_id:
        raise ValidationFailed({"professional_id": _("This professional works at another hospital site.")})
    today = utcnow().date()
    for m in patient.care_team:
        if m.professional_id == professional_id and (m.end_date is None or m.end_date >= today):
            raise ValidationFailed({"professional_id": _("Already in the care team.")})
    if is_lead:
        for m in patient.care_team:
            if m.is_lead and m.role == member_prof.role and m.end_date is None:
                m.is_lead = False
    member = CareTeamMember(
        patient=patient, professional_id=professional_id, role=member_prof.role,
        is_lead=is_lead, start_date=start_date,
    )
    db.session.add(member)
    db.session.flush()
    audit.record("care_team_add", patient_id=patient.id, obj=member,
                 detail={"professional_id": professional_id, "role": member_prof.role, "lead": is_lead})
    return member


def end_care_team_member(member: CareTeamMember, *, end_date: date, actor: Professional) -> None:
    if end_date < member.start_date:
        raise ValidationFailed({"end_date": _("The end date is before the start date.")})
    member.end_date = end_date
    member.is_lead = False
    audit.record("care_team_end", patient_id=member.patient_id, obj=member,
                 detail={"professional_id": member.professional_id})


def care_team_candidates(patient: Patient) -> list[Professional]:
    """The site's own active clinicians, for the picker. Community professionals (thousands in a
    region) are found by their e-mail instead: see ``find_community_professional``."""
    rows = db.session.scalars(
        select(Professional).where(
            Professional.active.is_(True),
            Professional.role.in_([r.value for r in CLINICAL_ROLES]),
            Professional.site_id == patient.site_id,
        ).order_by(Professional.last_name, Professional.first_name)
    )
    return list(rows)


def find_community_professional(email: str) -> int:
    """The id of the active community professional with this e-mail, or a field error."""
    prof = db.session.scalar(select(Professional).where(
        Professional.email == (email or "").strip().lower(), Professional.active.is_(True),
        Professional.site_id.is_(None), Professional.role.in_([r.value for r in CLINICAL_ROLES])))
    if prof is None:
        raise ValidationFailed({"community_email": _("No active community professional has this e-mail.")})
    return prof.id
