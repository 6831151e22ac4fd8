"""SMS segment counting against known GSM-7 / UCS-2 cases."""

from __future__ import annotations

import pytest

from bot.sms.segments import GSM7, UCS2, count, encoding, fit, split, units


@pytest.mark.parametrize(
    ("text", "coding", "size", "segments"),
    [
        ("", GSM7, 0, 0),
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),
        ("a" * 307, GSM7, 307, 3),
        ("€" * 80, GSM7, 160, 1),  # extension table: 2 septets each
        ("€" * 81, GSM7, 162, 2),
        ("{}[]~|^\\", GSM7, 16, 1),
        ("Café @ 10£ Ñ ü", GSM7, 14, 1),
        ("ก" * 70, UCS2, 70, 1),
        ("ก" * 71, UCS2, 71, 2),
        ("ก" * 134, UCS2, 134, 2),
        ("ก" * 135, UCS2, 135, 3),
        ("привет", UCS2, 6, 1),
        ("😀" * 35, UCS2, 70, 1),  # outside the BMP: a surrogate pair each
        ("😀" * 36, UCS2, 72, 2),
        ("ç", UCS2, 1, 1),  # lower-case ç is not in GSM-7 (only Ç is)
    ],
)
def test_known_cases(text: str, coding: str, size: int, segments: int) -> None:
    result = count(text)
    assert (result.encoding, result.units, result.segments) == (coding, size, segments)


def test_parts_respect_limits_words_and_characters() -> None:
    text = " ".join(["word"] * 100)
    parts = split(text)
    assert all(units(p) <= 153 for p in parts) and "".join(parts) == text
    assert all(not p.endswith("wor") for p in parts)
    thai = "ช่วยด้วย " * 40
    parts = split(thai)
    assert all(encoding(p) == UCS2 and units(p) <= 67 for p in parts) and "".join(parts) == thai
    assert all(p[0] not in "\u0e48\u0e49\u0e31" for p in parts)  # no part starts with a combining mark
    euros = "€" * 200
    assert all(units(p) <= 153 for p in split(euros)) and "".join(split(euros)) == euros


def test_fit_cuts_at_a_word_and_stays_within_budget() -> None:
    long_text = "Call the hotline now. " * 40
    fitted = fit(long_text, 3)
    kept = fitted[:-3]
    assert count(fitted).segments <= 3 and fitted.endswith("...")
    assert long_text.startswith(kept) and long_text[len(kept)] == " "  # cut between words
    assert fit("short", 1) == "short"
    cyrillic = "Позвоните на горячую линию сейчас. " * 20
    fitted = fit(cyrillic, 2)
    assert count(fitted).segments <= 2 and count(fitted).encoding == UCS2
