"""Data of the community portal: interview key questions, the interview schedule of the 2020
pharmacy convention, symptom codes of a visit and the thresholds that make a visit raise an alert.

Everything here is default data a site will review with its clinicians; the functions only apply it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import lazy_gettext as _l

from .models import InterviewKind, VisitKind

INTERVIEW_KIND_LABELS = {
    InterviewKind.INITIAL: _l("Initial interview (the drug, how to take it)"),
    InterviewKind.DAILY_LIFE: _l("Thematic interview: daily life and side effects"),
    InterviewKind.ADHERENCE: _l("Thematic interview: adherence"),
}


@dataclass(frozen=True)
class Question:
    code: str
    text: object  # lazy string


INTERVIEW_QUESTIONS: dict[str, tuple[Question, ...]] = {
    InterviewKind.INITIAL: (
        Question("knows_drug", _l("Can the patient name the drug and say why it is prescribed?")),
        Question("knows_schedule", _l("Does the patient know the dose, the intake times and the days off?")),
        Question("knows_meals", _l("Does the patient know how to take it with regard to meals?")),
        Question("interactions_checked", _l("Were other medicines, herbal products and supplements checked "
                                            "for interactions?")),
        Question("handling_explained", _l("Were storage, handling and return of unused tablets explained?")),
    ),
    InterviewKind.DAILY_LIFE: (
        Question("side_effects_known", _l("Does the patient know the expected side effects and what to do?")),
        Question("side_effects_now", _l("Does the patient have side effects at the moment?")),
        Question("warning_signs_known", _l("Does the patient know when to call the hospital team "
                                           "(fever, bleeding, breathlessness)?")),
        Question("daily_life_affected", _l("Is daily life affected (eating, sleep, work, activities)?")),
    ),
    InterviewKind.ADHERENCE: (
        Question("doses_missed", _l("Were doses missed in the last month?")),
        Question("uses_reminder", _l("Does the patient use a reminder (pill box, alarm, calendar)?")),
        Question("knows_why_regular", _l("Does the patient understand why every dose matters?")),
        Question("refills_on_time", _l("Are the refills collected on time?")),
    ),
}

YEAR_ONE_ORDER = (InterviewKind.INITIAL, InterviewKind.DAILY_LIFE, InterviewKind.ADHERENCE)
# Days after the previous interview of year one when the next one is due.
YEAR_ONE_GAP = {InterviewKind.DAILY_LIFE: 30, InterviewKind.ADHERENCE: 60}
# Thematic interviews a year after year one: one for long-term hormone drugs, two for the others.
THEMATIC_PER_YEAR_HORMONAL = 1
THEMATIC_PER_YEAR_OTHER = 2
HORMONAL_DRUG_CLASSES = frozenset({"androgen synthesis inhibitor", "antiandrogen", "aromatase inhibitor",
                                   "antiestrogen", "selective estrogen receptor modulator"})


@dataclass(frozen=True)
class Due:
    kind: str
    on: date


def next_interview(enrolled_on: date, history: list[tuple[str, date]], hormonal: bool) -> Due:
    """What the pharmacist owes next, given the interviews already held (kind, date)."""
    if not history:
        return Due(InterviewKind.INITIAL, enrolled_on)
    year_one_end = enrolled_on + timedelta(days=365)
    last_on = max(on for _kind, on in history)
    held_in_year_one = {kind for kind, on in history if on < year_one_end}
    for kind in YEAR_ONE_ORDER:
        if kind not in held_in_year_one and last_on < year_one_end:
            if kind == InterviewKind.INITIAL:
                return Due(kind, enrolled_on)
            return Due(kind, last_on + timedelta(days=YEAR_ONE_GAP[kind]))
    per_year = THEMATIC_PER_YEAR_HORMONAL if hormonal else THEMATIC_PER_YEAR_OTHER
    thematic = [h for h in history if h[0] != InterviewKind.INITIAL]
    last_theme = max(thematic, key=lambda h: h[1])[0] if thematic else InterviewKind.ADHERENCE
    kind = InterviewKind.ADHERENCE if last_theme == InterviewKind.DAILY_LIFE else InterviewKind.DAILY_LIFE
    return Due(kind, max(last_on + timedelta(days=365 // per_year), year_one_end))


VISIT_KIND_LABELS = {
    VisitKind.HOME: _l("Home visit"),
    VisitKind.OFFICE: _l("Office visit"),
    VisitKind.PHONE: _l("Phone consultation"),
}

SYMPTOMS = {
    "diarrhoea": _l("Diarrhoea"),
    "nausea": _l("Nausea or vomiting"),
    "mouth_sores": _l("Mouth sores"),
    "hand_foot": _l("Hand-foot skin reaction"),
    "rash": _l("Rash"),
    "fatigue": _l("Fatigue"),
    "fever": _l("Fever"),
    "bleeding": _l("Bleeding"),
    "breathlessness": _l("Breathlessness"),
    "other": _l("Other"),
}

# Vitals accepted as plausible (outside: a typing error, refused with the field named).
VITAL_RANGES = {
    "systolic": (50, 260),
    "diastolic": (30, 160),
    "temperature": (34.0, 43.0),
    "weight_kg": (20.0, 300.0),
}
GRADE_RANGE = (0, 4)
RED_GRADE = 3
ORANGE_GRADE = 2
FEVER_C = 38.0
VISIT_OVERDUE_DAYS = 30
REFILL_SOON_DAYS = 7
