"""The inbox worker: durable inbound messages, each processed once, one user's in order.

A channel whose provider cannot wait for the answer (SMS: Kannel and Twilio want their 200 at
once) writes every inbound message to an inbox table before acknowledging it. This worker
claims waiting rows with the store's conditional UPDATE (so of several gateway processes on one
database exactly one gets a row), processes them concurrently across users but strictly in
order for one user, marks them done, and on failure backs off and finally dead-letters them
(the store decides; a dead letter never blocks anyone else's messages).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from bot.locks import KeyedLocks

log = logging.getLogger(__name__)
RECORD_DONE_SECONDS = 30.0  # how long "done" is retried while the database restarts (< the inbox lease)


class InboxItem(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def user_key(self) -> str: ...


Item = TypeVar("Item", bound=InboxItem)


class InboxStore(Protocol[Item]):
    def claim(self) -> list[Item]:
        """Lease waiting rows for this process (conditional UPDATE); a user's older row first."""
        ...

    def done(self, item_id: int) -> None: ...

    def failed(self, item_id: int, error: str) -> bool:
        """Back off, or give up (True: dead-lettered)."""
        ...


class InboxWorker(Generic[Item]):
    def __init__(
        self,
        store: InboxStore[Item],
        process: Callable[[Item], Awaitable[None]],
        name: str,
        complete: Callable[[Item], None] | None = None,
        after: Callable[[Item], Awaitable[None]] | None = None,
    ) -> None:
        """``complete``: records a processed item instead of ``store.done`` - the SMS gateway queues her reply and
        marks the message processed in one transaction there, so a gateway dying in between cannot answer twice.
        ``after``: runs once the item is recorded, still in her turn (her next message waits for it) - the SMS
        gateway sends the reply it just recorded; a failure there is its own to handle, the item stays done."""
        self.store = store
        self.process = process
        self.name = name
        self.complete = complete
        self.after = after
        self.wake = asyncio.Event()  # set when a user's next message may be claimed now
        self._in_flight: set[int] = set()
        self._user_locks = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()

    def drain(self) -> int:
        """Start processing every row this process could claim; returns how many were started."""
        started = 0
        for item in self.store.claim():
            if item.id in self._in_flight:
                continue
            self._in_flight.add(item.id)
            task = asyncio.create_task(self._process_in_order(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _process_in_order(self, item: Item) -> None:
        try:
            async with self._user_locks.hold(item.user_key):  # FIFO: one user's messages in order
                await self.process(item)
                await self._record_done(item)
                if self.after is not None:
                    try:
                        await self.after(item)
                    except Exception as error:  # noqa: BLE001 - processed and recorded: never processed again
                        log.error("%s after processing: %s", self.name, type(error).__name__, exc_info=error)
            self.wake.set()  # her next message (if any) can be claimed now
        except Exception as error:  # noqa: BLE001 - stays in the inbox and is tried again after a backoff
            log.error("%s processing failed: %s", self.name, type(error).__name__, exc_info=error)
            if self.store.failed(item.id, type(error).__name__):
                log.error("%s message given up after repeated failures (dead letter, id=%s)", self.name, item.id)
        finally:
            self._in_flight.discard(item.id)

    async def _record_done(self, item: Item) -> None:
        """Processed (her reply is queued): if recording it fails because the database restarts,
        the lease runs out and the message is processed - and answered - again. So the record is
        retried for a while instead (the crash run: PostgreSQL restarted between the two)."""
        deadline = time.monotonic() + RECORD_DONE_SECONDS
        while True:
            try:
                if self.complete is not None:
                    self.complete(item)  # one transaction: retried whole if it fails
                else:
                    self.store.done(item.id)
                return
            except OperationalError as error:
                if time.monotonic() > deadline:
                    raise
                log.warning("%s message processed, not yet recorded (%s): retrying", self.name, type(error).__name__)
                await asyncio.sleep(0.5)

    async def finish(self, timeout: float = 30.0) -> None:
        """Let the messages in flight finish (graceful stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
