"""Language identification: script rules, statistics, stickiness, held-out accuracy."""

from __future__ import annotations

import pytest
import yaml

from bot.langid import LanguageIdentifier, count_words
from tests.conftest import LANGUAGES, data_path, needs

LONG_TARGET = 0.97
# Languages measured below the target would be floored here; none are since Vietnamese without
# tone marks is recognised by its syllable shapes (58/60 -> 60/60, 2026-11-23).
LONG_BELOW_TARGET: dict[str, float] = {}


DETECTION_CASES = [
    ("ฉันได้งานที่มาเลเซีย", "th"),
    ("ကျွန်မ အလုပ်ရှာနေတယ်", "my"),
    ("ខ្ញុំត្រូវការជំនួយ", "km"),
    ("我在泰国找到一份工作", "zh"),
    ("мене запросили на роботу до Польщі", "uk"),
    ("меня позвали работать в Польшу", "ru"),
    ("tôi được mời đi làm ở Đài Loan", "vi"),
    ("am primit o ofertă de muncă în Germania, ce să fac?", "ro"),
    ("aku dapat tawaran kerja di Malaysia, aman gak ya", "id"),
    ("may nag-alok sa akin ng trabaho sa Dubai, safe ba", "tl"),
    ("a guy on instagram says he can get me a job abroad", "en"),
]


@pytest.mark.parametrize(("text", "language"), [case for case in DETECTION_CASES if case[1] in LANGUAGES])
def test_detects_each_language(identifier: LanguageIdentifier, text: str, language: str) -> None:
    assert identifier.detect(text).language == language


@pytest.mark.parametrize("text", ["😀🙏", "12345", "...", "こんにちは、元気ですか", "안녕하세요 반갑습니다"])
def test_no_supported_language(identifier: LanguageIdentifier, text: str) -> None:
    assert identifier.detect(text).language is None


@pytest.mark.parametrize("short", ["ok", "hi", "yes", "thanks", "ok ok", "lol", "👍"])
@pytest.mark.parametrize("current", LANGUAGES)
def test_short_latin_message_keeps_language(identifier: LanguageIdentifier, short: str, current: str) -> None:
    decision = identifier.decide(short, current)
    assert decision.language == current and not decision.switched


@needs("th", "uk")
def test_unique_script_switches_even_when_short(identifier: LanguageIdentifier) -> None:
    assert identifier.decide("สวัสดีค่ะ", "en").language == "th"
    assert identifier.decide("привіт", "ru").language == "uk"


@needs("my", "th", "id")
def test_pinned_language_resists_short_messages_but_follows_clear_long_ones(identifier: LanguageIdentifier) -> None:
    assert identifier.decide("สวัสดีค่ะ", "my", pinned=True).language == "my"
    assert identifier.decide("ok thanks kak", "id", pinned=True).language == "id"
    assert identifier.decide("hello, can you tell me how to check an agency", "id", pinned=True).language == "en"


@needs("id")
def test_long_message_switches(identifier: LanguageIdentifier) -> None:
    decision = identifier.decide("saya mendapat tawaran kerja di Malaysia dari agen", "en")
    assert decision.language == "id" and decision.switched


@needs("vi")
def test_first_message_sets_language_and_default_is_english(identifier: LanguageIdentifier) -> None:
    assert identifier.decide("ok", None).language == "en"
    assert identifier.decide("😀", None).language == "en"
    assert identifier.decide("Xin chào", None).language == "vi"


def test_word_count_for_scripts_without_spaces() -> None:
    assert count_words("ช่วยด้วยค่ะ") == 2
    assert count_words("ok ok ok ok") == 4


def _heldout() -> dict[str, dict[str, list[str]]]:
    return yaml.safe_load(data_path("langid_heldout.yml").read_text(encoding="utf-8"))["languages"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_heldout_accuracy_on_messages_of_four_words_or_more(identifier: LanguageIdentifier, language: str) -> None:
    messages = [m for m in _heldout()[language]["long"] if count_words(m) >= 4]
    assert len(messages) >= 40
    correct = sum(identifier.detect(m).language == language for m in messages)
    assert correct / len(messages) >= LONG_BELOW_TARGET.get(language, LONG_TARGET), f"{language}: {correct}/{len(messages)}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_heldout_short_messages_never_flip_an_established_language(identifier: LanguageIdentifier, language: str) -> None:
    for message in _heldout()[language]["short"]:
        assert identifier.decide(message, language).language == language, message


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("toi muon di lam viec o nuoc ngoai co an toan khong", "vi"),
        ("em bi giu ho chieu roi giup em voi", "vi"),
        ("gusto ko pong magtrabaho sa ibang bansa", "tl"),
        ("aku mau kerja di luar negeri aman gak", "id"),
        ("vreau sa lucrez in strainatate e sigur", "ro"),
    ],
)
def test_vietnamese_without_tone_marks_is_told_by_syllable_shape(
    identifier: LanguageIdentifier, text: str, language: str
) -> None:
    assert identifier.detect(text).language == language


# Russian and Ukrainian typed in Latin letters: held-out messages written blind
# (tests/data/langid_translit_heldout.yml, never used to write data/langid.yml `translit`).
# Before the transliteration lists every one was read as en/id/tl; measured on this commit
# (4+ words): ru 0.875, uk 0.970. Floors against regressions, not targets.
TRANSLIT_FLOOR = {"ru": 0.85, "uk": 0.90}


@pytest.mark.parametrize("language", sorted(TRANSLIT_FLOOR))
def test_russian_and_ukrainian_in_latin_letters_are_recognised(identifier: LanguageIdentifier, language: str) -> None:
    from bot.config import ROOT

    path = ROOT / "tests" / "data" / "langid_translit_heldout.yml"
    messages = yaml.safe_load(path.read_text(encoding="utf-8"))[language]
    long_messages = [m for m in messages if count_words(m) >= 4]
    right = sum(identifier.detect(m).language == language for m in long_messages)
    assert len(long_messages) >= 25 and right / len(long_messages) >= TRANSLIT_FLOOR[language]
