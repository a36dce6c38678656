"""Every patient text, in both languages: at most 2 SMS segments, no drug name, no diagnosis."""
from __future__ import annotations

import re

import pytest

from app.notifications.segments import count_segments
from app.pathways.catalogue import DEFAULT_DRUGS
from app.pathways.checkins import templates as t
from app.pathways.checkins.models import QuestionnaireItem
from app.pathways.checkins.questionnaire import DEFAULT_ITEMS

LANGS = ("fr", "en")
LONG_PHONE = "+447911123456"  # longer than a French number
FORBIDDEN = [d["inn"] for d in DEFAULT_DRUGS] + [
    "cancer", "chimiothérapie", "chimiotherapie", "chimio", "chemotherapy", "chemo", "tumeur", "tumour", "tumor",
    "oncolog", "métasta", "metasta", "leucémie", "leukaemia", "lymphom", "carcinom", "onco",
]
ITEMS = [QuestionnaireItem(**spec) for spec in DEFAULT_ITEMS]


LONG_NAME = "Marie-Christine"  # a long first name, on a shared phone
# The longest label a question carries: whom it is for, and its number in a long check-in.
LABELS = {lang: t.label(lang, number=13, total=13, name=LONG_NAME) for lang in LANGS}


def _values(text: str) -> dict[str, str]:
    longest_question = max((t.question_sms(i, "fr", LABELS["fr"]) for i in ITEMS), key=len)
    return {"hospital_phone": LONG_PHONE, "question": longest_question, "example": "135/85", "name": LONG_NAME}


def _all_sms() -> list[tuple[str, str]]:
    texts = [("unknown", t.UNKNOWN_NUMBER_REPLY)]
    for lang in LANGS:
        for key in t.SMS_KEYS:
            texts.append((f"{key}/{lang}", t.render(key, lang, **_values(key))))
        for item in ITEMS:
            for label in ("", LABELS[lang]):
                texts += [
                    (f"question {item.code}/{lang}{label}", t.question_sms(item, lang, label)),
                    (f"first {item.code}/{lang}{label}", t.first_sms(item, lang, off_week=False, prefix=label)),
                    (f"first-off {item.code}/{lang}{label}", t.first_sms(item, lang, off_week=True, prefix=label)),
                    (f"reask {item.code}/{lang}{label}", t.reask_sms(item, lang, label)),
                    (f"reminder {item.code}/{lang}{label}", t.reminder_sms(item, lang, label)),
                ]
        texts.append((f"reminder none/{lang}", t.reminder_sms(None, lang)))
    return texts


def _all_texts() -> list[tuple[str, str]]:
    """SMS plus what is spoken on calls and the raw data (item texts, examples, every template)."""
    texts = _all_sms()
    for lang in LANGS:
        for key in t.TEMPLATES:
            texts.append((f"template {key}/{lang}", t.render(key, lang, **_values(key))))
        for item in ITEMS:
            texts += [(f"item {item.code}/{lang}", item.text(lang)), (f"example {item.code}/{lang}", item.example(lang)),
                      (f"voice {item.code}/{lang}", t.voice_prompt(item, lang))]
    return texts


@pytest.mark.parametrize("name, text", _all_sms(), ids=lambda v: v if len(v) < 40 else None)
def test_every_sms_fits_in_two_segments(name, text):
    encoding, segments = count_segments(text)
    assert 1 <= segments <= 2, f"{name}: {segments} {encoding} segments"


# What a check-in asks first: the doses (on or off treatment), or the fever without a prescription.
FIRST_ITEMS = ("doses_missed", "dose_in_break", "temperature")


def _hint(item, lang):
    key = "sms_hint_choice" if item.answer_type == "scale_0_3" and item.choices else "sms_hint_" + item.answer_type
    return t.render(key, lang)


def test_the_longest_composed_texts_are_not_cut():
    """``fit`` falls back to shorter forms; with the default data no full text needs it, even with
    the longest label (a shared phone's long first name, question 13 of 13)."""
    for lang in LANGS:
        for item in ITEMS:
            for label in ("", "Q1/11", LABELS[lang]):
                question = " ".join(filter(None, (label, item.text(lang), _hint(item, lang))))
                assert t.question_sms(item, lang, label) == question
                reask = t.reask_sms(item, lang, label)
                assert question in reask and ("Urgence : 15" in reask or "Emergency: 15" in reask)
                if item.code in FIRST_ITEMS:  # the questions a check-in starts with: the whole greeting
                    assert t.first_sms(item, lang, off_week=False, prefix=label) == \
                        f"{t.render('intro', lang)}\n{question}"
                first_off = t.first_sms(item, lang, off_week=True, prefix=label)
                assert first_off.endswith(question) and ("15" in first_off.split("\n")[0])
                assert t.reminder_sms(item, lang, label) == t.render("reminder", lang, question=question)


def test_the_first_text_and_every_reask_say_what_to_do_in_an_emergency():
    for lang in LANGS:
        for item in ITEMS:
            for text in (t.first_sms(item, lang, off_week=False, prefix=LABELS[lang]),
                         t.first_sms(item, lang, off_week=True, prefix=LABELS[lang]),
                         t.reask_sms(item, lang, LABELS[lang])):
                assert re.search(r"\b15\b", text), text


@pytest.mark.parametrize("name, text", _all_texts(), ids=lambda v: v if len(v) < 40 else None)
def test_no_drug_name_nor_diagnosis(name, text):
    lowered = text.lower()
    for word in FORBIDDEN:
        assert word not in lowered, f"{name} mentions {word!r}"


def test_every_template_exists_in_both_languages():
    for key, texts in t.TEMPLATES.items():
        assert set(texts) == set(LANGS), key
        fields = [set(re.findall(r"{(\w+)}", texts[lang])) for lang in LANGS]
        assert fields[0] == fields[1], key
    for item in ITEMS:
        assert item.text_fr and item.text_en and item.example_fr and item.example_en


def test_examples_are_understood_by_the_parser():
    from app.triage.parsing import parse

    for item in ITEMS:
        for lang in LANGS:
            assert parse(item.answer_type, item.example(lang), choices=item.choices)[1], (item.code, lang)
