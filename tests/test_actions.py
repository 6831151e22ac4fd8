"""Custom actions with tracker fixtures (rasa_sdk Tracker + CollectingDispatcher)."""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswer, ActionDanger
from actions.country import ActionSetCountry
from actions.job_check import ActionJobCheckResult, ValidateJobCheckForm
from bot.content import Catalog
from tests.conftest import needs


def tracker(
    intent: str,
    text: str = "",
    language: str = "en",
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    country_hint: str | None = None,
) -> Tracker:
    return Tracker(
        sender_id="test",
        slots=slots or {},
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 0.99},
            "entities": entities or [],
            "metadata": {"language": language, "country": country_hint},
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return dispatcher.messages, events


def slot(events: list[dict[str, Any]], name: str) -> Any:
    return next(e["value"] for e in events if e.get("event") == "slot" and e["name"] == name)


@needs("km")
def test_answer_uses_language_from_metadata(catalog: Catalog) -> None:
    messages, events = run(ActionAnswer(), tracker("recruitment_tactics", language="km"))
    assert messages[0]["text"] == catalog.text("recruitment_tactics", "km")
    assert slot(events, "topic") == "recruitment"


@needs("vi")
def test_country_topic_without_country_guesses_from_language_and_remembers_topic(catalog: Catalog) -> None:
    messages, events = run(ActionAnswer(), tracker("get_help", language="vi"))
    assert "111" in messages[0]["text"]
    assert catalog.text("country_guess_note", "vi", country=catalog.countries["VN"].name("vi")) == messages[-1]["text"]
    assert slot(events, "pending_topic") == "get_help"


def test_english_without_country_asks_for_it_with_buttons() -> None:
    messages, events = run(ActionAnswer(), tracker("legal_rights", language="en"))
    assert messages[-1]["buttons"] and len(messages[-1]["buttons"]) == 11
    assert slot(events, "pending_topic") == "legal_rights"


def test_country_slot_wins_over_language_default() -> None:
    messages, _ = run(ActionAnswer(), tracker("get_help", language="my", slots={"country": "TH"}))
    assert "1300" in messages[0]["text"] and "191" in messages[0]["text"]


def test_set_country_from_text_then_finish_pending_answer() -> None:
    t = tracker("inform_country", text="I work in Cambodia now", slots={"pending_topic": "get_help"})
    messages, events = run(ActionSetCountry(), t)
    assert slot(events, "country") == "KH" and slot(events, "pending_topic") is None
    assert any("117" in m["text"] for m in messages)


def test_set_country_from_button_entity() -> None:
    t = tracker("inform_country", text='/inform_country{"country":"PH"}', entities=[{"entity": "country", "value": "PH"}])
    _, events = run(ActionSetCountry(), t)
    assert slot(events, "country") == "PH"


def test_unknown_country_lists_supported_ones(catalog: Catalog) -> None:
    messages, events = run(ActionSetCountry(), tracker("inform_country", text="I live in Malaysia"))
    assert not any(e.get("name") == "country" for e in events)
    assert catalog.countries["PL"].name("en") in messages[0]["text"]


@needs("tl")
def test_danger_gives_emergency_numbers_first() -> None:
    messages, events = run(ActionDanger(), tracker("danger", language="tl", slots={"country": "PH"}))
    assert slot(events, "topic") == "danger"
    assert messages[1]["text"].splitlines()[1].split(":")[1].strip().startswith("911")


@needs("th")
def test_job_check_result_lists_each_red_flag(catalog: Catalog) -> None:
    answers = {
        "job_fee": True,
        "job_passport": False,
        "job_contract": False,
        "job_licensed": True,
        "job_visa": False,
        "job_too_good": False,
    }
    messages, events = run(ActionJobCheckResult(), tracker("deny", language="th", slots=answers))
    first = messages[0]["text"]
    assert catalog.text("flag_fee", "th") in first and catalog.text("flag_contract", "th") in first
    assert catalog.text("flag_passport", "th") not in first
    assert slot(events, "job_fee") is None  # answers are not kept after the check


@needs("ru")
def test_form_hint_for_non_yes_no_answers(catalog: Catalog) -> None:
    t = tracker("greet", language="ru", slots={"requested_slot": "job_fee"})
    t.active_loop = {"name": "job_check_form"}
    dispatcher = CollectingDispatcher()
    asyncio.run(ValidateJobCheckForm().run(dispatcher, t, {"forms": {"job_check_form": {"required_slots": []}}}))
    assert dispatcher.messages[0]["text"] == catalog.text("job_check_not_yes_no", "ru")
