"""Issue 16: the yes/no job check's result - the analyser's other flags found in what she said (not only the six
questions), and at the end who verifies agencies or offers in her country, from the sourced country facts (every
one of the 11 countries); where the facts hold none, that is said, with the counsellor and the lines that exist.
Under 18: child advice and the child helpline."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.job_check import ActionJobCheckResult
from bot.content import Catalog
from bot.content.render import Renderer
from tests.conftest import LANGUAGES
from tests.test_offer import GIRL

COUNTRIES = ["TH", "MM", "KH", "VN", "PH", "ID", "CN", "RU", "UA", "RO", "PL"]
NO_SOURCED_OFFICE = {"CN", "RU"}  # ../shared/reference has no agency register for them
CLEAN_ANSWERS = {"job_fee": False, "job_passport": False, "job_contract": True, "job_licensed": True,
                 "job_visa": False, "job_too_good": False}  # fmt: skip
_LINE = re.compile(r"• [^:]+: (.+?)\*? - ")


def _shown_numbers(catalog: Catalog, code: str, language: str) -> set[str]:
    return {h.number for h in catalog.countries[code].shown_hotlines(language)}


@pytest.mark.parametrize("code", COUNTRIES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_result_ends_with_who_verifies_agencies_in_her_country(catalog: Catalog, language: str, code: str) -> None:
    render = Renderer(catalog)
    country = catalog.countries[code]
    last = render.job_check_result(CLEAN_ANSWERS, language, code)[-1].text
    name = country.name(language)
    if code in NO_SOURCED_OFFICE:
        assert country.verification is None
        assert last.startswith(catalog.text("verify_none", language, country=name))
        assert _LINE.search(last), "the lines that exist are given"
    else:
        check = country.verification
        assert check is not None and check.content_key == f"verify_{code}"
        assert last.startswith(catalog.text("verify_intro", language, country=name))
        assert catalog.text(check.content_key, language) in last
        if check.hotline:  # Indonesia's KP2MI call centre, Ukraine's 527
            assert check.hotline in last
    for number in _LINE.findall(last):  # only numbers the facts show
        assert number in _shown_numbers(catalog, code, language), (code, number)


@pytest.mark.parametrize("code", COUNTRIES)
def test_every_verification_entry_is_sourced_and_its_number_is_a_shown_hotline(catalog: Catalog, code: str) -> None:
    import yaml

    from bot.config import ROOT

    raw = yaml.safe_load((ROOT / "data" / "facts" / f"{code}.yml").read_text(encoding="utf-8"))
    entry = raw["recruitment"].get("verification")
    if code in NO_SOURCED_OFFICE:
        assert entry is None
        return
    assert entry["source"].startswith("http") and entry["confidence"] in ("high", "medium", "low")
    assert entry["text"].strip() and entry["content_key"] == f"verify_{code}"
    reference = (ROOT.parent / "shared" / "reference" / "reference.yml").read_text(encoding="utf-8")
    assert entry["source"] in reference  # copied from the reference, not invented
    if entry.get("hotline"):
        assert str(entry["hotline"]) in _shown_numbers(catalog, code, "en")
        assert entry["hotline_source"] in reference
    for language in LANGUAGES:
        assert catalog.text(f"verify_{code}", language).strip()


def test_without_a_country_she_is_asked_for_it(catalog: Catalog) -> None:
    last = Renderer(catalog).job_check_result(CLEAN_ANSWERS, "en", None)[-1].text
    assert last == catalog.text("verify_which_country", "en")


def test_other_flags_are_listed_with_why(catalog: Catalog) -> None:
    others = ["stranger_recruiter", "travel_paid"]
    messages = Renderer(catalog).job_check_result(CLEAN_ANSWERS, "th", "TH", others)
    also = next(m.text for m in messages if m.text.startswith(catalog.text("job_check_result_also", "th")))
    for flag in others:
        assert catalog.text(f"offer_flag_{flag}", "th") in also and catalog.text(f"offer_why_{flag}", "th") in also
    sms = Renderer(catalog, "sms").job_check_result(CLEAN_ANSWERS, "th", "TH", others)
    assert any(m.text.startswith(catalog.text("job_check_result_also", "th")) and "\n" not in m.text for m in sms)


def test_myanmar_verification_carries_the_caution_about_state_services(catalog: Catalog) -> None:
    last = Renderer(catalog).job_check_result(CLEAN_ANSWERS, "my", "MM")[-1].text
    assert catalog.text("caution_state_services", "my", country=catalog.countries["MM"].name("my")) in last


# -- the action, with her words in the tracker -----------------------------------------------------------------


def _tracker(language: str, said: list[str], country: str | None, under_18: bool | None = None) -> Tracker:
    events: list[dict[str, Any]] = []
    for text in said:
        events.append({"event": "user", "text": text, "parse_data": {"intent": {"name": "job_offer"}}})
    for answer in ("/affirm", "no", "/deny", "yes", "no", "no"):
        intent = "affirm" if answer in ("/affirm", "yes") else "deny"
        events.append({"event": "user", "text": answer, "parse_data": {"intent": {"name": intent}}})
    metadata: dict[str, Any] = {"language": language, "country": country}
    if under_18 is not None:
        metadata["under_18"] = under_18
    return Tracker(
        sender_id="job-check",
        slots={
            "country": country,
            "job_fee": False,
            "job_passport": False,
            "job_contract": False,
            "job_licensed": False,
            "job_visa": False,
            "job_too_good": False,
        },  # fmt: skip
        latest_message={"text": "no", "intent": {"name": "deny"}, "entities": [], "metadata": metadata},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def _result(t: Tracker) -> list[str]:
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionJobCheckResult().run(dispatcher, t, {}))
    return [m["text"] for m in dispatcher.messages]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_girl_of_the_issue_gets_her_other_flags_child_advice_and_her_countrys_office(
    catalog: Catalog, language: str
) -> None:
    """She said a stranger on Facebook, travel paid, 16: the result names them (her yes/no answers are not read as
    offer text), adds the child block and ends with her country's verification."""
    code = {"en": "TH", "my": "MM", "km": "KH", "vi": "VN", "id": "ID", "tl": "PH", "zh": "CN", "ru": "RU",
            "uk": "UA", "ro": "RO", "th": "TH"}[language]  # fmt: skip
    texts = _result(_tracker(language, [GIRL[language]], code))
    also = next(t for t in texts if t.startswith(catalog.text("job_check_result_also", language)))
    assert catalog.text("offer_flag_stranger_recruiter", language) in also
    assert catalog.text("offer_flag_minor_recruited", language) in also
    assert any(t.startswith(catalog.text("offer_minor_advice", language)) for t in texts)
    assert texts[-1] == Renderer(catalog).verification(language, code).text


