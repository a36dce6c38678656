"""The emergency scan on its own: what fires, what does not, and the lexicon as data."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.triage.emergency import (
    LEXICON_PATH,
    body_temperatures,
    load_lexicon,
    lexicon,
    scan,
    spell_numbers,
    tokenize,
)


@pytest.mark.parametrize("text, category", [
    ("help I can't breathe", "breathing"), ("j'arrive pas a respirer", "breathing"), ("jsuis essouflé", "breathing"),
    ("douleur dans la poitrine", "breathing"), ("j'ai du sang dans les selles", "bleeding"),
    ("saaang dans les urines", "bleeding"), ("selles noires depuis hier", "bleeding"), ("🩸🩸", "bleeding"),
    ("saigen du nez", "bleeding"), ("my pee is pink", "bleeding"), ("je suis aux urgences", "emergency_services"),
    ("on a appelé le 15", "emergency_services"), ("j'ai fait un malaise", "collapse"), ("she had a fit", "collapse"),
    ("il parle bizarre et sa bouche est de travers", "collapse"), ("fievre 39,2", "fever"), ("101.5 F", "fever"),
    ("j'ai trente-huit cinq", "fever"), ("envie d'en finir", "self_harm"), ("I want to die", "self_harm"),
    ("je vomis tout, je peux pas garder mes cachets", "vomiting_drug"), ("rappelez-moi vite svp", "call_now"),
    ("tension 17/10 ce matin", "blood_pressure_high"), ("diarrhée 9 fois par jour", "stools_severe"),
    ("je ne peux plus m'habiller seule", "severe"),
])
def test_a_red_flag_in_any_spelling_fires(text, category):
    result = scan(text)
    assert result.red and category in result.categories("red"), result


@pytest.mark.parametrize("text", [
    "pas de sang", "no chest pain", "prise de sang lundi", "mort de rire", "je respire bien merci",
    "ni fièvre ni saignement", "je n'ai plus de fièvre", "tension 12/8", "il fait 38 à l'ombre",
    "my dog had a seizure last night, vet says he's ok", "blood test went fine", "fell asleep early",
    "chute de cheveux", "ça m'a glacé le sang", "je suis tombée amoureuse du chiot", "37,2", "aucun signe de saignement",
])
def test_clear_negations_idioms_and_look_alikes_do_not_fire(text):
    assert not scan(text).red, scan(text)


@pytest.mark.parametrize("text", [
    "pas beaucoup de sang", "non j'ai du sang dans les urines", "not sure if it's blood", "je saigne pas beaucoup",
    "plus de fièvre",  # "no more fever" or "more fever": in doubt, it fires
])
def test_anything_in_doubt_fires(text):
    assert scan(text).red


@pytest.mark.parametrize("text, expected", [
    ("trente-huit cinq", "38.5"), ("thirty nine point two", "39.2"), ("cent soixante-cinq sur nonante", "165 sur 90"),
    ("a hundred and one", "a 101"), ("deux fois", "deux fois"), ("du cent dans les urines", "du cent dans les urines"),
])
def test_numbers_in_words(text, expected):
    assert spell_numbers(text) == expected


def test_temperatures_in_a_text_are_celsius_and_never_the_weather_or_someone_else():
    assert body_temperatures("jeudi g eu 38 7 le soir") == [38.7]
    assert body_temperatures("100.4F") == [38.0]
    assert body_temperatures("il fait 38 à l'ombre") == []
    assert body_temperatures("non c'est mon mari qui a 38,5, moi ça va") == []


def test_the_safety_reply_for_self_harm_gives_the_prevention_line():
    assert scan("je veux mourir").reply_key() == "safety_self_harm"
    assert scan("je saigne du nez").reply_key() == "safety"
    assert scan("merci").reply_key() is None


def test_the_lexicon_is_versioned_data_that_loads_whole():
    lex = load_lexicon(LEXICON_PATH)
    assert lex.version and lex is not lexicon() and lex.version == lexicon().version
    assert all(phrase.slots and all(s.exact or s.prefixes for s in phrase.slots) for phrase in lex.phrases)
    assert {p.category for p in lex.phrases} <= set(lex.categories)
    for name, spec in lex.categories.items():
        assert spec["severity"] in ("red", "orange", "topic"), name
    assert scan("sang").version == lex.version


def test_a_misspelling_is_never_read_into_a_common_word():
    assert not scan("aucun signe").red  # "signe" is a word, not "saigne" misspelt
    assert not scan("sans sucre").red  # "sans" is not "sang"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_the_scan_never_raises_and_tokens_keep_their_clauses(text):
    result = scan(text)
    assert result.version
    tokens = tokenize(text)
    assert all(a.clause <= b.clause for a, b in zip(tokens, tokens[1:]))
