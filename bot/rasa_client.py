"""HTTP client for the Rasa server's gateway channel (bot/rasa_channel.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


class RasaUnavailable(Exception):
    """Rasa did not answer in time or answered with an error."""


@dataclass
class RasaTurn:
    """What Rasa did with one message."""

    messages: list[dict[str, Any]]
    intent: str | None
    confidence: float
    slots: dict[str, Any] = field(default_factory=dict)
    set_this_turn: list[str] = field(default_factory=list)
    active_loop: str | None = None
    paused: bool = False


class RasaClient:
    """Sends one user message to Rasa and returns the whole turn."""

    def __init__(self, base_url: str, token: str, timeout: float = 15.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers={"X-Gateway-Token": token})

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> RasaTurn:
        try:
            reply = await self._client.post(
                "/webhooks/gateway/webhook", json={"sender": sender, "message": text, "metadata": metadata}
            )
            reply.raise_for_status()
            body = reply.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error
        return RasaTurn(
            messages=body.get("messages") or [],
            intent=body.get("intent"),
            confidence=float(body.get("confidence") or 0.0),
            slots=body.get("slots") or {},
            set_this_turn=body.get("set_this_turn") or [],
            active_loop=body.get("active_loop"),
            paused=bool(body.get("paused")),
        )

    async def set_paused(self, sender: str, paused: bool) -> bool:
        """Pause (handoff) or resume her Rasa conversation; returns the tracker's state."""
        try:
            reply = await self._client.post(f"/webhooks/gateway/{'pause' if paused else 'resume'}", json={"sender": sender})
            reply.raise_for_status()
            return bool(reply.json().get("paused"))
        except (httpx.HTTPError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error

    async def erase(self, sender: str) -> int:
        """Delete her Rasa conversation; returns the number of events removed."""
        try:
            reply = await self._client.post("/webhooks/gateway/erase", json={"sender": sender})
            reply.raise_for_status()
            return int(reply.json().get("erased") or 0)
        except (httpx.HTTPError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error

    async def ready(self) -> bool:
        try:
            return (await self._client.get("/webhooks/gateway/")).status_code == 200
        except httpx.HTTPError:
            return False

    async def close(self) -> None:
        await self._client.aclose()
