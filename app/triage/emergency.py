"""The emergency scan: does a patient's text, however it is written, report a red flag?

Pure and cheap (no database, a few hundred microseconds), so it runs on every inbound text
before any other reading: in the Twilio webhook (the safety reply goes back in its TwiML, even
when the scheduler or the database is down) and again when the text is read (the red alert).

The words are data: ``lexicon/emergency.toml`` (version recorded on every alert it raises).
The text is folded first: case, accents, repeated letters ("saaang"), SMS spelling ("jsuis",
"g", "tjrs", "cant"), emojis (🩸 -> sang); then cut into words and clauses. A lexicon word matches
the same word, a word it starts (``saign*``), or a misspelling of it (one edit, two for long
words) unless the typed word is itself a common French or English word (``signe`` is never
``saigne``): those come from ``wordfreq``'s frequency lists. Temperatures (38,5 / 38°5 / 101.5 F),
blood pressures (16/10, 165/95) and stool counts are read with their context words.

A hit is dropped when an exclusion phrase covers it ("prise de sang") or, for negatable terms,
when an unambiguous negation governs it ("pas de sang", "no chest pain", "sang : non",
"je saigne pas"); anything in between ("pas beaucoup de sang", "non j'ai du sang", "not sure if
it's blood") keeps the hit. When in doubt, it fires.
"""
from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rapidfuzz.distance import OSA

LEXICON_PATH = Path(__file__).with_name("lexicon") / "emergency.toml"
RED, ORANGE = "red", "orange"


# --- folding ---------------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case, no accents, typographic apostrophes and dashes made plain."""
    text = unicodedata.normalize("NFKD", str(text)).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
            .replace("\u2013", "-").replace("\u2014", "-").replace("œ", "oe").replace("æ", "ae"))


def squeeze(word: str) -> str:
    """Repeated letters collapsed: "saaang" -> "sang", "essouffle" -> "esoufle"."""
    return re.sub(r"(.)\1+", r"\1", word)


_UNITS_WORDS = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
                "neuf": 9, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six_": 6, "seven": 7, "eight": 8,
                "nine": 9, "zero": 0}
_TENS_WORDS = {"trente": 30, "quarante": 40, "thirty": 30, "forty": 40, "cent": 100, "hundred": 100}
_NUMBER_PHRASE = re.compile(
    r"\b(trente|quarante|thirty|forty)(?:[\s-]+(?:et[\s-]+)?(un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|"
    r"one|two|three|four|five|seven|eight|nine))?\b"
    r"(?:[\s,]+(?:virgule|point|et|and)?[\s-]*(un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|zero|one|two|"
    r"three|four|five|seven|eight|nine|demi|demie|a half|half)\b)?")


def spell_numbers(folded: str) -> str:
    """Numbers written in words as digits: "trente-huit cinq" -> "38.5", "thirty nine" -> "39",
    "trente-huit et demi" -> "38.5" (body temperatures, the numbers that matter here)."""
    def digits(match: re.Match) -> str:
        value = _TENS_WORDS[match.group(1)] + _UNITS_WORDS.get(match.group(2) or "", 0)
        decimal = match.group(3)
        if decimal in ("demi", "demie", "a half", "half"):
            return f"{value}.5"
        if decimal:
            return f"{value}.{_UNITS_WORDS.get(decimal, 0)}"
        return str(value)

    return _NUMBER_PHRASE.sub(digits, folded)


# --- the lexicon ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    """One word of a phrase: alternatives, each exact or a prefix (``stem*``)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Phrase:
    category: str
    slots: tuple[Slot, ...]
    gap: int
    any_order: bool
    negatable: bool
    verb: bool
    source: str
    cross_clause: bool = False


@dataclass(frozen=True)
class Lexicon:
    version: str
    numbers: dict
    categories: dict[str, dict]
    phrases: tuple[Phrase, ...]
    exclusions: tuple[tuple[frozenset[str], Phrase], ...]
    neg_before: frozenset[str]
    neg_before_after_ne: frozenset[str]
    neg_after: frozenset[str]
    neg_after_verbs: frozenset[str]
    neg_window: int
    neg_blockers: frozenset[str]
    neg_connectors: frozenset[str]
    clause_words: frozenset[str]
    spelling: dict[str, tuple[str, ...]]
    emoji: dict[str, str]
    all_slots: frozenset[Slot] = frozenset()
    word_slots: frozenset[Slot] = frozenset()  # slots that are whole terms by themselves ("sang", "fievre")
    number_slots: frozenset[Slot] = frozenset()
    by_first_slot: dict = field(default_factory=dict, hash=False, compare=False)

    def __hash__(self) -> int:
        return hash(self.version)

    def severity(self, category: str) -> str:
        return self.categories[category]["severity"]


