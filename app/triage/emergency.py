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


_NUMBER_WORDS = {
    "zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
    "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16,
    "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "septante": 70,
    "huitante": 80, "octante": 80, "nonante": 90, "cent": 100, "cents": 100,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}
_JOINERS = {"et", "and", "a"}
_POINT = {"virgule", "point", "comma"}
_HALF = {"demi", "demie", "half"}
_WORD = re.compile(r"[a-z]+")


def _extend(current: int | None, word: str) -> int | None:
    """``current`` with the number word ``word`` added, or None when the word starts another number."""
    value = _NUMBER_WORDS[word]
    if current is None:
        return value
    low = current % 100
    if value == 100:
        return (current or 1) * 100 if current < 10 else None
    if word in ("vingt", "vingts") and low == 4:
        return current - 4 + 80  # quatre-vingt(s)
    if value >= 20 and value % 10 == 0:  # tens
        return current + value if low == 0 else None
    if low == 0:
        return current + value
    if low in (60, 80) and value < 20:  # soixante-dix, quatre-vingt-douze
        return current + value
    if low >= 20 and low % 10 == 0 and value < 10:
        return current + value
    return None


def spell_numbers(folded: str) -> str:
    """Numbers written in words as digits: "trente-huit cinq" -> "38.5", "thirty nine" -> "39",
    "trente-huit et demi" -> "38.5", "cent soixante-cinq" -> "165", "a hundred and one" -> "101"."""
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", folded)
    tokens = list(_WORD.finditer(text))
    out, last, i = [], 0, 0
    while i < len(tokens):
        word = tokens[i].group()
        if word not in _NUMBER_WORDS or word in ("un", "une", "one") and not (
                i + 1 < len(tokens) and tokens[i + 1].group() in ("hundred", "cent")):
            i += 1
            continue
        j, value, count = i, None, 0
        while j < len(tokens):
            word_j = tokens[j].group()
            if word_j in _JOINERS and count and j + 1 < len(tokens) and tokens[j + 1].group() in _NUMBER_WORDS \
                    and _extend(value, tokens[j + 1].group()) is not None:
                j += 1  # "vingt et un", "a hundred and one"
                continue
            if word_j not in _NUMBER_WORDS:
                break
            extended = _extend(value, word_j)
            if extended is None:
                break
            value, count, j = extended, count + 1, j + 1
        if value is None or (value < 20 and count == 1) or (
                count == 1 and word == "cent" and i > 0 and tokens[i - 1].group() in ("du", "de", "des")):
            i = max(j, i + 1)  # a lone small number word stays a word ("deux fois"; "du cent": du sang)
            continue
        start, end = tokens[i].start(), tokens[j - 1].end()
        decimal = ""
        k = j
        if k < len(tokens) and tokens[k].group() in _POINT | {"et", "and"} and k + 1 < len(tokens):
            nxt = tokens[k + 1].group()
            if nxt in _HALF or (nxt == "a" and k + 2 < len(tokens) and tokens[k + 2].group() in _HALF):
                decimal, end = "5", tokens[k + 2 if nxt == "a" else k + 1].end()
            elif nxt in _NUMBER_WORDS and _NUMBER_WORDS[nxt] < 10 and tokens[k].group() in _POINT:
                decimal, end = str(_NUMBER_WORDS[nxt]), tokens[k + 1].end()
        elif 30 <= value <= 43 and k < len(tokens) and tokens[k].group() in _NUMBER_WORDS \
                and _NUMBER_WORDS[tokens[k].group()] < 10 and tokens[k].start() - end <= 2:
            decimal, end = str(_NUMBER_WORDS[tokens[k].group()]), tokens[k].end()  # "trente-huit cinq"
        out.append(text[last:start])
        out.append(f"{value}.{decimal}" if decimal else str(value))
        last = end
        i = j
    out.append(text[last:])
    return "".join(out)


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
    context: dict = field(default_factory=dict, hash=False, compare=False)
    all_slots: frozenset[Slot] = frozenset()
    index: dict = field(default_factory=dict, hash=False, compare=False)  # built by _index()
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
    lex = Lexicon(
        version=data["version"], numbers=data["numbers"], categories=categories, phrases=tuple(phrases),
        exclusions=tuple(exclusions), neg_before=frozenset(neg["before"]),
        neg_before_after_ne=frozenset(neg["before_after_ne"]), neg_after=frozenset(neg["after"]),
        neg_after_verbs=frozenset(neg["after_verbs"]), neg_window=int(neg["window"]),
        neg_blockers=frozenset(neg["blockers"]), neg_connectors=frozenset(neg["connectors"]), clause_words=frozenset(neg["clause_words"]),
        spelling={fold(k): tuple(fold(v).split()) for k, v in data["spelling"].items()},
        emoji=dict(data["emoji"]), all_slots=all_slots,
        context={key: tuple(fold(w) for w in words) for key, words in data.get("context", {}).items()},
        word_slots=frozenset(p.slots[0] for p in phrases if len(p.slots) == 1),
        number_slots=frozenset(s for s in all_slots if any(a[:1].isdigit() for a in s.exact)),
        by_first_slot={k: tuple(v) for k, v in by_first.items()},
    )
    lex.index.update(_index(all_slots))
    return lex


