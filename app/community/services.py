"""Changes made from the community portal. Services take plain arguments, check the rules,
flush (never commit) and raise ValidationFailed naming the field at fault."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app.care.models import Patient, Professional
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.extensions import db
from app.pathways.models import Drug, Enrolment, Prescription
from app.triage.services import raise_alert

from . import schedule
from .models import (
    InterviewKind,
    MedicationReconciliation,
    PharmacistInterview,
    ReconciliationStatus,
    Visit,
    VisitKind,
)


def local_today(patient: Patient) -> date:
    """The patient's calendar day: a visit at 00:30 in Paris is not 'tomorrow' in UTC terms."""
    return utcnow().astimezone(ZoneInfo(patient.timezone or "Europe/Paris")).date()


def enrolled_on(patient_id: int) -> date | None:
    """Start of the current enrolment, else of the most recent one."""
    return db.session.scalar(
        select(Enrolment.started_on).where(Enrolment.patient_id == patient_id)
        .order_by(Enrolment.active_patient_id.is_(None), Enrolment.started_on.desc()).limit(1))


def is_hormonal(patient_id: int, on: date) -> bool:
    """True when every current oral anticancer drug of the patient is a long-term hormone drug."""
    classes = set(db.session.scalars(
        select(Drug.drug_class).join(Prescription, Prescription.drug_id == Drug.id).where(
            Prescription.patient_id == patient_id, Prescription.start_date <= on,
            (Prescription.end_date.is_(None)) | (Prescription.end_date >= on))))
    return bool(classes) and classes <= schedule.HORMONAL_DRUG_CLASSES


def next_interview_for(patient_id: int, on: date) -> schedule.Due | None:
    start = enrolled_on(patient_id)
    if start is None:
        return None
    history = list(db.session.execute(select(PharmacistInterview.kind, PharmacistInterview.held_on)
                                      .where(PharmacistInterview.patient_id == patient_id)))
    return schedule.next_interview(start, history, is_hormonal(patient_id, on))


def _check_day(field: str, day: date | None, patient: Patient, errors: dict) -> None:
    if day is None:
        errors[field] = _("Enter the date.")
    elif day > local_today(patient):
        errors[field] = _("The date cannot be in the future.")


def record_interview(patient: Patient, *, pharmacist: Professional, kind: str, held_on: date | None,
                     answers: dict[str, dict], notes: str | None) -> PharmacistInterview:
    errors: dict = {}
    if kind not in set(InterviewKind):
        raise ValidationFailed({"kind": _("Choose the kind of interview.")})
    start = enrolled_on(patient.id)
    if start is None:
        errors["held_on"] = _("The patient is not enrolled in the follow-up.")
    _check_day("held_on", held_on, patient, errors)
    if "held_on" not in errors and held_on < start:
        errors["held_on"] = _("The interview cannot be before the enrolment (%(date)s).", date=start.isoformat())
    clean = {}
    for question in schedule.INTERVIEW_QUESTIONS[kind]:
        given = answers.get(question.code) or {}
        answer, comment = given.get("answer"), (given.get("comment") or "").strip()
        if answer not in ("yes", "no"):
            errors[f"q_{question.code}"] = _("Answer yes or no.")
        elif len(comment) > 500:
            errors[f"c_{question.code}"] = _("At most 500 characters.")
        else:
            clean[question.code] = {"answer": answer, "comment": comment}
    if errors:
        raise ValidationFailed(errors)
    history = list(db.session.execute(select(PharmacistInterview.kind, PharmacistInterview.held_on)
                                      .where(PharmacistInterview.patient_id == patient.id)))
    due = schedule.next_interview(start, history + [(kind, held_on)], is_hormonal(patient.id, held_on))
    row = PharmacistInterview(patient_id=patient.id, pharmacist_id=pharmacist.id, kind=kind, held_on=held_on,
                              answers=clean, notes=(notes or "").strip() or None,
                              next_due_kind=due.kind, next_due_on=due.on)
    db.session.add(row)
    db.session.flush()
    audit.record("interview_add", patient_id=patient.id, obj=row, detail={"kind": kind})
    return row


