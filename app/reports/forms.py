"""The tariff version form."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, IntegerField, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
)

from .tariffs import RECIPIENTS


class TariffForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)])
    recipient = SelectField(_l("Paid to"), choices=[(r, r) for r in RECIPIENTS])
    amount = DecimalField(_l("Amount (EUR)"), places=2, validators=[InputRequired(), NumberRange(min=0)])
    from_month = IntegerField(_l("From month of follow-up"), default=1, validators=[InputRequired(), NumberRange(min=1)])
    valid_from = DateField(_l("Valid from"), validators=[DataRequired()])
    valid_to = DateField(_l("Valid to"), validators=[Optional()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])
