"""Pages: record a dispensing (pharmacists), record an adherence report (pharmacists, nurses,
GPs), and the adherence section of the patient page. Views parse, call one service, commit."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.core import audit
from app.core.errors import ValidationFailed
from app.core.time import utcnow
from app.extensions import db
from app.web.access import load_patient, roles_required
from app.web.forms import apply_errors

from . import services
from .forms import AdherenceReportForm, DispensingForm
from .models import ASSESSMENT_LABELS
from .panel import PHARMACISTS, REPORTERS, dispensing_form_context, patient_panel
from .subscribers import connect

bp = Blueprint("adherence", __name__)
connect()


@bp.app_template_global("adherence_panel")
def adherence_panel(patient_id: int):
    """The adherence section's data for the patient page (the page itself checked the access and
    wrote the read audit row; this checks the access again and adds nothing to the log)."""
    if not current_user.is_authenticated:
        return None
    today = utcnow().date()
    panel = patient_panel(patient_id, current_user._get_current_object(), today)
    if panel is not None and panel.can_report:
        panel.report_form = AdherenceReportForm(prefix="ar", formdata=None, reported_on=today)
    return panel


@bp.app_template_filter("assessment_label")
def assessment_label(value: str | None) -> str:
    return str(ASSESSMENT_LABELS.get(value, value or ""))


def _to_patient(patient_id: int):
    return redirect(url_for("web.patient", patient_id=patient_id) + "#adherence")


def _audit_form_read(patient_id: int, detail: dict) -> None:
    """The form shows the patient's record (name, prescription, warnings): a read to log."""
    audit.record("read", patient_id=patient_id, object_type="Dispensing", detail=detail)
    db.session.commit()


@bp.route("/patients/<int:patient_id>/dispensings/new", methods=["GET", "POST"])
@login_required
@roles_required(*PHARMACISTS)
def new_dispensing(patient_id: int):
    patient = load_patient(patient_id, "view")
    today = utcnow().date()
    ctx = dispensing_form_context(patient.id, today)
    form = DispensingForm()
    form.drug_id.choices = ctx.choices
    warnings = []
    if request.method == "GET":
        form.drug_id.data = ctx.default_drug_id
        form.strength.data = ctx.default_strengths.get(ctx.default_drug_id, "")
        form.dispensed_on.data = today
        _audit_form_read(patient.id, {"form": "new"})
    elif form.validate_on_submit():
        confirmed = form.confirmed()
        try:
            dispensing, warnings = services.record_dispensing(
                patient, form.service_data(), current_user, confirm_duplicate="duplicate" in confirmed,
                confirm_unprescribed="not_prescribed" in confirmed)
        except services.NeedsConfirmation as exc:
            db.session.rollback()
            warnings = exc.warnings
            form.confirm_codes.data = ",".join(exc.codes)
            form.confirm.data = False
            _audit_form_read(patient.id, {"form": "new", "confirm": exc.codes})
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
            _audit_form_read(patient.id, {"form": "new", "invalid": sorted(exc.errors)})
        else:
            db.session.commit()
            flash(_("Dispensing recorded: %(days)s days of supply.", days=dispensing.days_supply), "success")
            for warning in warnings:
                flash(warning.message, "warning")
            return _to_patient(patient.id)
    else:
        _audit_form_read(patient.id, {"form": "new", "invalid": sorted(form.errors)})
    status = 422 if request.method == "POST" else 200
    return render_template("adherence/dispensing_new.html", form=form, patient=patient, warnings=warnings,
                           regimens=ctx.regimens, strengths={str(k): v for k, v in ctx.default_strengths.items()},
                           needs_confirmation=bool(form.confirm_codes.data)), status


@bp.route("/patients/<int:patient_id>/adherence-reports", methods=["POST"])
@login_required
@roles_required(*REPORTERS)
def add_report(patient_id: int):
    patient = load_patient(patient_id, "view")
    form = AdherenceReportForm(prefix="ar")
    if not form.validate_on_submit():
        for field in form:
            for message in field.errors:
                flash(f"{field.label.text}: {message}", "error")
        return _to_patient(patient.id)
    try:
        services.record_report(patient, form.service_data(), current_user)
    except ValidationFailed as exc:
        db.session.rollback()
        for messages in exc.errors.values():
            flash(" ".join(messages), "error")
    else:
        db.session.commit()
        flash(_("Adherence report recorded."), "success")
    return _to_patient(patient.id)
