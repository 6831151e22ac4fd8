"""SMS pieces without a network: keywords in every language, the numbered menu and the
segment budget, the country guess from the number, and SMS renderings of every answer."""

from __future__ import annotations

import pytest
import yaml

from bot.config import ROOT
from bot.content import Catalog
from bot.content.render import COUNTRY_INTENTS, SIMPLE_ANSWERS, Message, Renderer
from bot.risk.screener import Screener
from bot.sms import segments
from bot.sms.compose import compose
from bot.sms.keywords import CallingCodes, Keyword, Keywords
from bot.text import normalize
from tests.conftest import LANGUAGES

DATA = ROOT / "data"


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.from_data(DATA)


def test_keywords_exist_in_every_language(keywords: Keywords) -> None:
    for name, per_language in keywords.words.items():
        assert set(LANGUAGES) <= set(per_language), name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", Keyword("stop")),
        ("stop.", Keyword("stop")),
        ("  Stop!! ", Keyword("stop")),
        ("หยุด", Keyword("stop")),
        ("СТОП", Keyword("stop")),
        ("dừng", Keyword("stop")),
        ("DUNG", Keyword("stop")),  # no accents on a basic phone
        ("start", Keyword("start")),
        ("MENU", Keyword("menu")),
        ("meniu", Keyword("menu")),
        ("ERASE", Keyword("erase")),
        ("sterge", Keyword("erase")),
        ("LANG th", Keyword("lang", "th")),
        ("language Русский", Keyword("lang", "русский")),
        ("ภาษา", Keyword("lang")),
        ("HELP", Keyword("help")),
        ("sos", Keyword("help")),
        ("stop calling me please", None),  # a sentence is for the bot, not a keyword
        ("help me my boss took my passport", None),
        ("", None),
        ("1", None),
    ],
)
def test_keyword_matching(keywords: Keywords, text: str, expected: Keyword | None) -> None:
    assert keywords.match(text) == expected


def test_every_help_word_escalates_through_the_screener(keywords: Keywords, screener: Screener) -> None:
    """HELP on a helpline is never a mere info request: it reaches a counsellor."""
    for word in keywords.all_words("help"):
        result = screener.screen(normalize(word).text)
        assert result.urgent, word


def test_a_keyword_cannot_mean_two_things() -> None:
    with pytest.raises(ValueError, match="two things"):
        Keywords({"stop": {"en": ["END"]}, "start": {"en": ["end"]}})


def test_numbered_menu_across_messages() -> None:
    reply = compose(
        [
            Message("Is this offer safe?", (("Yes", "/affirm"), ("No", "/deny"))),
            Message("Or:", (("Helplines", "/get_help"),)),
        ],
        "Reply with a number:",
        3,
    )
    assert reply.text.endswith("Reply with a number:\n1 Yes\n2 No\n3 Helplines")
    assert reply.menu == ("/affirm", "/deny", "/get_help")


@pytest.mark.parametrize("budget", [1, 2, 3])
@pytest.mark.parametrize(
    "prose",
    [
        "A long English answer with many words " * 20,
        "คำตอบภาษาไทยที่ยาวมาก " * 30,
        "Очень длинный ответ на русском языке " * 15,
        "ဗမာစာ ရှည်ရှည် ဖြေကြားချက် " * 20,
        "很长的中文回答" * 40,
        "Emoji 🙂 answer " * 40,
    ],
)
def test_a_reply_stays_within_the_budget_and_keeps_numbers_and_menu(prose: str, budget: int) -> None:
    numbers = "• Emergency: 191\n• Hotline 1300"
    reply = compose([Message(prose), Message(numbers), Message("?", (("Yes", "/affirm"),))], "Reply:", budget)
    count = segments.count(reply.text)
    assert count.segments <= budget
    assert "191" in reply.text and "1300" in reply.text  # phone numbers are cut last
    assert reply.text.endswith("Reply:\n1 Yes") and reply.menu == ("/affirm",)
    assert "\ufffd" not in reply.text
    kept = reply.text.split("...")[0]
    assert prose.startswith(kept)  # cut, never rewritten; no broken character or grapheme


def test_calling_codes_guess_only_supported_countries() -> None:
    codes = CallingCodes.from_data(DATA)
    assert codes.country("+66 81 234 5678") == "TH"
    assert codes.country("0095912345678") == "MM"
    assert codes.country("+855 12 345 678") == "KH"
    assert codes.country("+380501234567") == "UA"
    assert codes.country("+79161234567") == "RU"
    assert codes.country("+77011234567") is None  # Kazakhstan shares +7
    assert codes.country("0812345678") is None  # a national number says nothing
    assert codes.country("+441234567890") is None


def test_calling_codes_point_at_countries_with_facts(catalog: Catalog) -> None:
    raw = yaml.safe_load((DATA / "sms" / "calling_codes.yml").read_text(encoding="utf-8"))
    assert raw["source"].startswith("https://")
    assert {c for c in raw["codes"].values() if c} == set(catalog.countries)


@pytest.mark.parametrize("language", LANGUAGES)
def test_sms_variants_exist_in_every_language_and_are_short(catalog: Catalog, language: str) -> None:
    english = catalog.texts["en"]
    for key, entry in catalog.texts[language].items():
        if "sms" in english[key]:
            assert entry.get("sms", "").strip(), (language, key)
            assert segments.count(entry["sms"]).segments <= 3, (language, key)
            assert len(entry["sms"]) < len(entry["text"]) or key in {"nlu_fallback"}, (language, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_answer_fits_three_segments_with_its_numbers(catalog: Catalog, language: str) -> None:
    render = Renderer(catalog, "sms")
    intents = [*SIMPLE_ANSWERS, *COUNTRY_INTENTS, "greet", "job_offer", "out_of_scope"]
    for country in catalog.countries:
        for intent in intents:
            messages = render.answer(intent, language, country)
            reply = compose(messages, render.t("sms_menu_intro", language), 3)
            assert segments.count(reply.text).segments <= 3, (language, country, intent)
            if intent == "danger":
                emergency = catalog.countries[country].emergency_hotlines(language)
                if emergency:
                    assert emergency[0].number in reply.text, (language, country)


def test_romanian_is_folded_to_gsm7_and_other_accents_kept() -> None:
    folded = segments.fold_to_gsm("Nu-ți da pașaportul și actele: ești în siguranță?")
    assert folded == "Nu-ti da pasaportul si actele: esti in siguranta?"
    assert segments.encoding(folded) == segments.GSM7
    assert segments.fold_to_gsm("café über niño") == "café über niño"  # GSM-7 has these
    reply = compose([Message("Ai încredere în tine.")], "Răspunde:", 1, gsm_fold=True)
    assert reply.text == "Ai incredere in tine." and segments.count(reply.text).encoding == segments.GSM7
