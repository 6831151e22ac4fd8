"""Per-user memory is bounded (issue 14 item 9): locks and flood counters are forgotten."""

from __future__ import annotations

import asyncio

from bot.channels.telegram import PRUNE_ABOVE, RateLimiter
from bot.locks import KeyedLocks
from tests.conftest import Clock


def test_keyed_locks_serialise_one_key_and_forget_it_afterwards() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def turn(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}>")
            await asyncio.sleep(pause)
            order.append(f"<{name}")

    async def main() -> None:
        await asyncio.gather(turn("her", "a", 0.02), turn("her", "b", 0.0), turn("other", "c", 0.0))
        assert len(locks) == 0
        await asyncio.gather(*(turn(f"user-{n}", "x", 0.0) for n in range(5000)))
        assert len(locks) == 0

    asyncio.run(main())
    a, b = order.index("a>"), order.index("b>")
    assert order.index("<a") < b and a < b  # the same key: one after the other, in order


def test_rate_limiter_forgets_quiet_chats() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=8, window=10.0, clock=clock)
    for chat in range(20_000):
        assert limiter.allow(chat)
        clock.now += 0.1  # 100 new chats per 10-second window
    assert len(limiter) <= PRUNE_ABOVE + 1
    for _ in range(8):
        limiter.allow(7)
    assert not limiter.allow(7)  # the limit still holds for an active chat
