"""How many SMS segments a text costs (GSM 03.38 7-bit alphabet or UCS-2).

A text made only of the GSM-7 basic table (1 septet per character) and its extension
table (escape + character: 2 septets) is sent in GSM-7: 160 septets in one segment,
153 per segment once split (the rest holds the concatenation header). Any other
character switches the whole text to UCS-2: 70 UTF-16 code units in one segment, 67 per
segment once split. A split never cuts an escape sequence or a surrogate pair in two,
as handsets and Twilio do, so a segment may hold one unit less than the maximum.

French traps: é è à ù ì ò É Ç are in the basic table; ç ê â î ô û ë ï œ are not and
force UCS-2 (so does the typographic apostrophe ’).
"""
from __future__ import annotations

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 basic table, code points 0x00-0x7F in order (0x1B, the escape, left out).
_BASIC_ROWS = (
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
)
GSM7_BASIC = frozenset("".join(_BASIC_ROWS))
# Extension table: each costs the escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


def encoding_of(text: str) -> str:
    """``"GSM-7"`` when every character is in the GSM-7 tables, else ``"UCS-2"``."""
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            return UCS2
    return GSM7


def _unit_sizes(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]  # surrogate pairs


def count_segments(text: str) -> tuple[str, int]:
    """(encoding, number of segments); an empty text costs no segment."""
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    single, per_part = _LIMITS[encoding]
    total = sum(sizes)
    if total == 0:
        return encoding, 0
    if total <= single:
        return encoding, 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > per_part:  # never split a 2-unit character across segments
            segments += 1
            used = 0
        used += size
    return encoding, segments


def fits(text: str, max_segments: int = 2) -> bool:
    """True when ``text`` is not empty and costs at most ``max_segments`` segments."""
    _, segments = count_segments(text)
    return 0 < segments <= max_segments