@functools.cache
def lexicon() -> Lexicon:
    return load_lexicon()


def _index(slots: frozenset[Slot]) -> dict:
    """Where to look a word up: exact words (and their squeezed form), prefixes and fuzzy
    candidates by first letter, so a new word is compared with a few slots, not all of them."""
    exact: dict[str, set[Slot]] = {}
    squeezed: dict[str, set[Slot]] = {}
    prefixes: dict[str, list[tuple[str, str, Slot]]] = {}
    fuzzy: dict[str, list[tuple[str, bool, Slot]]] = {}
    for slot in slots:
        for target in slot.exact:
            exact.setdefault(target, set()).add(slot)
            if len(target) >= 4:
                squeezed.setdefault(squeeze(target), set()).add(slot)
            if _max_edits(len(target)) and target:
                fuzzy.setdefault(target[0], []).append((target, False, slot))
        for stem in slot.prefixes:
            if stem:
                prefixes.setdefault(stem[0], []).append((stem, squeeze(stem), slot))
                if _max_edits(len(stem) + 1):
                    fuzzy.setdefault(stem[0], []).append((stem, True, slot))
    return {"exact": exact, "squeezed": squeezed, "prefixes": prefixes, "fuzzy": fuzzy}


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
        words = lex.spelling.get(piece, (piece,))
        if len(words) > 1 and raw[i + 1:i + len(words)] == list(words[1:]):
            words = words[:1]  # "c est": the spelling already complete
        for word in words:
            tokens.append(Token(word, clause))
        i += 1
    return _merge_spaced_decimals(tokens)


def _merge_spaced_decimals(tokens: list[Token]) -> list[Token]:
    """"38 7" (a space for the comma): one temperature, 38.7."""
    out: list[Token] = []
    for tok in tokens:
        prev = out[-1] if out else None
        if (prev is not None and prev.number is not None and not prev.decimal and prev.slash is None
                and 34 <= prev.number <= 43 and tok.number is not None and tok.slash is None and not tok.decimal
                and len(tok.word) == 1 and prev.clause == tok.clause and prev.unit is None):
            out[-1] = Token(f"{prev.word}.{tok.word}", prev.clause, prev.number + tok.number / 10, True, tok.unit)
            continue
        out.append(tok)
    return out


# --- matching words -----------------------------------------------------------------------------

def _max_edits(length: int) -> int:
    return 2 if length >= 9 else 1 if length >= 6 else 0


@functools.lru_cache(maxsize=50_000)
def _word_matches_exact(word: str, target: str, fuzzy: bool = True) -> bool:
    if word == target or (len(target) >= 4 and squeeze(word) == squeeze(target)):
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
    if len(word) >= 5 and word[0] in "jmltdsnc":
        yield word[1:]


