"""The default questionnaire (data: sites review and edit it) and which items a check-in asks.

Default red flags follow CLINICAL.md: fever >= 38 C (or fever felt, not measured), grade 3 of a
symptom, bleeding, chest pain or breathlessness, systolic >= 180 or diastolic >= 110, "call me
now". A dose taken during the break is an orange finding; "call me this week" a nurse call task.
Texts are patient texts: no drug name, no diagnosis (tests/test_checkin_texts.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from app.core import batching
from app.extensions import db
from app.pathways.models import Drug, Prescription, PrescriptionEventKind

from .models import AnswerType, Phase, QuestionnaireItem

GRADE_3 = {"gte": 3}
YES = {"eq": True}

DEFAULT_ITEMS: list[dict] = [
    dict(code="doses_missed", position=10, answer_type=AnswerType.COUNT, phase=Phase.ON,
         text_fr="Depuis notre dernier échange, combien de prises de votre traitement avez-vous oubliées ?",
         text_en="Since our last check-in, how many doses of your treatment did you miss?",
         example_fr="0", example_en="0"),
    dict(code="dose_in_break", position=20, answer_type=AnswerType.YES_NO, phase=Phase.OFF,
         text_fr="Pendant votre période de pause, avez-vous pris une dose de votre traitement ?",
         text_en="During your break from treatment, did you take any dose?",
         example_fr="non", example_en="no",
         finding={"rule": YES, "severity": "orange", "reason_code": "dose_during_off_week"}),
    dict(code="temperature", position=30, answer_type=AnswerType.TEMPERATURE,
         text_fr="Avez-vous de la fièvre ?", text_en="Do you have a fever?",
         example_fr="37,5", example_en="37.5",
         red_flag={"any": [{"gte": 38.0}, YES]}),
    dict(code="bleeding", position=40, answer_type=AnswerType.YES_NO, symptom="bleeding",
         text_fr="Avez-vous eu des saignements inhabituels (nez, gencives, urines, selles) ?",
         text_en="Have you had any unusual bleeding (nose, gums, urine, stools)?",
         example_fr="non", example_en="no", red_flag=YES),
    dict(code="breathlessness", position=50, answer_type=AnswerType.YES_NO, symptom="breathlessness",
         text_fr="Avez-vous été essoufflé(e) au repos, ou eu une douleur dans la poitrine ?",
         text_en="Have you been short of breath at rest, or had chest pain?",
         example_fr="non", example_en="no", red_flag=YES),
    dict(code="diarrhoea", position=60, answer_type=AnswerType.SCALE_0_3, symptom="diarrhoea",
         text_fr="Avez-vous de la diarrhée ?", text_en="Do you have diarrhoea?",
         example_fr="1", example_en="1", red_flag=GRADE_3),
    dict(code="nausea", position=70, answer_type=AnswerType.SCALE_0_3,
         text_fr="Avez-vous des nausées ou des vomissements ?", text_en="Do you have nausea or vomiting?",
         example_fr="0", example_en="0", red_flag=GRADE_3),
    dict(code="mouth_sores", position=80, answer_type=AnswerType.SCALE_0_3, symptom="mouth_sores",
         text_fr="Avez-vous des aphtes ou des douleurs dans la bouche ?",
         text_en="Do you have mouth sores or a painful mouth?",
         example_fr="1", example_en="1", red_flag=GRADE_3),
    dict(code="hand_foot", position=90, answer_type=AnswerType.SCALE_0_3, symptom="hand_foot",
         text_fr="Avez-vous des rougeurs ou des douleurs aux mains ou aux pieds ?",
         text_en="Do you have redness or pain on your hands or feet?",
         example_fr="0", example_en="0", red_flag=GRADE_3),
    dict(code="rash", position=100, answer_type=AnswerType.SCALE_0_3, symptom="rash",
         text_fr="Avez-vous des boutons ou des rougeurs sur la peau ?",
         text_en="Do you have a skin rash or spots?",
         example_fr="0", example_en="0", red_flag=GRADE_3),
    dict(code="fatigue", position=110, answer_type=AnswerType.SCALE_0_3,
         text_fr="Vous sentez-vous fatigué(e) ?", text_en="Do you feel tired?",
         example_fr="2", example_en="2", red_flag=GRADE_3),
    dict(code="blood_pressure", position=120, answer_type=AnswerType.BLOOD_PRESSURE, symptom="blood_pressure",
         text_fr="Quelle est votre dernière mesure de tension ?",
         text_en="What is your latest blood pressure reading?",
         example_fr="135/85", example_en="135/85",
         red_flag={"any": [{"key": "systolic", "gte": 180}, {"key": "diastolic", "gte": 110}]}),
    dict(code="wants_call", position=130, answer_type=AnswerType.CHOICE,
         text_fr="Souhaitez-vous que l'infirmière vous appelle ? 0 pour non, 1 pour cette semaine, "
                 "2 pour maintenant.",
         text_en="Would you like the nurse to call you? 0 for no, 1 for this week, 2 for now.",
         example_fr="0", example_en="0",
         choices={"0": ["non", "no", "non merci", "no thanks"],
                  "1": ["cette semaine", "this week", "semaine"],
                  "2": ["maintenant", "now", "tout de suite", "right now", "urgent"]},
         red_flag={"eq": 2},
         finding={"rule": {"eq": 1}, "task": "call_patient", "reason_code": "patient_asked_for_call"}),
]


def seed_questionnaire() -> int:
    """Insert the default items that are missing (by code); edited items are left alone."""
    existing = set(db.session.scalars(select(QuestionnaireItem.code)))
    added = 0
    for spec in DEFAULT_ITEMS:
        if spec["code"] not in existing:
            db.session.add(QuestionnaireItem(**spec))
            added += 1
    db.session.flush()
    return added


@dataclass(frozen=True)
class Treatment:
    """What the questionnaire needs to know of a patient's current treatment on one day."""

    inns: frozenset[str]
    monitored: frozenset[str]
    phase: str | None  # "on", "off", or None without a current prescription


