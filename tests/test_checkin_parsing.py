"""Reading patients' answers: tables of real-life replies, and no text can make the parser raise."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.pathways.checkins.parsing import matches, parse, parse_choice
from app.pathways.checkins.questionnaire import DEFAULT_ITEMS

TYPES = ("yes_no", "scale_0_3", "count", "temperature", "blood_pressure", "choice", "unknown")
WANTS_CALL = next(i for i in DEFAULT_ITEMS if i["code"] == "wants_call")["choices"]


@pytest.mark.parametrize("text, expected", [
    ("oui", True), ("Oui", True), ("OUI !", True), ("o", True), ("yes", True), ("Y", True), (" oui merci ", True),
    ("non", False), ("NON.", False), ("n", False), ("no", False), ("Non merci", False), ("pas du tout", False),
    ("1", True), ("0", False),
])
def test_yes_no(text, expected):
    assert parse("yes_no", text) == (expected, True)


@pytest.mark.parametrize("text", ["", "   ", "peut-être", "je ne sais pas", "oui non", "non, mais j'ai saigné",
                                  "2", "ok", "?"])
def test_yes_no_unclear(text):
    assert parse("yes_no", text) == (None, False)


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1", 1), ("2", 2), ("3", 3), (" 2 ", 2), ("zéro", 0), ("zero", 0), ("un", 1), ("one", 1),
    ("deux", 2), ("Two", 2), ("trois", 3), ("THREE", 3), ("non", 0), ("un peu", 1), ("2 merci", 2),
])
def test_scale(text, expected):
    assert parse("scale_0_3", text) == (expected, True)


@pytest.mark.parametrize("text", ["4", "-1", "1,5", "2/3", "1 ou 2", "beaucoup", "", "33"])
def test_scale_unclear(text):
    assert parse("scale_0_3", text) == (None, False)


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("2", 2), ("deux", 2), ("aucune", 0), ("aucun", 0), ("none", 0), ("None", 0), ("non", 0),
    ("2 fois", 2), ("3 doses", 3), ("1 comprimé", 1), ("12", 12), ("pas une", 0),
])
def test_count(text, expected):
    assert parse("count", text) == (expected, True)


@pytest.mark.parametrize("text", ["2.5", "1-2", "beaucoup", "100", "", "2 ou 3", "-3"])
def test_count_unclear(text):
    assert parse("count", text) == (None, False)


@pytest.mark.parametrize("text, expected", [
    ("38,5", 38.5), ("38.5", 38.5), ("38°5", 38.5), ("38°C", 38.0), ("38 °C", 38.0), ("38.5 C", 38.5),
    ("38,5°", 38.5), ("39", 39.0), ("37,2 °c", 37.2), ("39 degrés", 39.0), ("temp 38,5", 38.5), ("34", 34.0),
    ("43", 43.0), ("38.50", 38.5), ("non", False), ("no", False), ("0", False), ("oui", True), ("fièvre", True),
])
def test_temperature(text, expected):
    assert parse("temperature", text) == (expected, True)


@pytest.mark.parametrize("text", [
    "385",  # 38.5 or 385? never guess
    "3", "33.9", "43.5", "101", "100.4F", "38 5", "38,5,2", "", "je ne sais pas", "37-38",
])
def test_temperature_unclear(text):
    assert parse("temperature", text) == (None, False)


@pytest.mark.parametrize("text, expected", [
    ("145/92", (145, 92)), ("145 / 92", (145, 92)), ("145-92", (145, 92)), ("145 92", (145, 92)),
    ("14/9", (140, 90)), ("14,5/9", (145, 90)), ("12/8", (120, 80)), ("14 sur 9", (140, 90)),
    ("135/85 mmHg", (135, 85)), ("180/110", (180, 110)),
])
def test_blood_pressure(text, expected):
    value, ok = parse("blood_pressure", text)
    assert ok and (value["systolic"], value["diastolic"]) == expected


@pytest.mark.parametrize("text", ["145", "92/145", "300/90", "145/92/80", "145.5/90", "", "haute"])
def test_blood_pressure_unclear(text):
    assert parse("blood_pressure", text) == (None, False)


def test_blood_pressure_not_measured():
    assert parse("blood_pressure", "non") == (False, True)


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1", 1), ("2", 2), ("deux", 2), ("Maintenant", 2), ("now", 2), ("tout de suite", 2),
    ("cette semaine", 1), ("non", 0), ("non merci", 0),
])
def test_choice(text, expected):
    assert parse_choice(text, WANTS_CALL) == (expected, True)


@pytest.mark.parametrize("text", ["3", "oui", "", "1 ou 2"])
def test_choice_unclear(text):
    assert parse("choice", text, choices=WANTS_CALL) == (None, False)


def test_unknown_type_and_non_text_are_unclear():
    assert parse("unknown", "oui") == (None, False)
    assert parse("yes_no", None) == (None, False)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(answer_type=st.sampled_from(TYPES), text=st.text(max_size=300))
def test_parse_never_raises(answer_type, text):
    value, ok = parse(answer_type, text, choices=WANTS_CALL)
    assert isinstance(ok, bool)
    assert ok or value is None


@settings(max_examples=300, deadline=None)
@given(answer_type=st.sampled_from(TYPES),
       text=st.text(alphabet="0123456789 ,./-°cC°ouinOUIN\t\n", max_size=20))
def test_parse_never_raises_on_number_like_text(answer_type, text):
    value, ok = parse(answer_type, text, choices=WANTS_CALL)
    if ok and answer_type == "temperature" and not isinstance(value, bool):
        assert 34.0 <= value <= 43.0
    if ok and answer_type == "scale_0_3":
        assert value in (0, 1, 2, 3)


@pytest.mark.parametrize("rule, value, expected", [
    ({"gte": 38.0}, 38.0, True), ({"gte": 38.0}, 37.9, False), ({"gte": 38.0}, True, False),
    ({"eq": True}, True, True), ({"eq": True}, 1, False), ({"eq": 2}, 2, True), ({"eq": 2}, True, False),
    ({"gte": 3}, 3, True), ({"any": [{"gte": 38.0}, {"eq": True}]}, True, True),
    ({"any": [{"key": "systolic", "gte": 180}, {"key": "diastolic", "gte": 110}]},
     {"systolic": 150, "diastolic": 110}, True),
    ({"any": [{"key": "systolic", "gte": 180}, {"key": "diastolic", "gte": 110}]},
     {"systolic": 179, "diastolic": 109}, False),
    ({"key": "systolic", "gte": 180}, False, False), (None, 3, False), ({}, 3, False),
])
def test_rules(rule, value, expected):
    assert matches(rule, value) is expected
