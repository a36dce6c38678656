"""Reading a patient's answer to one question: pure functions that never raise on any ``str``.

``parse(answer_type, text) -> (value, ok)``; ``ok`` False means "not understood, ask again".
Values: yes_no -> bool; scale_0_3, count, choice -> int; temperature -> float in degrees C,
or True (fever felt, not measured: "oui") / False (no fever: "non", "0");
blood_pressure -> {"systolic": int, "diastolic": int} (or {"systolic": int} alone), or False
("non": not measured); stools -> int (stools a day above usual, the PRO-CTCAE anchor), or
{"scale": 0..3} when the patient answers with the fallback words ("un peu", "beaucoup").

Two layers. The strict one takes a whole answer as the questions ask for it ("38,5", "non",
"2 fois", "14/9"), with the hint words the texts themselves give ("beaucoup" is 3). The lenient
one reads the answer inside a sentence ("oui j'ai de la fievre", "j'en ai oublie une seule",
"101.5 F", "la tension ce matin 16/10") and, for yes/no questions about a red flag, leans to
"yes" when in doubt ("peut-etre", "un peu", "non... enfin si"). Plausibility bounds (34-43 C,
doses missed no more than the period allows, blood pressure ranges) make an answer not
understood, never a stored nonsense. Several answers in one text ("0 non non 37,2") are split by
``split_answers`` when each piece reads as the next pending question.
"""
from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

YES_WORDS = frozenset({"oui", "o", "yes", "y", "ouais", "ouai", "yep", "yeah", "si", "yup", "wi", "ouii", "yess",
                       "ui", "oiu", "uoi", "ouiii", "yse", "ye", "yea", "yeh", "ya", "yah", "yas", "aye", "yees",
                       "ok oui", "bah oui", "ben oui"})
NO_WORDS = frozenset({"non", "n", "no", "nope", "nan", "nn", "nah", "noo", "nonon", "nop", "noon",
                      "naan", "nonn", "niet"})
# Words that, after a "no", bring back what follows: "non... sauf les gencives", "no, but my wee is pink".
EXCEPTIONS = ("sauf", "seulement", "par contre", "mais", "except", "only", "but", "juste", "a part", "apart from",
              "although", "though", "cependant", "en revanche", "unless", "a moins que", "sauf si")
