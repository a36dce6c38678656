from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

ACTION_KINDS = [
    ("call", _l("Called the patient")),
    ("advice", _l("Advice given")),
    ("paused", _l("Treatment paused")),
    ("referred", _l("Referred to the emergency department")),
    ("note", _l("Note")),
]


class AcknowledgeForm(FlaskForm):
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


class ActionForm(FlaskForm):
    kind = SelectField(_l("What was done"), choices=ACTION_KINDS)
    note = TextAreaField(_l("Details"), validators=[DataRequired(), Length(max=2000)])


class ResolveForm(FlaskForm):
    note = TextAreaField(_l("Closing note"), validators=[DataRequired(), Length(max=2000)])


class TaskDoneForm(FlaskForm):
    note = TextAreaField(_l("Outcome"), validators=[Optional(), Length(max=2000)])
