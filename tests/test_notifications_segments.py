"""SMS segment counting, on hand-computed cases."""
from __future__ import annotations

import pytest

from app.notifications.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    count_segments,
    fits,
)


def test_tables_have_the_sizes_of_gsm_03_38():
    assert len(GSM7_BASIC) == 127  # 128 code points minus the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("char", list("éèàùìòÇÉÄÖÑÜäöñü£¥§¿¡"))
def test_accented_letters_of_the_basic_table_stay_gsm7(char):
    assert count_segments(f"Bonjour {char}") == (GSM7, 1)


@pytest.mark.parametrize("char", list("çêâîôûëïœÈÀ’«»"))
def test_letters_outside_the_table_force_ucs2(char):
    assert count_segments(f"Bonjour {char}") == (UCS2, 1)


@pytest.mark.parametrize("text, expected", [
    ("", (GSM7, 0)),
    ("a" * 160, (GSM7, 1)),
    ("a" * 161, (GSM7, 2)),  # 153 + 8
    ("a" * 306, (GSM7, 2)),  # 2 x 153
    ("a" * 307, (GSM7, 3)),
    ("€" * 80, (GSM7, 1)),  # 80 x 2 septets = 160
    ("€" * 81, (GSM7, 2)),  # 162 septets
    ("a" * 159 + "€", (GSM7, 2)),  # 161 septets
    # 152 septets then an escape sequence: it cannot be split, so it opens segment 2.
    ("a" * 152 + "€" + "a" * 10, (GSM7, 2)),
    ("a" * 152 + "€" + "a" * 152, (GSM7, 3)),  # 152 | 2+151 | 1
    ("ç" * 70, (UCS2, 1)),
    ("ç" * 71, (UCS2, 2)),
    ("ç" * 134, (UCS2, 2)),  # 2 x 67
    ("ç" * 135, (UCS2, 3)),
    ("😀" * 35, (UCS2, 1)),  # 35 surrogate pairs = 70 code units
    ("😀" * 36, (UCS2, 2)),
    ("a" * 66 + "😀" + "a", (UCS2, 1)),  # 66 + 2 + 1 = 69 code units
])
def test_hand_computed_counts(text, expected):
    assert count_segments(text) == expected


def test_surrogate_pair_is_never_split():
    # 66 units, a pair (2), then 10 more: 78 units -> split; the pair cannot start at unit 67.
    assert count_segments("a" * 66 + "😀" + "a" * 10) == (UCS2, 2)
    # 66 + 2 + 66 = 134 units would fit 2 x 67 only by splitting the pair: 3 segments.
    assert count_segments("a" * 66 + "😀" + "a" * 66) == (UCS2, 3)


def test_a_typical_french_question():
    text = ("Avez-vous eu de la fièvre (38,5 °C ou plus) depuis lundi ? "
            "Répondez OUI ou NON. En cas d'urgence appelez le 15.")
    assert count_segments(text) == (UCS2, 2)  # the degree sign is not in GSM-7
    assert count_segments(text.replace("°C", "C")) == (GSM7, 1)


def test_fits():
    assert fits("a" * 306)
    assert not fits("a" * 307)
    assert fits("a" * 307, max_segments=3)
    assert not fits("")
    assert fits("ç" * 134) and not fits("ç" * 135)
