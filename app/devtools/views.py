"""The patient phone simulator: try the whole check-in loop without Twilio (development only)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.care.access import patient_scope
from app.care.models import Patient
from app.core import audit
from app.core.roles import CLINICAL_ROLES
from app.extensions import db
from app.web.access import load_patient, roles_required

from . import services

bp = Blueprint("devphone", __name__)


class ReplyForm(FlaskForm):
    body = StringField(_l("Reply as the patient"), validators=[DataRequired(), Length(max=1600)])


class StartForm(FlaskForm):
    pass


@bp.route("/")
@login_required
@roles_required(*CLINICAL_ROLES)
def index():
    patients = db.session.scalars(
        select(Patient).where(patient_scope(current_user)).order_by(Patient.last_name).limit(100)).all()
    return render_template("devtools/phones.html", patients=patients)


@bp.route("/<int:patient_id>", methods=["GET", "POST"])
@login_required
@roles_required(*CLINICAL_ROLES)
def phone(patient_id: int):
    patient = load_patient(patient_id, "view")
    form = ReplyForm()
    if form.validate_on_submit():
        services.reply_as_patient(patient, form.body.data)
        db.session.commit()
        return redirect(url_for("devphone.phone", patient_id=patient_id))
    audit.record("read", patient_id=patient_id, object_type="PhoneSimulator")
    db.session.commit()
    messages, pending = services.conversation(patient)
    return render_template("devtools/phone.html", patient=patient, messages=messages, pending=pending,
                           form=form, start_form=StartForm(), provider=current_app.config["SMS_PROVIDER"])


@bp.route("/<int:patient_id>/start", methods=["POST"])
@login_required
@roles_required(*CLINICAL_ROLES)
def start(patient_id: int):
    patient = load_patient(patient_id, "view")
    if StartForm().validate_on_submit():
        result = services.start_checkin_now(patient)
        db.session.commit()
        flash(_("Check-in: %(result)s. The first question is sent by the scheduler within a few seconds.",
                result=result), "info")
    return redirect(url_for("devphone.phone", patient_id=patient_id))
