"""Forms of the community portal: they parse types; the services check the rules."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import TextInput

from .schedule import INTERVIEW_QUESTIONS, SYMPTOMS, VISIT_KIND_LABELS

YES_NO = [("yes", _l("Yes")), ("no", _l("No"))]


class CommaDecimalField(DecimalField):
    """A text box that accepts "38,5" as typed on a French phone keyboard."""

    widget = TextInput()

    def process_formdata(self, valuelist):
        if valuelist and isinstance(valuelist[0], str):
            valuelist = [valuelist[0].strip().replace(",", ".")]
        super().process_formdata(valuelist)


class InterviewBaseForm(FlaskForm):
    held_on = DateField(_l("Date of the interview"), validators=[InputRequired()])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=4000)], render_kw={"rows": 3})

    kind: str = ""

    def questions(self):
        """(question, answer field, comment field) for the template."""
        return [(q, self[f"q_{q.code}"], self[f"c_{q.code}"]) for q in INTERVIEW_QUESTIONS[self.kind]]

    def answers(self) -> dict[str, dict]:
        return {q.code: {"answer": a.data, "comment": c.data} for q, a, c in self.questions()}


def interview_form(kind: str, **kwargs) -> InterviewBaseForm:
    """The interview form with the key questions of ``kind`` (a yes/no and a comment each)."""
    fields = {}
    for question in INTERVIEW_QUESTIONS[kind]:
        fields[f"q_{question.code}"] = RadioField(question.text, choices=YES_NO, validators=[Optional()])
        fields[f"c_{question.code}"] = StringField(_l("Comment"), validators=[Optional(), Length(max=500)])
    form_class = type("InterviewForm", (InterviewBaseForm,), {**fields, "kind": kind})
    return form_class(**kwargs)


class MedicineLineForm(Form):
    name = StringField(_l("Medicine"), validators=[Optional(), Length(max=120)])
    dose = StringField(_l("Dose"), validators=[Optional(), Length(max=60)])
    frequency = StringField(_l("Frequency"), validators=[Optional(), Length(max=60)])
    note = StringField(_l("Comment"), validators=[Optional(), Length(max=300)])


class ReconciliationForm(FlaskForm):
    lines = FieldList(FormField(MedicineLineForm), min_entries=6, max_entries=40)
    nothing_else = BooleanField(_l("The patient takes no other medicine"))

    def line_data(self) -> list[dict]:
        return [entry.data for entry in self.lines]


class ReviewForm(FlaskForm):
    note = TextAreaField(_l("Review note"), validators=[InputRequired(), Length(max=2000)], render_kw={"rows": 2})


class SideEffectForm(Form):
    symptom = SelectField(_l("Symptom"), choices=[("", "—")] + list(SYMPTOMS.items()), validators=[Optional()])
    grade = IntegerField(_l("CTCAE grade (0-4)"), validators=[Optional()],
                         render_kw={"inputmode": "numeric", "autocomplete": "off"})


class VisitForm(FlaskForm):
    visit_on = DateField(_l("Date"), validators=[InputRequired()])
    kind = SelectField(_l("Kind"), choices=list(VISIT_KIND_LABELS.items()))
    systolic = IntegerField(_l("Systolic BP (mmHg)"), validators=[Optional()], render_kw={"inputmode": "numeric"})
    diastolic = IntegerField(_l("Diastolic BP (mmHg)"), validators=[Optional()], render_kw={"inputmode": "numeric"})
    temperature = CommaDecimalField(_l("Temperature (°C)"), validators=[Optional()],
                                    render_kw={"inputmode": "decimal"})
    weight_kg = CommaDecimalField(_l("Weight (kg)"), validators=[Optional()], render_kw={"inputmode": "decimal"})
    side_effects = FieldList(FormField(SideEffectForm), min_entries=3, max_entries=10)
    actions_taken = TextAreaField(_l("What was done"), validators=[Optional(), Length(max=4000)],
                                  render_kw={"rows": 3})
    concern = BooleanField(_l("Raise a concern for the hospital team"))
    concern_urgent = BooleanField(_l("Urgent: the team must act now"))
    concern_text = TextAreaField(_l("The concern"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})

    def service_data(self) -> dict:
        def num(value):
            return float(value) if value is not None else None

        return {"visit_on": self.visit_on.data, "kind": self.kind.data, "systolic": self.systolic.data,
                "diastolic": self.diastolic.data, "temperature": num(self.temperature.data),
                "weight_kg": num(self.weight_kg.data), "side_effects": [e.data for e in self.side_effects],
                "actions_taken": self.actions_taken.data, "concern": self.concern.data,
                "concern_urgent": self.concern_urgent.data, "concern_text": self.concern_text.data}
