"""Default drug catalogue, from CLINICAL.md. Sites review and change it; seeding is idempotent."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db

from .models import Drug

DEFAULT_DRUGS = [
    dict(inn="capecitabine", drug_class="fluoropyrimidine", default_dose="1250 mg/m2",
         default_frequency_per_day=2, default_days_on=14, default_days_off=7,
         monitored_symptoms=["diarrhoea", "hand_foot", "mouth_sores", "nausea", "fatigue", "fever"],
         notes="Days 1-14 of a 21-day cycle, after a meal. Grade 2: interrupt until grade 0-1."),
    dict(inn="palbociclib", drug_class="CDK4/6 inhibitor", default_dose="125 mg",
         default_frequency_per_day=1, default_days_on=21, default_days_off=7,
         monitored_symptoms=["fever", "fatigue", "nausea", "mouth_sores", "bleeding"],
         notes="With food. Blood count at each cycle start and day 15 of cycles 1-2."),
    dict(inn="abemaciclib", drug_class="CDK4/6 inhibitor", default_dose="150 mg",
         default_frequency_per_day=2, default_days_on=28, default_days_off=0,
         monitored_symptoms=["diarrhoea", "fever", "fatigue", "nausea"],
         notes="Continuous. Diarrhoea is the leading toxicity."),
    dict(inn="imatinib", drug_class="tyrosine kinase inhibitor", default_dose="400 mg",
         default_frequency_per_day=1, default_days_on=28, default_days_off=0,
         monitored_symptoms=["nausea", "rash", "fatigue", "diarrhoea", "breathlessness"],
         notes="Continuous. Adherence <= 90% lowers major molecular response in CML."),
    dict(inn="abiraterone", drug_class="androgen synthesis inhibitor", default_dose="1000 mg",
         default_frequency_per_day=1, default_days_on=28, default_days_off=0,
         monitored_symptoms=["blood_pressure", "fatigue", "breathlessness"],
         notes="Empty stomach, with prednisone 5 mg twice daily. Hypertension, oedema, low potassium."),
    dict(inn="sunitinib", drug_class="tyrosine kinase inhibitor", default_dose="50 mg",
         default_frequency_per_day=1, default_days_on=28, default_days_off=14,
         monitored_symptoms=["blood_pressure", "hand_foot", "mouth_sores", "fatigue", "diarrhoea"],
         notes="4 weeks on / 2 off."),
    dict(inn="lenalidomide", drug_class="immunomodulator", default_dose="25 mg",
         default_frequency_per_day=1, default_days_on=21, default_days_off=7, hospital_only=True,
         monitored_symptoms=["fever", "breathlessness", "rash", "fatigue"],
         notes="Fever and clots. Hospital-reserved dispensing in the demo (pathway B)."),
]


def seed_catalogue() -> int:
    """Insert the missing default drugs, check-in questions and grading rules; return how many drugs were added."""
    existing = set(db.session.scalars(select(Drug.inn)))
    added = 0
    for spec in DEFAULT_DRUGS:
        if spec["inn"] not in existing:
            db.session.add(Drug(**spec))
            added += 1
    db.session.flush()
    from .checkins.questionnaire import seed_questionnaire

    seed_questionnaire()  # the default check-in questions go with the drugs they refer to
    from app.triage.grading import seed_grading_rules

    seed_grading_rules()  # and the default grading of their answers (CLINICAL.md)
    return added
