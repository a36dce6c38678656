"""Forms of the adherence pages: they parse types; the services check the rules."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional

from .models import ASSESSMENT_LABELS


class DispensingForm(FlaskForm):
    drug_id = SelectField(_l("Drug"), coerce=int, validators=[InputRequired()], validate_choice=False)
    strength = StringField(_l("Strength of one unit"), validators=[InputRequired(), Length(max=40)],
                           render_kw={"placeholder": "500 mg", "autocomplete": "off"})
    quantity = IntegerField(_l("Quantity (units dispensed)"), validators=[InputRequired()],
                            render_kw={"inputmode": "numeric", "autocomplete": "off"})
    days_supply = IntegerField(_l("Days of supply (treatment days)"), validators=[Optional()],
                               render_kw={"inputmode": "numeric", "autocomplete": "off"})
    dispensed_on = DateField(_l("Dispensed on"), validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})
    confirm = BooleanField(_l("I have checked: record this dispensing anyway"))
    confirm_codes = HiddenField()

    def service_data(self) -> dict:
        return {"drug_id": self.drug_id.data, "strength": self.strength.data, "quantity": self.quantity.data,
                "days_supply": self.days_supply.data, "dispensed_on": self.dispensed_on.data,
                "note": self.note.data}

    def confirmed(self) -> set[str]:
        """The warnings shown on the previous answer that the pharmacist now confirms."""
        if not self.confirm.data:
            return set()
        return {code for code in (self.confirm_codes.data or "").split(",") if code}


class AdherenceReportForm(FlaskForm):
    assessment = SelectField(_l("Adherence"), choices=[(k.value, v) for k, v in ASSESSMENT_LABELS.items()])
    reported_on = DateField(_l("Date"), validators=[Optional()])
    doses_missed_estimate = IntegerField(_l("Doses missed (estimate)"), validators=[Optional()],
                                         render_kw={"inputmode": "numeric"})
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})

    def service_data(self) -> dict:
        return {"assessment": self.assessment.data, "reported_on": self.reported_on.data,
                "doses_missed_estimate": self.doses_missed_estimate.data, "note": self.note.data}
