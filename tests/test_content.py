"""Content as data: every key in every language, review status, sources, facts schema,
and every answer renders for every language x country."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.config import ROOT
from bot.content import Catalog
from bot.content.catalog import (
    CONFIDENCE_LEVELS,
    FEE_RULES,
    HOTLINE_KINDS,
    REVIEW_STATUSES,
    RIGHT_CODES,
    placeholder_problems,
)
from bot.content.render import COUNTRY_INTENTS, JOB_CHECK_FLAGS, SIMPLE_ANSWERS, Renderer
from bot.risk.screener import Screener
from bot.topics import TOPIC_OF_INTENT, TOPICS
from tests.conftest import LANGUAGES

COUNTRIES = ["TH", "MM", "KH", "VN", "PH", "ID", "CN", "RU", "UA", "RO", "PL"]
REFERENCE = ROOT.parent / "shared" / "reference" / "reference.yml"
URL = re.compile(r"^https?://\S+$")


def _raw_facts(code: str) -> dict:
    return yaml.safe_load((ROOT / "data" / "facts" / f"{code}.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_configured_language_is_complete(language: str) -> None:
    for path in (f"data/content/{language}.yml", f"data/nlu/{language}.yml", f"tests/data/nlu_heldout/{language}.yml"):
        assert (ROOT / path).exists(), path


def test_all_countries_present(catalog: Catalog) -> None:
    assert sorted(catalog.countries) == sorted(COUNTRIES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_in_every_language_with_review_status(catalog: Catalog, language: str) -> None:
    english, texts = catalog.texts["en"], catalog.texts[language]
    assert list(texts) == list(english), "same keys, same order as en.yml"
    for key, entry in texts.items():
        assert entry["text"].strip(), key
        assert entry["review"] in REVIEW_STATUSES, key
        if language != "en":
            assert entry["review"] != "source", key
    if language != "en":  # loanwords ("Emergency" in Tagalog) may match English; a whole file may not
        same = [k for k in texts if texts[k]["text"] == english[k]["text"]]
        assert len(same) <= len(texts) // 10, same


def test_placeholders_match_english(catalog: Catalog) -> None:
    assert placeholder_problems(catalog) == []


def test_buttons_are_short(catalog: Catalog) -> None:
    for language in LANGUAGES:
        for key, entry in catalog.texts[language].items():
            if key.startswith("button_"):
                assert len(entry["text"]) <= 30, (language, key)


def test_english_fact_texts_cite_sources(catalog: Catalog) -> None:
    for key, entry in catalog.texts["en"].items():
        for source in entry.get("sources", []):
            assert URL.match(source), key


@pytest.mark.parametrize("code", COUNTRIES)
def test_facts_schema_and_sources(code: str) -> None:
    raw = _raw_facts(code)
    assert raw["country"] == code
    assert {"en", "th", "my", "km", "vi", "id", "tl", "zh", "ru", "uk", "ro"} <= set(raw["names"])
    items = [*raw["hotlines"], *raw["law"].get("rights", []), *raw.get("ngos", [])]
    items.append(raw["law"]["main_law"])
    for item in items:
        assert URL.match(item["source"]), item
        assert item["confidence"] in CONFIDENCE_LEVELS, item
    for hotline in raw["hotlines"]:
        assert set(hotline["kinds"]) <= set(HOTLINE_KINDS), hotline
        assert re.fullmatch(r"[0-9+\- ]+", hotline["number"]), hotline
    for right in raw["law"].get("rights", []):
        assert right["code"] in RIGHT_CODES
    assert raw["recruitment"]["fees"]["rule"] in FEE_RULES


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference not beside the repo")
@pytest.mark.parametrize("code", COUNTRIES)
def test_every_number_comes_from_the_reference(code: str) -> None:
    reference = REFERENCE.read_text(encoding="utf-8")
    for hotline in _raw_facts(code)["hotlines"]:
        assert hotline["number"] in reference, f"{code} {hotline['number']} not in reference.yml"


def test_intents_have_topics() -> None:
    assert set(TOPIC_OF_INTENT.values()) <= set(TOPICS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_answer_renders_in_every_language_and_country(renderer: Renderer, language: str) -> None:
    intents = [*SIMPLE_ANSWERS, "greet", "job_offer", "out_of_scope", "nlu_fallback", *COUNTRY_INTENTS]
    for country in [None, *COUNTRIES]:
        for intent in intents:
            messages = renderer.answer(intent, language, country)
            assert messages, (intent, country)
            for message in messages:
                assert message.text.strip() and "{" not in message.text, (intent, country, message.text)
        flags_all = {slot: bad for slot, bad in JOB_CHECK_FLAGS.items()}
        assert len(renderer.job_check_result(flags_all, language, country)[0].text.splitlines()) == 7


def test_country_answers_show_real_numbers(renderer: Renderer) -> None:
    text = "\n".join(m.text for m in renderer.answer("get_help", "th", "TH"))
    assert "191" in text and "1300" in text
    danger = renderer.answer("danger", "en", "PH")
    assert "911" in danger[1].text.splitlines()[1], "emergency number first"


def test_unverified_hotlines_are_never_shown(catalog: Catalog, renderer: Renderer) -> None:
    for code in COUNTRIES:
        shown = "\n".join(m.text for m in renderer.answer("get_help", "en", code))
        for hotline in catalog.countries[code].hotlines:
            if hotline.confidence == "unverified" or not hotline.show:
                assert f": {hotline.number} " not in shown, (code, hotline.number)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I'm in Thailand", "TH"),
        ("ฉันอยู่ประเทศไทย", "TH"),
        ("Viet Nam", "VN"),
        ("vietnam", "VN"),
        ("Україна", "UA"),
        ("我在中国", "CN"),
        ("Romania", "RO"),
        ("Malaysia", None),
    ],
)
def test_find_country_in_any_language(catalog: Catalog, text: str, code: str | None) -> None:
    assert catalog.find_country(text) == code


@pytest.mark.parametrize("language", LANGUAGES)
def test_not_understood_replies_carry_a_way_out_of_danger(
    catalog: Catalog, renderer: Renderer, screener: Screener, language: str
) -> None:
    """Danger in words nobody foresaw lands in out_of_scope or nlu_fallback: the reply still names
    the emergency number of her country and a help word that escalates to a counsellor."""
    help_word = re.search(r'["“«„](.+?)["”»]', catalog.text("safety_net", language, None, number="x"))
    assert help_word and screener.screen(help_word.group(1)).urgent, language
    for intent in ("out_of_scope", "nlu_fallback", "made_up_intent"):
        for country in COUNTRIES:
            reply = renderer.answer(intent, language, country)[0].text
            emergency = catalog.countries[country].emergency_hotlines(language)
            if emergency:
                assert emergency[0].number in reply, (intent, country)
            else:  # no confirmed number: the help word and the counsellor, never a fire line as "emergency"
                assert catalog.text("safety_net_no_number", language) in reply, (intent, country)


# Texts that tell her what to write when she needs a person: every quoted word must do it.
HELP_INSTRUCTIONS = (
    "handoff_released", "handoff_closed", "handoff_ended_by_user", "rate_limited", "safety_net", "safety_net_no_number",
)  # fmt: skip
QUOTED = re.compile(r'["“«„「『]([^"“”«»„「」『』]{1,40}?)["”»“」』]')


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_word_a_text_tells_her_to_write_for_help_escalates(
    catalog: Catalog, screener: Screener, language: str
) -> None:
    from bot.text import normalize

    broken = []
    for key in HELP_INSTRUCTIONS:
        for variant in (None, "sms"):
            text = catalog.text(key, language, variant, number="112")
            for word in QUOTED.findall(text):
                if not screener.screen(normalize(word).text).urgent:
                    broken.append((key, variant, word))
    assert not broken, broken


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_privacy_notice_says_what_is_kept_for_the_configured_time_and_how_to_erase(
    catalog: Catalog, language: str
) -> None:
    """It used to say "I only keep your language and country" while her messages were kept."""
    web, sms = Renderer(catalog, retention_days=30), Renderer(catalog, "sms", retention_days=30)
    text, short = web.t("privacy", language), sms.t("privacy", language)
    assert "30" in text and "/erase" in text, text
    assert "30" in short and "ERASE" in short, short
    assert "90" in Renderer(catalog, retention_days=90).t("privacy", language)


# Texts that may tell an SMS user to type an opt-out word, because they are about opting out.
ABOUT_OPTING_OUT = frozenset({"sms_menu_hint", "sms_stopped", "sms_started"})


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_sms_text_tells_her_to_type_an_opt_out_word_unless_it_means_opting_out(catalog: Catalog, language: str) -> None:
    """On SMS "STOP" / "หยุด" / "стоп" opts her out; the job check's "not yes/no" prompt told her to
    type it to leave the check, which silenced the helpline for her."""
    import yaml

    from bot.config import ROOT

    keywords = yaml.safe_load((ROOT / "data" / "sms" / "keywords.yml").read_text(encoding="utf-8"))["keywords"]["stop"]
    stop_words = {w.casefold() for w in [*keywords.get(language, []), *keywords["en"]]}
    fill = {k: "X" for k in ("country", "regulator", "law", "hours", "number", "numbers", "countries", "caution")}
    fill |= {"text": "X", "count": "X"}  # the offer check's read-back and findings
    broken = []
    for key in catalog.texts[language]:
        if key in ABOUT_OPTING_OUT:
            continue
        text = catalog.text(key, language, "sms", retention_days="90", **fill)
        said = {w.casefold().strip() for w in QUOTED.findall(text)} | {
            w.casefold() for w in re.findall(r"\b[A-Z]{3,}\b", text)
        }
        if said & stop_words:
            broken.append((key, sorted(said & stop_words)))
    assert not broken, broken


# -- her urgent reply, per country (delivery issue item 6; content issue item 6) ---------------


@pytest.mark.parametrize("code", COUNTRIES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_urgent_reply_names_every_confirmed_contact_for_what_it_is(catalog: Catalog, code: str, language: str) -> None:
    renderer = Renderer(catalog)
    country = catalog.countries[code]
    reply = "\n".join(m.text for m in renderer.answer("danger", language, code))
    shown = country.shown_hotlines(language)
    for hotline in shown:  # every confirmed line, in a chat reply
        line = renderer.hotline_line(hotline, country, language)
        assert line in reply
        assert line.startswith(f"• {renderer.t(f'kind_{hotline.kinds[0]}', language)}: {hotline.number}")
        if "emergency" not in hotline.kinds:  # only an emergency line may be called one
            assert not line.startswith(f"• {renderer.t('kind_emergency', language)}:")
    if country.emergency_hotlines(language):
        assert renderer.t("emergency_first", language) in reply
    else:  # said plainly, and the counsellor named as her contact
        assert renderer.t("no_confirmed_emergency", language, country=country.name(language)) in reply
    if country.caution_key:
        assert renderer.t(country.caution_key, language, country=country.name(language)) in reply


def test_myanmar_fire_line_is_named_for_what_it_is_and_the_gap_is_recorded(catalog: Catalog) -> None:
    renderer = Renderer(catalog)
    reply = "\n".join(m.text for m in renderer.answer("danger", "en", "MM"))
    assert "Fire services: 191" in reply and "Emergency: 191" not in reply
    assert "counsellor here is your contact" in reply and "punished victims" in reply
    facts = yaml.safe_load((ROOT / "data" / "facts" / "MM.yml").read_text(encoding="utf-8"))
    assert facts["gaps"] and facts["context_note"]["content_key"] == "caution_state_services"


def test_every_number_in_the_reference_is_in_the_facts_shown_or_hidden_with_a_note() -> None:
    """The facts offer every helping contact the reference holds (or say why a line is hidden)."""
    reference_path = ROOT.parent / "shared" / "reference" / "reference.yml"
    if not reference_path.exists():
        pytest.skip("../shared/reference is not beside the repository")
    reference = yaml.safe_load(reference_path.read_text(encoding="utf-8"))["countries"]
    for code, country in reference.items():
        facts = yaml.safe_load((ROOT / "data" / "facts" / f"{code}.yml").read_text(encoding="utf-8"))
        ours = {str(h["number"]): h for h in facts.get("hotlines") or []}
        for line in country.get("hotlines") or []:
            number = line.get("number")
            if not number or line.get("confidence") == "unverified":
                continue
            first = re.match(r"\+?\d[\d ()-]*\d|\d", str(number))
            if first is None:
                continue  # a description, not a number
            match = [h for n, h in ours.items() if first.group(0).strip() in n]
            assert match, f"{code}: {number} from the reference is missing from data/facts/{code}.yml"
            assert all(h.get("show", True) or h.get("note") for h in match), (code, number)


# -- order of contacts (content issue item 7) ----------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_thai_191_speaks_thai_so_other_languages_get_1155_first(catalog: Catalog, language: str) -> None:
    first = catalog.countries["TH"].emergency_hotlines(language)[0].number
    assert first == ("191" if language == "th" else "1155")
    reply = "\n".join(m.text for m in Renderer(catalog).answer("danger", language, "TH"))
    assert reply.index("1155") < reply.index("191") or language == "th"


@pytest.mark.parametrize("code", COUNTRIES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_sms_numbers_keep_a_child_helpline_and_confirmed_lines_come_first(
    catalog: Catalog, code: str, language: str
) -> None:
    country = catalog.countries[code]
    shown = country.shown_hotlines(language)
    confidences = [h.confidence == "low" for h in shown]
    assert confidences == sorted(confidences)  # every low-confidence line after the confirmed ones
    sms = "\n".join(m.text for m in Renderer(catalog, "sms").answer("get_help", language, code))
    child = [h for h in shown if "child" in h.kinds]
    if child:
        assert any(h.number in sms for h in child), (code, language)
    low = [h for h in shown if h.confidence == "low"]
    chat = "\n".join(m.text for m in Renderer(catalog).answer("danger", language, code))
    for hotline in low:
        assert f"{hotline.number}*" in chat  # marked


def test_low_confidence_organisations_are_marked(catalog: Catalog) -> None:
    renderer = Renderer(catalog)
    for country in catalog.countries.values():
        services = frozenset({"legal_aid", "shelter", "counselling"})
        lines = renderer.organisations(country, services, "en")
        shown = country.reachable_organisations(services)[:3]  # one she cannot contact is not shown
        for organisation in shown:
            if organisation.confidence == "low":
                assert any(line.startswith(f"• {organisation.name}*") for line in lines)


@pytest.mark.parametrize("code", COUNTRIES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_countrys_law_caution_is_shown_in_every_language(catalog: Catalog, code: str, language: str) -> None:
    """Content issue item 5: the caution was shown in English only."""
    country = catalog.countries[code]
    reply = "\n".join(m.text for m in Renderer(catalog).answer("legal_rights", language, code))
    if country.caution:
        assert catalog.text(f"law_caution_{code}", language) in reply


NOT_GUARANTEED = {"ru": "Жертв не наказывают", "uk": "Жертв не карають", "vi": "Nạn nhân không bị phạt"}


@pytest.mark.parametrize("language", sorted(NOT_GUARANTEED))
def test_non_punishment_is_stated_as_what_should_be_not_as_a_fact(catalog: Catalog, language: str) -> None:
    """Content issue item 5: 'victims are not punished' is not guaranteed by every country's law."""
    entry = catalog.texts[language]["legal_rights_general"]
    assert NOT_GUARANTEED[language] not in entry["text"] and NOT_GUARANTEED[language] not in entry.get("sms", "")
