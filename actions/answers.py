"""Actions that answer a question: topics, danger, fallback."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import TOPIC_OF_INTENT, country_of, intent_of, language_of, renderer, send, topic_events
from bot.content.render import COUNTRY_INTENTS
from bot.topics import answer_instead_of_danger


class ActionAnswer(Action):
    """Answers the latest intent in the user's language (and country)."""

    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        return await self.answer(dispatcher, tracker, intent_of(tracker))

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, intent: str) -> List[Dict[str, Any]]:
        language, country = language_of(tracker), country_of(tracker)
        send(dispatcher, renderer(tracker).answer(intent, language, country))
        events = topic_events(TOPIC_OF_INTENT.get(intent, "out_of_scope"), language)
        if intent in COUNTRY_INTENTS and country is None:
            events.append(SlotSet("pending_topic", intent))
        return events


class ActionDanger(Action):
    """Present danger: calm words, emergency numbers first, a safety tip."""

    def name(self) -> str:
        return "action_danger"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language, country = language_of(tracker), country_of(tracker)
        metadata = tracker.latest_message.get("metadata") or {}
        instead = answer_instead_of_danger(
            tracker.latest_message.get("intent_ranking") or [],
            metadata.get("danger_urgent_at"),
            bool(metadata.get("danger_vetoed")),
            in_form=bool((tracker.active_loop or {}).get("name")),
        )
        if instead is not None:  # a concern, not an escalation: the gateway adds the counsellor offer
            return await ActionAnswer().answer(dispatcher, tracker, instead)
        send(dispatcher, renderer(tracker).answer("danger", language, country))
        events = topic_events("danger", language)
        if country is None:
            events.append(SlotSet("pending_topic", "danger"))
        return events