LINE_LIMITS = {"name": 120, "dose": 60, "frequency": 60, "note": 300}


def submit_reconciliation(patient: Patient, *, pharmacist: Professional, lines: list[dict],
                          nothing_else: bool) -> MedicationReconciliation:
    """``lines`` are the form's rows in order (blank rows are skipped, errors name their index)."""
    errors: dict = {}
    clean = []
    for index, line in enumerate(lines):
        values = {key: (line.get(key) or "").strip() for key in LINE_LIMITS}
        if not any(values.values()):
            continue
        if not values["name"]:
            errors[f"lines-{index}-name"] = _("Enter the medicine's name.")
        for key, limit in LINE_LIMITS.items():
            if len(values[key]) > limit:
                errors[f"lines-{index}-{key}"] = _("At most %(n)s characters.", n=limit)
        clean.append(values)
    if not clean and not nothing_else:
        errors["nothing_else"] = _("List the other medicines, or tick this box if there is none.")
    elif clean and nothing_else:
        errors["nothing_else"] = _("You listed medicines: untick this box.")
    if errors:
        raise ValidationFailed(errors)
    row = MedicationReconciliation(patient_id=patient.id, lines=clean, submitted_by_id=pharmacist.id,
                                   submitted_at=utcnow(), status=ReconciliationStatus.SUBMITTED)
    db.session.add(row)
    db.session.flush()
    audit.record("reconciliation_submit", patient_id=patient.id, obj=row, detail={"lines": len(clean)})
    return row


def review_reconciliation(rec: MedicationReconciliation, *, reviewer: Professional,
                          note: str | None) -> MedicationReconciliation:
    note = (note or "").strip()
    if rec.status != ReconciliationStatus.SUBMITTED:
        raise ValidationFailed({"note": _("This list was already reviewed.")})
    if not note:
        raise ValidationFailed({"note": _("Write what you checked or changed.")})
    if len(note) > 2000:
        raise ValidationFailed({"note": _("At most %(n)s characters.", n=2000)})
    rec.status = ReconciliationStatus.REVIEWED
    rec.reviewed_by_id = reviewer.id
    rec.reviewed_at = utcnow()
    rec.review_note = note
    db.session.flush()
    audit.record("reconciliation_review", patient_id=rec.patient_id, obj=rec)
    return rec


def _check_range(field: str, value, errors: dict) -> None:
    low, high = schedule.VITAL_RANGES[field]
    if value is not None and not (low <= value <= high):
        errors[field] = _("Must be between %(low)s and %(high)s.", low=low, high=high)


def _side_effects(rows: list[dict], errors: dict) -> list[dict]:
    clean, seen = [], set()
    low, high = schedule.GRADE_RANGE
    for index, row in enumerate(rows):
        symptom, grade = row.get("symptom") or "", row.get("grade")
        if not symptom and grade is None:
            continue
        if symptom not in schedule.SYMPTOMS:
            errors[f"side_effects-{index}-symptom"] = _("Choose the symptom.")
        elif symptom in seen:
            errors[f"side_effects-{index}-symptom"] = _("This symptom is already listed.")
        if grade is None:
            errors[f"side_effects-{index}-grade"] = _("Enter the grade (0 to 4).")
        elif not (low <= grade <= high):
            errors[f"side_effects-{index}-grade"] = _("The grade goes from 0 to 4.")
        seen.add(symptom)
        clean.append({"symptom": symptom, "grade": grade})
    return clean


