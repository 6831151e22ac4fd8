"""Rasa input channel used by our gateway (loaded by the Rasa server, not by the gateway).

POST /webhooks/gateway/webhook {"sender", "message", "metadata"} returns the bot messages
plus the NLU result and the slots this turn set, in one round trip. POST
/webhooks/gateway/pause and /resume {"sender"} add ConversationPaused / ConversationResumed
to her tracker while a counsellor has the conversation, so the bot never talks over a
counsellor. A shared token (header ``X-Gateway-Token``) keeps anyone else out.
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Dict

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from rasa.shared.core.events import ConversationPaused, ConversationResumed, SlotSet, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import rasa_speedups
from bot.identity import RASA, proof
from bot.semantic import shared_vector
from bot.semantic.shared_vector import FIELD
from bot.tracker_store import SealedSQLTrackerStore

MIRRORED_SLOTS = ("country", "topic", "pending_topic")


class GatewayInput(InputChannel):
    """The gateway's private channel into Rasa."""

    @classmethod
    def name(cls) -> str:
        return "gateway"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> GatewayInput:
        return cls((credentials or {}).get("token") or "")

    def __init__(self, token: str) -> None:
        self.token = token
        self._encoders: list[Any] = []  # the sentence encoders of the model's featurizers
        self._encoders_of: Any = None  # ... of this processor (model)
        rasa_speedups.install()  # this is the Rasa server's process: its measured waste removed

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("gateway_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/identity", methods=["GET"])
        async def identity(request: Request) -> HTTPResponse:
            """Proves to the gateway that this server holds its token (bot/identity.py)."""
            challenge = str(request.args.get("challenge", ""))[:128]
            return response.json({"proof": proof(self.token, RASA, challenge) if challenge else ""})

        @hook.route("/pause", methods=["POST"])
        async def pause(request: Request) -> HTTPResponse:
            return await self._switch(request, paused=True)

        @hook.route("/resume", methods=["POST"])
        async def resume(request: Request) -> HTTPResponse:
            return await self._switch(request, paused=False)

        @hook.route("/erase", methods=["POST"])
        async def erase(request: Request) -> HTTPResponse:
            return await self._erase(request)

        @hook.route("/rename", methods=["POST"])
        async def rename(request: Request) -> HTTPResponse:
            return await self._rename(request)

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "forbidden"}, status=403)
            payload = request.json or {}
            sender, text = payload.get("sender"), payload.get("message")
            if not isinstance(sender, str) or not isinstance(text, str) or not text:
                return response.json({"error": "sender and message are required"}, status=400)
            metadata = payload.get("metadata") or {}
            if isinstance(metadata, dict) and FIELD in metadata:  # never stored: taken out before Rasa sees it
                metadata = dict(metadata)
                self._share_vector(request.app.ctx.agent, text, metadata.pop(FIELD))
            collector = CollectingOutputChannel()
            agent = request.app.ctx.agent
            store = _innermost(agent.tracker_store)
            sealed = isinstance(store, SealedSQLTrackerStore)
            if sealed:
                store.keep_next_save(sender)
            try:
                await on_new_message(UserMessage(text, collector, sender, input_channel=self.name(), metadata=metadata))
            finally:
                tracker = store.take_saved(sender) if sealed else None
            if tracker is None:  # another store, or nothing saved: read it back
                tracker = await agent.tracker_store.retrieve(sender)
            return response.json({"messages": collector.messages, **_turn_summary(tracker)})

        return hook

    def _share_vector(self, agent: Any, text: str, packed: Any) -> None:
        """The gateway's sentence vector of ``text`` into the featurizer's encoder memory, so the
        featurizer does not encode the message again (bot/semantic/shared_vector.py)."""
        processor = getattr(agent, "processor", None)
        if processor is None:
            return
        if self._encoders_of is not processor:  # the model's featurizers, looked up once per model
            from bot.nlu.dense import SentenceEncoderFeaturizer
            from bot.semantic.encoder import load_encoder

            defaults = SentenceEncoderFeaturizer.get_default_config()
            nodes = processor.model_metadata.predict_schema.nodes.values()
            names = {str({**defaults, **n.config}["encoder"]) for n in nodes if n.uses is SentenceEncoderFeaturizer}
            self._encoders = [load_encoder(name) for name in sorted(names)]
            self._encoders_of = processor
        for encoder in self._encoders:
            shared_vector.remember(encoder, text, packed)

    def _refusal(self, request: Request) -> HTTPResponse | None:
        """403 without the gateway token, 400 without a sender; None when the request is fine."""
        if not self._authorised(request):
            return response.json({"error": "forbidden"}, status=403)
        sender = (request.json or {}).get("sender")
        if not isinstance(sender, str) or not sender:
            return response.json({"error": "sender is required"}, status=400)
        return None

    async def _switch(self, request: Request, paused: bool) -> HTTPResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        sender = request.json["sender"]
        agent = request.app.ctx.agent
        async with agent.lock_store.lock(sender):
            tracker = await agent.tracker_store.get_or_create_tracker(sender)
            tracker.update(ConversationPaused() if paused else ConversationResumed())
            await agent.tracker_store.save(tracker)
        return response.json({"paused": tracker.is_paused()})

    async def _erase(self, request: Request) -> HTTPResponse:
        """Delete her whole Rasa conversation (the /erase of the channels)."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        sender = request.json["sender"]
        agent = request.app.ctx.agent
        store = agent.tracker_store
        while hasattr(store, "_tracker_store"):  # unwrap Rasa's Awaitable/FailSafe wrappers
            store = store._tracker_store
        async with agent.lock_store.lock(sender):
            if hasattr(store, "forget"):  # her tracker kept in memory between turns
                store.forget(sender)
            if isinstance(store, SQLTrackerStore):
                with store.session_scope() as session:
                    deleted = session.query(store.SQLEvent).filter(store.SQLEvent.sender_id == sender).delete()
                    session.commit()
            elif isinstance(store, InMemoryTrackerStore):
                deleted = 1 if store.store.pop(sender, None) is not None else 0
            else:
                return response.json({"error": f"erase not supported for {type(store).__name__}"}, status=501)
        return response.json({"erased": int(deleted)})

    async def _rename(self, request: Request) -> HTTPResponse:
        """Move a conversation to a new sender id (her pseudonym after a pepper rotation). If the
        new id already has a conversation (she wrote while Rasa was away), the old one is dropped."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        old, new = request.json["sender"], (request.json or {}).get("to")
        if not isinstance(new, str) or not new or new == old:
            return response.json({"error": "to is required"}, status=400)
        agent = request.app.ctx.agent
        store = agent.tracker_store
        while hasattr(store, "_tracker_store"):  # unwrap Rasa's Awaitable/FailSafe wrappers
            store = store._tracker_store
        async with agent.lock_store.lock(old), agent.lock_store.lock(new):
            if hasattr(store, "forget"):
                store.forget(old)
                store.forget(new)
            if isinstance(store, SQLTrackerStore):
                with store.session_scope() as session:
                    events = session.query(store.SQLEvent)
                    taken = events.filter(store.SQLEvent.sender_id == new).count()
                    old_events = events.filter(store.SQLEvent.sender_id == old)
                    moved = 0 if taken else old_events.update({store.SQLEvent.sender_id: new})
                    if taken:
                        old_events.delete()
                    session.commit()
            elif isinstance(store, InMemoryTrackerStore):
                serialised = store.store.pop(old, None)
                moved = 0
                if serialised is not None and new not in store.store:
                    store.store[new] = serialised  # events do not carry the sender id
                    moved = 1
            else:
                return response.json({"error": f"rename not supported for {type(store).__name__}"}, status=501)
        return response.json({"moved": int(moved)})

    def _authorised(self, request: Request) -> bool:
        return not self.token or hmac.compare_digest(request.headers.get("X-Gateway-Token", ""), self.token)


def _innermost(store: Any) -> Any:
    """Rasa's own store under its Awaitable/FailSafe wrappers."""
    while hasattr(store, "_tracker_store"):
        store = store._tracker_store
    return store


def _turn_summary(tracker: Any) -> Dict[str, Any]:
    """Intent of the latest user message and slots set since then."""
    if tracker is None:
        return {"intent": None, "confidence": 0.0, "slots": {}, "paused": False}
    latest: UserUttered | None = tracker.latest_message
    intent = (latest.intent if latest else None) or {}
    set_this_turn: Dict[str, Any] = {}
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, SlotSet) and event.key in MIRRORED_SLOTS and event.key not in set_this_turn:
            set_this_turn[event.key] = event.value
    return {
        "intent": intent.get("name"),
        "confidence": float(intent.get("confidence") or 0.0),
        "slots": {"country": tracker.get_slot("country"), **set_this_turn},
        "set_this_turn": sorted(set_this_turn),
        "active_loop": tracker.active_loop_name,
        "paused": tracker.is_paused(),
    }
