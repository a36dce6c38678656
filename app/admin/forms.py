"""WTForms for the administration pages. Forms parse types; the services check the rules."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from app.care.models import ORGANISATION_KIND_LABELS, OrganisationKind
from app.core.roles import ROLE_LABELS, Role
from app.web.forms import LANGUAGE_CHOICES

ACTIVE_CHOICES = [("", _l("All")), ("1", _l("Active")), ("0", _l("Inactive"))]
S3_CHOICES = [(2, _l("Every 2 weeks")), (4, _l("Every 4 weeks"))]


def optional_int(value) -> int | None:
    """Coerce a select's value: empty means none; anything else must be a whole number."""
    if value in (None, "", "None"):
        return None
    return int(value)


def kind_choices() -> list[tuple[str, object]]:
    return [(k.value, ORGANISATION_KIND_LABELS[k]) for k in OrganisationKind]


def role_choices() -> list[tuple[str, object]]:
    return [(r.value, ROLE_LABELS[r]) for r in Role]


class ConfirmForm(FlaskForm):
    """An empty form: carries the CSRF token of a one-click action."""


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=kind_choices)
    finess = StringField(_l("FINESS number"), validators=[Optional(), Length(max=12)],
                         render_kw={"inputmode": "numeric", "autocomplete": "off"})
    city = StringField(_l("City"), validators=[Optional(), Length(max=120)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=30)], render_kw={"inputmode": "tel"})
    active = BooleanField(_l("Active"), default=True)


class SiteForm(FlaskForm):
    organisation_id = SelectField(_l("Hospital"), coerce=optional_int, validate_choice=False)
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=20)],
                       render_kw={"autocapitalize": "characters", "autocomplete": "off"})
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    timezone = StringField(_l("Time zone"), default="Europe/Paris",
                           validators=[DataRequired(), Length(max=64)], render_kw={"list": "timezones"})
    hospital_phone = StringField(_l("Hospital phone line (given to patients)"),
                                 validators=[DataRequired(), Length(max=30)], render_kw={"inputmode": "tel"})
    s3_followup_weeks = SelectField(_l("S3 follow-up frequency"), choices=S3_CHOICES, coerce=int, default=2)
    active = BooleanField(_l("Active"), default=True)


class AccountForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)],
                       render_kw={"autocomplete": "off"})
    last_name = StringField(_l("Last name"), validators=[DataRequired(), Length(max=100)])
    first_name = StringField(_l("First name"), validators=[DataRequired(), Length(max=100)])
    role = SelectField(_l("Role"), choices=role_choices)
    organisation_id = SelectField(_l("Organisation"), coerce=optional_int, validate_choice=False)
    site_id = SelectField(_l("Hospital site"), coerce=optional_int, validate_choice=False)
    phone = StringField(_l("Mobile phone"), validators=[Optional(), Length(max=30)], render_kw={"inputmode": "tel"})
    rpps = StringField(_l("RPPS number"), validators=[Optional(), Length(max=14)],
                       render_kw={"inputmode": "numeric", "autocomplete": "off"})
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES, default="fr")
    active = BooleanField(_l("Active"), default=True)


class NewAccountForm(AccountForm):
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})


class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})


class _FilterForm(FlaskForm):
    class Meta:
        csrf = False


class OrganisationFilterForm(_FilterForm):
    q = StringField(_l("Name, city or FINESS"), validators=[Optional(), Length(max=100)])
    kind = SelectField(_l("Kind"), choices=lambda: [("", _l("All"))] + kind_choices(), validators=[Optional()])


class SiteFilterForm(_FilterForm):
    q = StringField(_l("Code or name"), validators=[Optional(), Length(max=100)])


class AccountFilterForm(_FilterForm):
    q = StringField(_l("Name or e-mail"), validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Role"), choices=lambda: [("", _l("All"))] + role_choices(), validators=[Optional()])
    site_id = SelectField(_l("Site"), coerce=optional_int, validators=[Optional()])
    active = SelectField(_l("Status"), choices=ACTIVE_CHOICES, validators=[Optional()])


class AuditFilterForm(_FilterForm):
    patient_id = IntegerField(_l("Patient number"), validators=[Optional(), NumberRange(min=1)])
    actor = StringField(_l("Professional (number or e-mail)"), validators=[Optional(), Length(max=254)])
    action = StringField(_l("Action"), validators=[Optional(), Length(max=40)], render_kw={"list": "audit-actions"})
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("Until"), validators=[Optional()])