def _slot(text: str) -> Slot:
    exact, prefixes = set(), []
    for alt in text.split("|"):
        alt = fold(alt).strip()
        if not alt:
            continue
        if alt.endswith("*"):
            prefixes.append(alt[:-1])
        else:
            exact.add(alt)
    return Slot(frozenset(exact), tuple(prefixes))


def _phrase(category: str, text: str, spec: dict) -> Phrase:
    words = fold(text).replace("'", " ").replace("-", " ").split()
    return Phrase(category=category, slots=tuple(_slot(w) for w in words), gap=int(spec.get("gap", 0)),
                  any_order=bool(spec.get("any_order", False)) and len(words) == 2,
                  negatable=bool(spec.get("negatable", True)), verb=bool(spec.get("verb", False)), source=text,
                  cross_clause=bool(spec.get("cross_clause", False)))


def load_lexicon(path: Path | str = LEXICON_PATH) -> Lexicon:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    categories = data["categories"]
    phrases = []
    for term in data["term"]:
        if term["category"] not in categories:
            raise ValueError(f"unknown category {term['category']!r} in the lexicon")
        phrases += [_phrase(term["category"], p, term) for p in term["phrases"]]
    exclusions = []
    for exclusion in data.get("exclude", []):
        cats = frozenset(exclusion["categories"])
        spec = {"negatable": False, "gap": exclusion.get("gap", 0), "any_order": exclusion.get("any_order", False)}
        exclusions += [(cats, _phrase("exclude", p, spec)) for p in exclusion["phrases"]]
    neg = data["negation"]
    every = [*phrases, *(p for _, p in exclusions)]
    all_slots = frozenset(slot for p in every for slot in p.slots)
    by_first: dict[Slot, list] = {}
    for p in phrases:
        for first in {p.slots[0], p.slots[-1]} if p.any_order else {p.slots[0]}:
            by_first.setdefault(first, []).append(p)
    return Lexicon(
        version=data["version"], numbers=data["numbers"], categories=categories, phrases=tuple(phrases),
        exclusions=tuple(exclusions), neg_before=frozenset(neg["before"]),
        neg_before_after_ne=frozenset(neg["before_after_ne"]), neg_after=frozenset(neg["after"]),
        neg_after_verbs=frozenset(neg["after_verbs"]), neg_window=int(neg["window"]),
        neg_blockers=frozenset(neg["blockers"]), neg_connectors=frozenset(neg["connectors"]), clause_words=frozenset(neg["clause_words"]),
        spelling={fold(k): tuple(fold(v).split()) for k, v in data["spelling"].items()},
        emoji=dict(data["emoji"]), all_slots=all_slots,
        word_slots=frozenset(p.slots[0] for p in phrases if len(p.slots) == 1),
        number_slots=frozenset(s for s in all_slots if any(a[:1].isdigit() for a in s.exact)),
        by_first_slot={k: tuple(v) for k, v in by_first.items()},
    )


@functools.cache
def lexicon() -> Lexicon:
    return load_lexicon()


@functools.cache
def common_words() -> frozenset[str]:
    """Accent-folded common French and English words: never taken for a misspelt lexicon word."""
    from wordfreq import top_n_list

    words = set()
    for language in ("fr", "en"):
        words.update(fold(w) for w in top_n_list(language, 30000) if w.isalpha())
    return frozenset(words)


# --- cutting a text into words ----------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    word: str
    clause: int
    number: float | None = None   # a number as written ("38,5" -> 38.5)
    decimal: bool = False         # written with a decimal part
    unit: str | None = None       # "c" or "f" when the number carries one
    slash: float | None = None    # "16/10": the number after the slash


_RAW = re.compile(r"\d+(?:[ ]?[.,°][ ]?\d+)?|[a-z]+|°|[.!?;\n]|,(?!\d)|\s-\s|/|&")
_UNITS = {"c": "c", "celsius": "c", "degres": "c", "degre": "c", "f": "f", "fahrenheit": "f", "deg": None,
          "degrees": None, "degree": None}
_BREAKS = frozenset({".", "!", "?", ";", "\n", ",", " - "})


