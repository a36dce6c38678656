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


def _values(text: str) -> dict[str, str]:
    longest_question = max((t.question_sms(i, "fr") for i in ITEMS), key=len)
    return {"hospital_phone": LONG_PHONE, "question": longest_question, "example": "135/85"}


def _all_sms() -> list[tuple[str, str]]:
    texts = [("unknown", t.UNKNOWN_NUMBER_REPLY)]
    for lang in LANGS:
        for key in t.SMS_KEYS:
            texts.append((f"{key}/{lang}", t.render(key, lang, **_values(key))))
        for item in ITEMS:
            texts += [
                (f"question {item.code}/{lang}", t.question_sms(item, lang)),
                (f"first {item.code}/{lang}", t.first_sms(item, lang, off_week=False)),
                (f"first-off {item.code}/{lang}", t.first_sms(item, lang, off_week=True)),
                (f"reask {item.code}/{lang}", t.reask_sms(item, lang)),
                (f"reminder {item.code}/{lang}", t.reminder_sms(item, lang)),
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


def test_the_longest_composed_texts_are_not_cut():
    """``fit`` falls back to shorter forms; with the default data no full text needs it."""
    for lang in LANGS:
        for item in ITEMS:
            question = f"{item.text(lang)} {t.render('sms_hint_' + item.answer_type, lang)}"
            assert t.question_sms(item, lang) == question
            assert t.reask_sms(item, lang).startswith(t.render("reask", lang, question="", example="")[:20])
            assert question in t.reask_sms(item, lang)
            for off_week, intro in ((False, "intro"), (True, "intro_off")):
                assert t.first_sms(item, lang, off_week=off_week) == f"{t.render(intro, lang)}\n{question}"
            assert t.reminder_sms(item, lang) == t.render("reminder", lang, question=question)


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
    from app.pathways.checkins.parsing import parse

    for item in ITEMS:
        for lang in LANGS:
            assert parse(item.answer_type, item.example(lang), choices=item.choices)[1], (item.code, lang)
