"""The one path every channel uses: normalise -> language -> commands -> Rasa -> replies.

Nothing here logs message text; the user is known only by a keyed hash.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bot.content import Catalog, Message
from bot.content.render import Renderer
from bot.langid import LanguageIdentifier
from bot.profiles import Profile, ProfileStore, user_key
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.text import normalize
from bot.topics import TOPIC_OF_INTENT

log = logging.getLogger(__name__)

DOMAIN_INTENTS = frozenset(TOPIC_OF_INTENT) - {"nlu_fallback"}
LANGUAGE_COMMANDS = ("/language", "/lang")


@dataclass
class Turn:
    """The outcome of one inbound message (the `ask` contract is built from this)."""

    language: str
    topic: str
    intent: str | None
    confidence: float
    escalate: bool
    replies: list[Message]
    language_switched: bool = False
    country: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "topic": self.topic,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "escalate": self.escalate,
            "replies": [m.text for m in self.replies],
            "buttons": [[{"title": t, "payload": p} for t, p in m.buttons] for m in self.replies],
            "country": self.country,
        }


class Pipeline:
    """Handles inbound messages from any channel."""

    def __init__(
        self,
        catalog: Catalog,
        identifier: LanguageIdentifier,
        profiles: ProfileStore,
        rasa: RasaClient,
        pepper: str,
    ) -> None:
        self.catalog = catalog
        self.render = Renderer(catalog)
        self.identifier = identifier
        self.profiles = profiles
        self.rasa = rasa
        self.pepper = pepper
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def handle(self, channel: str, user_id: str, raw: bytes | str | None) -> Turn:
        """Process one message; turns of one user are strictly sequential."""
        key = user_key(self.pepper, channel, user_id)
        async with self._locks[key]:
            return await self._handle(key, raw)

    async def _handle(self, key: str, raw: bytes | str | None) -> Turn:
        clean = normalize(raw)
        profile = self.profiles.get(key)
        language = self.catalog.language(profile.language)
        if clean.empty:
            return self._local(profile, "smalltalk", [Message(self.render.t("input_empty", language))])
        if clean.text.startswith("/"):
            command = await self._command(profile, clean.text)
            if command is not None:
                return command
        if not clean.has_letters:  # emoji, digits or symbols only
            return self._local(profile, "out_of_scope", self.render.answer("nlu_fallback", language, None))
        decision = self.identifier.decide(clean.text, profile.language, profile.language_pinned)
        profile.language = decision.language
        turn = await self._ask_rasa(profile, clean.text)
        turn.language_switched = decision.switched
        if clean.truncated:
            turn.replies.insert(0, Message(self.render.t("input_too_long", turn.language)))
        return turn

    async def _command(self, profile: Profile, text: str) -> Turn | None:
        """Slash commands and button payloads; None means "treat as a normal message"."""
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word in LANGUAGE_COMMANDS:
            return self._set_language(profile, rest.strip().lower())
        if word == "/country":
            code = self.catalog.find_country(rest) if rest.strip() else None
            payload = "/inform_country" + (json.dumps({"country": code}) if code else "")
            return await self._ask_rasa(profile, payload)
        if word in ("/start", "/help"):
            return await self._ask_rasa(profile, "/greet")
        intent = word[1:].split("{", 1)[0]
        if intent in DOMAIN_INTENTS:  # a button payload such as /get_help or /inform_country{...}
            return await self._ask_rasa(profile, text)
        return None

    def _set_language(self, profile: Profile, code: str) -> Turn:
        if code not in self.catalog.languages:
            language = self.catalog.language(profile.language)
            buttons = tuple((info.native_name, f"/language {c}") for c, info in self.catalog.languages.items())
            return self._local(profile, "smalltalk", [Message(self.render.t("language_prompt", language), buttons)])
        profile.language, profile.language_pinned = code, True
        self.profiles.save(profile)
        turn = self._local(profile, "smalltalk", [Message(self.render.t("language_set", code))])
        turn.language_switched = True
        return turn

    def _local(self, profile: Profile, topic: str, replies: list[Message]) -> Turn:
        language = self.catalog.language(profile.language)
        return Turn(language, topic, None, 1.0, False, replies, country=profile.country)

    async def _ask_rasa(self, profile: Profile, text: str) -> Turn:
        language = self.catalog.language(profile.language)
        metadata = {"language": language, "country": profile.country}
        try:
            result = await self.rasa.send(profile.user_key, text, metadata)
        except RasaUnavailable as error:
            log.error("rasa unavailable (%s); answering with helplines", error)
            self.profiles.save(profile)
            return self._unavailable(profile, language)
        profile.country = result.slots.get("country") or profile.country
        self.profiles.save(profile)
        intent = result.intent
        topic = result.slots.get("topic") if "topic" in result.set_this_turn else None
        topic = topic or TOPIC_OF_INTENT.get(intent or "", "out_of_scope")
        replies = [
            Message(m.get("text") or "", tuple((b["title"], b["payload"]) for b in m.get("buttons") or []))
            for m in result.messages
            if m.get("text")
        ]
        log.info("turn intent=%s topic=%s lang=%s", intent, topic, language)
        return Turn(
            language=language,
            topic=topic,
            intent=intent,
            confidence=result.confidence,
            escalate=intent == "danger",
            replies=replies,
            country=profile.country,
        )

    def _unavailable(self, profile: Profile, language: str) -> Turn:
        """Rasa is down: never leave her without an answer - give the helplines."""
        replies = [Message(self.render.t("service_unavailable", language))]
        code = profile.country or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        if country:
            replies.append(Message(self.render.hotlines(country, language)))
        else:
            replies.append(Message(self.render.emergency_numbers_everywhere(language)))
        return Turn(language, "get_help", None, 0.0, False, replies, country=profile.country, notes=["rasa_unavailable"])
