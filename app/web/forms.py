"""WTForms for the professionals' pages. Forms parse types; services check the rules."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField, DateField, HiddenField, IntegerField, SelectField, StringField, TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.care.models import PatientStatus
from app.core.errors import ValidationFailed
from app.pathways.models import EndReason, LeadTeam, Pathway, PrescriptionEventKind, Sequence

WEEKDAYS = [(0, _l("Monday")), (1, _l("Tuesday")), (2, _l("Wednesday")), (3, _l("Thursday")),
            (4, _l("Friday")), (5, _l("Saturday")), (6, _l("Sunday"))]
LANGUAGE_CHOICES = [("fr", _l("French")), ("en", _l("English"))]
CHANNEL_CHOICES = [("sms", _l("Text message (SMS)")), ("voice", _l("Automated phone call"))]
TIMEZONES = ["Europe/Paris", "America/Cayenne", "America/Guadeloupe", "America/Martinique",
             "Indian/Reunion", "Indian/Mayotte", "Pacific/Noumea", "Pacific/Tahiti"]


def apply_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Show a service's errors beside the fields they name (or at the top of the form)."""
    for name, messages in exc.errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + messages
        else:
            form.form_errors.extend(messages)


class PatientFieldsMixin:
    mrn = StringField(_l("Hospital number (MRN)"), validators=[DataRequired(), Length(max=40)])
    ins = StringField(_l("INS (national health identifier)"), validators=[Optional(), Length(max=22)])
    last_name = StringField(_l("Last name"), validators=[DataRequired(), Length(max=100)])
    first_name = StringField(_l("First name"), validators=[DataRequired(), Length(max=100)])
    birth_date = DateField(_l("Birth date"), validators=[InputRequired()])
    phone = StringField(_l("Mobile phone"), validators=[DataRequired(), Length(max=30)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    shared_phone_confirmed = BooleanField(_l("This phone is shared with another patient (confirmed)"))
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES, default="fr")
    channel = SelectField(_l("Check-in channel"), choices=CHANNEL_CHOICES, default="sms")
    checkin_weekday = SelectField(_l("Check-in day"), choices=WEEKDAYS, coerce=int, default=0)
    checkin_hour = IntegerField(_l("Check-in hour"), default=10, validators=[InputRequired(), NumberRange(0, 23)])
    timezone = SelectField(_l("Time zone"), choices=[(t, t) for t in TIMEZONES], default="Europe/Paris")
    consent_given = BooleanField(_l("The patient consents to remote follow-up"))
    consent_date = DateField(_l("Consent date"), validators=[Optional()])


class EnrolForm(PatientFieldsMixin, FlaskForm):
    pathway = SelectField(_l("Pathway"), choices=[(Pathway.A.value, _l("A: community pharmacy dispensing")),
                                                    (Pathway.B.value, _l("B: hospital pharmacy dispensing"))])
    sequence = SelectField(_l("Sequence"), choices=[(s.value, s.value) for s in Sequence], default="S1")
    lead_team = SelectField(_l("Lead team"), choices=[(LeadTeam.HOSPITAL.value, _l("Hospital")),
                                                       (LeadTeam.COMMUNITY.value, _l("Community"))])
    drug_id = SelectField(_l("Drug"), coerce=int, validators=[InputRequired()], validate_choice=False)
    dose = StringField(_l("Dose"), validators=[DataRequired(), Length(max=80)])
    frequency_per_day = IntegerField(_l("Intakes per day"), validators=[Optional(), NumberRange(1, 6)])
    days_on = IntegerField(_l("Days on"), validators=[Optional(), NumberRange(1, 366)])
    days_off = IntegerField(_l("Days off"), validators=[Optional(), NumberRange(0, 366)])
    start_date = DateField(_l("Treatment start"), validators=[InputRequired()])
    end_date = DateField(_l("Planned end"), validators=[Optional()])
    prescriber_id = SelectField(_l("Prescriber"), coerce=int, validators=[InputRequired()], validate_choice=False)


class PatientEditForm(PatientFieldsMixin, FlaskForm):
    status = SelectField(_l("Status"), choices=[(s.value, s.value) for s in PatientStatus])


class CareTeamForm(FlaskForm):
    professional_id = SelectField(_l("Hospital professional"), coerce=lambda v: int(v) if v not in (None, "") else None,
                                  validators=[Optional()], validate_choice=False)
    community_email = StringField(_l("or a community professional's e-mail"),
                                  validators=[Optional(), Length(max=254)], render_kw={"inputmode": "email"})
    is_lead = BooleanField(_l("Lead for this role"))
    start_date = DateField(_l("From"), validators=[InputRequired()])


class EndMemberForm(FlaskForm):
    end_date = DateField(_l("Until"), validators=[InputRequired()])


class PrescriptionForm(FlaskForm):
    drug_id = SelectField(_l("Drug"), coerce=int, validators=[InputRequired()], validate_choice=False)
    dose = StringField(_l("Dose"), validators=[DataRequired(), Length(max=80)])
    frequency_per_day = IntegerField(_l("Intakes per day"), validators=[Optional(), NumberRange(1, 6)])
    days_on = IntegerField(_l("Days on"), validators=[Optional(), NumberRange(1, 366)])
    days_off = IntegerField(_l("Days off"), validators=[Optional(), NumberRange(0, 366)])
    start_date = DateField(_l("Start"), validators=[InputRequired()])
    end_date = DateField(_l("Planned end"), validators=[Optional()])
    prescriber_id = SelectField(_l("Prescriber"), coerce=int, validators=[InputRequired()], validate_choice=False)


class PrescriptionEventForm(FlaskForm):
    kind = SelectField(_l("Change"), choices=[
        (PrescriptionEventKind.DOSE_CHANGE.value, _l("Dose change")),
        (PrescriptionEventKind.INTERRUPTION.value, _l("Interruption")),
        (PrescriptionEventKind.RESUMPTION.value, _l("Resumption")),
        (PrescriptionEventKind.STOP.value, _l("Stop")),
    ])
    effective_date = DateField(_l("From"), validators=[InputRequired()])
    new_dose = StringField(_l("New dose"), validators=[Optional(), Length(max=80)])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class EnrolmentChangeForm(FlaskForm):
    pathway = SelectField(_l("Pathway"), choices=[(p.value, p.value) for p in Pathway])
    sequence = SelectField(_l("Sequence"), choices=[(s.value, s.value) for s in Sequence])
    lead_team = SelectField(_l("Lead team"), choices=[(LeadTeam.HOSPITAL.value, _l("Hospital")),
                                                       (LeadTeam.COMMUNITY.value, _l("Community"))])
    renew = BooleanField(_l("Renew the current sequence for another period"))
    reason = TextAreaField(_l("Why"), validators=[DataRequired(), Length(max=500)])


class EndEnrolmentForm(FlaskForm):
    end_reason = SelectField(_l("Reason"), choices=[(r.value, r.value) for r in EndReason])
    ended_on = DateField(_l("End date"), validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Length(max=500)])


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Name or MRN"), validators=[Optional(), Length(max=100)])
    sequence = SelectField(_l("Sequence"), choices=[("", "—")] + [(s.value, s.value) for s in Sequence],
                           validators=[Optional()])
    status = SelectField(_l("Status"), choices=[("", "—")] + [(s.value, s.value) for s in PatientStatus],
                         validators=[Optional()])
    lead_team = SelectField(_l("Lead"), choices=[("", "—"), ("hospital", _l("Hospital")),
                                                 ("community", _l("Community"))], validators=[Optional()])
    drug_id = SelectField(_l("Drug"), coerce=lambda v: int(v) if v not in (None, "") else None,
                          validators=[Optional()])
    review = BooleanField(_l("Due for sequence review"))
    page = HiddenField()
