"""Community portal pages (phone-friendly): "My patients", pharmaceutical interviews, medication
reconciliation and GP / community nurse visits. Views parse, call one service, commit once."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.care.access import can_view
from app.care.models import Patient
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.core.time import utcnow
from app.extensions import db
from app.web.access import deny, load_patient, roles_required
from app.web.forms import apply_errors

from . import queries, services
from .forms import ReconciliationForm, ReviewForm, VisitForm, interview_form
from .models import InterviewKind, MedicationReconciliation
from .schedule import INTERVIEW_KIND_LABELS, SYMPTOMS, VISIT_KIND_LABELS

bp = Blueprint("community", __name__)

PHARMACISTS = (Role.COMMUNITY_PHARMACIST, Role.HOSPITAL_PHARMACIST)
VISITORS = (Role.GP, Role.COMMUNITY_NURSE)
PORTAL_USERS = (Role.COMMUNITY_PHARMACIST, Role.GP, Role.COMMUNITY_NURSE, Role.HOSPITAL_PHARMACIST)


def apply_nested_errors(form, exc: ValidationFailed) -> None:
    """Like ``apply_errors``, also for rows of a list ("lines-2-name")."""
    plain = {}
    for name, messages in exc.errors.items():
        parts = name.split("-")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(getattr(form, parts[0], [])):
            sub = getattr(getattr(form, parts[0])[int(parts[1])].form, parts[2])
            sub.errors = list(sub.errors) + messages
        else:
            plain[name] = messages
    if plain:
        apply_errors(form, ValidationFailed(plain))


def _to_patient(patient_id: int):
    return redirect(url_for("web.patient", patient_id=patient_id) + "#community")


@bp.app_template_global("community_panel")
def community_panel(patient_id: int) -> dict | None:
    """The community section of the patient page (the page checked access and logged the read)."""
    if not current_user.is_authenticated:
        return None
    patient = db.session.get(Patient, patient_id)
    if patient is None or not can_view(current_user, patient):
        return None
    role = current_user.role
    return {
        "interviews": queries.interviews_of(patient_id),
        "next_interview": services.next_interview_for(patient_id, services.local_today(patient)),
        "reconciliations": queries.reconciliations_of(patient_id),
        "visits": queries.visits_of(patient_id),
        "can_interview": role in PHARMACISTS,
        "can_reconcile": role in PHARMACISTS,
        "can_visit": role in VISITORS,
    }


@bp.app_template_filter("interview_kind_label")
def interview_kind_label(value: str) -> str:
    return str(INTERVIEW_KIND_LABELS.get(value, value))


@bp.app_template_filter("symptom_label")
def symptom_label(value: str) -> str:
    return str(SYMPTOMS.get(value, value))


@bp.app_template_filter("visit_kind_label")
def visit_kind_label(value: str) -> str:
    return str(VISIT_KIND_LABELS.get(value, value))


@bp.route("/community/")
@login_required
@roles_required(*PORTAL_USERS)
def my_patients():
    user = current_user._get_current_object()
    rows = queries.my_patients(user, utcnow().date())
    audit.record("list", object_type="Patient", detail={"page": "community", "results": len(rows)})
    db.session.commit()
    return render_template("community/my_patients.html", rows=rows)


@bp.route("/patients/<int:patient_id>/interviews/new", methods=["GET", "POST"])
@login_required
@roles_required(*PHARMACISTS)
def new_interview(patient_id: int):
    patient = load_patient(patient_id, "view")
    today = services.local_today(patient)
    due = services.next_interview_for(patient_id, today)
    kind = request.args.get("kind") or (due.kind if due else InterviewKind.INITIAL)
    if kind not in set(InterviewKind):
        kind = InterviewKind.INITIAL
    form = interview_form(kind, held_on=today) if request.method == "GET" else interview_form(kind)
    if form.validate_on_submit():
        try:
            services.record_interview(patient, pharmacist=current_user, kind=kind, held_on=form.held_on.data,
                                      answers=form.answers(), notes=form.notes.data)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Interview recorded."), "success")
            return _to_patient(patient_id)
    elif request.method == "GET":
        audit.record("read", patient_id=patient_id, object_type="PharmacistInterview", detail={"form": "new"})
        db.session.commit()
    status = 422 if request.method == "POST" else 200
    return render_template("community/interview_new.html", form=form, patient=patient, kind=kind, due=due,
                           kinds=INTERVIEW_KIND_LABELS), status


def _reconciliation_page(patient: Patient, form: ReconciliationForm | None, review_forms: dict, status: int):
    recs = queries.reconciliations_of(patient.id)
    for rec in recs:
        if rec.status == "submitted" and rec.id not in review_forms:
            review_forms[rec.id] = ReviewForm(prefix=f"r{rec.id}", formdata=None)
    return render_template("community/reconciliation.html", patient=patient, form=form, recs=recs,
                           review_forms=review_forms if current_user.role == Role.HOSPITAL_PHARMACIST else {},
                           ), status


@bp.route("/patients/<int:patient_id>/reconciliation", methods=["GET", "POST"])
@login_required
@roles_required(*PHARMACISTS)
def reconciliation(patient_id: int):
    patient = load_patient(patient_id, "view")
    submitter = current_user.role == Role.COMMUNITY_PHARMACIST
    if request.method == "POST" and not submitter:
        deny(403, patient_id=patient_id, reason="role:reconciliation_submit")
    form = ReconciliationForm() if submitter else None
    if form is not None and form.validate_on_submit():
        try:
            services.submit_reconciliation(patient, pharmacist=current_user, lines=form.line_data(),
                                           nothing_else=form.nothing_else.data)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_nested_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Medication list sent to the hospital pharmacist."), "success")
            return _to_patient(patient_id)
    elif request.method == "GET":
        audit.record("read", patient_id=patient_id, object_type="MedicationReconciliation")
        db.session.commit()
    return _reconciliation_page(patient, form, {}, 422 if request.method == "POST" else 200)


@bp.route("/patients/<int:patient_id>/reconciliation/<int:rec_id>/review", methods=["POST"])
@login_required
@roles_required(Role.HOSPITAL_PHARMACIST)
def review_reconciliation(patient_id: int, rec_id: int):
    patient = load_patient(patient_id, "view")
    form = ReviewForm(prefix=f"r{rec_id}")
    if form.validate_on_submit():
        rec = db.session.get(MedicationReconciliation, rec_id)
        if rec is None or rec.patient_id != patient_id:
            deny(404, patient_id=patient_id, reason="reconciliation_not_found")
        try:
            services.review_reconciliation(rec, reviewer=current_user, note=form.note.data)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Review recorded."), "success")
            return _to_patient(patient_id)
    # Input is checked before the row is looked up: the patient's scope is already verified.
    return _reconciliation_page(patient, None, {rec_id: form}, 422)


@bp.route("/patients/<int:patient_id>/visits/new", methods=["GET", "POST"])
@login_required
@roles_required(*VISITORS)
def new_visit(patient_id: int):
    patient = load_patient(patient_id, "view")
    form = VisitForm()
    if request.method == "GET":
        form.visit_on.data = services.local_today(patient)
        form.kind.data = "home" if current_user.role == Role.COMMUNITY_NURSE else "office"
    if form.validate_on_submit():
        try:
            visit = services.record_visit(patient, professional=current_user, data=form.service_data())
        except ValidationFailed as exc:
            db.session.rollback()
            apply_nested_errors(form, exc)
        else:
            db.session.commit()
            if visit.alert_id:
                flash(_("Visit recorded. The hospital team has been alerted."), "warning")
            else:
                flash(_("Visit recorded."), "success")
            return _to_patient(patient_id)
    elif request.method == "GET":
        audit.record("read", patient_id=patient_id, object_type="Visit", detail={"form": "new"})
        db.session.commit()
    status = 422 if request.method == "POST" else 200
    return render_template("community/visit_new.html", form=form, patient=patient), status
