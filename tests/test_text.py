"""Input normalisation: invisible characters, Zawgyi, bytes, length."""

from __future__ import annotations

from bot.text import MAX_CHARS, normalize, zawgyi_probability


def test_zero_width_and_controls_removed() -> None:
    assert normalize("pa\u200bss\u200dport\u00ad \x00 taken\ufeff").text == "passport taken"


def test_zawgyi_is_converted_to_unicode() -> None:
    zawgyi = "ျမန္မာ"  # "Myanmar" typed in Zawgyi
    clean = normalize(zawgyi)
    assert clean.was_zawgyi
    assert clean.text == "မြန်မာ"
    assert zawgyi_probability("မြန်မာ") < 0.5  # Unicode Burmese is left alone
    assert not normalize("မြန်မာ").was_zawgyi


def test_binary_and_none_never_crash() -> None:
    assert normalize(b"\xff\xfe\x00\x01 hi").text == "hi"
    assert normalize(None).empty
    assert normalize(b"\x00\x01\x02").empty


def test_emoji_only_has_no_letters() -> None:
    clean = normalize("😀🙏")
    assert not clean.empty and not clean.has_letters


def test_huge_input_is_cut_at_a_word_boundary() -> None:
    clean = normalize("word " * 5000)
    assert clean.truncated and len(clean.text) <= MAX_CHARS and clean.text.endswith("word")


def test_cut_never_splits_a_thai_character_cluster() -> None:
    clean = normalize("ที่" * 600)
    assert clean.truncated and len(clean.text) <= MAX_CHARS
    assert clean.text.endswith("ที่")


def test_nfc_composition() -> None:
    assert normalize("Vie\u0302\u0323t").text == "Việt"