# Words that carry no answer and may surround one ("Oui merci", "2 fois").
FILLER = frozenset({
    "merci", "thanks", "thank", "you", "ok", "okay", "svp", "stp", "please", "bonjour", "hello", "hi",
    "bonsoir", "cordialement", "bien", "sur", "of", "course", "madame", "monsieur", "docteur", "dr",
    "bjr", "slt", "salut", "coucou", "mci", "thx", "ty", "dear", "nurse", "infirmiere", "pls", "plz",
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
    "dix": 10, "ten": 10, "onze": 11, "eleven": 11, "douze": 12, "twelve": 12, "quinze": 15, "vingt": 20,
    "dizaine": 10, "douzaine": 12, "quinzaine": 15, "vingtaine": 20, "dozen": 12, "couple": 2,
}
# The words of the 0-3 scales, as the texts hint them ("0 (non), 1 (un peu), 2 (moyennement),
# 3 (beaucoup)") and as patients say them. Longest phrases are tried first.
SCALE_WORDS: dict[str, int] = {
    "pas du tout": 0, "not at all": 0, "rien du tout": 0, "pas de souci": 0, "no problem": 0, "aucun": 0,
    "aucune": 0, "rien": 0, "none": 0, "nothing": 0, "non": 0, "no": 0, "nope": 0, "jamais": 0, "never": 0,
    "un peu": 1, "un petit peu": 1, "a little": 1, "a bit": 1, "a little bit": 1, "legerement": 1,
    "slightly": 1, "slight": 1, "mild": 1, "leger": 1, "legere": 1, "peu": 1, "pas beaucoup": 1,
    "pas trop": 1, "not much": 1, "not too bad": 1, "quelques": 1, "a few": 1, "some": 1,
    "moyennement": 2, "moyen": 2, "moyenne": 2, "modere": 2, "moderee": 2, "moderement": 2, "moderately": 2,
    "moderate": 2, "assez": 2, "quite": 2, "fairly": 2, "pas mal": 2, "plutot": 2, "medium": 2,
    "beaucoup": 3, "bcp": 3, "a lot": 3, "lots": 3, "enormement": 3, "severe": 3, "severement": 3,
    "tres": 3, "very": 3, "extremely": 3, "extremement": 3, "horrible": 3, "terrible": 3,
    "vraiment": 3, "really": 3, "tellement": 3, "so much": 3, "very much": 3, "intense": 3, "fort": 3,
    "forte": 3, "enorme": 3, "a mort": 3, "grave": 3, "plein": 3, "partout": 3, "everywhere": 3,
}
# "oui" to a yes/no question about a red flag; doubt leans to yes there (never to no).
YES_PHRASES = ("oui", "yes", "ouais", "yep", "yeah", "si", "yup", "un peu", "a little", "a bit", "legerement",
               "tiny bit", "a tiny bit", "just a bit", "un tout petit peu", "a touch", "only a little", "juste un peu",
               "ti peu", "un ti peu", "tit peu", "un tit peu", "un chouia", "un brin",
               "un petit peu", "a wee bit", "ya", "ui",
               "slightly", "peut etre", "peutetre", "maybe", "perhaps", "possible", "possiblement", "probablement",
               "probably", "je crois", "je pense", "i think so", "sort of", "kind of", "kinda", "mouais", "bof oui",
               "parfois", "sometimes", "quelques", "a few", "de temps en temps", "once", "une fois", "deux fois",
               "hmm maybe", "en fait oui", "actually yes", "enfin si", "si un peu", "depend", "ca depend",
               "depuis", "since", "hier", "yesterday", "ce matin", "this morning", "last night", "cette nuit",
               "x1", "x2", "x3", "une fois", "twice", "once", "plusieurs fois", "several times", "tous les jours",
               "every day", "de temps en temps", "now and then", *(
                   # Minimisers: a little is some ("a peine", "presque pas", "barely"), and doubt
                   # leans to yes ("p-e", "ptet"): on a red-flag question these are a "yes".
                   "a peine", "presque pas", "presque rien", "plus ou moins", "a moitie", "moitie", "moyen",
                   "un soupcon", "un poil", "vite fait", "legere", "leger", "quelques gouttes", "une goutte",
                   "p e", "pe", "ptet", "ptetre", "p tet", "peut etr", "possible que", "il se peut",
                   "barely", "hardly", "just about", "more or less", "half", "a smidge", "a tad", "a trace",
                   "tiny", "little bit", "bit", "not much", "pas beaucoup", "pas grand chose", "pas enorme",
                   "i guess", "i suppose", "suppose so", "guess so", "could be", "might be", "might have",
                   "on and off", "off and on", "occasionally", "now and again", "un petit", "une petite"))
NO_PHRASES = ("non", "no", "nope", "nan", "nah", "pas du tout", "not at all", "jamais", "never", "aucun", "aucune",
              "rien", "none", "nothing", "negatif", "negative", "pas eu", "not had", "ras", "rien a signaler",
              "tout va bien", "all good", "all fine", "ca va", "fine", "no problem")
HEDGED_NO = ("pas vraiment", "not really", "pas trop", "je ne sais pas", "je sais pas", "jsp", "sais pas",
             "don t know", "dunno", "not sure", "pas sur", "aucune idee", "no idea", "bof", "no more than usual",
             "pas plus que d habitude", "comme d habitude", "as usual", "same as usual", "same as always",
             "pareil", "comme toujours", "pas sure", "pas certaine", "pas certain", "not certain")
# Of YES_PHRASES, those that still say "some" or "maybe" beside an unreadable "bof" or "je sais pas".
LEANING_YES = ("un peu", "un petit peu", "a little", "a bit", "a peine", "presque pas", "plus ou moins", "a moitie",
               "peut etre", "peutetre", "p e", "ptet", "ptetre", "maybe", "perhaps", "probablement", "probably",
               "possible", "barely", "hardly", "more or less", "kind of", "sort of", "kinda", "i think so",
               "je crois que oui", "je pense que oui", "un chouia", "legerement", "slightly", "a touch")
# Words that name what another question asks about: an answer made of them, given to a red-flag
# question, was meant for another one (the texts crossed).
OTHER_QUESTIONS_WORDS = frozenset({
    "oubli", "oublis", "oublie", "oubliee", "oublies", "dose", "doses", "prise", "prises", "selles", "selle",
    "diarrhee", "nausee", "nausees", "aphte", "aphtes", "mains", "pieds", "fatigue", "fatiguee", "tension",
    "missed", "forgot", "forgotten", "doses", "stools", "diarrhoea", "diarrhea", "nausea", "mouth", "hands", "feet",
    "tired", "tiredness", "fatigue", "pressure", "rash", "boutons", "peau", "skin"})
CORRECTIONS = ("pas jusqu a dire", "dirais pas que", "dirait pas que", "would not say", "wouldn t say", "wouldnt say",
               "not say that i", "peux pas dire que je n", "can not say i have not", "can t say i haven",
               "cannot say i haven", "not that i haven", "pas dire que non", "enfin si", "si un peu", "en fait oui",
               "actually yes", "en fait si", "well yes", "mais si", "oui en fait", "enfin oui", "ah si", "oh si",
               "ah oui", "oh oui", "ah ben si", "ah bah si", "ah mais si", "si si", "oups si", "pardon si", "oh wait",
               "wait yes", "oh yes", "oh actually", "sorry yes", "correction oui", "je me suis trompe", "my mistake")
# Hedges that lean to "no": a nurse asks ("pas vraiment", "not really").
CLEAR_NO_HEDGES = ("pas vraiment", "not really", "pas specialement", "not especially", "not as such")
MAX_COUNT = 60
MAX_STOOLS = 40
TEMPERATURE_RANGE = (34.0, 43.0)
FAHRENHEIT_RANGE = (93.0, 110.0)
SYSTOLIC_RANGE = (60, 260)
DIASTOLIC_RANGE = (30, 160)
MAX_LENGTH = 160  # an answer is a word or a number; longer texts are read by the lenient layer only

_TOKEN = re.compile(r"[a-z0-9]+")
_NOT_ONE_NUMBER = re.compile(r"\d\s*[.,/-]\s*\d|-\s*\d")


def normalise(text: str) -> str:
    """Lower case, accents removed, typographic variants folded, spaces collapsed."""
    text = unicodedata.normalize("NFKD", str(text)).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text).replace("'", " "))


