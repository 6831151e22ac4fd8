"""Shared helpers for actions: language, country, dispatching rendered messages."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.content import Message, load_catalog
from bot.content.render import Renderer
from bot.topics import TOPIC_OF_INTENT

__all__ = ["TOPIC_OF_INTENT"]


def data_dir() -> Path:
    return Path(os.environ.get("SP_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))


@functools.lru_cache(maxsize=2)
def _renderer(variant: str | None) -> Renderer:
    return Renderer(load_catalog(data_dir()), variant)


def renderer(tracker: Tracker | None = None) -> Renderer:
    """The renderer for the user's channel: the gateway marks SMS turns with ``format: sms``."""
    metadata = (tracker.latest_message.get("metadata") or {}) if tracker is not None else {}
    return _renderer("sms" if metadata.get("format") == "sms" else None)


def language_of(tracker: Tracker) -> str:
    """The reply language chosen by the gateway (sent as message metadata)."""
    metadata = tracker.latest_message.get("metadata") or {}
    return renderer().catalog.language(metadata.get("language") or tracker.get_slot("language"))


def country_of(tracker: Tracker) -> str | None:
    """The user's country: the slot, else a hint from the gateway (e.g. phone prefix)."""
    metadata = tracker.latest_message.get("metadata") or {}
    code = tracker.get_slot("country") or metadata.get("country")
    return code if code in renderer().catalog.countries else None


def intent_of(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or "nlu_fallback"


def send(dispatcher: CollectingDispatcher, messages: List[Message]) -> None:
    for message in messages:
        buttons = [{"title": title, "payload": payload} for title, payload in message.buttons]
        dispatcher.utter_message(text=message.text, buttons=buttons or None)


def topic_events(topic: str, language: str) -> List[Dict[str, Any]]:
    """Every answering action records what it answered (read by the gateway)."""
    return [SlotSet("topic", topic), SlotSet("language", language)]
