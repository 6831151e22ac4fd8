"""One outbox worker for every channel (bot/delivery), on SQLite and PostgreSQL: delivered once,
retried with backoff, dead-lettered after the attempt limit or at once on a permanent failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa

from bot.db import open_engine
from bot.delivery import DeliveryFailed, OutboxWorker
from bot.handoff import GAVE_UP, Delivery, Handoff, outbox
from tests.conftest import Clock


class FakeChannel:
    name = "fake"

    def __init__(self, failures: list[DeliveryFailed | None]) -> None:
        self.failures = failures  # what each attempt does, in order (None = taken)
        self.sent: list[str] = []

    async def deliver(self, delivery: Delivery) -> None:
        outcome = self.failures.pop(0) if self.failures else None
        if outcome is not None:
            raise outcome
        self.sent.append(delivery.text)


def _world(
    db_url: str, failures: list[DeliveryFailed | None], **kwargs: int
) -> tuple[Handoff, FakeChannel, OutboxWorker, Clock]:
    clock = Clock()
    handoff = Handoff(open_engine(db_url), "pepper-" + "x" * 32, ["c"], clock=clock)
    channel = FakeChannel(failures)
    return handoff, channel, OutboxWorker(handoff, channel, **kwargs), clock


def _row(handoff: Handoff, delivery_id: int) -> sa.Row:
    with handoff.engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.id == delivery_id)).one()


def test_an_outage_is_retried_with_backoff_then_delivered_once(db_url: str) -> None:
    handoff, channel, worker, clock = _world(db_url, [DeliveryFailed("500"), DeliveryFailed("500"), None])
    handoff.queue_message("her", "fake", "addr", "a counsellor's words")
    assert asyncio.run(worker.run_once()) == 0
    assert asyncio.run(worker.run_once()) == 0  # backing off: not due yet
    clock.now += 2.1
    assert asyncio.run(worker.run_once()) == 0  # second failure
    clock.now += 4.1
    assert asyncio.run(worker.run_once()) == 1
    clock.now += 1000
    assert asyncio.run(worker.run_once()) == 0 and channel.sent == ["a counsellor's words"]


@pytest.mark.parametrize(
    "failure, attempts",
    [(DeliveryFailed("forbidden", retry=False), 1), (DeliveryFailed("timeout"), 4)],
    ids=["blocked-the-bot", "never-recovers"],
)
def test_dead_letter_after_a_permanent_failure_or_the_attempt_limit(
    db_url: str, failure: DeliveryFailed, attempts: int
) -> None:
    handoff, channel, worker, clock = _world(db_url, [failure] * 10, max_attempts=4)
    delivery_id = handoff.queue_message("her", "fake", "addr", "hello")
    tried = 0
    for _ in range(20):
        before = len(channel.failures)
        asyncio.run(worker.run_once())
        tried += before - len(channel.failures)
        clock.now += 400
    assert tried == attempts  # then never again
    row = _row(handoff, delivery_id)
    assert row.attempts == GAVE_UP and row.last_error.startswith("dead_letter: ") and row.sent_at is None
    assert handoff.dead_letters("fake") == 1 and handoff.dead_letters("other") == 0


def test_two_workers_send_each_message_once(db_url: str) -> None:
    handoff, channel, first, _ = _world(db_url, [])
    second = OutboxWorker(Handoff(open_engine(db_url), "pepper-" + "x" * 32, ["c"]), channel)
    for n in range(40):
        handoff.queue_message(f"her-{n}", "fake", "addr", f"message {n}")

    async def both() -> None:
        await asyncio.gather(first.run_once(), second.run_once())

    asyncio.run(both())
    assert sorted(channel.sent) == sorted(f"message {n}" for n in range(40))


def test_a_worker_for_one_user_never_takes_another_users_messages(db_url: str) -> None:
    """The terminal chat serves one user: it leases only her messages, so another terminal's
    messages are not held back by its lease (and never shown in the wrong terminal)."""
    handoff, channel, _, _ = _world(db_url, [])
    handoff.queue_message("her", "fake", "addr-her", "for her")
    handoff.queue_message("other", "fake", "addr-other", "for the other girl")
    assert asyncio.run(OutboxWorker(handoff, channel, only_user="her").run_once()) == 1
    assert channel.sent == ["for her"]
    assert asyncio.run(OutboxWorker(handoff, channel, only_user="other").run_once()) == 1  # not leased away
    assert channel.sent == ["for her", "for the other girl"]


def test_a_message_taken_while_the_database_restarts_is_not_sent_again(db_url: str) -> None:
    """Fault suite: the provider took the message, then recording it failed (PostgreSQL
    restarting); the lease ran out and she got it a second time. The record is retried instead."""
    handoff, channel, worker, clock = _world(db_url, [])
    handoff.queue_message("her", "fake", "addr", "a counsellor's words")
    mark_sent, calls = handoff.mark_sent, []

    def restarting(delivery_id: int, forget: bool = False) -> None:
        calls.append(delivery_id)
        if len(calls) == 1:
            raise sa.exc.OperationalError("UPDATE outbox", {}, Exception("server closed the connection unexpectedly"))
        mark_sent(delivery_id, forget)

    handoff.mark_sent = restarting  # type: ignore[method-assign]
    try:
        asyncio.run(worker.run_once())
    except sa.exc.OperationalError:
        pass  # (what happened before: the worker gave up on the record)
    clock.now += worker.lease_seconds + 1  # the lease of a process that gave up has run out
    asyncio.run(worker.run_once())
    assert channel.sent == ["a counsellor's words"]


_REFUSED = DeliveryFailed("bad_request: BadRequest", retry=False)
_OUTAGE = DeliveryFailed("TimedOut")


@pytest.mark.parametrize(
    "gateway_sends, sent_at_once, dead, worker_sends",
    [
        ([None, None, None], ["1", "2", "3"], [], []),
        # part 1 refused for its own content: dead-lettered alone; the worker sends 2 and 3 (they were all
        # dead-lettered with it by Telegram's own loop before the two loops became one)
        ([_REFUSED], [], ["1"], ["2", "3"]),
        ([None, _OUTAGE], ["1"], [], ["2", "3"]),  # an outage at part 2: the worker retries 2, then sends 3
    ],
    ids=["all-taken", "one-refused", "outage-midway"],
)
def test_a_gateway_sends_its_held_answer_in_order_and_leaves_the_rest_to_the_worker(
    db_url: str,
    gateway_sends: list[DeliveryFailed | None],
    sent_at_once: list[str],
    dead: list[str],
    worker_sends: list[str],
) -> None:
    """OutboxWorker.send_held: the one loop behind Telegram's and SMS's own answers."""
    handoff, channel, worker, clock = _world(db_url, [])
    held_until = clock.now + worker.lease_seconds
    with handoff.engine.begin() as conn:
        ids = handoff.queue_answer(conn, "her", "fake", "addr", [("1", ()), ("2", ()), ("3", ())], held_until)
    assert asyncio.run(worker.run_once()) == 0  # held by the gateway: the worker keeps off
    gateway = FakeChannel(list(gateway_sends))
    asyncio.run(worker.send_held(list(zip(ids, ["1", "2", "3"], strict=True)), held_until, gateway_part(gateway)))
    assert gateway.sent == sent_at_once
    clock.now += 2.1  # the hand-over delay
    for _ in range(3):
        asyncio.run(worker.run_once())
        clock.now += 5
    assert channel.sent == worker_sends  # in order, each once
    assert handoff.dead_letters("fake") == len(dead)
    assert asyncio.run(worker.run_once()) == 0 and sorted(gateway.sent + channel.sent + dead) == ["1", "2", "3"]


def gateway_part(gateway: FakeChannel) -> Callable[[str], Awaitable[None]]:
    async def send(text: str) -> None:
        await gateway.deliver(Delivery(0, None, "her", "fake", "addr", text, 0))

    return send