def _meaningful(text: str, extra_filler: frozenset[str] = frozenset()) -> list[str]:
    return [t for t in tokens(text) if t not in FILLER and t not in extra_filler]


def _has(words: Sequence[str], phrase: str) -> bool:
    """``phrase`` (words) occurs in ``words``, as whole words."""
    target = phrase.split()
    n = len(target)
    return any(list(words[i:i + n]) == target for i in range(len(words) - n + 1))


# --- strict answers -------------------------------------------------------------------------------

def parse_yes_no(text: str, *, digits: bool = False) -> tuple[bool | None, bool]:
    """oui/o/yes/y -> True, non/n/no -> False; "1"/"0" too when ``digits`` (the question says so)."""
    words = _meaningful(text)
    if not words or len(normalise(text)) > MAX_LENGTH:
        return None, False
    first = words[0]
    if digits and first in ("1", "0") and len(words) == 1:
        return first == "1", True
    rest = set(words[1:])
    if first in YES_WORDS and not rest and len(words) == 1:
        return True, True
    if first in NO_WORDS and not rest - {"pas", "du", "tout", "at", "all", "jamais", "never", "merci"}:
        return False, True
    if words in (["pas", "du", "tout"], ["not", "at", "all"], ["jamais"], ["never"], ["aucun"], ["aucune"],
                 ["none"], ["rien"], ["nothing"]):
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


def _scale_word(words: list[str]) -> int | None:
    """The level of the scale words in ``words``, when they say one level (longest phrases first)."""
    phrase = " ".join(words)
    if phrase in SCALE_WORDS:
        return SCALE_WORDS[phrase]
    return None


def parse_scale(text: str, top: int = 3) -> tuple[int | None, bool]:
    """0..top as a digit, a number word or a hint word ("un peu", "moyennement", "beaucoup", "a lot")."""
    norm = normalise(text)
    if len(norm) > MAX_LENGTH:
        return None, False
    words = _meaningful(text)
    level = _scale_word(words)
    if level is not None and level <= top:
        return level, True
    if _NOT_ONE_NUMBER.search(norm):  # "1,5", "2/3", "1-2", "-1": not one grade
        return None, False
    value = _single_number(words)
    if value is None or not 0 <= value <= top:
        return None, False
    return value, True


def parse_count(text: str, max_value: float | None = None) -> tuple[int | None, bool]:
    """A small whole number: "2", "deux", "2 fois", "aucune", "none", "0"; at most ``max_value``."""
    norm = normalise(text)
    if len(norm) > MAX_LENGTH or _NOT_ONE_NUMBER.search(norm):
        return None, False
    words = _meaningful(text, COUNT_UNITS)
    if len(words) == 1 and words[0] in NO_WORDS:
        return 0, True
    if words in (["pas", "une"], ["pas", "un"], ["not", "one"]):
        return 0, True
    value = _single_number(words)
    return _bounded_count(value, max_value)


def _bounded_count(value: int | None, max_value: float | None) -> tuple[int | None, bool]:
    limit = MAX_COUNT if max_value is None else min(MAX_COUNT, max_value)
    if value is None or not 0 <= value <= limit:
        return None, False
    return value, True


_TEMP = re.compile(
    r"^(\d{2,3})(?:\s*(?:[.,]|°|degres?|degrees?)\s*(\d{1,2}))?\s*(°\s*c|°\s*f|°|c|f|degres?|degrees?|celsius|fahrenheit)?$"
)


