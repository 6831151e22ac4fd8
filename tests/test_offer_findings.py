# ruff: noqa: F811 - `world` (tests/test_pipeline_unit.py) is a fixture, imported for the tests to request
"""Issue 16: what she gets back after an offer, through the real pipeline (fake Rasa at the HTTP boundary, see
tests/test_pipeline_unit.py): the analyser's findings after a typed offer on every channel (each flag with its
severity, why, and what to do), urgent findings through the escalation path, and, under 18, child advice with her
country's child helpline from the sourced facts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.content import Catalog
from bot.content.render import Renderer
from bot.offer import analyse
from bot.risk.screener import RiskResult
from tests.test_offer import GIRL, HOME, LANGUAGES, TOURIST
from tests.test_pipeline_unit import escalations, run, world  # noqa: F401 - `world` is a fixture

COUNTRIES = ["TH", "MM", "KH", "VN", "PH", "ID", "CN", "RU", "UA", "RO", "PL"]


def _heading(catalog: Catalog, language: str, count: int) -> str:
    return catalog.text("offer_findings", language, count=count)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_typed_offer_gets_each_finding_with_severity_why_and_what_to_do_before_the_answer(
    world: Any, catalog: Catalog, language: str
) -> None:
    """Telegram, `ask` and the terminal chat share this path (Pipeline.handle, no SMS variant)."""
    text = TOURIST[language]
    expected = analyse(text, language, None)
    assert expected.flags, language
    turn = run(world, text, user=f"typed-{language}")
    assert not turn.escalate
    first = turn.replies[0].text
    assert first.startswith(_heading(catalog, turn.language, len(expected.flags)))
    for finding in expected.findings:
        for key in ("offer_flag_", "offer_why_", "offer_todo_"):
            assert catalog.text(key + finding.flag, turn.language) in first, (language, key, finding.flag)
        assert catalog.text(f"offer_severity_{finding.severity}", turn.language) in first
    assert "an answer" in [r.text for r in turn.replies[1:]]  # then the general answer (Rasa's)
    assert turn.as_json()["offer_flags"] == list(turn.offer.flags)


def test_the_girl_of_the_issue_is_told_what_she_said_that_worries(world: Any, catalog: Catalog) -> None:
    turn = run(world, GIRL["en"], user="issue-girl")
    findings = turn.replies[0].text
    for flag in ("stranger_recruiter", "travel_paid", "minor_recruited"):
        assert catalog.text(f"offer_flag_{flag}", "en") in findings
    assert f"({catalog.text('offer_severity_info', 'en')})" in findings  # travel paid alone is only info


def test_a_message_that_is_not_an_offer_gets_no_findings(world: Any) -> None:
    turn = run(world, "hello, who are you?", user="not-an-offer")
    assert turn.offer is None and [r.text for r in turn.replies] == ["an answer"]


def test_an_urgent_finding_goes_through_the_escalation_path_even_when_the_risk_decision_misses_it(
    world: Any, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Her documents already taken: escalated (Rasa not asked), the normal urgent reply, the case names the rule."""
    text = "the recruiter has my passport now and says the job in Dubai starts next week"
    assert analyse(text, "en", None).severity == "urgent"
    monkeypatch.setattr(world.pipeline.assessor.screener, "screen", lambda _: RiskResult())  # the lexicon misses it
    before = escalations(world)
    turn = run(world, text, user="urgent-offer")
    assert turn.escalate and turn.risk_level == "urgent" and turn.risk_category == "documents_taken"
    assert world.rasa.sent == [] and escalations(world) == before + 1
    assert catalog.text("escalation_alerted", "en") in [r.text for r in turn.replies] or any(
        "counsellor" in r.text for r in turn.replies
    )
    assert not any(r.text.startswith(_heading(catalog, "en", 1)) for r in turn.replies)  # the escalation reply only
    case = world.pipeline.handoff.active_for(world.pipeline.key_for("local", "urgent-offer"))
    assert case is not None and case.triggers == ("offer:documents_kept",)  # a rule's name, not her words


