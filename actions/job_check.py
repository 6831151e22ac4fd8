"""The guided job-offer check: a Rasa form of six yes/no questions."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import country_of, intent_of, language_of, renderer, send, topic_events
from bot.content.render import JOB_CHECK_FLAGS
from bot.offer.model import OfferReport

JOB_SLOTS = tuple(JOB_CHECK_FLAGS)
# What a red flag found in her own words answers (issue 16): only answers she gave; silence answers nothing.
ANSWERED_BY_FLAG: dict[str, tuple[str, bool]] = {
    "upfront_fee_or_debt": ("job_fee", True),
    "documents_kept": ("job_passport", True),
    "no_contract": ("job_contract", False),
    "wrong_visa": ("job_visa", True),
    "too_good_pay": ("job_too_good", True),
    "pressure_secrecy": ("job_too_good", True),
}
RECENT_MESSAGES = 4  # her last messages read when the check starts (and again for its result)
YES_NO = frozenset({"affirm", "deny"})  # her answers to the questions are not offer text
# Intents the form does not swallow: the form rejects them so that rules handle them.
INTERRUPTING_INTENTS = frozenset({"danger", "stop"})


class ValidateJobCheckForm(FormValidationAction):
    """Keeps the check going: anything but yes/no gets a gentle hint and the question again."""

    def name(self) -> str:
        return "validate_job_check_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[str, Any]]:
        events = await super().run(dispatcher, tracker, domain)
        intent = intent_of(tracker)
        if intent in INTERRUPTING_INTENTS:
            return events
        language = language_of(tracker)
        asked = tracker.get_slot("requested_slot")  # None while the form is being activated
        if asked and intent not in ("affirm", "deny"):
            dispatcher.utter_message(text=renderer(tracker).t("job_check_not_yes_no", language))
        if not asked:  # starting: what she already told us is not asked again
            events = [*events, *prefilled(tracker, language)]
        return [*events, *topic_events("recruitment", language)]


def her_offer(tracker: Tracker, language: str) -> OfferReport | None:
    """The offer analyser on her last messages (not button taps, not her yes/no answers to the check); her
    profile's age band (gateway metadata) counts when she states no age. None when she wrote nothing."""
    from bot.offer import analyse

    events = [
        e
        for e in tracker.events
        if e.get("event") == "user"
        and not str(e.get("text") or "").startswith("/")
        and ((e.get("parse_data") or {}).get("intent") or {}).get("name") not in YES_NO
    ][-RECENT_MESSAGES:]
    if not events:
        return None
    band = (tracker.latest_message.get("metadata") or {}).get("under_18")
    under_18 = band if isinstance(band, bool) else None
    report = analyse("\n".join(str(e.get("text") or "") for e in events), language, country_of(tracker), under_18=under_18)
    return with_gateway_flags(report, events)


def with_gateway_flags(report: OfferReport, events: List[Dict[str, Any]]) -> OfferReport:
    """Adds the flags the gateway's analyser (patterns + the semantic layer, bot/offer/semantic.py) found in these
    messages, sent as metadata ``offer_flags`` (ids only): the action server runs the patterns alone."""
    from bot.offer import merge_flags

    sent = [f for e in events for f in ((e.get("metadata") or {}).get("offer_flags") or []) if isinstance(f, str)]
    return merge_flags(report, sent)


def prefilled(tracker: Tracker, language: str) -> List[SlotSet]:
    """Answers her recent messages already give (the offer analyser's flags), for questions not yet answered."""
    report = her_offer(tracker, language)
    if report is None:
        return []
    answers: dict[str, bool] = {}
    for flag in report.flags:
        if flag in ANSWERED_BY_FLAG:
            slot, value = ANSWERED_BY_FLAG[flag]
            answers.setdefault(slot, value)
    return [SlotSet(slot, value) for slot, value in answers.items() if tracker.get_slot(slot) is None]


class ActionAskJobSlot(Action):
    """Asks one question of the check (one subclass per slot, see below)."""

    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        send(dispatcher, [renderer(tracker).job_check_question(self.slot, language)])
        return topic_events("recruitment", language)


def _ask_action(slot: str) -> type[ActionAskJobSlot]:
    return type(f"ActionAsk_{slot}", (ActionAskJobSlot,), {"slot": slot})


ASK_ACTIONS = [_ask_action(slot) for slot in JOB_SLOTS]


class ActionJobCheckResult(Action):
    """Ends the check: the red flags found, what to do, the helplines."""

    def name(self) -> str:
        return "action_job_check_result"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        answers = {slot: tracker.get_slot(slot) for slot in JOB_SLOTS}
        report = her_offer(tracker, language)
        # the analyser's flags that none of the six questions covers (a stranger, travel paid, under 18 ...)
        others = [f for f in report.flags if f not in ANSWERED_BY_FLAG] if report is not None else []
        minor = report.facts.under_18 if report is not None else None
        if minor is None:
            metadata = tracker.latest_message.get("metadata") or {}
            minor = metadata.get("under_18") is True
        messages = renderer(tracker).job_check_result(answers, language, country_of(tracker), others, bool(minor))
        send(dispatcher, messages)
        return [*[SlotSet(slot, None) for slot in JOB_SLOTS], *topic_events("recruitment", language)]


class ActionJobCheckStop(Action):
    """The user stopped the check."""

    def name(self) -> str:
        return "action_job_check_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        dispatcher.utter_message(text=renderer(tracker).t("job_check_stopped", language))
        return [*[SlotSet(slot, None) for slot in JOB_SLOTS], *topic_events("smalltalk", language)]


class ActionJobCheckDeclined(Action):
    """The user said no to starting the check."""

    def name(self) -> str:
        return "action_job_check_declined"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        dispatcher.utter_message(text=renderer(tracker).t("job_check_declined", language))
        return topic_events("recruitment", language)


class ActionOfferJobCheck(Action):
    """Answers a job-offer question and offers the guided check (yes/no)."""

    def name(self) -> str:
        return "action_offer_job_check"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        language = language_of(tracker)
        send(dispatcher, renderer(tracker).answer("job_offer", language, country_of(tracker)))
        return topic_events("recruitment", language)