def slot_matches(slot: Slot, token: Token, *, fuzzy: bool = True) -> bool:
    """Does the token stand for one of the slot's words (misspelt at most slightly when ``fuzzy``)?"""
    if token.number is not None:  # "112", "15": the number itself, never a blood pressure (112/70)
        return token.slash is None and token.word in slot.exact
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
    topics: frozenset[str] = frozenset()  # questions the text speaks to ("les gencives": bleeding)
    drug_kept: bool = False  # the text says the tablet was down long before any vomiting

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
            if not item or not hit.red and hit.category != "call_request":
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
    """Every slot of the lexicon (phrases and exclusions) that this word matches; a lexicon word
    spelt right is not also taken for a misspelling of another one."""
    index = lex.index
    found: set[Slot] = set()
    for candidate in _glued(word):
        glued = candidate != word
        found |= index["exact"].get(candidate, set())
        short = squeeze(candidate)
        if not glued and len(candidate) >= 4:
            found |= index["squeezed"].get(short, set())
        for stem, stem_short, slot in index["prefixes"].get(candidate[:1], ()):
            if candidate.startswith(stem) or (not glued and short.startswith(stem_short)):
                found.add(slot)
    if found or not word or word in common_words():
        return frozenset(found)
    for target, prefix, slot in index["fuzzy"].get(word[0], ()):
        if slot not in found and (_word_matches_prefix(word, target) if prefix else _word_matches_exact(word, target)):
            found.add(slot)
    return frozenset(found)


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


_WEATHER = ("ombre", "dehors", "meteo", "canicule", "outside", "weather", "shade", "heatwave", "chaleur",
            "climatisation", "soleil", "plage", "beach", "forecast", "phoenix", "marseille", "degrees out")


def temperature_of(tokens: Sequence[Token], index: int, *, assume_context: bool = False) -> float | None:
    """Degrees Celsius when the number at ``index`` reads as a body temperature, else None
    ("il fait 38 a l'ombre" is the weather)."""
    tok = tokens[index]
    value = tok.number
    if value is None or tok.slash is not None:
        return None
    if _near(tokens, index, _WEATHER, span=5) or _weather_verb(tokens, index):
        return None
    context = assume_context or _near(tokens, index, _FEVER_CONTEXT) or tok.unit is not None
    if tok.unit == "f" or (93.0 <= value <= 110.0 and context):
        celsius = round((value - 32) * 5 / 9, 1) if 93.0 <= value <= 110.0 else None
        return celsius if celsius is not None and 34.0 <= celsius <= 43.0 else None
    if not tok.decimal and 340 <= value <= 430 and context:
        value = value / 10
    if 34.0 <= value <= 43.0 and (tok.decimal or context):
        return round(value, 1)
    return None


def _weather_verb(tokens: Sequence[Token], index: int) -> bool:
    """"il fait 38", "it's 101 in ...": the number follows a weather verb."""
    before = [t.word for t in tokens[max(0, index - 3):index]]
    return before[-2:] in (["il", "fait"], ["fait", "deja"]) or before[-1:] == ["fait"] and "il" in before \
        or before[-2:] in (["it", "s"], ["it", "is"]) and index + 2 < len(tokens) and tokens[index + 1].word == "in"


def body_temperatures(text: str) -> list[float]:
    """Every body temperature in a text answering the fever question (where any plausible number
    is one), in degrees Celsius; the weather, and someone else's fever, left out."""
    lex = lexicon()
    tokens = tokenize(text[:2000], lex)
    values = []
    for i, tok in enumerate(tokens):
        if tok.number is None or tok.slash is not None:
            continue
        celsius = temperature_of(tokens, i, assume_context=True)
        if celsius is None:
            continue
        hit = Hit("fever", RED, i, i, tok.word, value=celsius)
        if not _not_the_patient(lex, tokens, [hit]):
            values.append(celsius)
    return values


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
            if any(s <= end and start <= e for cats, s, e in excluded if _base(phrase.category) in cats):
                dropped.append(replace(hit, why="excluded"))
            elif phrase.negatable and _negated(lex, tokens, slots, start, end, phrase.verb):
                dropped.append(replace(hit, why="negated"))
            elif phrase.category in ("fever", "blood_pressure") and _value_decides(hit, value_spans, tokens):
                dropped.append(replace(hit, why="value"))
            else:
                kept.append(hit)
    kept += [h for h in numbers if h.severity in (RED, ORANGE)]
    drug_kept = _drug_kept(tokens)
    if drug_kept:
        dropped += [replace(h, why="kept") for h in kept if h.category == "vomiting_drug"]
        kept = [h for h in kept if h.category != "vomiting_drug"]
    others = _not_the_patient(lex, tokens, kept)
    topics = frozenset(lex.categories[h.category]["item"] for h in kept if h.severity == "topic" and h not in others)
    kept = [h for h in kept if h.severity in (RED, ORANGE)]
    dropped += [replace(h, why="other") for h in kept if h in others]
    kept = [h for h in kept if h not in others]
    if any(h.category == "fever" and h.value is not None for h in kept):
        # a measured temperature says more than the word "fievre"
        kept = [h for h in kept if not (h.category == "fever" and h.value is None)]
    kept.sort(key=lambda h: (h.severity != RED, h.start))
    return Scan(lex.version, tuple(_dedupe(kept)), tuple(dropped), topics, drug_kept)