def _number(text: str) -> tuple[float, bool]:
    text = text.replace(" ", "")
    for sep in (",", ".", "°"):
        if sep in text:
            whole, _, dec = text.partition(sep)
            return float(f"{whole}.{dec}"), True
    return float(text), False


def tokenize(text: str, lex: Lexicon | None = None) -> list[Token]:
    """The text as words with their clause, numbers with their unit; emojis and SMS spelling read."""
    lex = lex or lexicon()
    for emoji, word in lex.emoji.items():
        if emoji in text:
            text = text.replace(emoji, f" {word} ")
    folded = re.sub(r"n't\b", "nt", fold(text)).replace("'", " ")
    folded = re.sub(r"\b([a-z])&([a-z])\b", r"\1\2", folded)  # "A&E" -> "ae"
    folded = spell_numbers(folded)
    folded = re.sub(r"(\d+)\s*(?:point|virgule)\s*(\d)\b", r"\1.\2", folded)
    raw = _RAW.findall(folded)
    tokens: list[Token] = []
    clause = 0
    i = 0
    while i < len(raw):
        piece = raw[i]
        if piece in _BREAKS:
            clause += 1
            i += 1
            continue
        if piece in ("/", "&", "°"):
            i += 1
            continue
        if piece[0].isdigit():
            value, decimal = _number(piece)
            unit = None
            # "38°c", "101 f", "39 degres"
            j = i + 1
            if j < len(raw) and raw[j] == "°":
                unit, i, j = "c", j, j + 1
            if j < len(raw) and raw[j] in _UNITS:
                unit = _UNITS[raw[j]] or "c"
                i = j
            elif "°" in piece and not decimal:
                unit = "c"
            slash = None
            if i + 2 < len(raw) and raw[i + 1] == "/" and raw[i + 2][:1].isdigit():
                slash, _ = _number(raw[i + 2])
                i += 2
            tokens.append(Token(piece.replace(" ", ""), clause, value, decimal, unit, slash))
            i += 1
            continue
        if piece in lex.clause_words:
            clause += 1
        for word in lex.spelling.get(piece, (piece,)):
            tokens.append(Token(word, clause))
        i += 1
    return tokens


# --- matching words -----------------------------------------------------------------------------

def _max_edits(length: int) -> int:
    return 2 if length >= 9 else 1 if length >= 6 else 0


@functools.lru_cache(maxsize=50_000)
def _word_matches_exact(word: str, target: str, fuzzy: bool = True) -> bool:
    if word == target or squeeze(word) == squeeze(target):
        return True
    if not fuzzy:
        return False
    edits = _max_edits(len(target))
    if not edits or word in common_words() or abs(len(word) - len(target)) > edits:
        return False
    return OSA.distance(squeeze(word), squeeze(target), score_cutoff=edits) <= edits


@functools.lru_cache(maxsize=50_000)
def _word_matches_prefix(word: str, stem: str, fuzzy: bool = True) -> bool:
    if word.startswith(stem) or squeeze(word).startswith(squeeze(stem)):
        return True
    if not fuzzy:
        return False
    edits = _max_edits(len(stem) + 1)  # a stem of five letters stands for a word of six or more
    if not edits or word in common_words() or len(word) < len(stem):
        return False
    short, stem_s = squeeze(word), squeeze(stem)
    return any(OSA.distance(short[:n], stem_s, score_cutoff=edits) <= edits
               for n in (len(stem_s) - 1, len(stem_s), len(stem_s) + 1) if n > 0)


def _glued(word: str) -> Iterable[str]:
    """"jsaigne" -> "saigne", "dsang" -> "sang": a pronoun or article glued to the word."""
    yield word
    if len(word) >= 5 and word[0] in "jmltdsnc" and word[1] not in "aeiouy":
        yield word[1:]


def slot_matches(slot: Slot, token: Token, *, fuzzy: bool = True) -> bool:
    """Does the token stand for one of the slot's words (misspelt at most slightly when ``fuzzy``)?"""
    if token.number is not None:
        return token.word in slot.exact
    for word in _glued(token.word):
        glued = word != token.word
        for target in slot.exact:
            if (word == target) if glued else _word_matches_exact(word, target, fuzzy):
                return True
        for stem in slot.prefixes:
            if word.startswith(stem) if glued else _word_matches_prefix(word, stem, fuzzy):
                return True
    return False


