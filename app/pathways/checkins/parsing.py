"""Reading a patient's free-text answer: pure functions that never raise on any ``str``.

``parse(answer_type, text) -> (value, ok)``; ``ok`` False means "unclear, ask again".
Values: yes_no -> bool; scale_0_3, count, choice -> int; temperature -> float in degrees C,
or True (fever felt, not measured: "oui") / False (no fever: "non", "0");
blood_pressure -> {"systolic": int, "diastolic": int}, or False ("non": not measured).
Anything ambiguous is unclear rather than guessed: a wrong value is worse than a re-ask.
"""
from __future__ import annotations

import operator
import re
import unicodedata
from typing import Any

YES_WORDS = frozenset({"oui", "o", "yes", "y", "ouais", "ouai", "yep", "yeah", "si"})
NO_WORDS = frozenset({"non", "n", "no", "nope", "nan"})
# Words that carry no answer and may surround one ("Oui merci", "2 fois").
FILLER = frozenset({
    "merci", "thanks", "thank", "you", "ok", "okay", "svp", "stp", "please", "bonjour", "hello", "hi",
    "bonsoir", "cordialement", "bien", "sur", "of", "course",
})
COUNT_UNITS = frozenset({
    "fois", "dose", "doses", "prise", "prises", "oubli", "oublis", "oubliee", "oubliees",
    "time", "times", "missed", "jour", "jours", "day", "days", "comprime", "comprimes", "gelule",
    "gelules", "cachet", "cachets", "tablet", "tablets", "pill", "pills",
})
TEMPERATURE_WORDS = frozenset({"temp", "temperature", "fievre", "fever", "de", "a", "is", "of"})
NUMBER_WORDS = {
    "zero": 0, "aucun": 0, "aucune": 0, "none": 0, "rien": 0, "nothing": 0,
    "un": 1, "une": 1, "one": 1, "deux": 2, "two": 2, "trois": 3, "three": 3, "quatre": 4, "four": 4,
    "cinq": 5, "five": 5, "six": 6, "sept": 7, "seven": 7, "huit": 8, "eight": 8, "neuf": 9, "nine": 9,
    "dix": 10, "ten": 10,
}
# Whole answers (after normalising) that mean a scale value.
SCALE_PHRASES = {
    "pas du tout": 0, "not at all": 0, "un peu": 1, "a little": 1, "a bit": 1,
}
MAX_COUNT = 60
TEMPERATURE_RANGE = (34.0, 43.0)
SYSTOLIC_RANGE = (60, 260)
DIASTOLIC_RANGE = (30, 160)
MAX_LENGTH = 160  # an answer is a word or a number; longer texts are free text, kept but unclear

_TOKEN = re.compile(r"[a-z0-9]+")
_NOT_ONE_NUMBER = re.compile(r"\d\s*[.,/-]\s*\d|-\s*\d")


def normalise(text: str) -> str:
    """Lower case, accents removed, typographic variants folded, spaces collapsed."""
    text = unicodedata.normalize("NFKD", str(text)).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def _meaningful(text: str, extra_filler: frozenset[str] = frozenset()) -> list[str]:
    return [t for t in tokens(text) if t not in FILLER and t not in extra_filler]


def parse_yes_no(text: str, *, digits: bool = False) -> tuple[bool | None, bool]:
    """oui/o/yes/y -> True, non/n/no -> False; "1"/"0" too when ``digits`` (the question says so)."""
    words = _meaningful(text)
    if not words or len(normalise(text)) > MAX_LENGTH:
        return None, False
    first = words[0]
    if digits and first in ("1", "0") and len(words) == 1:
        return first == "1", True
    rest = set(words[1:])
    if first in YES_WORDS and not rest & NO_WORDS:
        return True, True
    if first in NO_WORDS and not rest & YES_WORDS and not rest - {"pas", "du", "tout", "at", "all", "jamais", "never"}:
        return False, True
    if words in (["pas", "du", "tout"], ["not", "at", "all"], ["jamais"], ["never"], ["aucun"], ["aucune"],
                 ["none"]):
        return False, True
    return None, False


