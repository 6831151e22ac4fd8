"""End to end through the real stack: gateway pipeline -> Rasa server (trained model)
-> action server -> rendered replies. Also the `python -m bot ask` contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ROOT, Settings
from bot.content import Catalog
from tests.conftest import LANGUAGES, Conversation, needs

ASK_KEYS = {"language", "topic", "intent", "confidence", "escalate", "risk_level", "risk_category", "replies"}
ASK_KEYS |= {"offer_flags", "offer_facts"}  # issue 16
GREETINGS = {
    "en": "hello, I have a question",
    "th": "สวัสดีค่ะ มีเรื่องอยากถาม",
    "my": "မင်္ဂလာပါ မေးစရာရှိလို့ပါ",
    "km": "សួស្តី ខ្ញុំមានសំណួរ",
    "vi": "xin chào, mình có câu hỏi",
    "id": "halo kak, aku mau tanya",
    "tl": "hello po, may tanong ako",
    "zh": "你好，我有个问题",
    "ru": "здравствуйте, у меня вопрос",
    "uk": "привіт, у мене є питання",
    "ro": "bună, am o întrebare",
}
DANGER = {
    "en": "they took my passport and won't let me leave the house",
    "th": "นายจ้างยึดพาสปอร์ตไปแล้วไม่ให้ออกไปไหนเลย",
    "vi": "họ giữ hộ chiếu của tôi và không cho tôi về nhà",
    "ru": "у меня забрали паспорт и не выпускают из квартиры",
    "tl": "kinuha nila ang passport ko at hindi ako pinapalabas",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_greeting_in_each_language(conversation: Conversation, catalog: Catalog, language: str) -> None:
    (turn,) = conversation.say(GREETINGS[language])
    assert ASK_KEYS <= set(turn)
    assert turn["language"] == language
    assert turn["intent"] == "greet" and turn["topic"] == "smalltalk"
    assert turn["replies"][0] == catalog.text("greet", language)


@pytest.mark.parametrize("language", [lang for lang in DANGER if lang in LANGUAGES])
def test_danger_escalates_with_emergency_numbers(conversation: Conversation, language: str) -> None:
    (turn,) = conversation.say(DANGER[language])
    assert turn["escalate"] is True and turn["topic"] == "danger" and turn["risk_level"] == "urgent"
    assert len(turn["replies"]) >= 3


@needs("th")
def test_thai_get_help_gives_thai_numbers_and_stays_thai_after_ok(conversation: Conversation) -> None:
    help_turn, ok_turn = conversation.say("ขอเบอร์สายด่วนช่วยเหลือหน่อยค่ะ", "ok")
    assert help_turn["language"] == "th" and help_turn["topic"] == "get_help"
    text = "\n".join(help_turn["replies"])
    assert "1300" in text and "191" in text
    assert ok_turn["language"] == "th"


def test_country_is_asked_remembered_and_used(conversation: Conversation, catalog: Catalog) -> None:
    ask, named, again = conversation.say(
        "what are my rights if I was trafficked?", "I'm in the Philippines", "who can I call for help?"
    )
    assert ask["topic"] == "legal_rights" and ask["replies"][-1] == catalog.text("ask_country", "en")
    assert named["country"] == "PH" and named["topic"] == "legal_rights"
    assert "RA" in "\n".join(named["replies"]) or "Republic Act" in "\n".join(named["replies"])
    assert "1343" in "\n".join(again["replies"])


@needs("id")
def test_job_offer_check_in_indonesian(conversation: Conversation, catalog: Catalog) -> None:
    turns = conversation.say(
        "aku ditawari kerja di Malaysia sama agen, aman gak ya?",
        "/affirm",
        "/affirm",
        "/affirm",
        "/deny",
        "/deny",
        "/affirm",
        "/deny",
    )
    assert turns[0]["topic"] == "recruitment" and turns[0]["language"] == "id"
    assert turns[1]["replies"][0] == catalog.text("job_check_q_fee", "id")
    result = "\n".join(turns[-1]["replies"])
    for flag in ("flag_fee", "flag_passport", "flag_contract", "flag_licensed", "flag_visa"):
        assert catalog.text(flag, "id") in result
    assert catalog.text("flag_too_good", "id") not in result


@needs("uk")
def test_language_command_pins_language(conversation: Conversation, catalog: Catalog) -> None:
    switch, hello = conversation.say("/language uk", "hello")
    assert switch["replies"] == [catalog.text("language_set", "uk")]
    assert hello["language"] == "uk"


@pytest.mark.parametrize("bad", ["", "   ", "\u200b\u200b", "😀😀😀", "x" * 20000, "\x00\x01binary\xff"])
def test_bad_input_gets_a_kind_reply(conversation: Conversation, bad: str) -> None:
    (turn,) = conversation.say(bad)
    assert turn["replies"] and all(r.strip() for r in turn["replies"])


@needs("my")
def test_zawgyi_burmese_is_understood_like_unicode(live_settings: Settings) -> None:
    from myanmar import converter

    unicode_text = "အလုပ်ရှင်က ကျွန်မရဲ့ ပတ်စ်ပို့ကို ယူထားပြီး အိမ်ပြန်ခွင့်မပေးဘူး"  # passport taken, not allowed home
    zawgyi_text = converter.convert(unicode_text, "unicode", "zawgyi")
    assert zawgyi_text != unicode_text
    (as_unicode,) = Conversation(live_settings, "burmese-unicode").say(unicode_text)
    (as_zawgyi,) = Conversation(live_settings, "burmese-zawgyi").say(zawgyi_text)
    assert as_zawgyi["language"] == as_unicode["language"] == "my"
    assert as_unicode["escalate"] is True and as_unicode["risk_level"] == "urgent"
    assert (as_zawgyi["risk_level"], as_zawgyi["risk_category"]) == (as_unicode["risk_level"], as_unicode["risk_category"])
    assert as_zawgyi["replies"] == as_unicode["replies"]


@needs("th")
def test_rasa_down_still_gives_helplines(live_settings: Settings, catalog: Catalog) -> None:
    down = Settings(rasa_port=5999, var_dir=live_settings.var_dir)
    (turn,) = Conversation(down, "nobody-home").say("ขอเบอร์สายด่วนหน่อยค่ะ อยากรู้ไว้ก่อน")
    assert turn["replies"][0] == catalog.text("service_unavailable", "th")
    assert "191" in turn["replies"][1]


def test_ask_command_contract(live_settings: Settings) -> None:
    lines = "\n".join([json.dumps({"user": "u1", "text": "hi"}), "not json", json.dumps({"user": "u1", "text": "bye"})])
    env = {**os.environ, "SP_RASA_PORT": str(live_settings.rasa_port), "SP_VAR_DIR": str(live_settings.var_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--no-start"],
        input=lines,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 3
    assert out[0]["intent"] == "greet" and ASK_KEYS <= set(out[0])
    assert "error" in out[1]
    assert out[2]["intent"] == "goodbye"
    single = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--no-start", "who are you?"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    assert json.loads(single.stdout)["intent"] == "bot_identity"


def test_ask_contract_offer_flags_facts_and_an_image(live_settings: Settings, tmp_path: Path) -> None:
    """Issue 16: every line carries offer_flags/offer_facts; {"image": path} takes the Telegram photo's path."""
    from benchmarks.offer_images import render
    from bot.offer import analyse

    offer = (
        "a woman on facebook offers me a job in a restaurant in Bangkok, 20000 baht a month, she will pay the bus. I am 16"  # noqa: E501
    )
    # (not an item of the blind set, which only measures)
    shot = "A woman on Facebook offers me a job in a massage shop in Dubai, 2000 dollars a month, she pays the ticket"
    screenshot = tmp_path / "offer.jpg"
    screenshot.write_bytes(render(shot, "en", seed=5))
    renamed = tmp_path / "not-a-picture.jpg"
    renamed.write_bytes(b"just text, renamed")
    lines = [
        {"user": "o1", "text": "hi"},
        {"user": "o1", "text": offer},
        {"user": "o1", "image": str(screenshot)},
        {"user": "o1", "image": str(renamed)},
        {"user": "o1", "image": str(tmp_path / "missing.jpg")},
    ]
    env = {**os.environ, "SP_RASA_PORT": str(live_settings.rasa_port), "SP_VAR_DIR": str(live_settings.var_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--no-start"],
        input="\n".join(json.dumps(line) for line in lines),
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=180, check=True,
    )  # fmt: skip
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5
    assert out[0]["offer_flags"] == [] and ASK_KEYS <= set(out[0])
    from bot.offer.semantic import load_scorer

    scorer = load_scorer(live_settings.models_dir, live_settings.data_dir)  # the gateway's: patterns + semantic layer
    assert out[1]["offer_flags"] == list(analyse(offer, out[1]["language"], out[1]["country"], scorer=scorer).flags)
    assert {"stranger_recruiter", "travel_paid", "minor_recruited"} <= set(out[1]["offer_flags"])
    assert out[1]["offer_facts"]["age"] == 16
    # she said she is 16 two lines before: her profile's age band (not her age) counts for the screenshot too
    expected = analyse(shot, "en", out[2]["country"], under_18=True, scorer=scorer).flags
    assert out[2]["offer_flags"] == list(expected) and "minor_recruited" in expected and "Dubai" in out[2]["ocr_text"]
    assert out[2]["offer_facts"]["age"] is None and out[2]["offer_facts"]["under_18"] is True
    assert out[3]["offer_flags"] == [] and out[3]["replies"]  # a kind reply, not a crash
    assert "error" in out[4]
    assert str(tmp_path) not in result.stderr and "Dubai" not in result.stderr  # nothing of hers in the logs


def test_job_check_skips_what_her_offer_already_said(conversation: Conversation, catalog: Catalog) -> None:
    """Issue 16: the fee and the passport are in her message, so the check starts at question 3."""
    offer = "I got a job offer in Dubai. The agency wants a 50000 peso placement fee first and the employer will keep my passport. Is it safe?"  # noqa: E501
    turns = conversation.say(offer, "/affirm", "/deny", "/deny", "/deny", "/deny")
    replies = [reply for turn in turns for reply in turn["replies"]]
    assert catalog.text("job_check_q_contract", "en") in turns[1]["replies"]
    for asked in ("job_check_q_fee", "job_check_q_passport"):
        assert catalog.text(asked, "en") not in replies
    result = "\n".join(turns[-1]["replies"])
    for flag in ("flag_fee", "flag_passport", "flag_contract", "flag_licensed"):
        assert catalog.text(flag, "en") in result


def test_an_sms_offer_gets_the_findings_in_her_language(live_settings: Settings, catalog: Catalog) -> None:
    """Issue 16, SMS: the same analyser on her text; the findings ride with the answer in the SMS rendering."""
    import asyncio

    from bot.cli import open_pipeline
    from bot.offer import analyse

    offer = "Ada orang di Facebook menawari kerja di restoran di Malaysia. Harus bayar biaya pendaftaran 5 juta dulu, tiket pesawat dibayarin dia. Aman gak?"  # noqa: E501

    async def main() -> tuple[list[str], tuple[str, ...]]:
        async with open_pipeline(live_settings, variant="sms") as pipeline:
            turn = await pipeline.handle("sms", "+628000000016", offer)
            return [m.text for m in turn.replies], tuple(turn.offer.flags if turn.offer else ())

    replies, flags = asyncio.run(main())
    assert flags == analyse(offer, "id", None).flags or flags == analyse(offer, "id", "ID").flags
    assert {"upfront_fee_or_debt", "stranger_recruiter"} <= set(flags)
    heading = catalog.text("offer_findings", "id", count=len(flags))
    (findings,) = [r for r in replies if r.startswith(heading)]
    assert "\n" not in findings
    for flag in flags:
        assert catalog.text(f"offer_flag_{flag}", "id") in findings