def _celsius(whole: str, decimals: str | None, unit: str | None) -> float | None:
    value = float(whole)
    if decimals:
        value += int(decimals) / (10 ** len(decimals)) if not (len(decimals) == 2 and decimals[1] == "0") \
            else int(decimals[0]) / 10
    unit = (unit or "").replace(" ", "")
    fahrenheit = unit in ("°f", "f", "fahrenheit") or (not unit.endswith("c") and unit != "celsius"
                                                       and FAHRENHEIT_RANGE[0] <= value <= FAHRENHEIT_RANGE[1])
    if fahrenheit:
        if not FAHRENHEIT_RANGE[0] <= value <= FAHRENHEIT_RANGE[1]:
            return None
        value = (value - 32) * 5 / 9
    elif not decimals and len(whole) == 3 and 340 <= value <= 430:
        value = value / 10  # "385": the comma left out (the keypad asks for 3 digits too)
    value = round(value, 1)
    low, high = TEMPERATURE_RANGE
    return value if low <= value <= high else None


def parse_temperature(text: str) -> tuple[float | bool | None, bool]:
    """38,5 / 38.5 / 38°5 / 38°C / 385 / 101.5 F / 100F -> degrees C; 34-43 C only; "non" -> False."""
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
    core = re.sub(r"^(\d{2})\s(\d)$", r"\1,\2", core)  # "38 5": a space for the comma
    match = _TEMP.match(core)
    if not match:
        return None, False
    value = _celsius(match.group(1), match.group(2), match.group(3))
    return (value, True) if value is not None else (None, False)


_BP = re.compile(r"^(\d{1,3}(?:[.,]\d)?)\s*(?:/|-|\s|sur|over|x)\s*(\d{1,3}(?:[.,]\d)?)(?:\s*(?:mm\s*hg|mmhg|cm\s*hg|cmhg))?$")


def _bp_number(text: str) -> float:
    return float(text.replace(",", "."))


def _bp_value(systolic: float, diastolic: float) -> dict[str, int] | None:
    if systolic < 30 and diastolic < 20:  # centimetres of mercury, as many French patients say it
        systolic, diastolic = systolic * 10, diastolic * 10
    elif systolic != int(systolic) or diastolic != int(diastolic):
        return None  # a decimal in mm Hg is a typo, not a reading
    systolic, diastolic = round(systolic), round(diastolic)
    if not (SYSTOLIC_RANGE[0] <= systolic <= SYSTOLIC_RANGE[1]
            and DIASTOLIC_RANGE[0] <= diastolic <= DIASTOLIC_RANGE[1] and systolic > diastolic):
        return None
    return {"systolic": systolic, "diastolic": diastolic}


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
    value = _bp_value(_bp_number(match.group(1)), _bp_number(match.group(2)))
    return (value, True) if value is not None else (None, False)


def _choice_phrases(choices: dict[str, list[str]] | None) -> list[tuple[list[str], int]]:
    out = []
    for key, aliases in (choices or {}).items():
        for alias in aliases:
            out.append((tokens(alias), int(key)))
    out.sort(key=lambda pair: -len(pair[0]))
    return out


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
    found = {key for phrase, key in _choice_phrases(choices) if phrase == words}
    if len(found) == 1:
        return found.pop(), True
    return None, False


def parse_stools(text: str) -> tuple[int | dict | None, bool]:
    """Stools a day above usual: a count ("5", "5 de plus", "aucune"), or the fallback scale words."""
    words = _meaningful(text, COUNT_UNITS | {"de", "plus", "more", "extra", "selles", "selle", "stools", "par",
                                            "a", "than", "usual", "habitude", "que", "d"})
    level = _scale_word(words)
    if level is not None and level > 0:
        return {"scale": level}, True
    if len(words) == 1 and (words[0] in NO_WORDS or words[0] in ("aucune", "aucun", "none", "rien")):
        return 0, True
    value = _single_number(words)
    if value is None or not 0 <= value <= MAX_STOOLS or _NOT_ONE_NUMBER.search(normalise(text)):
        return None, False
    return value, True


def parse_strict(answer_type: str, text: str, *, choices: dict | None = None,
                 max_value: float | None = None) -> tuple[Any, bool]:
    """The whole text as one answer of this type, in the forms the questions ask for."""
    if not isinstance(text, str):
        return None, False
    if answer_type == "yes_no":
        return parse_yes_no(text, digits=True)
    if answer_type == "scale_0_3":
        if choices:
            value, ok = parse_choice(text, choices)
            if ok:
                return value, ok
        return parse_scale(text)
    if answer_type == "count":
        return parse_count(text, max_value)
    if answer_type == "temperature":
        return parse_temperature(text)
    if answer_type == "blood_pressure":
        return parse_blood_pressure(text)
    if answer_type == "choice":
        return parse_choice(text, choices)
    if answer_type == "stools":
        return parse_stools(text)
    return None, False