def prescription_phase(rx: Prescription, on: date) -> str:
    """"on" or "off" on day ``on``: cycle days counted from the start, or from the last resumption
    after an interruption (a resumed treatment starts a new cycle); an interruption is "off"."""
    anchor, interrupted = rx.start_date, False
    for event in rx.events:
        if event.effective_date > on:
            break
        if event.kind in (PrescriptionEventKind.INTERRUPTION, PrescriptionEventKind.STOP):
            interrupted = True
        elif event.kind == PrescriptionEventKind.RESUMPTION:
            interrupted, anchor = False, event.effective_date
    if interrupted:
        return Phase.OFF
    if not rx.days_off:
        return Phase.ON
    day = (on - anchor).days % (rx.days_on + rx.days_off)
    return Phase.ON if day < rx.days_on else Phase.OFF


def current_treatment(patient_id: int, on: date) -> Treatment:
    """Union of the prescriptions current on ``on``; "on" when any of them is on."""
    rows = db.session.execute(
        select(Prescription, Drug)
        .join(Drug, Drug.id == Prescription.drug_id)
        .options(joinedload(Prescription.events))  # the phase reads them: one statement, not two
        .where(Prescription.patient_id == patient_id, Prescription.start_date <= on,
               or_(Prescription.end_date.is_(None), Prescription.end_date >= on))
    ).unique().all()
    if not rows:
        return Treatment(frozenset(), frozenset(), None)
    phases = {prescription_phase(rx, on) for rx, _drug in rows}
    return Treatment(
        inns=frozenset(drug.inn for _rx, drug in rows),
        monitored=frozenset(s for _rx, drug in rows for s in (drug.monitored_symptoms or [])),
        phase=Phase.ON if Phase.ON in phases else Phase.OFF,
    )


def select_items(items: list[QuestionnaireItem], treatment: Treatment, *, voice: bool = False) -> list[str]:
    """Codes of the items to ask, in order. Without a current prescription only the items for
    every drug and every phase are asked. On a call, blood pressure goes last (asked by SMS)."""
    chosen = []
    for item in sorted(items, key=lambda i: (i.position, i.code)):
        if not item.active:
            continue
        if item.drugs and not (treatment.inns & set(item.drugs)):
            continue
        if item.symptom and item.symptom not in treatment.monitored:
            continue
        if (item.phase or Phase.ANY) != Phase.ANY and item.phase != treatment.phase:
            continue
        chosen.append(item)
    if voice:
        chosen.sort(key=lambda i: i.answer_type == AnswerType.BLOOD_PRESSURE)
    return [item.code for item in chosen]


def active_items() -> list[QuestionnaireItem]:
    return list(db.session.scalars(select(QuestionnaireItem).where(QuestionnaireItem.active.is_(True))))


def items_by_code(codes) -> dict[str, QuestionnaireItem]:
    codes = list(codes)
    if not codes:
        return {}
    if batching.in_scope():  # a batch job: every item once per transaction (a few dozen rows)
        every = batching.cached("questionnaire_items", lambda: {
            i.code: i for i in db.session.scalars(select(QuestionnaireItem))})
        return {code: every[code] for code in codes if code in every}
    return {i.code: i for i in db.session.scalars(select(QuestionnaireItem).where(QuestionnaireItem.code.in_(codes)))}