def _single_number(words: list[str]) -> int | None:
    """The one number in ``words`` (digits or a word), or None when there is none or several."""
    values = []
    for word in words:
        if word.isdigit():
            if len(word) > 3:
                return None
            values.append(int(word))
        elif word in NUMBER_WORDS:
            values.append(NUMBER_WORDS[word])
        else:
            return None  # an unknown word: free text, not a number
    return values[0] if len(values) == 1 else None


def parse_scale(text: str, top: int = 3) -> tuple[int | None, bool]:
    """0..top as a digit or a word (zero, un, deux, trois / one, two, three); "non" means 0."""
    norm = normalise(text)
    if len(norm) > MAX_LENGTH:
        return None, False
    words = _meaningful(text)
    phrase = " ".join(words)
    if phrase in SCALE_PHRASES:
        return SCALE_PHRASES[phrase], True
    if len(words) == 1 and words[0] in NO_WORDS:
        return 0, True
    if _NOT_ONE_NUMBER.search(norm):  # "1,5", "2/3", "1-2", "-1": not one grade
        return None, False
    value = _single_number(words)
    if value is None or not 0 <= value <= top:
        return None, False
    return value, True


def parse_count(text: str) -> tuple[int | None, bool]:
    """A small whole number: "2", "deux", "2 fois", "aucune", "none", "0"."""
    norm = normalise(text)
    if len(norm) > MAX_LENGTH or _NOT_ONE_NUMBER.search(norm):
        return None, False
    words = _meaningful(text, COUNT_UNITS)
    if len(words) == 1 and words[0] in NO_WORDS:
        return 0, True
    if words in (["pas", "une"], ["pas", "un"], ["not", "one"]):
        return 0, True
    value = _single_number(words)
    if value is None or not 0 <= value <= MAX_COUNT:
        return None, False
    return value, True


_TEMP = re.compile(
    r"^(\d{2})(?:\s*(?:[.,]|°|degres?|degrees?)\s*(\d{1,2}))?\s*(?:°\s*c|°|c|degres?|degrees?|celsius)?$"
)


def parse_temperature(text: str) -> tuple[float | bool | None, bool]:
    """38,5 / 38.5 / 38°5 / 38°C / 38.5 C / 39 -> degrees; 34-43 only; "385" is ambiguous -> unclear."""
    norm = normalise(text)
    if len(norm) > MAX_LENGTH:
        return None, False
    words = _meaningful(norm)
    if len(words) == 1 and (words[0] in NO_WORDS or words[0] == "0"):  # "0": no fever, as on the keypad
        return False, True
    if len(words) == 1 and words[0] in YES_WORDS | {"fievre", "fever"}:
        return True, True
    core = " ".join(w for w in norm.split() if w not in FILLER and w not in TEMPERATURE_WORDS)
    core = re.sub(r"\s*°\s*", "°", core).strip(" .!?")
    match = _TEMP.match(core)
    if not match:
        return None, False
    whole, decimals = match.group(1), match.group(2)
    value = float(whole)
    if decimals:
        if len(decimals) == 2 and decimals[1] != "0":
            value += int(decimals) / 100
        else:
            value += int(decimals[0]) / 10
    value = round(value, 2)
    low, high = TEMPERATURE_RANGE
    if not low <= value <= high:
        return None, False
    return value, True


_BP = re.compile(r"^(\d{1,3}(?:[.,]\d)?)\s*(?:/|-|\s|sur|over|x)\s*(\d{1,3}(?:[.,]\d)?)(?:\s*(?:mm\s*hg|mmhg|cm\s*hg|cmhg))?$")


def _bp_number(text: str) -> float:
    return float(text.replace(",", "."))