def _phrase_in(words: Sequence[str], phrase: str) -> bool:
    target = phrase.split()
    return any(list(words[i:i + len(target)]) == target for i in range(len(words) - len(target) + 1))


def _not_the_patient(lex: Lexicon, tokens: Sequence[Token], hits: list[Hit]) -> list[Hit]:
    """Hits in a clause about an animal, or about another person when the text also says the
    patient is well or that it was long ago: someone else's event, not the patient's red flag."""
    context = lex.context
    if not context or not hits:
        return []
    words = [t.word for t in tokens]
    # the patient is well, or speaks of themself beside the other person ("y a un risque pour moi ?")
    patient_well = any(_phrase_in(words, p) for key in ("patient_well", "patient_role")
                       for p in context.get(key, ()))
    recent = any(_phrase_in(words, p) for p in context.get("recent_past", ()))
    denies = bool(words) and words[0] in ("non", "no", "nope", "nan")  # "non, c'est mon mari qui a 38,5"
    # (a stroke, a seizure, a fall told after a "no" is kept: the carer may be writing about the patient)
    out = []
    for hit in hits:
        if hit.category in ABOUT_THE_PATIENT_ANYWAY:
            continue
        in_clause = [(i, t.word) for i, t in enumerate(tokens) if t.clause == tokens[hit.start].clause]
        clause = [w for _i, w in in_clause]
        other = any(_phrase_in(clause, o) for o in context.get("others", ()))
        if _subject_before(in_clause, hit.start, context.get("animals", ()) + context.get("things", ())):
            out.append(hit)  # "mon chien a vomi du sang", "la chaudiere a de la fievre"
        elif other and (patient_well or recent or denies and hit.category in DENIABLE):
            out.append(hit)
        elif _long_ago(lex, clause + _told_back(tokens, tokens[hit.start].clause)):
            out.append(hit)  # "la fievre c'etait le mois dernier", "le saignement, c'etait il y a 2 ans"
    return out


def _told_back(tokens: Sequence[Token], clause: int) -> list[str]:
    """The next clause when it speaks back of this one ("le saignement, c'etait en 2021")."""
    following = [t.word for t in tokens if t.clause == clause + 1]
    return following if following[:2] in (["c", "est"], ["c", "etait"], ["that", "was"], ["it", "was"],
                                           ["ca", "date"], ["ca", "remonte"]) else []


_FIRST_PERSON = frozenset({"je", "j", "i", "me", "m", "moi", "my", "mon", "ma", "mes"})


def _subject_before(in_clause: Sequence[tuple[int, str]], start: int, names: Sequence[str]) -> bool:
    """An animal or a thing named before the hit, in its clause, with no word of the patient's own
    between them: it is what the hit is about ("le chien a vomi du sang"), unlike "j'ai mal a la
    poitrine quand je promene le chien" or "je promene le chien et je crache du sang"."""
    words = [w for _i, w in in_clause]
    for pos, (index, _word) in enumerate(in_clause):
        if index >= start:
            break
        if any(words[pos:pos + len(n.split())] == n.split() for n in names):
            between = words[pos + 1:[i for i, _w in in_clause].index(start)]
            if not _FIRST_PERSON & set(between):
                return True
    return False


_MONTHS = ("janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|january|february|"
           "march|april|may|june|july|august|september|october|november|december")