def test_an_urgent_finding_is_not_overruled_by_a_model_sure_it_is_only_a_concern(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The concern veto may soften a lexicon match, never the analyser's "documents already taken"."""
    from dataclasses import replace

    from bot.semantic.risk_model import SemanticRisk

    world.pipeline.assessor.thresholds = replace(
        world.pipeline.assessor.thresholds, concern_veto=0.8, concern_veto_urgent_below=0.3
    )
    text = "the recruiter has my passport now and says the job in Dubai starts next week"
    monkeypatch.setattr(world.pipeline.assessor.screener, "screen", lambda _: RiskResult())
    world.model.by_text[text] = SemanticRisk(0.05, 0.93, 0.0, 0.02, "documents_taken", 0.8, report=0.6)
    turn = run(world, text, user="urgent-offer-concern")
    assert turn.escalate and turn.risk_level == "urgent" and world.rasa.sent == []


def test_while_a_counsellor_has_her_no_findings_are_added(world: Any) -> None:
    run(world, "/counsellor", user="handed-over")
    turn = run(world, TOURIST["en"], user="handed-over")
    assert turn.handoff is not None and not any(r.text.startswith("Warning signs") for r in turn.replies)


def test_sms_keeps_the_findings_after_the_answer_in_one_short_line(world: Any, catalog: Catalog) -> None:
    world.pipeline.variant = "sms"
    world.pipeline.render = Renderer(catalog, "sms")
    turn = run(world, TOURIST["en"], user="+6600000001")
    assert turn.replies[0].text == "an answer"
    assert turn.replies[-1].text.startswith(_heading(catalog, "en", 1)) and "\n" not in turn.replies[-1].text


# -- under 18 ------------------------------------------------------------------------------------------------


def _child_lines(catalog: Catalog, code: str, language: str) -> list[str]:
    country = catalog.countries[code]
    return [h.number for h in country.shown_hotlines(language) if "child" in h.kinds]


@pytest.mark.parametrize("language", LANGUAGES)
def test_under_18_in_the_offer_adds_child_advice_and_her_countrys_child_helpline(
    world: Any, catalog: Catalog, language: str
) -> None:
    turn = run(world, GIRL[language], user=f"minor-{language}")
    texts = [r.text for r in turn.replies]
    block = next((t for t in texts if t.startswith(catalog.text("offer_minor_advice", turn.language))), None)
    assert block is not None, (language, texts)
    code = HOME[language]
    if code is None:  # English: no country known yet - asked, with the counsellor here
        assert catalog.text("offer_minor_which_country", turn.language) in block
        return
    numbers = _child_lines(catalog, code, turn.language)
    if numbers:
        name = catalog.countries[code].name(turn.language)
        assert catalog.text("offer_minor_helpline", turn.language, country=name) in block
        assert numbers[0] in block
    else:  # Myanmar: no confirmed child line - said plainly, the counsellor here
        name = catalog.countries[code].name(turn.language)
        assert catalog.text("offer_minor_no_helpline", turn.language, country=name) in block


@pytest.mark.parametrize("code", COUNTRIES)
def test_the_child_helpline_of_each_country_comes_from_the_sourced_facts(catalog: Catalog, code: str) -> None:
    """Every country: the shown child line(s) of its facts file, or an honest "none checked" with the lines that
    exist (anti-trafficking, women's) and the counsellor here. Never a number the facts do not hold."""
    import re

    render = Renderer(catalog)
    country = catalog.countries[code]
    text = render.child_helplines("en", code)
    shown = {h.number for h in country.shown_hotlines("en")}
    child = _child_lines(catalog, code, "en")
    if child:
        assert child[0] in text
    else:
        assert catalog.text("offer_minor_no_helpline", "en", country=country.name("en")) in text
    for line in text.splitlines():
        if line.startswith("•"):
            number = re.match(r"• [^:]+: (.+?)\*? - ", line)
            assert number and number.group(1) in shown, (code, line)
    hidden = {h.number for h in country.hotlines if not h.show or h.confidence == "unverified"}
    assert not any(f": {n} " in text or f": {n}*" in text for n in hidden), code


def test_her_age_band_is_remembered_for_later_offers_and_updated_when_she_says_it_again(
    world: Any, catalog: Catalog
) -> None:
    user = "age-band"
    key = world.pipeline.key_for("local", user)
    run(world, "/country TH", user=user)
    run(world, "hi, I am 15", user=user)
    assert world.pipeline.profiles.get(key).under_18 is True
    turn = run(world, "a man on telegram offers me a job in a karaoke bar in Pattaya, he pays the bus", user=user)
    assert any(r.text.startswith(catalog.text("offer_minor_advice", "en")) for r in turn.replies)
    assert "minor_recruited" in turn.offer.flags and turn.offer.facts.age is None  # the band, never an age
    assert world.rasa.metadata[-1]["under_18"] is True  # the job check (actions) knows it too
    run(world, "sorry I typed wrong, I am 19", user=user)
    assert world.pipeline.profiles.get(key).under_18 is False
    turn = run(world, "a man on telegram offers me a job in a karaoke bar in Pattaya, he pays the bus", user=user)
    assert not any(r.text.startswith(catalog.text("offer_minor_advice", "en")) for r in turn.replies)
    run(world, "/erase", user=user)
    assert world.pipeline.profiles.get(key).under_18 is None


def test_no_child_block_for_an_adult_or_without_an_offer(world: Any, catalog: Catalog) -> None:
    advice = catalog.text("offer_minor_advice", "en")
    adult = run(world, "a woman on facebook offers me a job in Bangkok, she pays the bus. I am 22", user="adult")
    assert not any(r.text.startswith(advice) for r in adult.replies)
    chat = run(world, "I am 15 and I like drawing", user="drawing")
    assert not any(r.text.startswith(advice) for r in chat.replies)


def test_findings_never_cost_her_the_reply(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("broken analyser")

    monkeypatch.setattr("bot.pipeline.analyse", broken)
    turn = run(world, TOURIST["en"], user="broken-analyser")
    assert turn.replies[0].text == "an answer" and turn.offer is None


def test_an_image_read_back_comes_before_the_findings(world: Any, catalog: Catalog) -> None:
    from benchmarks.offer_images import render

    turn = asyncio.run(world.pipeline.handle_image("local", "screenshot", render(TOURIST["en"], "en", seed=2)))
    read_back = catalog.text("offer_read_back", "en", text="@@").split("@@")[0]
    assert turn.replies[0].text.startswith(read_back)
    if turn.offer is not None and turn.offer.findings:
        assert turn.replies[1].text.startswith(_heading(catalog, "en", len(turn.offer.flags)))


CHILD_KEYS = ("offer_minor_advice", "offer_minor_helpline", "offer_minor_no_helpline", "offer_minor_which_country")


@pytest.mark.parametrize("language", LANGUAGES)
def test_child_advice_is_content_in_every_language_short_and_sourced(catalog: Catalog, language: str) -> None:
    for key in CHILD_KEYS:
        entry = catalog.texts[language][key]
        assert entry["review"] == ("source" if language == "en" else "machine_translated"), (language, key)
        assert entry["text"].strip() and entry["sms"].strip()
    assert catalog.texts["en"]["offer_minor_advice"]["sources"]  # the Palermo Protocol, art. 3(c)
    assert len(catalog.text("offer_minor_advice", "en")) <= 200  # a few words, not a lecture


@pytest.mark.parametrize("language", LANGUAGES)
def test_sms_child_block_fits_her_budget_with_the_number_for_every_country(catalog: Catalog, language: str) -> None:
    from bot.content import Message
    from bot.sms import segments
    from bot.sms.compose import compose

    sms = Renderer(catalog, "sms")
    for code in COUNTRIES:
        block = sms.child_helplines(language, code)
        messages = [*sms.answer("job_offer", language, code), Message(sms.offer_findings(["minor_recruited"], language)),
                    Message(block)]  # fmt: skip
        reply = compose(messages, sms.t("sms_menu_intro", language), 3)
        assert segments.count(reply.text).segments <= 3, (language, code)
        child = _child_lines(catalog, code, language)
        if child:
            assert child[0] in reply.text, (language, code)