def parse_blood_pressure(text: str) -> tuple[dict[str, int] | bool | None, bool]:
    """145/92 -> 145/92; 14/9 or 14,5/9 (French cm Hg habit) -> 140/90, 145/90; "non" -> not measured."""
    norm = normalise(text)
    if len(norm) > MAX_LENGTH:
        return None, False
    words = _meaningful(norm)
    if len(words) == 1 and words[0] in NO_WORDS:
        return False, True
    core = " ".join(w for w in norm.split() if w not in FILLER).strip(" .!?")
    match = _BP.match(core)
    if not match:
        return None, False
    systolic, diastolic = _bp_number(match.group(1)), _bp_number(match.group(2))
    if systolic < 30 and diastolic < 20:  # centimetres of mercury, as many French patients say it
        systolic, diastolic = systolic * 10, diastolic * 10
    elif systolic != int(systolic) or diastolic != int(diastolic):
        return None, False  # a decimal in mm Hg is a typo, not a reading
    systolic, diastolic = round(systolic), round(diastolic)
    if not (SYSTOLIC_RANGE[0] <= systolic <= SYSTOLIC_RANGE[1]
            and DIASTOLIC_RANGE[0] <= diastolic <= DIASTOLIC_RANGE[1] and systolic > diastolic):
        return None, False
    return {"systolic": systolic, "diastolic": diastolic}, True


def parse_choice(text: str, choices: dict[str, list[str]] | None) -> tuple[int | None, bool]:
    """A listed digit, or one of its listed words ({"0": ["non", "no"], "2": ["maintenant", "now"]})."""
    choices = choices or {}
    norm = normalise(text)
    if len(norm) > MAX_LENGTH:
        return None, False
    words = [str(NUMBER_WORDS[w]) if w in NUMBER_WORDS and w not in ("aucun", "aucune", "rien", "none", "nothing")
             else w for w in _meaningful(norm)]
    if len(words) == 1 and words[0] in choices:
        return int(words[0]), True
    phrase = " ".join(words)
    found = {key for key, aliases in choices.items() for alias in aliases if phrase == normalise(alias)}
    if len(found) == 1:
        return int(found.pop()), True
    return None, False


def parse(answer_type: str, text: str, *, choices: dict[str, list[str]] | None = None) -> tuple[Any, bool]:
    """Dispatch on the item's answer type; an unknown type is never understood."""
    if not isinstance(text, str):
        return None, False
    if answer_type == "yes_no":
        return parse_yes_no(text, digits=True)
    if answer_type == "scale_0_3":
        return parse_scale(text)
    if answer_type == "count":
        return parse_count(text)
    if answer_type == "temperature":
        return parse_temperature(text)
    if answer_type == "blood_pressure":
        return parse_blood_pressure(text)
    if answer_type == "choice":
        return parse_choice(text, choices)
    return None, False


def matches(rule: dict | None, value: Any) -> bool:
    """Does ``value`` meet ``rule``? Rules are data: {"gte": 38.0}, {"eq": true},
    {"key": "systolic", "gte": 180}, {"any": [rule, ...]}, {"all": [rule, ...]}.
    A rule never matches a value of another kind (a bool is not a number here)."""
    if not rule:
        return False
    if "any" in rule:
        return any(matches(r, value) for r in rule["any"])
    if "all" in rule:
        return all(matches(r, value) for r in rule["all"])
    if "key" in rule:
        if not isinstance(value, dict) or rule["key"] not in value:
            return False
        value = value[rule["key"]]
    if "eq" in rule:
        expected = rule["eq"]
        if isinstance(expected, bool) or isinstance(value, bool):
            return isinstance(value, bool) and isinstance(expected, bool) and value is expected
        return value == expected
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number:
        return False
    tested = [name for name in _COMPARE if name in rule]
    return bool(tested) and all(_COMPARE[name](value, rule[name]) for name in tested)


_COMPARE = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
