"""A danger reading of the NLU that the gateway will not escalate answers her question (the best
content intent after danger), and the gateway adds the counsellor offer; an escalating one keeps
the emergency answer (bot.topics.answer_instead_of_danger, actions.answers.ActionDanger)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionDanger
from actions.common import renderer
from bot.topics import answer_instead_of_danger

RANKING = [
    {"name": "danger", "confidence": 0.55},
    {"name": "greet", "confidence": 0.2},
    {"name": "legal_rights", "confidence": 0.15},
    {"name": "job_offer", "confidence": 0.1},
]


@pytest.mark.parametrize(
    ("ranking", "urgent_at", "vetoed", "in_form", "expected"),
    [
        (RANKING, 0.85, False, False, "legal_rights"),  # below the urgent level: smalltalk skipped
        (RANKING, 0.5, False, False, None),  # the gateway escalates: the emergency answer stays
        (RANKING, 0.5, True, False, "legal_rights"),  # escalation vetoed by the semantic model
        (RANKING, None, False, False, None),  # no gateway metadata: as before
        (RANKING, 0.85, False, True, None),  # inside the job check: as before
        ([{"name": "legal_rights", "confidence": 0.9}], 0.85, False, False, None),  # not danger
        ([{"name": "danger", "confidence": 0.6}, {"name": "job_offer", "confidence": 0.01}], 0.85, False, False, None),
        ([], 0.85, False, False, None),
    ],
)
def test_which_answer_replaces_the_danger_answer(
    ranking: list[dict[str, Any]], urgent_at: float | None, vetoed: bool, in_form: bool, expected: str | None
) -> None:
    assert answer_instead_of_danger(ranking, urgent_at, vetoed, in_form) == expected


def _run(metadata: dict[str, Any], active_loop: dict[str, Any] | None = None) -> tuple[list[Any], list[Any]]:
    tracker = Tracker(
        sender_id="test",
        slots={"country": "TH"},
        latest_message={
            "text": "what does the law say if my boss keeps my passport",
            "intent": RANKING[0],
            "intent_ranking": RANKING,
            "entities": [],
            "metadata": {"language": "en", **metadata},
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop=active_loop or {},
        latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionDanger().run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def _topic(events: list[dict[str, Any]]) -> str:
    return next(e["value"] for e in events if e.get("event") == "slot" and e["name"] == "topic")


def _texts(intent: str) -> list[str]:
    return [m.text for m in renderer().answer(intent, "en", "TH")]


def test_a_concern_reading_answers_her_question() -> None:
    messages, events = _run({"danger_urgent_at": 0.85, "danger_vetoed": False})
    assert _topic(events) == "legal_rights"
    assert [m["text"] for m in messages] == _texts("legal_rights") != _texts("danger")


def test_an_escalating_reading_keeps_the_emergency_answer() -> None:
    messages, events = _run({"danger_urgent_at": 0.5, "danger_vetoed": False})
    assert _topic(events) == "danger"
    assert [m["text"] for m in messages] == _texts("danger")


def test_inside_the_job_check_the_danger_answer_stays() -> None:
    _, events = _run({"danger_urgent_at": 0.85, "danger_vetoed": True}, {"name": "job_check_form"})
    assert _topic(events) == "danger"
