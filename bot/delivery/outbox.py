"""The outbox worker (no Rasa imports); the outbox table itself is the handoff's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from bot.handoff import Delivery, Handoff

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # 2+4+...+256 s of backoff: about 8 minutes of an outage, then a dead letter
MAX_BACKOFF_SECONDS = 300.0
LEASE_SECONDS = 60.0
HANDOVER_SECONDS = 2.0  # a part a gateway failed to send itself waits this long before the worker retries it

Part = TypeVar("Part")


class DeliveryFailed(Exception):
    """The channel did not take the message; ``retry`` says whether trying again can help."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.retry = reason, retry


class OutboxChannel(Protocol):
    name: str  # the outbox's channel column: "telegram", "sms", "local"

    async def deliver(self, delivery: Delivery) -> None:
        """Send ``delivery.text`` to ``delivery.address``; raise DeliveryFailed if not taken."""
        ...


@dataclass
class SendingChannel:
    """An OutboxChannel made of a name and a send function (for a gateway with other duties)."""

    name: str
    send: Callable[[Delivery], Awaitable[None]]

    async def deliver(self, delivery: Delivery) -> None:
        await self.send(delivery)


@dataclass
class OutboxWorker:
    handoff: Handoff
    channel: OutboxChannel
    max_attempts: int = MAX_ATTEMPTS
    lease_seconds: float = LEASE_SECONDS
    only_user: str | None = None  # a terminal chat delivers one user's messages, never another's

    async def run_once(self) -> int:
        """Send what is due; returns how many were delivered."""
        sent = 0
        due = self.handoff.pending_deliveries(
            self.channel.name, max_attempts=self.max_attempts, lease_seconds=self.lease_seconds, user_key=self.only_user
        )
        for delivery in due:
            try:
                await self.channel.deliver(delivery)
            except DeliveryFailed as failure:
                attempt = delivery.attempts + 1
                final = not failure.retry or attempt >= self.max_attempts
                self.handoff.mark_failed(delivery.id, failure.reason, final=final)
                if final:
                    log.error(
                        "%s delivery dead-lettered after %d attempt(s): %s (id=%s)",
                        self.channel.name, attempt, failure.reason, delivery.id,
                    )  # fmt: skip
                else:
                    self.handoff.postpone(delivery.id, min(2.0**attempt, MAX_BACKOFF_SECONDS))
                    log.warning("%s delivery failed (attempt %d): %s", self.channel.name, attempt, failure.reason)
                continue
            # a plain bot reply has no reason to be kept; a counsellor's line stays in her case
            await self.record_sent(delivery.id, forget=delivery.escalation_id is None)
            sent += 1
        return sent

    async def record_sent(
        self, delivery_id: int, forget: bool, hold: tuple[Sequence[int], float, float] | None = None
    ) -> bool:
        """She has it now: if the record fails (the database restarting), the lease runs out and
        she gets it twice - so the record is retried for half a lease before giving up. (Also
        used by a channel that sends an answer it recorded in the outbox itself; ``hold`` as in
        ``Handoff.mark_sent``.)"""
        deadline = time.monotonic() + self.lease_seconds / 2
        while True:
            try:
                if hold is None:
                    self.handoff.mark_sent(delivery_id, forget=forget)
                    return True
                return self.handoff.mark_sent(delivery_id, forget=forget, hold=hold)
            except OperationalError as error:
                if time.monotonic() > deadline:
                    raise
                log.warning("%s delivery sent, not yet recorded (%s): retrying", self.channel.name, type(error).__name__)
                await asyncio.sleep(0.5)

    async def send_held(
        self, parts: Sequence[tuple[int, Part]], held_until: float, send: Callable[[Part], Awaitable[None]]
    ) -> None:
        """Send parts a gateway recorded in the outbox and holds (its own answer, right after recording it), in
        order, instead of waiting for the next poll. Each is forgotten once the channel took it, in one statement
        with renewing the hold on the parts after it (a gateway killed between the two would send it again). On a
        failure, the part is marked failed (dead-lettered at once when retrying cannot help) and it and the rest
        are left to the worker, which tries each on its own - a part refused for its own content does not take
        the others with it."""
        for index, (delivery_id, part) in enumerate(parts):
            following = [other for other, _ in parts[index + 1 :]]
            try:
                await send(part)
            except DeliveryFailed as failure:
                log.warning("%s reply not sent (%s): left to the outbox", self.channel.name, failure.reason)
                self.handoff.mark_failed(delivery_id, failure.reason, final=not failure.retry)
                self.handoff.hold([delivery_id, *following], held_until, self.handoff.clock() + HANDOVER_SECONDS)
                return
            renewed = self.handoff.clock() + self.lease_seconds
            ours = await self.record_sent(delivery_id, forget=True, hold=(following, held_until, renewed))
            held_until = renewed
            if not ours:  # a send slower than the hold: the worker took the rest over and sends it
                return
