"""The one path every channel uses.

normalise -> handed over? (relay to the counsellor) -> language -> commands -> risk decision
(lexicon screener + semantic model, bot/risk/decision.py; urgent: durable escalation, Rasa
paused, emergency reply - no Rasa needed; a request for a person opens a counsellor request)
-> Rasa -> NLU danger as a second net -> replies (+ a counsellor offer on concern).

Nothing here logs message text; the user is known only by a keyed hash.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.content import Catalog, Message
from bot.content.render import Renderer
from bot.erasure import PendingErasures
from bot.handoff import CLAIMED, Escalation, Handoff
from bot.hours import DutyHours
from bot.langid import LanguageIdentifier
from bot.locks import KeyedLocks
from bot.offer import OfferReport, analyse
from bot.offer.analyser import texts_to_encode
from bot.offer.ocr import ImageRejected, read_image, shorten
from bot.offer.semantic import FlagScorer
from bot.profiles import Profile, ProfileStore, user_key
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.rekey import rename_user
from bot.risk.decision import RiskAssessor, not_urgent_by_model, vetoes
from bot.risk.screener import RiskResult, Screener
from bot.semantic import shared_vector
from bot.stats import record_turn
from bot.text import CleanText, normalize
from bot.topics import TOPIC_OF_INTENT

log = logging.getLogger(__name__)

DOMAIN_INTENTS = frozenset(TOPIC_OF_INTENT) - {"nlu_fallback"}
LANGUAGE_COMMANDS = ("/language", "/lang")
COUNSELLOR_COMMANDS = ("/counsellor", "/counselor", "/human")
END_HANDOFF_COMMANDS = ("/stop", "/bot", "/end")
DANGER_COMMANDS = ("/danger", "/sos")  # typed or a button: a cry for help, never a Rasa command
RASA_UNAVAILABLE = "rasa_unavailable"  # Rasa did not answer: no intent is known
ACTIONS_UNAVAILABLE = "actions_unavailable"  # Rasa classified, but its action server said nothing
# A picture she sends while a counsellor has her (issue 16): counsellors cannot see pictures, so its words are read
# (OCR, in memory) and shown to her; only with her consent (a button) does the shortened text go to the counsellor.
# Until she answers, the words wait in this process's memory only - never in the database, never in a log.
PHOTO_SEND, PHOTO_DISCARD = "/photo_send", "/photo_discard"
PHOTO_WAIT_SECONDS = 600.0
PHOTO_MAX_WAITING = 10_000
PHOTO_LABEL = "[words read from her picture by OCR, shortened; she chose to send them{flags}]"
PHOTO_NOTE_ASKED = "(She sent a picture. It is not kept or shown; she was asked whether to send you the words read from it.)"
PHOTO_NOTE_UNREADABLE = "(She sent a picture. No words could be read from it; she was asked to type what it says.)"
# An urgent offer finding escalates under the risk category that names it (data/risk/categories.yml).
URGENT_OFFER_CATEGORY = {
    "documents_kept": "documents_taken",
    "upfront_fee_or_debt": "debt_bondage",
    "night_border": "moved_against_will",
}


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
    risk_level: str = "none"
    risk_category: str | None = None
    handoff: str | None = None  # None | "waiting" (escalated, not yet claimed) | "counsellor"
    escalation_id: int | None = None
    offer: OfferReport | None = None  # the offer analyser on her message (issue 16)
    ocr_text: str | None = None  # what was read from her image (shown back to her, never logged)

    def as_json(self) -> dict[str, Any]:
        data = {
            "language": self.language,
            "topic": self.topic,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "escalate": self.escalate,
            "risk_level": self.risk_level,
            "risk_category": self.risk_category,
            "handoff": self.handoff,
            "replies": [m.text for m in self.replies],
            "buttons": [[{"title": t, "payload": p} for t, p in m.buttons] for m in self.replies],
            "country": self.country,
            "offer_flags": list(self.offer.flags) if self.offer is not None else [],
            "offer_facts": self.offer.as_dict()["facts"] if self.offer is not None else {},
        }
        if self.ocr_text is not None:
            data["ocr_text"] = self.ocr_text
        return data


class Pipeline:
    """Handles inbound messages from any channel."""

    def __init__(
        self,
        catalog: Catalog,
        identifier: LanguageIdentifier,
        profiles: ProfileStore,
        rasa: RasaClient,
        pepper: str,
        screener: Screener,
        handoff: Handoff,
        hours: DutyHours | None = None,
        nlu_danger_urgent: float = 0.85,
        variant: str | None = None,
        assessor: RiskAssessor | None = None,
        previous_peppers: Sequence[str] = (),
        offer_scorer: FlagScorer | None = None,
    ) -> None:
        self.catalog = catalog
        self.variant = variant  # "sms": short renderings here and in the actions (message metadata)
        self.render = Renderer(catalog, variant)
        self.identifier = identifier
        self.profiles = profiles
        self.rasa = rasa
        self.pepper = pepper
        self.previous_peppers = tuple(previous_peppers)
        self._current: set[str] = set()  # pseudonyms already checked for rows under an old pepper
        self._rasa_renames: dict[str, str] = {}  # new pseudonym -> old, moved in our tables, not yet in Rasa
        self.screener = screener
        # the lexicon alone unless a semantic model is given (bot.risk.decision.load_assessor)
        self.assessor = assessor or RiskAssessor(screener)
        # the offer check's semantic flag layer beside its patterns (bot/offer/semantic.py); None: patterns only
        self.offer_scorer = offer_scorer
        self.handoff = handoff
        self.pending_erasures = PendingErasures(handoff.engine, handoff.clock)
        self.hours = hours or DutyHours()
        self.nlu_danger_urgent = nlu_danger_urgent
        self._locks = KeyedLocks()
        # her pseudonym -> (the words read from her picture, when they expire): waiting for her consent (memory only)
        self._photo_words: dict[str, tuple[str, float]] = {}

    def key_for(self, channel: str, user_id: str) -> str:
        """Her pseudonym under the newest pepper. After a pepper rotation, her rows still under an
        old pseudonym are moved to the new one first (bot/rekey.py), so she keeps her language,
        country, open case and opt-out; her Rasa conversation follows on her next turn."""
        key = user_key(self.pepper, channel, user_id)
        if not self.previous_peppers or key in self._current:
            return key
        if len(self._current) > 100_000:  # bounded: forgetting only costs one more check
            self._current.clear()
        self._current.add(key)
        for old_pepper in self.previous_peppers:
            old = user_key(old_pepper, channel, user_id)
            if old != key and rename_user(self.handoff.engine, old, key):
                self._rasa_renames[key] = old
        return key

    async def _move_rasa_conversation(self, key: str) -> None:
        old = self._rasa_renames.get(key)
        if old is None:
            return
        try:
            await self.rasa.rename(old, key)
            del self._rasa_renames[key]
        except RasaUnavailable:
            log.warning("Rasa unreachable: her conversation moves to the new pseudonym on a later turn")

    def is_urgent(self, text: str) -> bool:
        """For channels that must not hold back danger (rate limits, SMS opt-out): same decision."""
        return self.assessor.assess(normalize(text).text).urgent

    async def handle(self, channel: str, user_id: str, raw: bytes | str | None, country_hint: str | None = None) -> Turn:
        """Process one message; turns of one user are strictly sequential.

        ``country_hint`` (e.g. from an SMS number's calling code) is used until she names a country."""
        key = self.key_for(channel, user_id)
        async with self._locks.hold(key):
            await self._move_rasa_conversation(key)
            turn = await self._handle(channel, user_id, key, raw, country_hint)
        try:  # anonymous counters for the NGO; never allowed to cost her the reply
            record_turn(self.handoff.engine, channel, turn.language, turn.topic, turn.escalate)
        except Exception as error:  # noqa: BLE001
            log.error("stats not recorded (%s)", type(error).__name__)
        return turn

    async def _encode_ahead(self, text: str) -> None:
        """Encode, in a worker thread, the sentence vectors the risk decision and the offer check are about to ask
        for. The encoder's C engine releases the GIL, so the event loop serves other girls' messages meanwhile
        instead of waiting ~10-25 ms per message; the synchronous calls that follow find the vectors in the
        encoder's cache (bot/semantic/encoder.py, CachingEncoder). Only a speed-up: a failure here changes nothing,
        the later calls encode (and handle a failure) as before."""
        if not text or text.startswith("/"):
            return
        encoders: dict[int, tuple[Any, list[str]]] = {}
        if self.assessor.model is not None and self.assessor.encoder is not None:
            encoders.setdefault(id(self.assessor.encoder), (self.assessor.encoder, []))[1].append(text)
        if self.offer_scorer is not None:
            wanted = texts_to_encode(text, self.offer_scorer)
            encoders.setdefault(id(self.offer_scorer.encoder), (self.offer_scorer.encoder, []))[1].extend(wanted)
        for encoder, texts in encoders.values():
            if texts:
                try:
                    await asyncio.to_thread(encoder.encode, list(dict.fromkeys(texts)))
                except Exception as error:  # noqa: BLE001 - the risk decision encodes again and decides
                    log.warning("encoding ahead failed (%s)", type(error).__name__)

    def _read_offer(self, text: str, language: str, profile: Profile) -> OfferReport | None:
        """The offer analyser on her text (never allowed to cost her the reply). An age she states here updates her
        profile's age band (under 18 or not - never the age itself), used for her later offers."""
        if not text or text.startswith("/"):
            return None
        try:
            report = analyse(text, language, profile.country, under_18=profile.under_18, scorer=self.offer_scorer)
        except Exception as error:  # noqa: BLE001
            log.error("offer analyser failed (%s)", type(error).__name__)
            return None
        if report.facts.age_source == "text" and report.facts.under_18 is not None:
            if profile.under_18 != report.facts.under_18:
                profile.under_18 = report.facts.under_18
                self.profiles.save(profile)
        return report

    def _offer_replies(self, turn: Turn, offer: OfferReport | None) -> None:
        """A typed offer (or one read from a picture) gets the analyser's findings - each flag with its severity,
        why, and what to do - and, when she is under 18, child advice and her country's child helpline. Before
        the general answer; on SMS after it, composed into her segment budget. Not on an escalated turn."""
        if offer is None or turn.escalate or turn.handoff is not None or not offer.is_offer:
            return
        severities = {f.flag: f.severity for f in offer.findings}
        minor = bool(offer.facts.under_18) and offer.is_offer
        extra = self.render.offer_messages(offer.flags, turn.language, turn.country, severities, under_18=minor)
        if self.variant == "sms":
            turn.replies.extend(extra)
            return
        too_long = self.render.t("input_too_long", turn.language)
        at = 1 if turn.replies and turn.replies[0].text == too_long else 0
        turn.replies[at:at] = extra

    @staticmethod
    def _offer_risk(offer: OfferReport) -> RiskResult:
        """An urgent finding (her documents already taken, she is being moved) as a risk, for the escalation path."""
        urgent = [f.flag for f in offer.findings if f.severity == "urgent"]
        category = next((URGENT_OFFER_CATEGORY[f] for f in urgent if f in URGENT_OFFER_CATEGORY), "risky_offer")
        return RiskResult("urgent", category, tuple(f"offer:{f}" for f in urgent))

    async def handle_image(self, channel: str, user_id: str, data: bytes) -> Turn:
        """A screenshot or photo of an offer: OCR in memory (never stored, never logged), then the same path as
        her text, with what was read shown back (shortened, so she can correct it) and the findings."""
        key = self.key_for(channel, user_id)
        profile = self.profiles.get(key)
        language = self.catalog.language(profile.language)
        try:
            result = await asyncio.to_thread(read_image, data, language)
        except ImageRejected as rejected:
            log.info("image not read (%s)", rejected.reason)
            result = None
        if result is not None and result.empty:
            log.info("image not read (no text)")
        active = self.handoff.active_for(key)
        if active is not None:  # a counsellor has her: the words go to the counsellor only if she says so
            words = shorten(result.text) if result is not None and not result.empty else None
            return self._photo_in_handoff(profile, active, words)
        if result is None or result.empty:
            return self._local(profile, "smalltalk", [Message(self.render.t("offer_image_unreadable", language))])
        turn = await self.handle(channel, user_id, result.text)  # the findings come with it (_offer_replies)
        short = shorten(result.text)
        turn.ocr_text = short
        turn.replies = [Message(self.render.t("offer_read_back", turn.language, text=short)), *turn.replies]
        return turn

    async def _handle(
        self, channel: str, address: str, key: str, raw: bytes | str | None, country_hint: str | None = None
    ) -> Turn:
        clean = normalize(raw)
        profile = self.profiles.get(key)
        if profile.country is None and country_hint in self.catalog.countries:
            profile.country = country_hint
        language = self.catalog.language(profile.language)
        if clean.empty:
            return self._local(profile, "smalltalk", [Message(self.render.t("input_empty", language))])
        if clean.has_letters and not clean.text.startswith("/"):
            decision = self.identifier.decide(clean.text, profile.language, profile.language_pinned)
            profile.language, switched = decision.language, decision.switched
        else:
            switched = False
        await self._encode_ahead(clean.text)
        offer = self._read_offer(clean.text, self.catalog.language(profile.language), profile)
        turn = await self._route(channel, address, key, profile, clean, switched, offer)
        if offer is not None and (offer.is_offer or offer.findings):
            turn.offer = offer
            self._offer_replies(turn, offer)
        return turn

    async def _route(
        self,
        channel: str,
        address: str,
        key: str,
        profile: Profile,
        clean: CleanText,
        switched: bool,
        offer: OfferReport | None,
    ) -> Turn:
        language = self.catalog.language(profile.language)
        active = self.handoff.active_for(key)
        if active is not None:
            return await self._handed_over(profile, active, clean)
        if clean.text.startswith("/"):
            command = await self._command(profile, clean.text, channel, address)
            if command is not None:
                return command
        assessment = self.assessor.assess(clean.text)
        if assessment.urgent:
            return await self._escalate(profile, channel, address, clean.text, assessment.as_risk())
        if assessment.wants_person:
            return await self._escalate(profile, channel, address, clean.text, assessment.as_risk())
        # the same vetoes as for the lexicon: when the semantic model is sure this is a question
        # (homework, the law, news) or a concern (an offer with red flags), the NLU's danger only
        # offers a counsellor. Rasa is told, so that a danger reading that will not escalate
        # answers her question instead of giving the emergency text (actions/answers.py,
        # bot.topics.answer_instead_of_danger).
        sure_harmless = not_urgent_by_model(assessment.semantic, self.assessor.thresholds)
        a_question = assessment.semantic is not None and vetoes(assessment.semantic, self.assessor.thresholds)
        if offer is not None and offer.severity == "urgent" and not a_question:
            # an urgent finding (her documents already taken): the same escalation path as the risk decision's;
            # only the question veto (homework, the law) overrules it - "sure it is a concern" does not
            return await self._escalate(profile, channel, address, clean.text, self._offer_risk(offer))
        if not clean.has_letters:  # emoji, digits or symbols only
            self.profiles.save(profile)
            return self._local(profile, "out_of_scope", self.render.answer("nlu_fallback", language, None))
        extra: dict[str, Any] = {"danger_urgent_at": self.nlu_danger_urgent, "danger_vetoed": sure_harmless}
        if offer is not None and offer.flags:
            # the job check reads her recent messages' flags from here (actions/job_check.py), so that the
            # semantic layer's flags count there too without a second encoder in the action server (ids only)
            extra["offer_flags"] = list(offer.flags)
        turn = await self._ask_rasa(profile, clean.text, extra, self._shared_vector(clean.text))
        turn.language_switched = switched
        risk = assessment.as_risk()
        if turn.intent == "danger" and RASA_UNAVAILABLE not in turn.notes:
            # The NLU is a second net; it also counts when the action server failed to answer.
            urgent = turn.confidence >= self.nlu_danger_urgent and not sure_harmless
            nlu_risk = RiskResult("urgent" if urgent else "concern", "nlu_danger")
            if nlu_risk.urgent:
                return await self._escalate(profile, channel, address, clean.text, nlu_risk, turn)
            risk = risk if risk.level == "concern" else nlu_risk
        if risk.level == "concern":
            turn.risk_level, turn.risk_category = risk.level, risk.category
            turn.replies.append(self._counsellor_offer(turn.language))
        if clean.truncated:
            turn.replies.insert(0, Message(self.render.t("input_too_long", turn.language)))
        return turn

    # -- escalation and handoff ------------------------------------------------------------
    def _counsellor_offer(self, language: str) -> Message:
        buttons = (
            (self.render.t("counsellor_offer_yes", language), "/counsellor"),
            (self.render.t("counsellor_offer_no", language), "/no_counsellor"),
        )
        # the helpline's confidentiality policy and its limits, before she chooses (content: data)
        text = self.render.t("counsellor_offer", language) + "\n" + self.render.t("confidentiality", language)
        return Message(text, buttons)

    async def _escalate(
        self,
        profile: Profile,
        channel: str,
        address: str,
        text: str,
        risk: RiskResult,
        nlu_turn: Turn | None = None,
    ) -> Turn:
        """Durable record first, then pause Rasa, then the reply (numbers + a person is coming)."""
        language = self.catalog.language(profile.language)
        self.profiles.save(profile)
        escalation, is_new = self.handoff.escalate(
            user_key=profile.user_key,
            channel=channel,
            address=address,
            language=language,
            country=profile.country,
            risk_level=risk.level,
            risk_category=risk.category or "unspecified",
            triggers=risk.triggers,
            message=text,
        )
        log.warning(
            "escalation id=%s new=%s level=%s category=%s lang=%s",
            escalation.id, is_new, risk.level, risk.category, language,
        )  # fmt: skip
        await self._pause_rasa(escalation)
        replies = self.escalation_reply(language, profile.country, risk.urgent)
        self.handoff.bot_said(escalation.id, "\n".join(m.text for m in replies))
        return Turn(
            language=language,
            topic="danger" if risk.urgent else "get_help",
            intent=nlu_turn.intent if nlu_turn else None,
            confidence=nlu_turn.confidence if nlu_turn else 1.0,
            escalate=True,
            replies=replies,
            country=profile.country,
            risk_level=risk.level,
            risk_category=risk.category,
            handoff="waiting",
            escalation_id=escalation.id,
        )

    def escalation_reply(self, language: str, country: str | None, urgent: bool) -> list[Message]:
        """Calm words, that a person will come (or when), emergency numbers, a safety tip."""
        on_duty = self.hours.on_duty(self.handoff.clock())
        notice = (
            self.render.t("escalation_alerted", language)
            if on_duty
            else self.render.t("escalation_out_of_hours", language, hours=self.hours.describe())
        )
        # what stays private, and its limits: said as the handoff begins (the policy is content data)
        policy = Message(self.render.t("confidentiality", language))
        if not urgent:
            replies = [Message(notice), policy]
            code = country or self.catalog.default_country(language)
            found = self.catalog.countries.get(code or "")
            replies.append(
                self.render.helplines(found, language)
                if found
                else Message(self.render.emergency_numbers_everywhere(language))
            )
            return replies
        replies = self.render.answer("danger", language, country)
        replies[1:1] = [Message(notice), policy]
        return replies

    async def _pause_rasa(self, escalation: Escalation) -> None:
        try:
            paused = await self.rasa.set_paused(escalation.user_key, True)
        except RasaUnavailable as error:
            # The gateway keeps her messages away from Rasa anyway; the pause is the second lock.
            log.error("could not pause rasa for escalation %s (%s)", escalation.id, error)
            return
        self.handoff.mark_paused(escalation.id, paused)

    async def resume_rasa(self, user_key_: str) -> bool:
        try:
            return not await self.rasa.set_paused(user_key_, False)
        except RasaUnavailable as error:
            log.error("could not resume rasa (%s); will resume on her next message", error)
            return False

    async def erase(self, profile: Profile) -> Turn:
        """Forget her everywhere: profile, escalations and transcripts, outbox, Rasa tracker."""
        language = self.catalog.language(profile.language)
        self._photo_words.pop(profile.user_key, None)
        self.handoff.erase_user(profile.user_key)
        self.profiles.erase(profile.user_key)
        turn = Turn(language, "smalltalk", None, 1.0, False, [Message(self.render.t("erased", language))], notes=["erased"])
        try:
            await self.rasa.erase(profile.user_key)
        except RasaUnavailable as error:  # said honestly, kept (a pseudonym only) and retried
            log.error("rasa tracker not erased yet (%s); retried by the supervision tick", type(error).__name__)
            self.pending_erasures.add(profile.user_key)
            turn.notes.append("rasa_not_erased")
            turn.replies = [Message(self.render.t("erased_pending", language))]
        return turn

    async def retry_erasures(self) -> int:
        """Every channel's supervision tick: finish the tracker erasures Rasa could not do."""
        return await self.pending_erasures.retry(self.rasa.erase)

    async def _handed_over(self, profile: Profile, active: Escalation, clean: CleanText) -> Turn:
        """While escalated her messages go to the counsellor, never to Rasa."""
        self.profiles.save(profile)
        language = self.catalog.language(profile.language)
        word = clean.text.split(" ", 1)[0].lower()
        if word == "/erase":
            return await self.erase(profile)
        if word in END_HANDOFF_COMMANDS:
            self._photo_words.pop(profile.user_key, None)
            self.handoff.end_by_user(active.id)
            await self.resume_rasa(profile.user_key)
            return self._local(profile, "smalltalk", [Message(self.render.t("handoff_ended_by_user", language))])
        if word in (PHOTO_SEND, PHOTO_DISCARD):
            return self._photo_answer(profile, active, word == PHOTO_SEND)
        return self._relay(profile, active, clean.text)

    def _relay(
        self, profile: Profile, active: Escalation, text: str, reply: Message | None = None, words: str | None = None
    ) -> Turn:
        """Her words to the counsellor (the transcript); urgent words raise the case. ``reply``: what she is told;
        ``words``: what the risk decision reads when ``text`` carries a label for the counsellor."""
        language = self.catalog.language(profile.language)
        risk = self.assessor.assess(words if words is not None else text).as_risk()
        if risk.urgent and active.risk_level != "urgent":
            self.handoff.escalate(
                user_key=active.user_key, channel=active.channel, address=active.address, language=language,
                country=profile.country, risk_level=risk.level, risk_category=risk.category or "unspecified",
                triggers=risk.triggers, message=text,
            )  # fmt: skip
        else:
            self.handoff.user_said(active.id, text)
        claimed = active.status == CLAIMED
        replies = [] if claimed else [Message(self.render.t("escalation_waiting", language))]
        if reply is not None:
            replies.insert(0, reply)
        urgent = risk.urgent or active.risk_level == "urgent"
        return Turn(
            language=language,
            topic="danger" if urgent else "get_help",
            intent=None,
            confidence=1.0,
            escalate=risk.urgent and active.risk_level != "urgent",
            replies=replies,
            country=profile.country,
            risk_level=risk.level,
            risk_category=risk.category,
            handoff="counsellor" if claimed else "waiting",
            escalation_id=active.id,
        )

    def _photo_in_handoff(self, profile: Profile, active: Escalation, words: str | None) -> Turn:
        """A picture while a counsellor has her: counsellors cannot see pictures (and it is never kept). The words
        read from it are shown to her with a choice - send them to the counsellor or not; nothing is sent before."""
        language = self.catalog.language(profile.language)
        self.profiles.save(profile)
        if not words:
            reply = Message(self.render.t("handoff_photo_unreadable", language))
        else:
            now = self.handoff.clock()
            waiting = {k: v for k, v in self._photo_words.items() if v[1] > now}
            if len(waiting) >= PHOTO_MAX_WAITING:
                waiting.pop(next(iter(waiting)))
            waiting[profile.user_key] = (words, now + PHOTO_WAIT_SECONDS)
            self._photo_words = waiting
            buttons = (
                (self.render.t("button_photo_send", language), PHOTO_SEND),
                (self.render.t("button_photo_discard", language), PHOTO_DISCARD),
            )
            reply = Message(self.render.t("handoff_photo_read", language, text=words), buttons)
        # the counsellor learns that a picture came, never its words before she agrees (nor the picture)
        self.handoff.bot_said(active.id, PHOTO_NOTE_ASKED if words else PHOTO_NOTE_UNREADABLE)
        return self._handoff_turn(profile, active, [reply])

    def _photo_answer(self, profile: Profile, active: Escalation, send: bool) -> Turn:
        """Her answer to "send the words of your picture to the counsellor?"."""
        language = self.catalog.language(profile.language)
        waiting = self._photo_words.pop(profile.user_key, None)
        if waiting is None or waiting[1] <= self.handoff.clock():
            return self._handoff_turn(profile, active, [Message(self.render.t("handoff_photo_expired", language))])
        if not send:
            return self._handoff_turn(profile, active, [Message(self.render.t("handoff_photo_not_sent", language))])
        words = waiting[0]
        flags = ""
        try:  # the offer check's flag ids help the counsellor; never allowed to stop the words
            found = analyse(words, language, profile.country, under_18=profile.under_18, scorer=self.offer_scorer).flags
            flags = f"; offer check: {', '.join(found)}" if found else ""
        except Exception as error:  # noqa: BLE001
            log.error("offer analyser failed (%s)", type(error).__name__)
        text = f"{PHOTO_LABEL.format(flags=flags)} {words}"
        return self._relay(profile, active, text, Message(self.render.t("handoff_photo_sent", language)), words)

    def _handoff_turn(self, profile: Profile, active: Escalation, replies: list[Message]) -> Turn:
        return Turn(
            language=self.catalog.language(profile.language),
            topic="danger" if active.risk_level == "urgent" else "get_help",
            intent=None,
            confidence=1.0,
            escalate=False,
            replies=replies,
            country=profile.country,
            handoff="counsellor" if active.status == CLAIMED else "waiting",
            escalation_id=active.id,
        )

    async def _command(self, profile: Profile, text: str, channel: str, address: str) -> Turn | None:
        """Slash commands and button payloads; None means "treat as a normal message"."""
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word == "/erase":
            return await self.erase(profile)
        if word in COUNSELLOR_COMMANDS:
            return await self._escalate(profile, channel, address, text, RiskResult("concern", "requested"))
        if word in DANGER_COMMANDS:
            return await self._escalate(profile, channel, address, text, RiskResult("urgent", "cry_for_help", (word,)))
        if word in (PHOTO_SEND, PHOTO_DISCARD):  # the counsellor's conversation has ended: nothing is sent
            self._photo_words.pop(profile.user_key, None)
            language = self.catalog.language(profile.language)
            return self._local(profile, "smalltalk", [Message(self.render.t("handoff_photo_expired", language))])
        if word == "/no_counsellor":
            language = self.catalog.language(profile.language)
            return self._local(profile, "smalltalk", [Message(self.render.t("counsellor_declined", language))])
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

    def _shared_vector(self, text: str) -> dict[str, Any] | None:
        """The risk decision's sentence vector of ``text`` (encoded already: a lookup), sent so that
        Rasa's featurizer does not encode the message again (bot/semantic/shared_vector.py)."""
        encoder = self.assessor.encoder
        if self.assessor.model is None or encoder is None or not text or text != text.strip():
            return None
        try:
            return shared_vector.pack(encoder.name, encoder.encode([text])[0])
        except Exception as error:  # noqa: BLE001 - Rasa then encodes it itself
            log.error("sentence vector not shared (%s)", type(error).__name__)
            return None

    async def _ask_rasa(
        self, profile: Profile, text: str, extra: dict[str, Any] | None = None, vector: dict[str, Any] | None = None
    ) -> Turn:
        language = self.catalog.language(profile.language)
        metadata: dict[str, Any] = {"language": language, "country": profile.country, **(extra or {})}
        if profile.under_18 is not None:  # the job check adds child advice (an age band, never her age)
            metadata["under_18"] = profile.under_18
        if self.variant:
            metadata["format"] = self.variant
        if vector is not None:
            metadata[shared_vector.FIELD] = vector
        try:
            result = await self.rasa.send(profile.user_key, text, metadata)
            if result.paused:  # a hand-back whose resume did not reach Rasa: resume now, then ask again
                await self.rasa.set_paused(profile.user_key, False)
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
        if not replies:
            # Rasa answered but said nothing: its action server is down or failing. Never silence.
            log.error("rasa answered without a message (intent=%s); answering with helplines", intent)
            fallback = self._unavailable(profile, language, ACTIONS_UNAVAILABLE)
            fallback.intent, fallback.confidence = intent, result.confidence
            return fallback
        log.info("turn intent=%s topic=%s lang=%s", intent, topic, language)
        return Turn(
            language=language,
            topic=topic,
            intent=intent,
            confidence=result.confidence,
            escalate=False,  # only an escalation opened or raised by this message sets it (_escalate)
            replies=replies,
            country=profile.country,
        )

    def _unavailable(self, profile: Profile, language: str, note: str = RASA_UNAVAILABLE) -> Turn:
        """Rasa is down: never leave her without an answer - give the helplines."""
        replies = [Message(self.render.t("service_unavailable", language))]
        code = profile.country or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        if country:
            replies.append(Message(self.render.hotlines(country, language)))
        else:
            replies.append(Message(self.render.emergency_numbers_everywhere(language)))
        return Turn(language, "get_help", None, 0.0, False, replies, country=profile.country, notes=[note])