# --- answers inside sentences ------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\d/])(\d{1,3}(?:[ ]?[.,°][ ]?\d{1,2})?)(?![\d/])")
_TIME_UNITS = ("h", "heure", "heures", "hour", "hours", "min", "minute", "minutes", "jour", "jours", "day", "days",
               "nuit", "nuits", "night", "nights",
               "semaine", "semaines", "week", "weeks", "mois", "month", "months", "an", "ans", "year", "years", "mg",
               "ml", "kg", "g", "am", "pm", "mn", "sec")


def _numbers(text: str) -> list[tuple[str, str]]:
    """Numbers in the text with the word after each ("2 fois" -> ("2", "fois")), times and doses left out."""
    from .emergency import spell_numbers

    norm = spell_numbers(normalise(text).replace("'", " "))
    norm = re.sub(r"(\d+)\s*(?:point|virgule)\s*(\d)\b", r"\1.\2", norm)
    norm = re.sub(r"(\d)\s*-\s*(\d)", r"\1 a \2", norm)  # "1-2": a range, both numbers
    norm = re.sub(r"(^|[^\w])-\s*\d+", r"\1 ", norm)  # "-1": no count, no grade
    out = []
    for match in _NUMBER.finditer(norm):
        after = _TOKEN.findall(norm[match.end():match.end() + 12])
        nxt = after[0] if after else ""
        if nxt in _TIME_UNITS:
            continue
        out.append((match.group(1).replace(" ", ""), nxt))
    return out


_SIGNS = {"✅": " oui ", "✔": " oui ", "☑": " oui ", "❌": " non ", "✖": " non ", "❎": " non "}


def _words(text: str) -> list[str]:
    from .emergency import tokenize

    for sign, word in _SIGNS.items():
        text = text.replace(sign, word)
    return [t.word for t in tokenize(text) if t.number is None]


def _topic_after_exception(words: list[str], item: str | None) -> bool:
    from .emergency import scan

    for i, word in enumerate(words):
        if any(words[i:i + len(p.split())] == p.split() for p in EXCEPTIONS):
            return item is not None and item in scan(" ".join(words[i + 1:])).topics
    return False


def lenient_yes_no(text: str, *, red_flag: bool, evidence: bool | None = None, topic: bool = False,
                   topic_item: str | None = None) -> bool | None:
    """Yes or no inside a sentence; ``evidence`` is what the emergency scan says of this question
    (True: the text reports it; False: it denies it in so many words); ``topic``: the text speaks
    of what the question asks about ("les gencives", "my wee is pink", "short of breath on the
    stairs"). For a red-flag question, doubt ("peut-etre", "un peu", "non... enfin si") is yes, and
    so is a description of the thing asked about, unless it starts with a plain "no"."""
    if evidence is True:
        return True
    every = _words(text)
    words = [w for w in every if w not in FILLER]
    if not words:
        return None
    first = words[0]
    if len(words) == 1 and first not in YES_WORDS | NO_WORDS:
        near = _near_yes_no(first)  # "ues", "yesd", "oiu": a slip of the thumb
        if near == "yes" or (near == "no" and not red_flag):
            first = near  # a slip towards "no" on a red-flag question is asked again, never taken as no
    if re.search(r"(?<![a-z0-9])x ?[1-9](?![0-9])", normalise(text)):
        return True  # "x1", "x 2": how many times
    corrected = _corrected(every)
    if first in YES_WORDS or corrected:
        return True
    return _lenient_rest(text, every, words, first, red_flag=red_flag, evidence=evidence, topic=topic,
                         topic_item=topic_item)


def affirms(text: str) -> bool:
    """The text says yes in so many words: a first "oui", a correction ("non... enfin si", "je ne
    dirais pas que je respire bien") or some/maybe ("un peu", "peut-etre")."""
    every = _words(text)
    words = [w for w in every if w not in FILLER]
    if not words:
        return False
    return words[0] in YES_WORDS or _corrected(every) or (
        words[0] not in NO_WORDS and any(_has(every, p) for p in LEANING_YES))


def _corrected(every: list[str]) -> bool:
    """A "no" taken back, or a double negation: "non... enfin si", "je ne dirais pas que je respire bien"."""
    return any(_has(every, p) for p in CORRECTIONS)


def _about_another_question(text: str) -> bool:
    """The answer's first words name another question's subject ("aucun oubli", "0 dose oubliee"),
    before any comma ("rien, juste la fatigue" answers this question, then says more)."""
    head = [w for w in _words(re.split(r"[,.;:!?\n]", normalise(text))[0]) if w not in FILLER][:3]
    return any(w in OTHER_QUESTIONS_WORDS for w in head)


