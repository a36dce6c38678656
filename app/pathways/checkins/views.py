"""The check-in pages of the hospital team: the pre-consultation summary and a nurse's phone
follow-up recorded with the questionnaire. Views parse, call one service, render; the request
commits once."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from app.core import audit
from app.core.errors import ValidationFailed
from app.core.roles import HOSPITAL_ROLES
from app.core.time import utcnow
from app.extensions import db
from app.web.access import load_patient, load_record, roles_required
from app.web.rendering import render_then_commit

from . import nurse_call as calls
from .summary import build

bp = Blueprint("checkin_pages", __name__)


class NurseCallForm(FlaskForm):
    """Only the CSRF token: the answers are one field per questionnaire item, read by the view."""


@bp.route("/patients/<int:patient_id>/summary")
@login_required
@roles_required(*HOSPITAL_ROLES)
def summary(patient_id: int):
    """One printable page for the oncologist before the consultation."""
    record = load_record(patient_id)
    today = utcnow().date()
    try:
        since = date.fromisoformat(request.args.get("since", ""))
    except ValueError:
        since = today - timedelta(days=42)
    since = min(since, today)
    data = build(patient_id, since)
    audit.record("read", patient_id=patient_id, object_type="Summary", detail={"since": since.isoformat()})
    return render_then_commit("checkins/summary.html", record=record, s=data, today=today,
                           plot=data.plot_data(str(get_locale())))


@bp.route("/patients/<int:patient_id>/calls/new", methods=["GET", "POST"])
@login_required
@roles_required(*HOSPITAL_ROLES)
def nurse_call(patient_id: int):
    """A phone follow-up with the questionnaire: it counts as the week's check-in."""
    patient = load_patient(patient_id, "view")
    items = calls.items_for_call(patient)
    form = NurseCallForm()
    errors: dict = {}
    if form.validate_on_submit():
        answers = {item.code: request.form.get(f"item-{item.code}", "") for item in items}
        try:
            result = calls.record_nurse_call(patient, answers, actor=current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            if result.red_flags:
                flash(_("Red flag in the answers (%(items)s): a red alert was raised; act now.",
                        items=", ".join(result.red_flags)), "error")
            if "pause_until_call" in result.instructions:
                flash(_("The grading rule asks the patient to pause the treatment until reviewed: tell them."),
                      "warning")
            flash(_("Call recorded as this week's check-in."), "success")
            return redirect(url_for("web.patient", patient_id=patient_id) + "#checkins")
    status = 422 if errors else 200
    return render_template("checkins/nurse_call.html", patient=patient, items=items, form=form, errors=errors,
                           values=request.form), status
