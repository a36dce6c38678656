"""The default questionnaire (data: sites review and edit it) and which items a check-in asks.

Red flags are universal (CLINICAL.md): every patient, whatever the drug, the cycle day or the
channel, is asked about fever, any bleeding, chest pain or breathlessness, vomiting that stopped
them taking the drug, and whether they want a call. Those items are ``universal``: a drug's
monitored symptoms add questions, they never remove one of these.

Drug-specific symptoms are anchored on CTCAE v5 as PRO-CTCAE does it: diarrhoea as stools a
day above usual (< 4 grade 1, 4-6 grade 2, >= 7 grade 3), hand-foot skin, mouth sores, nausea,
rash and fatigue by what they stop the patient doing; the bare "un peu / moyennement /
beaucoup" words are a fallback the reader still understands. Default red flags: fever >= 38 C
(or felt), grade 3, bleeding, chest pain or breathlessness, vomiting that stops the drug,
systolic >= 180 or diastolic >= 110, "call me now". A dose taken during the break is an orange
finding; "call me this week" a nurse call task. Texts are patient texts: no drug name, no
diagnosis (tests/test_checkin_texts.py).
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
NO_WORDS_FR_EN = ["non", "no", "pas du tout", "not at all", "aucun", "none"]

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
    dict(code="temperature", position=30, answer_type=AnswerType.TEMPERATURE, universal=True,
         text_fr="Avez-vous de la fièvre ?", text_en="Do you have a fever?",
         example_fr="37,5", example_en="37.5",
         red_flag={"any": [{"gte": 38.0}, YES]}),
    dict(code="bleeding", position=40, answer_type=AnswerType.YES_NO, universal=True,
         text_fr="Avez-vous eu le moindre saignement (nez, gencives, urines, selles noires ou avec du sang) ?",
         text_en="Have you had any bleeding, even slight (nose, gums, urine, black or bloody stools)?",
         example_fr="non", example_en="no", red_flag=YES),
    dict(code="breathlessness", position=50, answer_type=AnswerType.YES_NO, universal=True,
         text_fr="Avez-vous été essoufflé(e), eu du mal à respirer ou une douleur dans la poitrine ?",
         text_en="Have you been short of breath, had trouble breathing, or chest pain?",
         example_fr="non", example_en="no", red_flag=YES),
    dict(code="vomiting", position=55, answer_type=AnswerType.YES_NO, universal=True,
         text_fr="Avez-vous vomi au point de ne pas pouvoir prendre ou garder votre traitement ?",
         text_en="Have you vomited so much that you could not take or keep down your treatment?",
         example_fr="non", example_en="no", red_flag=YES),
    dict(code="diarrhoea", position=60, answer_type=AnswerType.STOOLS, symptom="diarrhoea",
         text_fr="Combien de selles par jour avez-vous de plus que d'habitude ?",
         text_en="How many more stools a day than usual do you have?",
         example_fr="2", example_en="2",
         red_flag={"any": [{"gte": 7}, {"key": "scale", "gte": 3}]}),
    dict(code="nausea", position=70, answer_type=AnswerType.SCALE_0_3,
         text_fr="Avez-vous des nausées ? 0 non, 1 un peu, 2 vous mangez moins, 3 vous ne mangez presque plus.",
         text_en="Do you feel sick (nausea)? 0 no, 1 a little, 2 you eat less, 3 you can hardly eat.",
         example_fr="1", example_en="1", red_flag=GRADE_3,
         choices={"0": NO_WORDS_FR_EN, "2": ["mange moins", "mangez moins", "eat less", "eating less", "moitie", "half", "picore",
                        "petites portions", "small portions", "finis pas mon assiette", "finis jamais mon assiette",
                        "appetit", "appetite"],
                  "3": ["mange presque plus", "mange plus", "mange rien", "peux pas manger", "peux rien manger",
                        "hardly eat", "can hardly eat", "cannot eat", "can t eat", "barely eat", "avale rien"]}),
    dict(code="mouth_sores", position=80, answer_type=AnswerType.SCALE_0_3, symptom="mouth_sores",
         text_fr="Avez-vous des aphtes ou mal dans la bouche ? 0 non, 1 je mange normalement, "
                 "2 je ne mange que du mou, 3 je ne peux pas manger.",
         text_en="Do you have mouth sores or a painful mouth? 0 no, 1 I eat normally, 2 I eat only soft food, "
                 "3 I cannot eat.",
         example_fr="1", example_en="1", red_flag=GRADE_3,
         choices={"0": NO_WORDS_FR_EN, "1": ["mange normalement", "eat normally", "eating normally"],
                  "2": ["que du mou", "mou", "mouliné", "mixé", "soupe", "soupes", "compote", "soft food", "soft",
                        "purée", "liquide"],
                  "3": ["peux pas manger", "peux plus manger", "peux rien manger", "ne mange plus", "mange rien",
                        "cannot eat", "can t eat", "can not eat", "unable to eat", "avaler"]}),
    dict(code="hand_foot", position=90, answer_type=AnswerType.SCALE_0_3, symptom="hand_foot",
         text_fr="Avez-vous des rougeurs ou douleurs aux mains ou aux pieds ? 0 non, 1 sans douleur, "
                 "2 douloureuses ou limitent la marche ou la cuisine, 3 je ne peux plus me laver ou m'habiller.",
         text_en="Do you have redness or pain on your hands or feet? 0 no, 1 no pain, 2 painful or limits "
                 "walking or cooking, 3 I cannot wash or dress myself.",
         example_fr="0", example_en="0", red_flag=GRADE_3,
         choices={"0": NO_WORDS_FR_EN, "1": ["sans douleur", "pas de douleur", "no pain", "without pain",
                                             "painless"],
                  "2": ["font mal", "douloureux", "douloureuses", "douleur", "limitent", "marcher", "marche", "cuisiner",
                        "painful", "hurt", "hurts", "walking", "cooking", "brule", "brulent"],
                  "3": ["laver", "habiller", "wash", "dress", "dressed", "washing", "a vif", "cloques"]}),
    dict(code="rash", position=100, answer_type=AnswerType.SCALE_0_3, symptom="rash",
         text_fr="Avez-vous des boutons ou rougeurs sur la peau ? 0 non, 1 quelques-uns, 2 sur une partie du "
                 "corps, 3 sur une grande partie du corps.",
         text_en="Do you have a skin rash or spots? 0 no, 1 a few, 2 on part of the body, 3 on most of the body.",
         example_fr="0", example_en="0", red_flag=GRADE_3,
         choices={"0": NO_WORDS_FR_EN, "1": ["quelques uns", "quelques", "a few"],
                  "2": ["partie du corps", "part of the body", "visage", "dos", "bras", "face", "back", "arms", "quart",
                        "quarter"],
                  "3": ["grande partie", "tout le corps", "partout", "most of the body", "all over", "everywhere",
                        "whole body", "moitie du corps", "half my body", "head to toe",
                       "de la tete aux pieds"]}),
    dict(code="fatigue", position=110, answer_type=AnswerType.SCALE_0_3,
         text_fr="Vous sentez-vous fatigué(e) ? 0 non, 1 un peu, 2 cela limite vos activités, "
                 "3 vous restez au lit la plupart du temps.",
         text_en="Do you feel tired? 0 no, 1 a little, 2 it limits your activities, 3 you stay in bed most "
                 "of the time.",
         example_fr="1", example_en="1", red_flag=GRADE_3,
         choices={"0": NO_WORDS_FR_EN, "2": ["limite", "limitent", "limits", "limited", "ralentie", "ralenti"],
                  "3": ["au lit", "in bed", "couchee", "couche", "alite", "alitee", "bedridden", "laver",
                        "habiller", "toilette"]}),
    dict(code="blood_pressure", position=120, answer_type=AnswerType.BLOOD_PRESSURE, symptom="blood_pressure",
         text_fr="Quelle est votre dernière mesure de tension ?",
         text_en="What is your latest blood pressure reading?",
         example_fr="135/85", example_en="135/85",
         red_flag={"any": [{"key": "systolic", "gte": 180}, {"key": "diastolic", "gte": 110}]}),
    dict(code="wants_call", position=130, answer_type=AnswerType.CHOICE, universal=True,
         text_fr="Souhaitez-vous que l'infirmière vous appelle ? 0 pour non, 1 pour cette semaine, "
                 "2 pour maintenant.",
         text_en="Would you like the nurse to call you? 0 for no, 1 for this week, 2 for now.",
         example_fr="0", example_en="0",
         choices={"0": ["non", "no", "non merci", "no thanks", "pas besoin", "no need", "ca va", "pas la peine",
                        "nope", "nan"],
                  "1": ["cette semaine", "this week", "semaine", "oui", "yes", "rappelez moi", "appelez moi",
                        "rappeler", "appeler", "call me", "call back", "quand vous pouvez", "when you can",
                        "demain", "tomorrow", "bientot", "soon", "ouais", "yep", "yeah", "svp", "please"],
                  "2": ["maintenant", "now", "tout de suite", "right now", "urgent", "vite", "asap", "ce matin", "this morning",
              "avant midi", "ce soir", "tonight", "this minute", "sans tarder",
                        "immediatement", "immediately", "des que possible", "au plus vite", "right away",
                        "rapidement", "quickly", "aujourd hui", "today"]},
         red_flag={"eq": 2},
         finding={"rule": {"eq": 1}, "task": "call_patient", "reason_code": "patient_asked_for_call"}),
]

#: The red-flag questions every check-in asks, whatever the drug, the cycle day or the channel.
UNIVERSAL_CODES = tuple(spec["code"] for spec in DEFAULT_ITEMS if spec.get("universal"))


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
    max_frequency: int = 1  # the most doses a day of the current prescriptions


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
        max_frequency=max((rx.frequency_per_day or 1) for rx, _drug in rows),
    )


def select_items(items: list[QuestionnaireItem], treatment: Treatment, *, voice: bool = False) -> list[str]:
    """Codes of the items to ask, in order: every universal item (the red flags: never dropped,
    whatever the drug, phase or channel, and even if switched off by mistake), then the items
    of the patient's drugs and cycle phase. On a call, blood pressure goes last (asked by SMS)."""
    chosen = []
    for item in sorted(items, key=lambda i: (i.position, i.code)):
        if item.universal:
            chosen.append(item)
            continue
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
    """The items a check-in may ask: active ones, and the universal red flags whatever their flag."""
    return list(db.session.scalars(select(QuestionnaireItem).where(
        or_(QuestionnaireItem.active.is_(True), QuestionnaireItem.universal.is_(True)))))


def items_by_code(codes) -> dict[str, QuestionnaireItem]:
    codes = list(codes)
    if not codes:
        return {}
    if batching.in_scope():  # a batch job: every item once per transaction (a few dozen rows)
        every = batching.cached("questionnaire_items", lambda: {
            i.code: i for i in db.session.scalars(select(QuestionnaireItem))})
        return {code: every[code] for code in codes if code in every}
    return {i.code: i for i in db.session.scalars(select(QuestionnaireItem).where(QuestionnaireItem.code.in_(codes)))}