def _lenient_rest(text: str, every: list[str], words: list[str], first: str, *, red_flag: bool, evidence: bool | None,
                  topic: bool, topic_item: str | None) -> bool | None:
    exception = any(_has(every, p) for p in EXCEPTIONS)
    if red_flag and first not in NO_WORDS and any(_has(every, p) for p in LEANING_YES) \
            and not any(_has(every, p) for p in CLEAR_NO_HEDGES):
        return True  # "bof un peu", "je sais pas, peut-etre": some, or maybe, is a yes here
    if any(_has(every, p) for p in HEDGED_NO):
        return None  # "no more than usual", "pas vraiment": a nurse asks
    if red_flag and evidence is None and not topic and _about_another_question(text):
        return None  # "aucun oubli" to the breathing question: an answer to another question; ask again
    if first in NO_WORDS:
        # "non... sauf que ma brosse a dents est rose": what follows the exception speaks to the question
        return bool(red_flag and topic and exception and _topic_after_exception(every, topic_item))
    if red_flag and topic and (evidence is not False or exception):
        return True
    if red_flag and any(_has(every, p) for p in YES_PHRASES):
        return True
    if evidence is False or any(_has(every, p) for p in NO_PHRASES):
        return False
    if any(_has(every, p) for p in YES_PHRASES):
        return True
    return None


def _near_yes_no(word: str) -> str | None:
    """"yes" or "no" when a short word is one slip away from exactly one of them."""
    from rapidfuzz.distance import OSA

    if not 2 <= len(word) <= 5 or not word.isalpha():
        return None
    yes = min(OSA.distance(word, w) for w in ("yes", "oui", "yep"))
    no = min(OSA.distance(word, w) for w in ("non", "no", "nope"))
    if yes == 1 and no > 1:
        return "yes"
    if no == 1 and yes > 1:
        return "no"
    return None


def lenient_scale(text: str, choices: dict | None = None, *, top: int = 3) -> int | None:
    """The level a sentence gives: one digit 0..top, an anchor of the question, or scale words."""
    words = [w for w in _words(text) if w not in FILLER]
    digits = {int(n) for n, _after in _numbers(text) if n.isdigit()}
    if len(digits) == 1 and (value := digits.pop()) <= top:
        return value
    if digits:
        return None
    if words and words[0] in NUMBER_WORDS and NUMBER_WORDS[words[0]] <= top and words[0] not in (
            "aucun", "aucune", "rien", "none", "nothing", "un", "une", "couple"):
        return NUMBER_WORDS[words[0]]  # "deux, plus rien de croquant"
    levels = set()
    taken: set[int] = set()
    for phrase, level in [*_choice_phrases(choices), *sorted(((p.split(), v) for p, v in SCALE_WORDS.items()),
                                                            key=lambda pair: -len(pair[0]))]:
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if words[i:i + n] == phrase and not taken & set(range(i, i + n)):
                levels.add(level)
                taken |= set(range(i, i + n))
    if not levels:
        return None
    positive = {lvl for lvl in levels if lvl > 0}
    leading_no = any(words[:len(p.split())] == p.split() for p, v in SCALE_WORDS.items() if v == 0) or (
        bool(words) and words[0] in NO_WORDS)
    if leading_no and positive and not any(_has(words, p) for p in EXCEPTIONS + ("enfin", "en fait")):
        return 0  # "pas du tout, j'ai trop la dalle": the rest is about something else
    if positive:
        return max(positive)  # "non mais un peu le soir": the symptom is there
    return 0 if leading_no else None  # a "no" inside a sentence is no answer by itself


def lenient_count(text: str, max_value: float | None = None) -> int | None:
    """One count in a sentence ("j'en ai oublie 2", "une dizaine", "8 ou 9" -> 9, "aucune"; "toutes":
    every dose of the period, when the period is known); "une semaine", "2 jours" are no counts."""
    words = _words(text)
    values = [int(n) for n, _ in _numbers(text) if n.isdigit()]
    values += [NUMBER_WORDS[w] for i, w in enumerate(words) if w in NUMBER_WORDS and NUMBER_WORDS[w] > 0
               and (i + 1 >= len(words) or words[i + 1] not in _TIME_UNITS)]
    if not values and max_value is not None and any(_has(words, p) for p in (
            "toutes", "tous", "all of them", "all", "tout oublie", "everything", "aucune prise")):
        return int(max_value)
    if not values:
        if any(_has(words, p) for p in ("aucun", "aucune", "rien", "none", "nothing", "tout pris", "all taken",
                                        "pas oublie", "rien oublie", "not missed", "not miss", "pas d oubli",
                                        "zero", "never")):
            return 0
        return None
    value = max(values)  # "8 ou 9", "deux ou trois": the larger, when in doubt
    value, ok = _bounded_count(value, max_value)
    return value if ok else None