_SEASONS = "printemps|ete|automne|hiver|spring|summer|autumn|fall|winter"
_AMOUNT = r"(?:\d+|un|une|deux|trois|quatre|cinq|six|dix|quelques|plusieurs|des|a|one|two|three|four|five|six|ten|few|a few|several|many)"
# A time long past: months or years ago, a year, before the illness, a named month or season gone by.
_DISTANT = re.compile(
    r"\b(?:il y a|y a|ca fait|voila) " + _AMOUNT + r" (?:ans?|annees?|mois)\b"
    r"|\b" + _AMOUNT + r" (?:years?|months?) ago\b"
    r"|\b(?:en|in|de|of|durant|during|depuis|since) (?:19|20)\d\d\b"
    r"|\bavant (?:la maladie|le cancer|mon cancer|le traitement|mon traitement|la chimio|le diagnostic|l operation)\b"
    r"|\bbefore (?:the|my) (?:cancer|treatment|diagnosis|illness|chemo|operation|surgery)\b"
    r"|\bback in (?:the )?(?:" + _SEASONS + "|" + _MONTHS + r")\b"
    r"|\b(?:au|l|cet|en) (?:" + _SEASONS + r") dernier\b|\blast (?:" + _SEASONS + r")\b"
    r"|\bc (?:est )?etait (?:en|au|l) (?:" + _MONTHS + "|" + _SEASONS + r")\b"
    r"|\bnever came back\b|\b(?:jamais|pas) revenue?s?\b|\bc est regle\b|\bhasn t come back\b")
# ... unless the clause also says it is happening now or again.
_NOW = re.compile(r"\b(?:encore|toujours|still|again|de nouveau|a nouveau|revient|reviennent|recommence\w*|"
                  r"maintenant|now|aujourd|today|tonight|ce soir|ce matin|this morning|cette nuit|hier|yesterday|"
                  r"depuis hier|right now|en ce moment|currently|actuellement)\b")


def _long_ago(lex: Lexicon, clause: Sequence[str]) -> bool:
    """The clause speaks of a past event, long gone: not a red flag today."""
    if any(_phrase_in(clause, p) for p in lex.context.get("long_ago", ())):
        return True
    text = " ".join(clause)
    return bool(_DISTANT.search(text)) and not _NOW.search(text)


_HOURS = r"(?:\d+|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|three|four|five|six|seven|eight|nine|ten|twelve)"
# The tablet was down long before the vomiting: it was kept ("pris depuis le midi", "had been down 4 hours").
_KEPT = re.compile(
    r"\b" + _HOURS + r" ?(?:h|heures?|hours?|hrs?) (?:apres|after)\b"
    r"|\b(?:had been|has been|been|was|were) down (?:for )?(?:about |over |more than )?" + _HOURS
    + r" ?(?:h|hours?|hrs?)\b"
    r"|\b(?:pris|passe|avale)(?:e|es)? depuis (?:le midi|midi|le matin|ce matin|longtemps|" + _HOURS + r" ?(?:h|heures?))\b"
    r"|\b(?:bien|longtemps) apres (?:la prise|le comprime|le cachet|mon comprime|mon cachet|le traitement)\b"
    r"|\b(?:long|hours) after (?:taking|my|the) ")


def _drug_kept(tokens: Sequence[Token]) -> bool:
    text = " ".join(t.word for t in tokens)
    for match in _KEPT.finditer(text):
        amount = re.search(r"\b(\d+)\b", match.group())
        if amount and int(amount.group(1)) < 3:
            continue  # "vomi 1h apres la prise", "2 hours after": not long enough to say it was kept
        return True
    return False


# What a patient's "no" followed by someone else's name puts on that other person.
DENIABLE = frozenset({"fever", "bleeding", "blood_pressure_high", "blood_pressure_moderate", "stools_severe",
                      "stools_moderate", "symptom", "topic_bleeding", "topic_fever", "topic_vomiting",
                      "topic_breathing"})
# The patient's own feelings and wishes, whatever else the text is about.
ABOUT_THE_PATIENT_ANYWAY = frozenset({"distress", "stopped_treatment", "call_request", "call_now", "self_harm"})


def _base(category: str) -> str:
    """The category whose exclusions a topic shares ("topic_bleeding" -> "bleeding")."""
    return TOPIC_OF.get(category, category)


TOPIC_OF = {"topic_bleeding": "bleeding", "topic_breathing": "breathing", "topic_vomiting": "vomiting_drug",
            "topic_fever": "fever"}


def _value_decides(hit: Hit, values: list[Hit], tokens: Sequence[Token]) -> bool:
    """"37,8 de fievre", "tension 12/8": the number next to the word decides, not the word."""
    wanted = ("temperature_normal", "fever") if hit.category == "fever" else (
        "blood_pressure_normal", "blood_pressure_moderate", "blood_pressure_high")
    clause = tokens[hit.start].clause
    return any(v.category in wanted and abs(v.start - hit.start) <= 5 and abs(tokens[v.start].clause - clause) <= 1
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