# --- scanning -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    category: str
    severity: str
    start: int
    end: int  # inclusive
    words: str
    value: float | None = None
    why: str = ""  # a dropped hit: "excluded", "negated" or "value"

    @property
    def red(self) -> bool:
        return self.severity == RED


@dataclass(frozen=True)
class Scan:
    """What the scan found in one text: the hits kept, and the lexicon version that read it."""

    version: str
    hits: tuple[Hit, ...] = ()
    dropped: tuple[Hit, ...] = field(default=(), compare=False)

    @property
    def red(self) -> bool:
        return any(h.red for h in self.hits)

    @property
    def orange(self) -> bool:
        return any(h.severity == ORANGE for h in self.hits)

    @property
    def red_hits(self) -> tuple[Hit, ...]:
        return tuple(h for h in self.hits if h.red)

    def categories(self, severity: str | None = None) -> list[str]:
        seen = []
        for hit in self.hits:
            if (severity is None or hit.severity == severity) and hit.category not in seen:
                seen.append(hit.category)
        return seen

    def reply_key(self) -> str | None:
        """The safety reply template for the red hits (self-harm first), or None."""
        lex = lexicon()
        keys = [lex.categories[h.category].get("reply", "safety") for h in self.red_hits]
        if not keys:
            return None
        return "safety_self_harm" if "safety_self_harm" in keys else keys[0]

    def item_values(self) -> dict[str, object]:
        """What the red and call hits say of check-in questions: {"bleeding": True, "temperature": 39.2}."""
        lex = lexicon()
        out: dict[str, object] = {}
        for hit in self.hits:
            item = lex.categories[hit.category].get("item")
            if not item:
                continue
            if item == "temperature":
                value = hit.value if hit.value is not None else True
                if out.get(item) is None or (isinstance(value, float) and not isinstance(out.get(item), float)):
                    out[item] = value
            elif item == "wants_call":
                out[item] = max(int(out.get(item, 0)), 2 if hit.red else 1)
            else:
                out[item] = True
        return out

    def describe(self) -> list[dict]:
        return [{"category": h.category, "severity": h.severity, "words": h.words,
                 **({"value": h.value} if h.value is not None else {})} for h in self.hits]


def _match_phrase(phrase: Phrase, tokens: Sequence[Token], slots: Sequence[frozenset[Slot]],
                  starts: Iterable[int] | None = None) -> list[tuple[int, int]]:
    """(start, end) of each place ``phrase`` matches, within one clause."""
    found = []
    orders = [phrase.slots]
    if phrase.any_order:
        orders.append(phrase.slots[::-1])
    for order in orders:
        for start in (range(len(tokens)) if starts is None else starts):
            if order[0] not in slots[start]:
                continue
            pos, ok = start, True
            for slot in order[1:]:
                nxt = None
                for k in range(pos + 1, min(len(tokens), pos + 2 + phrase.gap)):
                    if tokens[k].clause != tokens[start].clause and not phrase.cross_clause:
                        break
                    if slot in slots[k]:
                        nxt = k
                        break
                if nxt is None:
                    ok = False
                    break
                pos = nxt
            if ok:
                found.append((start, pos))
    return found


@functools.lru_cache(maxsize=100_000)
def _slots_of_word(lex: Lexicon, word: str) -> frozenset[Slot]:
    """Every slot of the lexicon (phrases and exclusions) that this word matches."""
    token = Token(word, 0)
    exact = frozenset(slot for slot in lex.all_slots if slot_matches(slot, token, fuzzy=False))
    if exact:  # a lexicon word spelt right is not also a misspelling of another one
        return exact
    return frozenset(slot for slot in lex.all_slots if slot_matches(slot, token))


def _token_slots(lex: Lexicon, tokens: Sequence[Token]) -> list[frozenset[Slot]]:
    out = []
    for tok in tokens:
        if tok.number is not None:
            out.append(frozenset(slot for slot in lex.number_slots if tok.word in slot.exact))
        else:
            out.append(_slots_of_word(lex, tok.word))
    return out