def lenient_temperature(text: str, topic: bool = False) -> float | bool | None:
    """A temperature inside a sentence (the highest when several; "38 2" is 38.2; not the weather,
    not someone else's), or yes/no to the fever question."""
    from .emergency import body_temperatures, scan

    values = body_temperatures(text)
    if values:
        return max(values)

    denied = any(h.category == "fever" and h.why == "negated" for h in scan(text).dropped)
    return lenient_yes_no(text, red_flag=True, evidence=False if denied else None, topic=topic)


def lenient_blood_pressure(text: str) -> dict[str, int] | bool | None:
    """145/92, 16/10, "165 sur 100", "SYS 171 DIA 97 PUL 88" (a home monitor's display)."""
    from .emergency import spell_numbers

    norm = spell_numbers(normalise(text))
    monitor = re.search(r"sys\D{0,3}(\d{2,3})\D{1,6}dia\D{0,3}(\d{2,3})", norm)
    if monitor:
        return _bp_value(float(monitor.group(1)), float(monitor.group(2)))
    match = re.search(r"(\d{1,3}(?:[.,]\d)?)\s*(?:/|sur|over|x|-)\s*(\d{1,3}(?:[.,]\d)?)", norm)
    if match:
        return _bp_value(_bp_number(match.group(1)), _bp_number(match.group(2)))
    numbers = [float(n.replace(",", ".")) for n, _ in _numbers(text) if re.fullmatch(r"\d{1,3}(?:[.,]\d)?", n)]
    if len(numbers) == 2:
        return _bp_value(*numbers)
    if len(numbers) == 1:  # the top number alone ("16 de tension")
        high = numbers[0] * 10 if numbers[0] < 30 else numbers[0]
        if SYSTOLIC_RANGE[0] <= high <= SYSTOLIC_RANGE[1]:
            return {"systolic": round(high)}
    words = _words(text)
    if any(_has(words, p) for p in ("pas pris", "pas mesure", "not taken", "not measured", "pas de tensiometre")):
        return False
    return None


def lenient_choice(text: str, choices: dict | None) -> int | None:
    """A choice inside a sentence: its digit, or its words; several -> the highest (call sooner)."""
    digits = {int(n) for n, _ in _numbers(text) if n.isdigit()}
    keys = {int(k) for k in (choices or {})}
    if len(digits) == 1 and digits <= keys:
        return digits.pop()
    if digits:
        return None
    words = _words(text)
    found = set()
    for phrase, key in _choice_phrases(choices):
        if phrase and _has(words, " ".join(phrase)):
            found.add(key)
    return max(found) if found else None


_USUAL_WORDS = r"(?:d habitude|habituellement|normalement|usually|normally|usual|ordinairement)"
_USUAL = (re.compile(_USUAL_WORDS + r"\D{0,20}?(\d{1,2})"),  # "d'habitude c'est 3", "normally once"
          re.compile(r"(\d{1,2})\D{0,14}" + _USUAL_WORDS))  # "3 d'habitude", "6 fois comme d'habitude"


def spell_usual(norm: str) -> str:
    """"normally once", "d'habitude une fois": the usual count as digits."""
    return re.sub(r"\b(once|une fois)\b", "1", re.sub(r"\btwice\b", "2", norm))


def lenient_stools(text: str) -> int | dict | None:
    """Stools a day above usual: "a dozen today, normally once" is 11; "8 fois, d'habitude 3" is 5."""
    norm = spell_usual(normalise(text).replace("'", " "))
    above = any(w in norm for w in ("more than", "de plus", "en plus", "extra", "above", "au dessus", "over usual",
                                    "up ", "on my usual", "on top of"))
    usual = None if above else (_USUAL[0].search(norm) or _USUAL[1].search(norm))
    if usual:
        base = int(usual.group(1))
        rest = norm[:usual.start()] + " " + norm[usual.end():]
        count = lenient_count(rest, MAX_STOOLS)
        if count is not None:
            return max(0, count - base)
        return 0  # the only number is the usual one: no more than usual
    count = lenient_count(text, MAX_STOOLS)
    if count is not None:
        return count
    level = lenient_scale(text)
    if level is not None:
        return {"scale": level} if level else 0
    return None


