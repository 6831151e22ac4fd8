"""Words that keep their promises (content issue items 6-8 and "register and naturalness"), in
every language and country: legal-aid advice that does not send her to the police where the facts
advise caution, no organisation she cannot contact, sextortion and visa texts that do not blame her,
and the register of the translations."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.config import ROOT
from bot.content import Catalog
from bot.content.catalog import POLICE_CAUTIONS
from bot.content.render import LEGAL_AID_SERVICES, SUPPORT_SERVICES, Renderer
from bot.sms import segments
from bot.sms.compose import compose
from tests.conftest import LANGUAGES

COUNTRIES = ["TH", "MM", "KH", "VN", "PH", "ID", "CN", "RU", "UA", "RO", "PL"]
REFERENCE = ROOT.parent / "shared" / "reference" / "reference.yml"

# The word for the police in each language ("ရဲ့" is a Burmese particle, not the police).
POLICE = {
    "en": r"\bpolice\b",
    "th": r"ตำรวจ",
    "my": r"ရဲ(?!့)",
    "km": r"ប៉ូលិស",
    "vi": r"cảnh sát|công an",
    "id": r"\bpolisi\b",
    "tl": r"\bpulis\b",
    "zh": r"警察|报警|公安",
    "ru": r"полици",
    "uk": r"поліці",
    "ro": r"poli[țţ]i",
}


def _police(language: str, text: str) -> bool:
    return re.search(POLICE[language], text, re.IGNORECASE) is not None


def _raw_facts(code: str) -> dict:
    return yaml.safe_load((ROOT / "data" / "facts" / f"{code}.yml").read_text(encoding="utf-8"))


# -- item 6: legal aid where the facts advise caution about the police ------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_police_word_lists_find_the_police_in_the_plain_advice_and_not_in_the_cautious_one(
    catalog: Catalog, language: str
) -> None:
    for variant in (None, "sms"):
        assert _police(language, catalog.text("legal_aid_general", language, variant)), (language, variant)
        assert not _police(language, catalog.text("legal_aid_general_cautious", language, variant)), (language, variant)


@pytest.mark.parametrize("language", LANGUAGES)
def test_legal_aid_in_myanmar_never_sends_her_to_the_police(catalog: Catalog, language: str) -> None:
    """The advice and the organisations; the helplines that follow name the fire line for what it
    is ("not the police")."""
    for variant in (None, "sms"):
        renderer = Renderer(catalog, variant)
        *advice, helplines = renderer.answer("legal_aid", language, "MM")
        assert helplines == renderer.helplines(catalog.countries["MM"], language)
        reply = "\n".join(m.text for m in advice)
        assert not _police(language, reply), (variant, reply)
        assert advice[0].text == catalog.text("legal_aid_general_cautious", language, variant)


@pytest.mark.parametrize("language", LANGUAGES)
def test_legal_aid_for_a_foreign_girl_in_thailand_does_not_send_her_to_the_police(catalog: Catalog, language: str) -> None:
    """The bot never asks about her papers: a girl whose language is not Thai may be undocumented,
    and Thailand put foreign victims in immigration detention. A Thai girl gets the plain advice."""
    for variant in (None, "sms"):
        advice = Renderer(catalog, variant).answer("legal_aid", language, "TH")[0].text
        if language == "th":
            assert advice == catalog.text("legal_aid_general", language, variant)
        else:
            assert advice == catalog.text("legal_aid_general_cautious", language, variant)
            assert not _police(language, advice), (variant, advice)


@pytest.mark.parametrize("code", COUNTRIES)
def test_legal_aid_is_cautious_exactly_where_the_facts_say_so(catalog: Catalog, code: str) -> None:
    raw = _raw_facts(code).get("police_caution")
    if raw is not None:
        assert raw["applies_to"] in POLICE_CAUTIONS and raw["source"].startswith("http")
        if REFERENCE.exists():
            assert raw["source"] in REFERENCE.read_text(encoding="utf-8"), raw["source"]
    expected_cautious = {"MM": set(LANGUAGES), "TH": set(LANGUAGES) - {"th"}}.get(code, set())
    for language in LANGUAGES:
        advice = Renderer(catalog).answer("legal_aid", language, code)[0].text
        key = "legal_aid_general_cautious" if language in expected_cautious else "legal_aid_general"
        assert advice == catalog.text(key, language), (code, language)


# -- item 7: an organisation she cannot contact is not shown --------------------------------

CONTACT = re.compile(r"\d{3}|@|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b", re.IGNORECASE)


@pytest.mark.parametrize("code", COUNTRIES)
def test_every_organisation_shown_has_a_phone_website_or_email(catalog: Catalog, code: str) -> None:
    country = catalog.countries[code]
    every_service = frozenset(s for o in country.organisations for s in o.services)
    renderer = Renderer(catalog)
    for services in (LEGAL_AID_SERVICES, SUPPORT_SERVICES, every_service):
        lines = [line for line in renderer.organisations(country, services, "en") if line.startswith("• ")]
        for line in lines:
            assert CONTACT.search(line.split(" - ", 1)[-1]) and " - " in line, line
        for organisation in country.organisations:
            if not country.contact_of(organisation):
                assert not any(line.startswith(f"• {organisation.name}") for line in lines), organisation.name


@pytest.mark.parametrize("code", COUNTRIES)
def test_an_organisations_hotline_and_website_come_from_its_facts(catalog: Catalog, code: str) -> None:
    """`hotline` is one of the country's numbers; `website` is the site its source was found on."""
    numbers = {h["number"] for h in _raw_facts(code)["hotlines"]}
    for raw in _raw_facts(code).get("ngos") or []:
        if raw.get("hotline"):
            assert str(raw["hotline"]) in numbers, raw["name"]
        if raw.get("website"):
            sources = [v for k, v in raw.items() if k.startswith("source")]
            assert any(raw["website"] in source for source in sources), raw["name"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pixian_centre_without_a_contact_is_not_shown(catalog: Catalog, language: str) -> None:
    pixian = next(o for o in catalog.countries["CN"].organisations if "Pixian" in o.name)
    assert catalog.countries["CN"].contact_of(pixian) is None
    for variant in (None, "sms"):
        for intent in ("legal_aid", "life_skills"):
            reply = "\n".join(m.text for m in Renderer(catalog, variant).answer(intent, language, "CN"))
            assert "Pixian" not in reply


# -- item 8: sextortion and the tourist visa ---------------------------------------------------

NOT_HER_FAULT = {
    "en": r"not your fault",
    "th": r"ไม่ใช่ความผิด",
    "my": r"အပြစ်\s*မဟုတ်",
    "km": r"មិនមែន(?:ជា)?កំហុស",
    "vi": r"không phải lỗi",
    "id": r"bukan salahmu",
    "tl": r"hindi mo(?: iyon)? kasalanan",
    "zh": r"不是你的错",
    "ru": r"не виновата",
    "uk": r"не винна",
    "ro": r"nu e vina ta",
}
A_CRIME = {
    "en": r"crime",
    "th": r"อาชญากรรม",
    "my": r"ရာဇဝတ်",
    "km": r"ឧក្រិដ្ឋ",
    "vi": r"tội phạm",
    "id": r"kejahatan",
    "tl": r"krimen",
    "zh": r"犯罪",
    "ru": r"преступлен",
    "uk": r"злочин",
    "ro": r"infrac[țţ]iune",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_online_relationship_says_sent_photos_are_not_her_fault_and_sharing_them_is_a_crime(
    catalog: Catalog, language: str
) -> None:
    for variant in (None, "sms"):
        sentence = catalog.text("photos_not_your_fault", language, variant)
        assert re.search(NOT_HER_FAULT[language], sentence, re.IGNORECASE), (variant, sentence)
        assert re.search(A_CRIME[language], sentence, re.IGNORECASE), (variant, sentence)
        reply = [m.text for m in Renderer(catalog, variant).answer("online_relationship", language, None)]
        assert reply == [catalog.text("online_relationship", language, variant), sentence]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sms_answer_keeps_the_not_your_fault_sentence_whole(catalog: Catalog, language: str) -> None:
    """An SMS reply longer than its budget is cut; this sentence must never be what is cut."""
    render = Renderer(catalog, "sms")
    fold = language == "ro"  # sent without accents, as the SMS gateway does (gsm_fold_languages)
    reply = compose(
        render.answer("online_relationship", language, None), render.t("sms_menu_intro", language), 3, gsm_fold=fold
    )
    sentence = render.t("photos_not_your_fault", language)
    assert (segments.fold_to_gsm(sentence) if fold else sentence) in reply.text
    assert "..." not in reply.text


ILLEGAL = {
    "en": r"illegal",
    "th": r"ผิดกฎหมาย",
    "my": r"တရားမဝင်",
    "km": r"ខុសច្បាប់",
    "vi": r"bất hợp pháp",
    "id": r"ilegal",
    "tl": r"ilegal",
    "zh": r"非法",
    "ru": r"нелегальн",
    "uk": r"нелегальн",
    "ro": r"ilegal",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_visa_flag_does_not_call_her_the_one_who_works_illegally(catalog: Catalog, language: str) -> None:
    """She would have no legal protection, which makes her easier to control - she is not the offender."""
    text = catalog.text("flag_visa", language)
    assert not re.search(ILLEGAL[language], text, re.IGNORECASE), text
    if language == "en":
        assert "no legal protection" in text


# -- register and naturalness ----------------------------------------------------------------

QUOTED = re.compile(r'["“«„][^"“”«»„]*["”»“]')
# Formal "you" (вы / ви) and its possessives; plural-formal imperatives ("напишите", "напишіть").
FORMAL = {
    "ru": re.compile(r"(?<!\w)(?:вы|вас|вам|вами|ваш\w*)(?!\w)|\w+(?:ите|йте)(?:сь)?(?!\w)", re.IGNORECASE),
    "uk": re.compile(
        r"(?<![\w'’ʼ])(?:ви|вас|вам|вами|ваш\w*)(?![\w'’ʼ])|\w*[^\Wс]іть(?:ся)?(?!\w)|\w+(?:йте|ьте)(?:ся)?(?!\w)",
        re.IGNORECASE,
    ),
}
NOT_FORMAL = {"защите", "сайте", "навіть"}  # nouns and adverbs that only look like formal forms
# a counsellor is not "he": these texts speak of the counsellor without a gendered pronoun
COUNSELLOR_KEYS = ("privacy", "escalation_", "handoff_", "counsellor_", "confidentiality")
HE = {
    "ru": re.compile(r"(?<!\w)(?:он|ему|него|нему)(?!\w)", re.I),
    "uk": re.compile(r"(?<!\w)(?:він|йому|нього|ньому)(?!\w)", re.I),
}


@pytest.mark.parametrize("language", ["ru", "uk"])
def test_russian_and_ukrainian_speak_to_her_as_to_a_teenager(catalog: Catalog, language: str) -> None:
    """Informal "ты / ти" throughout; quoted words she types (the help word "помогите") are hers."""
    formal, he = [], []
    for key, entry in catalog.texts[language].items():
        for variant in ("text", "sms"):
            text = QUOTED.sub("", entry.get(variant, ""))
            formal += [(key, w) for w in FORMAL[language].findall(text) if w.casefold() not in NOT_FORMAL]
            if key.startswith(COUNSELLOR_KEYS):
                he += [(key, w) for w in HE[language].findall(text)]
    assert not formal, formal
    assert not he, he
    assert "Ты не виновата" in catalog.text("danger", "ru") or language == "uk"
    assert "Ти не винна" in catalog.text("danger", "uk") or language == "ru"


# Words a native reviewer flagged: calques, and words that mean something else.
UNNATURAL = {
    "vi": ["bạn gái", "mật khẩu"],  # "girlfriends"; a password, not a code word
    "zh": ["邀约", "情人男孩"],
    "my": ["passport", "chatbot"],  # Burmese has ပတ်စ်ပို့ and ချတ်ဘော့
}


@pytest.mark.parametrize("language", sorted(UNNATURAL))
def test_flagged_calques_are_gone(catalog: Catalog, language: str) -> None:
    found = [
        (key, word)
        for key, entry in catalog.texts[language].items()
        for variant in ("text", "sms")
        for word in UNNATURAL[language]
        if word.casefold() in entry.get(variant, "").casefold()
    ]
    assert not found, found


def test_thai_check_questions_do_not_nudge_her_towards_yes(catalog: Catalog) -> None:
    """ "...แล้วใช่ไหม" ("you have, right?") hides a red flag; "...หรือยัง" asks."""
    for key in ("job_check_q_contract", "job_check_q_licensed"):
        text = catalog.text(key, "th")
        assert text.endswith("หรือยัง") and "ใช่ไหม" not in text, text


def test_burmese_keeps_latin_only_for_names_keywords_and_placeholders(catalog: Catalog) -> None:
    allowed = {"Safe", "Passage", "HELP", "help", "ERASE", "MENU", "STOP", "START", "SMS", "IOM", "TIP", "Report"}
    # offices that verify agencies (verify_<CC>, issue 16): their official acronyms and Indonesia's register address
    allowed |= {"MoLVT", "DMW", "KRAZ", "ITM", "KP", "SISKOP", "MI", "siskop", "mi", "go", "id"}
    found = []
    for key, entry in catalog.texts["my"].items():
        for variant in ("text", "sms"):
            text = re.sub(r"\{\w+\}|/\w+", "", entry.get(variant, ""))  # placeholders, commands
            found += [(key, w) for w in re.findall(r"[A-Za-z][A-Za-z-]*", text) if w not in allowed]
    assert not found, found