def _negated(lex: Lexicon, tokens: Sequence[Token], slots: Sequence[frozenset[Slot]], start: int, end: int,
             verb: bool) -> bool:
    clause = tokens[start].clause
    # before: "pas de sang", "no chest pain", "jamais eu de fievre", "je n'ai plus de fievre"
    for k in range(start - 1, max(-1, start - 1 - lex.neg_window), -1):
        tok = tokens[k]
        if tok.clause != clause:
            break
        between = tokens[k + 1:start]
        if {t.word for t in between} & lex.neg_blockers:
            break
        if any(t.word not in lex.neg_connectors and not (slots[k + 1 + j] & lex.word_slots)
               for j, t in enumerate(between)):
            break  # the negation governs another word ("pas a reprendre mon souffle")
        if tok.word in lex.neg_before:
            return True
        if tok.word in lex.neg_before_after_ne and any(
                t.word in ("ne", "n") and t.clause == clause for t in tokens[max(0, k - 4):k]):
            return True
    # after: "sang : non", "fever no", "je saigne pas"
    after = end + 1
    if after < len(tokens) and tokens[after].clause == clause:
        word = tokens[after].word
        follow = tokens[after + 1] if after + 1 < len(tokens) and tokens[after + 1].clause == clause else None
        closing = follow is None or follow.word in {"merci", "thanks", "svp", "stp", "du", "tout", "at", "all",
                                                     "ni", "nor", "non", "no", "rien", "plus", "pas", "jamais"}
        if word in lex.neg_after and closing and not (follow is not None and follow.word == "stop"):
            return True
        if verb and word in lex.neg_after_verbs and (follow is None or follow.word not in {
                "beaucoup", "trop", "tres", "much", "many", "tant", "souvent", "longtemps", "enormement",
                "mal", "grand", "very", "a", "que"}):
            return True
    return False


_FEVER_CONTEXT = ("fievr", "fever", "temp", "thermo", "degre", "degree")
_BP_CONTEXT = ("tension", "ta", "bp", "pressure", "pression", "hypertension", "mesure", "tensiometre")
_STOOL_CONTEXT = ("diarrh", "diahr", "diarea", "selle", "stool", "toilette", "toilet", "wc", "courante",
                  "liquide", "bowel", "chiasse", "caca")
_NOT_A_COUNT = ("jour", "jours", "day", "days", "h", "heure", "heures", "hour", "hours", "semaine", "semaines",
                "week", "weeks", "mois", "month", "months", "an", "ans", "year", "years", "min", "minutes", "mg",
                "kg", "kilos", "g", "ml")


def _near(tokens: Sequence[Token], index: int, stems: tuple[str, ...], span: int = 4) -> bool:
    clause = tokens[index].clause
    lo, hi = max(0, index - span), min(len(tokens), index + span + 1)
    return any(tokens[k].clause in (clause, clause - 1, clause + 1) and tokens[k].word.startswith(stems)
               for k in range(lo, hi) if k != index)


def temperature_of(tokens: Sequence[Token], index: int) -> float | None:
    """Degrees Celsius when the number at ``index`` reads as a body temperature, else None."""
    tok = tokens[index]
    value = tok.number
    if value is None or tok.slash is not None:
        return None
    context = _near(tokens, index, _FEVER_CONTEXT) or tok.unit is not None
    if tok.unit == "f" or (93.0 <= value <= 110.0 and context):
        return round((value - 32) * 5 / 9, 1) if 93.0 <= value <= 110.0 else None
    if not tok.decimal and 340 <= value <= 430 and context:
        value = value / 10
    if 34.0 <= value <= 43.0 and (tok.decimal or context):
        return round(value, 1)
    return None


def blood_pressure_of(tokens: Sequence[Token], index: int) -> tuple[int, int] | None:
    tok = tokens[index]
    if tok.number is None or tok.slash is None:
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        if tok.number is None or nxt is None or nxt.number is None or nxt.clause != tok.clause:
            return None
        high, low = tok.number, nxt.number
        if not _near(tokens, index, _BP_CONTEXT):
            return None
    else:
        high, low = tok.number, tok.slash
        if not (_near(tokens, index, _BP_CONTEXT) or (high >= 60 and low >= 30)):
            return None
    if high < 30 and low < 20:  # centimetres of mercury, the French habit: 16/10
        high, low = high * 10, low * 10
    if 60 <= high <= 280 and 30 <= low <= 180 and high > low:
        return round(high), round(low)
    return None


