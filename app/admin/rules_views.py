"""Admin pages for grading rules: list, try against sample answers, save a new version."""
from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.care.models import Site
from app.core.errors import ValidationFailed
from app.core.roles import Role
from app.extensions import db
from app.pathways.models import Drug
from app.web.access import roles_required
from app.web.forms import apply_errors

from app.triage import grading

bp = Blueprint("rules_admin", __name__)


class RuleForm(FlaskForm):
    item_code = StringField(_l("Questionnaire item"), validators=[DataRequired(), Length(max=40)])
    drug_inn = SelectField(_l("Drug"), validators=[Optional()])
    site_id = SelectField(_l("Site"), validators=[Optional()])
    bands = TextAreaField(_l("Bands (JSON)"), validators=[DataRequired(), Length(max=20000)], render_kw={"rows": 12})
    worsening_severity = SelectField(_l("A worsening by one grade is at least"),
                                     choices=[("", "—")] + [(s, s) for s in grading.SEVERITIES])
    samples = TextAreaField(_l("Sample answers to try (one per line: value, or value ; previous grade)"),
                            validators=[Optional(), Length(max=5000)], render_kw={"rows": 5})
    note = StringField(_l("Why this change"), validators=[Optional(), Length(max=500)])


def _choices(form: RuleForm) -> None:
    form.drug_inn.choices = [("", _("any drug"))] + [(d, d) for d in db.session.scalars(select(Drug.inn).order_by(Drug.inn))]
    form.site_id.choices = [("", _("all sites"))] + [
        (str(s.id), s.name) for s in db.session.scalars(select(Site).order_by(Site.name))]


def _parse_samples(text: str) -> list[tuple[object, int | None]]:
    samples = []
    for n, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        value_text, _sep, previous = line.partition(";")
        try:
            value = json.loads(value_text.strip())
            prev = int(previous) if previous.strip() else None
        except (ValueError, TypeError):
            raise ValidationFailed({"samples": _("Line %(n)s: write a JSON value, e.g. 2, 38.5, true or "
                                                  "{\"systolic\": 150, \"diastolic\": 95}.", n=n)}) from None
        samples.append((value, prev))
    return samples


@bp.route("/")
@login_required
@roles_required(Role.ADMIN)
def index():
    rules = db.session.scalars(select(grading.GradingRule).order_by(
        grading.GradingRule.item_code, grading.GradingRule.drug_inn, grading.GradingRule.site_id,
        grading.GradingRule.version.desc())).all()
    return render_template("triage/rules.html", rules=rules)


@bp.route("/edit", methods=["GET", "POST"])
@login_required
@roles_required(Role.ADMIN)
def edit():
    form = RuleForm()
    _choices(form)
    results = None
    if request.method == "GET":
        base_id = request.args.get("from", type=int)
        base = db.session.get(grading.GradingRule, base_id) if base_id else None
        if base_id and base is None:
            abort(404)
        if base is not None:
            form.item_code.data = base.item_code
            form.drug_inn.data = base.drug_inn or ""
            form.site_id.data = str(base.site_id or "")
            form.bands.data = json.dumps(base.bands, indent=2, ensure_ascii=False)
            form.worsening_severity.data = base.worsening_severity or ""
    elif form.validate_on_submit():
        try:
            try:
                bands = json.loads(form.bands.data)
            except ValueError as exc:
                raise ValidationFailed({"bands": _("Not valid JSON: %(error)s", error=str(exc))}) from None
            grading.validate_bands(bands, form.worsening_severity.data or None)
            samples = _parse_samples(form.samples.data)
            if request.form.get("action") == "try":
                results = [(value, prev, grading.evaluate(
                    grading.GradingRule(bands=bands, worsening_severity=form.worsening_severity.data or None,
                                        version=0, item_code=form.item_code.data),
                    form.item_code.data, value, prev)) for value, prev in samples]
            else:
                rule = grading.save_new_version(
                    item_code=form.item_code.data.strip(), drug_inn=form.drug_inn.data or None,
                    site_id=int(form.site_id.data) if form.site_id.data else None, bands=bands,
                    worsening_severity=form.worsening_severity.data or None, note=form.note.data or "",
                    actor_id=current_user.id)
                db.session.commit()
                flash(_("Rule saved as version %(v)s.", v=rule.version), "success")
                return redirect(url_for("rules_admin.index"))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
    status = 422 if request.method == "POST" and form.errors else 200
    return render_template("triage/rule_edit.html", form=form, results=results), status
