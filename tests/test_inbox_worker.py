"""The inbox worker (bot/delivery/inbox.py) with a fake store at the boundary: concurrent across
users, in order for one user, failures backed off by the store and never blocking others."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.delivery import InboxWorker


@dataclass(frozen=True)
class Item:
    id: int
    user_key: str
    text: str


class FakeStore:
    def __init__(self, items: list[Item], give_up_after: int = 2) -> None:
        self.waiting = list(items)
        self.done_ids: list[int] = []
        self.failures: dict[int, int] = {}
        self.dead: list[int] = []
        self.give_up_after = give_up_after

    def claim(self) -> list[Item]:
        claimed, self.waiting = self.waiting, []
        return claimed

    def done(self, item_id: int) -> None:
        self.done_ids.append(item_id)

    def failed(self, item_id: int, error: str) -> bool:
        self.failures[item_id] = self.failures.get(item_id, 0) + 1
        if self.failures[item_id] >= self.give_up_after:
            self.dead.append(item_id)
            return True
        return False


def test_one_users_messages_are_processed_in_order_and_others_concurrently() -> None:
    items = [Item(1, "a", "a1"), Item(2, "b", "b1"), Item(3, "a", "a2"), Item(4, "a", "a3")]
    store, seen = FakeStore(items), []

    async def process(item: Item) -> None:
        seen.append(("start", item.text))
        await asyncio.sleep(0.05 if item.text == "a1" else 0.0)  # her first message is slow
        seen.append(("end", item.text))

    async def scenario() -> None:
        worker = InboxWorker(store, process, "test")
        assert worker.drain() == 4
        await worker.finish()

    asyncio.run(scenario())
    her = [text for event, text in seen if event == "start" and text.startswith("a")]
    assert her == ["a1", "a2", "a3"]  # in order although a2, a3 were ready while a1 slept
    assert seen.index(("end", "b1")) < seen.index(("end", "a1"))  # b was not kept waiting behind a
    assert sorted(store.done_ids) == [1, 2, 3, 4]


def test_a_failing_message_is_left_to_the_store_and_blocks_no_one() -> None:
    store = FakeStore([Item(1, "a", "boom"), Item(2, "b", "fine")], give_up_after=1)

    async def process(item: Item) -> None:
        if item.text == "boom":
            raise RuntimeError("broken")

    async def scenario() -> None:
        worker = InboxWorker(store, process, "test")
        worker.drain()
        await worker.finish()

    asyncio.run(scenario())
    assert store.done_ids == [2] and store.dead == [1]


def test_a_processed_message_whose_record_fails_while_the_database_restarts_is_not_processed_again() -> None:
    """Fault suite (crash, PostgreSQL): her reply was queued, then "done" failed because PostgreSQL
    was restarting; the worker gave up, the lease ran out, the message was processed again and she
    got two replies. The record is retried instead."""
    import sqlalchemy as sa

    class Restarting(FakeStore):
        def done(self, item_id: int) -> None:
            if not self.failures.get(-1):
                self.failures[-1] = 1
                raise sa.exc.OperationalError("UPDATE sms_inbox", {}, Exception("server closed the connection"))
            super().done(item_id)

    store, processed = Restarting([Item(1, "a", "hi")]), []

    async def process(item: Item) -> None:
        processed.append(item.id)

    async def scenario() -> None:
        worker = InboxWorker(store, process, "test")
        worker.drain()
        await worker.finish()

    asyncio.run(scenario())
    assert processed == [1] and store.done_ids == [1] and store.failures == {-1: 1}  # no failed(): not retried