def parse_lenient(answer_type: str, text: str, *, choices: dict | None = None, max_value: float | None = None,
                  red_flag: bool = False, evidence: Any = None, topic: bool = False,
                  topic_item: str | None = None) -> tuple[Any, bool]:
    """The answer inside a sentence; ``evidence``: what the emergency scan says of this question;
    ``topic``: the text speaks of what the question asks about (``topic_item``: that question)."""
    if not isinstance(text, str) or not text.strip():
        return None, False
    value: Any = None
    if answer_type == "yes_no":
        value = lenient_yes_no(text, red_flag=red_flag, evidence=evidence, topic=topic, topic_item=topic_item)
    elif answer_type == "scale_0_3":
        value = 3 if evidence is True else lenient_scale(text, choices)
    elif answer_type == "count":
        value = lenient_count(text, max_value)
    elif answer_type == "temperature":
        value = evidence if isinstance(evidence, float) else lenient_temperature(text, topic)
        if value is None and evidence is True:
            value = True
    elif answer_type == "blood_pressure":
        value = lenient_blood_pressure(text)
    elif answer_type == "choice":
        value = lenient_choice(text, choices)
        if isinstance(evidence, int) and not isinstance(evidence, bool):
            value = max(value or 0, evidence)
    elif answer_type == "stools":
        value = {"scale": 3} if evidence is True else lenient_stools(text)
    return (value, True) if value is not None else (None, False)


def parse(answer_type: str, text: str, *, choices: dict[str, list[str]] | None = None,
          max_value: float | None = None, red_flag: bool = False, evidence: Any = None,
          topic: bool = False, topic_item: str | None = None) -> tuple[Any, bool]:
    """Strict first, then inside a sentence; an unknown type is never understood."""
    value, ok = parse_strict(answer_type, text, choices=choices, max_value=max_value)
    if ok:
        return value, ok
    return parse_lenient(answer_type, text, choices=choices, max_value=max_value, red_flag=red_flag,
                         evidence=evidence, topic=topic, topic_item=topic_item)


# --- several answers in one text ----------------------------------------------------------------------

_LABEL = re.compile(r"^\s*q\s*(\d{1,2})\s*(?:/\s*\d{1,2})?\s*[:.)=-]?\s*", re.IGNORECASE)
_PIECE_SPLIT = re.compile(r"[;\n|]+|,(?!\d)|(?<!\d)[/.](?!\d)|\s+-\s+|\s+")
_SLASH_LIST_SPLIT = re.compile(r"[;\n|/]+|,(?!\d)|(?<!\d)[.](?!\d)|\s+-\s+|\s+")


def strip_label(text: str) -> tuple[int | None, str]:
    """"Q3: non" -> (3, "non"): the question a patient names, as the texts name them."""
    match = _LABEL.match(text or "")
    if not match:
        return None, text
    return int(match.group(1)), text[match.end():]


def split_answers(questions: Sequence[dict], text: str) -> list[Any] | None:
    """Values for the first k >= 2 pending questions when ``text`` is their answers in order
    ("0 non non 37,2", "0, no, no, no"), each piece read strictly; else None.

    ``questions``: dicts with answer_type, choices and max_value, in the order they are asked."""
    if not isinstance(text, str) or len(questions) < 2 or len(text) > 400:
        return None
    norm = normalise(text)
    norm = re.sub(r"\bq\s*\d{1,2}\s*[:.)=]\s*", " ", norm)  # "q1: 0 q2: non"
    if len(re.findall(r"\b(?:virgule|comma)\b", norm)) >= 2:  # dictated: "zero virgule non virgule oui"
        norm = re.sub(r"(?<!\d)\s*\b(?:virgule|comma)\b\s*(?!\d)", ", ", norm)
    slashes = norm.count("/") >= 2  # "0/non/non/0/3/1": a list written with slashes
    split = _SLASH_LIST_SPLIT if slashes else _PIECE_SPLIT
    pieces = [p for p in split.split(norm) if p and p not in FILLER and p not in ("et", "and", "&")]
    if len(pieces) < 2:
        return None

    separated = bool(re.search(r"[,;\n]|\bq\s*\d", norm)) or bool(re.search(r"[,;\n]", text)) or slashes

    def solve(q: int, i: int) -> list[Any] | None:
        if i == len(pieces):
            # Three answers or more, or two set apart ("0, non"): "0 0" or "oui 2 fois" is one answer.
            return [] if q >= 3 or (q == 2 and separated) else None
        if q == len(questions):
            return None
        spec = questions[q]
        for size in (3, 2, 1):
            if i + size > len(pieces):
                continue
            chunk = ("/" if slashes and size == 2 and spec["answer_type"] == "blood_pressure" else " ").join(
                pieces[i:i + size])  # "13/8" in a list written with slashes is one blood pressure
            value, ok = parse_strict(spec["answer_type"], chunk, choices=spec.get("choices"),
                                     max_value=spec.get("max_value"))
            if ok:
                rest = solve(q + 1, i + size)
                if rest is not None:
                    return [value, *rest]
        return None

    return solve(0, 0)


# --- rules on values ---------------------------------------------------------------------------------

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
