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


# --- kinds the fourth held-out set taught (own examples, not the set's sentences) --------------------

@pytest.mark.parametrize("text, category", [
    ("il y a des stries rouges dans mes selles", "bleeding"), ("vomi avec des filets rouges", "bleeding"),
    ("mes lèvres sont toutes bleues", "breathing"), ("lips look a bit purple tonight", "breathing"),
    ("I can't lie flat any more, I sleep in the chair", "breathing"),
    ("sa jambe gauche est toute molle depuis ce matin", "collapse"), ("je vois double depuis midi", "collapse"),
    ("on n'arrive pas à bien le réveiller", "collapse"), ("il s'est cassé la figure dans l'escalier", "collapse"),
    ("she went white as a sheet and slid off the chair", "collapse"), ("mum is muddled, talking nonsense", "collapse"),
    ("un mal de tête brutal, d'un coup", "severe"), ("trop épuisée pour m'habiller", "severe"),
    ("impossible de manger quoi que ce soit", "severe"), ("je me suis fait dessus cette nuit", "severe"),
    ("ils me gardent cette nuit", "emergency_services"), ("mwen ka senyen", "bleeding"),
    ("j'ai aligné tous mes cachets sur la table", "self_harm"), ("je l'ai vomi une heure après", "vomiting_drug"),
    ("rappelez-moi de suite", "call_now"),
])
def test_kinds_learnt_from_the_fourth_held_out_set_fire(text, category):
    result = scan(text)
    assert result.red and category in result.categories("red"), result


@pytest.mark.parametrize("text", [
    "mon saignement de nez, c'était en 2021", "la fièvre c'était il y a deux ans, avant la maladie",
    "the nosebleed was years ago", "ma chaudière a de la fièvre, 14 degrés dans la cuisine",
    "vomi une fois le soir, le comprimé était pris depuis 6 heures", "sick once, the tablet had been down five hours",
    "je suis tombée sur ma voisine à la pharmacie", "l'ambulance pour ma séance de jeudi est commandée ?",
    "une vue à couper le souffle", "mon chat a vomi du sang", "respiration nickel",
    "ma fille a de la fièvre, est-ce contagieux pour moi ?", "les impôts m'ont saigné à blanc",
])
def test_long_past_kept_tablets_things_and_idioms_do_not_fire(text):
    assert not scan(text).red, scan(text)


@pytest.mark.parametrize("text", [
    "il y a deux ans une embolie, et depuis hier j'ai du mal à respirer",  # long past, but again now
    "vomi 1h après la prise",  # not long enough to say the tablet was kept
    "je suis tombée sur le dos dans la salle de bain",  # a fall, not a meeting
    "I was walking the dog and my chest went tight",  # the patient's chest, not the dog's
])
def test_what_only_looks_like_those_still_fires(text):
    assert scan(text).red, scan(text)