def _number_hits(lex: Lexicon, tokens: Sequence[Token]) -> list[Hit]:
    numbers = lex.numbers
    hits = []
    for i, tok in enumerate(tokens):
        if tok.number is None:
            continue
        bp = blood_pressure_of(tokens, i)
        if bp is not None:
            high, low = bp
            if high >= numbers["bp_systolic_red"] or low >= numbers["bp_diastolic_red"]:
                hits.append(Hit("blood_pressure_high", RED, i, i, f"{high}/{low}"))
            elif high >= numbers["bp_systolic_orange"] or low >= numbers["bp_diastolic_orange"]:
                hits.append(Hit("blood_pressure_moderate", ORANGE, i, i, f"{high}/{low}"))
            else:
                hits.append(Hit("blood_pressure_normal", "none", i, i, f"{high}/{low}"))
            continue
        celsius = temperature_of(tokens, i)
        if celsius is not None:
            severity = RED if celsius >= numbers["fever_celsius"] else "none"
            hits.append(Hit("fever" if severity == RED else "temperature_normal", severity, i, i, tok.word,
                            value=celsius))
            continue
        nxt = tokens[i + 1].word if i + 1 < len(tokens) else ""
        if not tok.decimal and 1 <= tok.number <= 60 and nxt not in _NOT_A_COUNT \
                and _near(tokens, i, _STOOL_CONTEXT, span=6):
            count = int(tok.number)
            if count >= numbers["stools_red"]:
                hits.append(Hit("stools_severe", RED, i, i, tok.word, value=count))
            elif count >= numbers["stools_orange"]:
                hits.append(Hit("stools_moderate", ORANGE, i, i, tok.word, value=count))
    return hits


def scan(text: str, lex: Lexicon | None = None) -> Scan:
    """Red flags and concerns in ``text`` (never raises on any string)."""
    lex = lex or lexicon()
    if not isinstance(text, str) or not text.strip():
        return Scan(lex.version)
    tokens = tokenize(text[:2000], lex)
    if not tokens:
        return Scan(lex.version)
    kept: list[Hit] = []
    dropped: list[Hit] = []
    slots = _token_slots(lex, tokens)
    excluded = _excluded_spans(lex, tokens, slots)
    numbers = _number_hits(lex, tokens)
    value_spans = [h for h in numbers if h.category in ("temperature_normal", "blood_pressure_normal",
                                                        "blood_pressure_moderate", "blood_pressure_high", "fever")]
    candidates: dict[Phrase, list[int]] = {}
    for index, token_slots in enumerate(slots):
        for slot in token_slots:
            for phrase in lex.by_first_slot.get(slot, ()):
                candidates.setdefault(phrase, []).append(index)
    for phrase, starts in candidates.items():
        for start, end in _match_phrase(phrase, tokens, slots, sorted(set(starts))):
            hit = Hit(phrase.category, lex.severity(phrase.category), start, end,
                      " ".join(t.word for t in tokens[start:end + 1]))
            if any(s <= end and start <= e for cats, s, e in excluded if phrase.category in cats):
                dropped.append(replace(hit, why="excluded"))
            elif phrase.negatable and _negated(lex, tokens, slots, start, end, phrase.verb):
                dropped.append(replace(hit, why="negated"))
            elif phrase.category in ("fever", "blood_pressure") and _value_decides(hit, value_spans, tokens):
                dropped.append(replace(hit, why="value"))
            else:
                kept.append(hit)
    kept += [h for h in numbers if h.severity in (RED, ORANGE)]
    if any(h.category == "fever" and h.value is not None for h in kept):
        # a measured temperature says more than the word "fievre"
        kept = [h for h in kept if not (h.category == "fever" and h.value is None)]
    kept.sort(key=lambda h: (h.severity != RED, h.start))
    return Scan(lex.version, tuple(_dedupe(kept)), tuple(dropped))


def _value_decides(hit: Hit, values: list[Hit], tokens: Sequence[Token]) -> bool:
    """"37,8 de fievre", "tension 12/8": the number next to the word decides, not the word."""
    wanted = ("temperature_normal", "fever") if hit.category == "fever" else (
        "blood_pressure_normal", "blood_pressure_moderate", "blood_pressure_high")
    clause = tokens[hit.start].clause
    return any(v.category in wanted and abs(v.start - hit.start) <= 5 and tokens[v.start].clause == clause
               for v in values)


def _excluded_spans(lex: Lexicon, tokens: Sequence[Token],
                    slots: Sequence[frozenset[Slot]]) -> list[tuple[frozenset[str], int, int]]:
    spans = []
    for cats, phrase in lex.exclusions:
        spans += [(cats, s, e) for s, e in _match_phrase(phrase, tokens, slots)]
    return spans


def _dedupe(hits: list[Hit]) -> list[Hit]:
    seen, out = set(), []
    for hit in hits:
        key = (hit.category, hit.start)
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out