def test_flags_the_six_questions_cover_are_not_listed_twice(catalog: Catalog) -> None:
    said = ["a man on facebook says I must pay a 5000 baht fee and he will keep my passport, job in Bangkok"]
    texts = _result(_tracker("en", said, "TH"))
    also = next((t for t in texts if t.startswith(catalog.text("job_check_result_also", "en"))), "")
    assert catalog.text("offer_flag_stranger_recruiter", "en") in also
    for covered in ("upfront_fee_or_debt", "documents_kept"):
        assert catalog.text(f"offer_flag_{covered}", "en") not in also


def test_the_profile_age_band_adds_the_child_block_when_she_states_no_age(catalog: Catalog) -> None:
    said = ["someone on tiktok offers me a job in a bar in Pattaya"]
    with_band = _result(_tracker("en", said, "TH", under_18=True))
    without = _result(_tracker("en", said, "TH"))
    assert any(t.startswith(catalog.text("offer_minor_advice", "en")) for t in with_band)
    assert "1387" in "\n".join(with_band)  # Childline Thailand, from the facts
    assert not any(t.startswith(catalog.text("offer_minor_advice", "en")) for t in without)


def test_flags_the_gateway_found_count_in_the_check(catalog: Catalog) -> None:
    """The gateway's semantic layer found secrecy in words the patterns do not know; it sent the id as metadata
    (offer_flags): the check prefills question 6 and does not list what it asked."""
    from actions.job_check import prefilled

    said = "a job in a restaurant in Bangkok, and she says shh about it"
    t = _tracker("en", [said], "TH")
    t.events[0]["metadata"] = {"offer_flags": ["pressure_secrecy", "not_a_flag"]}
    t.slots["job_too_good"] = None
    assert [e for e in prefilled(t, "en") if e["name"] == "job_too_good"][0]["value"] is True
    t.events[0]["metadata"] = {}
    assert not [e for e in prefilled(t, "en") if e["name"] == "job_too_good"]


def test_merge_flags_adds_missing_findings_in_order() -> None:
    from bot.offer import analyse, merge_flags

    report = analyse("a woman on facebook offers me a job in Bangkok", "en", "TH")
    merged = merge_flags(report, ["pressure_secrecy", "upfront_fee_or_debt", "stranger_recruiter", "bogus"])
    assert merged.flags == ("upfront_fee_or_debt", "stranger_recruiter", "pressure_secrecy")
    assert merged.finding("pressure_secrecy").evidence == ("found by the gateway",)  # type: ignore[union-attr]
    assert merge_flags(report, []) is report
