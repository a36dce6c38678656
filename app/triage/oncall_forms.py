"""Forms of the on-call administration and of the acknowledgement link. Forms parse; services check."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from .oncall import OutOfHours, StepKind
from .oncall_channels import CHANNEL_LABELS, PageChannel

STEP_CHANNELS = [(c.value, CHANNEL_LABELS[c]) for c in (PageChannel.SMS, PageChannel.VOICE, PageChannel.BOTH)]
FALLBACK_CHANNELS = [(c.value, CHANNEL_LABELS[c]) for c in (PageChannel.AUTO, PageChannel.SMS, PageChannel.VOICE,
                                                              PageChannel.BOTH)]

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _optional_int(value):
    return int(value) if value not in (None, "", "None") else None


class ShiftForm(FlaskForm):
    professional_id = SelectField(_l("Professional"), coerce=_optional_int, validate_choice=False,
                                  validators=[InputRequired()])
    starts_at = DateTimeLocalField(_l("From (site time)"), format=LOCAL_FORMAT, validators=[InputRequired()])
    ends_at = DateTimeLocalField(_l("Until (site time)"), format=LOCAL_FORMAT, validators=[InputRequired()])


class StepForm(FlaskForm):
    kind = SelectField(_l("Who"), choices=[(StepKind.PROFESSIONAL.value, _l("A named professional")),
                                           (StepKind.ON_CALL.value, _l("Whoever is on call"))])
    professional_id = SelectField(_l("Professional"), coerce=_optional_int, validate_choice=False,
                                  validators=[Optional()])
    channel = SelectField(_l("Paged by"), choices=STEP_CHANNELS, validate_choice=False,
                          default=PageChannel.SMS.value)


class ChannelForm(FlaskForm):
    channel = SelectField(_l("Paged by"), choices=STEP_CHANNELS, validate_choice=False)


class MoveForm(FlaskForm):
    direction = HiddenField(validators=[DataRequired()])


class PolicyForm(FlaskForm):
    ack_minutes = IntegerField(_l("Minutes to acknowledge before the next person is paged"),
                               validators=[InputRequired()])  # the range is the service's rule
    fallback_phone = StringField(_l("Fallback number"), validators=[Length(max=30)],
                                 render_kw={"inputmode": "tel", "autocomplete": "off"})
    fallback_label = StringField(_l("Who answers it"), validators=[Length(max=80)])
    orange_working_hours = IntegerField(_l("Orange alerts: working hours to call the patient"), default=8,
                                        validators=[InputRequired()])
    yellow_days = IntegerField(_l("Yellow alerts: days to review"), default=7, validators=[InputRequired()])
    workday_start = IntegerField(_l("Working day starts at (hour)"), default=8, validators=[InputRequired()])
    workday_end = IntegerField(_l("Working day ends at (hour)"), default=18, validators=[InputRequired()])
    fallback_channel = SelectField(_l("The fallback is paged by"), choices=FALLBACK_CHANNELS, validate_choice=False,
                                   default=PageChannel.AUTO.value)
    out_of_hours_orange = SelectField(
        _l("Out of hours, an orange alert that gave the patient an instruction (e.g. pause the treatment)"),
        choices=[(OutOfHours.PAGE.value, _l("pages the on-call team at once")),
                 (OutOfHours.WAIT.value, _l("waits for the next working hours"))], validate_choice=False,
        default=OutOfHours.PAGE.value)
    holiday_country = StringField(_l("Public holidays of (country code)"), default="FR",
                                  validators=[Length(max=2)])
    holiday_subdivision = StringField(_l("Region with its own holidays (optional)"), validators=[Length(max=10)])
    tech_contact_phone = StringField(_l("Technical contact for platform faults"), validators=[Length(max=30)],
                                     render_kw={"inputmode": "tel", "autocomplete": "off"})
    tech_contact_channel = SelectField(_l("The technical contact is told by"), choices=STEP_CHANNELS,
                                       validate_choice=False, default=PageChannel.SMS.value)
    fault_delay_minutes = IntegerField(_l("Minutes a fault lasts before the technical contact is told"),
                                       default=5, validators=[Optional()])


class ConfirmForm(FlaskForm):
    """A button with its CSRF token (remove a shift or a step, acknowledge by link)."""
