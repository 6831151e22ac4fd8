"""Rasa input channel used by our gateway (loaded by the Rasa server, not by the gateway).

POST /webhooks/gateway/webhook {"sender", "message", "metadata"} returns the bot messages
plus the NLU result and the slots this turn set, in one round trip. A shared token
(header ``X-Gateway-Token``) keeps anyone else from talking to Rasa directly.
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Dict

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import SlotSet, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

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

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("gateway_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.token and not hmac.compare_digest(request.headers.get("X-Gateway-Token", ""), self.token):
                return response.json({"error": "forbidden"}, status=403)
            payload = request.json or {}
            sender, text = payload.get("sender"), payload.get("message")
            if not isinstance(sender, str) or not isinstance(text, str) or not text:
                return response.json({"error": "sender and message are required"}, status=400)
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(text, collector, sender, input_channel=self.name(), metadata=payload.get("metadata") or {})
            )
            tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
            return response.json({"messages": collector.messages, **_turn_summary(tracker)})

        return hook


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
