"""HTTP client for the Rasa server's gateway channel (bot/rasa_channel.py)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import httpx

ROUNDS, RETRY_PAUSE = 2, 1.0


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
    """Sends one user message to Rasa and returns the whole turn.

    ``base_url`` may list several Rasa servers ("http://a:5005,http://b:5005"), all on the same
    tracker store: each user sticks to one server (by her key) and moves to the next one when it
    does not answer, so a dead server costs a retry, not a lost message.
    """

    def __init__(
        self, base_url: str, token: str, timeout: float = 15.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """``transport`` replaces the network (unit tests put a fake Rasa server there)."""
        urls = [u.strip() for u in base_url.split(",") if u.strip()]
        if not urls:
            raise ValueError("no Rasa server URL")
        self._clients = [
            httpx.AsyncClient(base_url=url, timeout=timeout, headers={"X-Gateway-Token": token}, transport=transport)
            for url in urls
        ]

    def _order(self, sender: str) -> list[httpx.AsyncClient]:
        first = int(hashlib.sha256(sender.encode()).hexdigest()[:8], 16) % len(self._clients)
        return self._clients[first:] + self._clients[:first]

    async def _post(self, sender: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        error: Exception | None = None
        # Two rounds: a server that takes over a dead one's conversation may first refuse it
        # (Rasa's LockError while the dead server's lock expires); a moment later it answers.
        for attempt in range(ROUNDS):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE)
            for client in self._order(sender):
                try:
                    reply = await client.post(path, json=body)
                    reply.raise_for_status()
                    result: dict[str, Any] = reply.json()
                    return result
                except (httpx.HTTPError, ValueError) as failure:
                    error = failure  # try the next server; the tracker store is shared
            if len(self._clients) == 1:
                break  # one server: the pipeline's fallback answers at once
        raise RasaUnavailable(type(error).__name__) from error

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> RasaTurn:
        body = await self._post(
            sender, "/webhooks/gateway/webhook", {"sender": sender, "message": text, "metadata": metadata}
        )
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
        body = await self._post(sender, f"/webhooks/gateway/{'pause' if paused else 'resume'}", {"sender": sender})
        return bool(body.get("paused"))

    async def erase(self, sender: str) -> int:
        """Delete her Rasa conversation; returns the number of events removed."""
        body = await self._post(sender, "/webhooks/gateway/erase", {"sender": sender})
        return int(body.get("erased") or 0)

    async def rename(self, old: str, new: str) -> int:
        """Move her Rasa conversation to her new pseudonym (after a pepper rotation); events moved."""
        body = await self._post(new, "/webhooks/gateway/rename", {"sender": old, "to": new})
        return int(body.get("moved") or 0)

    async def ready(self) -> bool:
        for client in self._clients:
            try:
                if (await client.get("/webhooks/gateway/")).status_code == 200:
                    return True
            except httpx.HTTPError:
                continue
        return False

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()
