"""The user names her country: remember it and finish the pending answer."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import TOPIC_OF_INTENT, language_of, renderer, send, topic_events


class ActionSetCountry(Action):
    """Sets the `country` slot from a button payload or a country named in the text."""

    def name(self) -> str:
        return "action_set_country"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        catalog = renderer().catalog
        entity = next(tracker.get_latest_entity_values("country"), None)
        code = entity.upper() if isinstance(entity, str) and entity.upper() in catalog.countries else None
        code = code or catalog.find_country(tracker.latest_message.get("text") or "")
        pending = tracker.get_slot("pending_topic")
        topic = TOPIC_OF_INTENT.get(pending or "", "smalltalk")
        if code is None:
            # The bare "/inform_country" button asks for the list; a named but unknown
            # country gets the list of countries we do have checked facts for.
            text = (tracker.latest_message.get("text") or "").strip()
            bare_button = text.startswith("/inform_country")
            render = renderer(tracker)
            send(dispatcher, render.ask_country(language) if bare_button else render.country_unknown(language))
            return topic_events(topic, language)
        messages = renderer(tracker).country_set(code, language)
        if pending:
            messages += renderer(tracker).country_part(pending, language, catalog.countries[code])
        send(dispatcher, messages)
        return [SlotSet("country", code), SlotSet("pending_topic", None), *topic_events(topic, language)]