def record_visit(patient: Patient, *, professional: Professional, data: dict) -> Visit:
    """Record a visit; a severe finding or a concern raises an alert for the hospital team in the
    same transaction."""
    errors: dict = {}
    if data.get("kind") not in set(VisitKind):
        errors["kind"] = _("Choose the kind of visit.")
    _check_day("visit_on", data.get("visit_on"), patient, errors)
    for field in ("systolic", "diastolic", "temperature", "weight_kg"):
        _check_range(field, data.get(field), errors)
    systolic, diastolic = data.get("systolic"), data.get("diastolic")
    if (systolic is None) != (diastolic is None):
        errors["diastolic" if diastolic is None else "systolic"] = _("Enter both blood pressure values.")
    elif systolic is not None and "systolic" not in errors and diastolic >= systolic:
        errors["diastolic"] = _("The diastolic pressure must be below the systolic pressure.")
    side_effects = _side_effects(data.get("side_effects") or [], errors)
    concern = bool(data.get("concern") or data.get("concern_urgent"))
    concern_text = (data.get("concern_text") or "").strip()
    if concern and not concern_text:
        errors["concern_text"] = _("Say what worries you, for the hospital team.")
    if errors:
        raise ValidationFailed(errors)
    if _visit_exists(patient.id, professional.id, data["visit_on"], data["kind"]):
        raise ValidationFailed({"visit_on": _("This visit is already recorded (same day and kind).")})
    visit = Visit(patient_id=patient.id, professional_id=professional.id, visit_on=data["visit_on"],
                  kind=data["kind"], systolic=systolic, diastolic=diastolic, temperature=data.get("temperature"),
                  weight_kg=data.get("weight_kg"), side_effects=side_effects,
                  actions_taken=(data.get("actions_taken") or "").strip() or None, concern=concern,
                  concern_urgent=bool(data.get("concern_urgent")), concern_text=concern_text or None)
    try:
        with db.session.begin_nested():  # a double tap racing this one hits the unique constraint
            db.session.add(visit)
            db.session.flush()
    except IntegrityError:
        raise ValidationFailed({"visit_on": _("This visit is already recorded (same day and kind).")}) from None
    audit.record("visit_add", patient_id=patient.id, obj=visit, detail={"kind": visit.kind})
    _alert_for(visit, professional)
    return visit


def _visit_exists(patient_id: int, professional_id: int, visit_on: date, kind: str) -> bool:
    return bool(db.session.scalar(select(exists().where(
        Visit.patient_id == patient_id, Visit.professional_id == professional_id,
        Visit.visit_on == visit_on, Visit.kind == kind))))


REPORTER_LABELS = {"gp": "GP", "community_nurse": "community nurse"}


def visit_findings(visit: Visit) -> list[tuple[str, str, str]]:
    """(severity, reason code, English text) of each finding that needs the hospital team."""
    found = []
    for row in visit.side_effects:
        label = row["symptom"].replace("_", " ")
        if row["grade"] >= schedule.RED_GRADE:
            found.append(("red", "visit_severe_side_effect", f"grade {row['grade']} {label}"))
        elif row["grade"] == schedule.ORANGE_GRADE:
            found.append(("orange", "visit_side_effect", f"grade 2 {label}"))
    if visit.temperature is not None and visit.temperature >= schedule.FEVER_C:
        found.append(("red", "visit_fever", f"temperature {visit.temperature} C"))
    if visit.concern:
        severity = "red" if visit.concern_urgent else "orange"
        prefix = "urgent concern" if visit.concern_urgent else "concern"
        found.append((severity, "visit_concern", f"{prefix}: {visit.concern_text}"))
    return sorted(found, key=lambda f: f[0] != "red")


def _alert_for(visit: Visit, professional: Professional) -> None:
    found = visit_findings(visit)
    if not found:
        return
    severity, reason_code, _text = found[0]
    who = f"{REPORTER_LABELS.get(professional.role, professional.role)} {professional.display_name}"
    summary = f"Reported by {who} ({visit.kind} visit {visit.visit_on.isoformat()}): " + "; ".join(
        text for _sev, _code, text in found)
    alert = raise_alert(patient_id=visit.patient_id, severity=severity, source="professional",
                        reason_code=reason_code, summary=summary,
                        detail={"visit_id": visit.id, "reporter_id": professional.id,
                                "reasons": [code for _sev, code, _t in found]})
    visit.alert_id = alert.id
    db.session.flush()
