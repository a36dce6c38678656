"""Dashboard, patient record, enrolment and edit pages. Views: parse, call one service, render."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from app.care import access as care_access
from app.care import services as care_services
from app.care.models import CareTeamMember, Professional
from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import CLINICAL_ROLES, PATIENT_EDITORS, Role
from app.core.time import utcnow
from app.extensions import db
from app.pathways import queries
from app.pathways import services as pathway_services
from app.pathways.checkins.queries import checkin_history, messages_by_checkin
from app.pathways.models import Drug, Prescription

from .access import load_patient, load_record, roles_required
from .rendering import render_then_commit
from .forms import (
    CareTeamForm, EndEnrolmentForm, EndMemberForm, EnrolForm, EnrolmentChangeForm,
    PatientEditForm, PrescriptionEventForm, PrescriptionForm, SearchForm, apply_errors,
)

bp = Blueprint("web", __name__)


def _drug_choices():
    drugs = db.session.scalars(select(Drug).where(Drug.active.is_(True)).order_by(Drug.inn))
    return [(d.id, f"{d.inn} ({d.cycle_label})") for d in drugs]


def _oncologist_choices(site_id: int):
    rows = db.session.scalars(select(Professional).where(
        Professional.site_id == site_id, Professional.role == Role.ONCOLOGIST, Professional.active.is_(True),
    ).order_by(Professional.last_name))
    return [(p.id, f"Dr {p.display_name}") for p in rows]


@bp.route("/")
@login_required
def dashboard():
    if current_user.role == Role.ADMIN:
        return redirect(url_for("admin.index"))
    if current_user.role not in CLINICAL_ROLES:
        abort(403)
    form = SearchForm(request.args)
    form.drug_id.choices = [("", "—")] + _drug_choices()
    form.validate()
    filters = queries.PatientFilters(
        q=form.q.data or "", sequence=form.sequence.data or "", status=form.status.data or "",
        lead_team=form.lead_team.data or "",
        drug_id=form.drug_id.data if not form.drug_id.errors else None,
        review_due=bool(form.review.data),
    )
    page_no = request.args.get("page", 1, type=int) or 1
    page = queries.patient_list(current_user, filters, page_no, current_app.config["PAGE_SIZE"])
    audit.record("list", object_type="Patient", detail={"page": page.page, "results": len(page.rows)})
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_then_commit("web/dashboard.html", form=form, page=page, args=args, today=utcnow().date(),
                           can_enrol=current_user.role in PATIENT_EDITORS)


@bp.route("/patients/new", methods=["GET", "POST"])
@login_required
@roles_required(*PATIENT_EDITORS)
def enrol():
    site = current_user.site
    form = EnrolForm()
    form.drug_id.choices = _drug_choices()
    form.prescriber_id.choices = _oncologist_choices(site.id)
    if request.method == "GET":
        today = utcnow().date()
        form.start_date.data = form.start_date.data or today
        form.consent_date.data = today
        if current_user.role == Role.ONCOLOGIST:
            form.prescriber_id.data = current_user.id
    if form.validate_on_submit():
        try:
            patient = pathway_services.enrol_new_patient(
                form.data, site=site, actor=current_user, region=current_app.config["DEFAULT_PHONE_REGION"])
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Patient enrolled."), "success")
            return redirect(url_for("web.patient", patient_id=patient.id))
    status = 422 if request.method == "POST" else 200
    return render_template("web/enrol.html", form=form), status


@bp.route("/patients/<int:patient_id>")
@login_required
def patient(patient_id: int):
    record = load_record(patient_id)
    audit.record("read", patient_id=patient_id, object_type="Patient", object_id=patient_id)
    user = current_user
    today = utcnow().date()
    forms = {}
    if care_access.can_edit(user, record.patient):
        forms["care_team"] = CareTeamForm(prefix="ct", start_date=today)
        forms["care_team"].professional_id.choices = [("", "—")] + [
            (p.id, f"{p.display_name} · {p.role}") for p in care_services.care_team_candidates(record.patient)]
        forms["end_member"] = EndMemberForm(prefix="em", end_date=today)
        if record.enrolment:
            forms["enrolment"] = EnrolmentChangeForm(prefix="en", obj=record.enrolment)
            forms["end_enrolment"] = EndEnrolmentForm(prefix="ee", ended_on=today)
    if care_access.can_prescribe(user, record.patient):
        forms["rx_event"] = PrescriptionEventForm(prefix="rx", effective_date=today)
    history = checkin_history(patient_id, language=str(get_locale()), limit=12)
    messages = messages_by_checkin([row.checkin.id for row in history])
    return render_then_commit("web/patient.html", record=record, forms=forms, today=today,
                           history=history, messages=messages,
                           can_edit=care_access.can_edit(user, record.patient),
                           can_prescribe=care_access.can_prescribe(user, record.patient))


@bp.route("/patients/<int:patient_id>/edit", methods=["GET", "POST"])
@login_required
def edit_patient(patient_id: int):
    patient = load_patient(patient_id, "edit")
    form = PatientEditForm(obj=patient)
    if form.validate_on_submit():
        try:
            care_services.update_patient(patient, form.data, actor=current_user,
                                         region=current_app.config["DEFAULT_PHONE_REGION"])
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Changes saved."), "success")
            return redirect(url_for("web.patient", patient_id=patient_id))
    elif request.method == "GET":
        audit.record("read", patient_id=patient_id, object_type="Patient", object_id=patient_id,
                     detail={"form": "edit"})
        db.session.commit()
    status = 422 if request.method == "POST" else 200
    return render_template("web/patient_edit.html", form=form, patient=patient), status


def _back(patient_id: int, anchor: str = ""):
    return redirect(url_for("web.patient", patient_id=patient_id) + anchor)


def _flash_errors(exc: ValidationFailed) -> None:
    for messages in exc.errors.values():
        for message in messages:
            flash(message, "error")


def _flash_form_errors(form) -> None:
    for field in form:
        for message in field.errors:
            flash(f"{field.label.text}: {message}", "error")


@bp.route("/patients/<int:patient_id>/care-team", methods=["POST"])
@login_required
def add_member(patient_id: int):
    patient = load_patient(patient_id, "edit")
    form = CareTeamForm(prefix="ct")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(patient_id, "#care-team")
    try:
        professional_id = form.professional_id.data
        if form.community_email.data:
            professional_id = care_services.find_community_professional(form.community_email.data)
        if not professional_id:
            raise ValidationFailed({"professional_id": _("Choose a professional or give an e-mail.")})
        care_services.add_care_team_member(patient, professional_id=professional_id,
                                           is_lead=form.is_lead.data, start_date=form.start_date.data,
                                           actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        _flash_errors(exc)
    else:
        db.session.commit()
        flash(_("Care team updated."), "success")
    return _back(patient_id, "#care-team")


@bp.route("/patients/<int:patient_id>/care-team/<int:member_id>/end", methods=["POST"])
@login_required
def end_member(patient_id: int, member_id: int):
    load_patient(patient_id, "edit")
    member = db.session.get(CareTeamMember, member_id)
    if member is None or member.patient_id != patient_id:
        abort(404)
    form = EndMemberForm(prefix="em")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(patient_id, "#care-team")
    try:
        care_services.end_care_team_member(member, end_date=form.end_date.data, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        _flash_errors(exc)
    else:
        db.session.commit()
        flash(_("Care team updated."), "success")
    return _back(patient_id, "#care-team")


@bp.route("/patients/<int:patient_id>/prescriptions/new", methods=["GET", "POST"])
@login_required
def new_prescription(patient_id: int):
    patient = load_patient(patient_id, "prescribe")
    form = PrescriptionForm()
    form.drug_id.choices = _drug_choices()
    form.prescriber_id.choices = _oncologist_choices(patient.site_id)
    if request.method == "GET":
        form.start_date.data = utcnow().date()
        if current_user.role == Role.ONCOLOGIST:
            form.prescriber_id.data = current_user.id
    if form.validate_on_submit():
        try:
            pathway_services.add_prescription(patient, form.data, actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
        else:
            db.session.commit()
            flash(_("Prescription recorded."), "success")
            return _back(patient_id, "#prescriptions")
    status = 422 if request.method == "POST" else 200
    return render_template("web/prescription_new.html", form=form, patient=patient), status


@bp.route("/patients/<int:patient_id>/prescriptions/<int:rx_id>/events", methods=["POST"])
@login_required
def prescription_event(patient_id: int, rx_id: int):
    load_patient(patient_id, "prescribe")
    rx = db.session.get(Prescription, rx_id)
    if rx is None or rx.patient_id != patient_id:
        abort(404)
    form = PrescriptionEventForm(prefix="rx")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(patient_id, "#prescriptions")
    try:
        pathway_services.record_prescription_event(
            rx, kind=form.kind.data, effective_date=form.effective_date.data, reason=form.reason.data,
            new_dose=form.new_dose.data, actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        _flash_errors(exc)
    else:
        db.session.commit()
        flash(_("Prescription updated."), "success")
    return _back(patient_id, "#prescriptions")


@bp.route("/patients/<int:patient_id>/enrolment", methods=["POST"])
@login_required
def change_enrolment(patient_id: int):
    load_patient(patient_id, "edit")
    enrolment = pathway_services.current_enrolment(patient_id)
    if enrolment is None:
        abort(404)
    form = EnrolmentChangeForm(prefix="en")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(patient_id, "#pathway")
    try:
        pathway_services.change_enrolment(
            enrolment, actor=current_user, reason=form.reason.data, pathway=form.pathway.data,
            sequence=form.sequence.data, lead_team=form.lead_team.data, renew=form.renew.data)
    except ValidationFailed as exc:
        db.session.rollback()
        _flash_errors(exc)
    else:
        db.session.commit()
        flash(_("Pathway updated."), "success")
    return _back(patient_id, "#pathway")


@bp.route("/patients/<int:patient_id>/enrolment/end", methods=["POST"])
@login_required
def end_enrolment(patient_id: int):
    load_patient(patient_id, "edit")
    enrolment = pathway_services.current_enrolment(patient_id)
    if enrolment is None:
        abort(404)
    form = EndEnrolmentForm(prefix="ee")
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(patient_id, "#pathway")
    try:
        pathway_services.end_enrolment(enrolment, reason_code=form.end_reason.data, ended_on=form.ended_on.data,
                                       note=form.note.data or "", actor=current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        _flash_errors(exc)
    else:
        db.session.commit()
        flash(_("Follow-up ended."), "success")
    return _back(patient_id, "#pathway")
