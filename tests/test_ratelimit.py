"""Token buckets shared through the database (SQLite and PostgreSQL), used for SMS rate limits."""

from __future__ import annotations

import threading

import pytest

from bot.db import open_engine
from bot.ratelimit import Buckets, Rate
from tests.conftest import Clock


def test_a_bucket_allows_its_burst_then_refills(db_url: str) -> None:
    clock = Clock()
    buckets = Buckets(open_engine(db_url), clock)
    rate = Rate(3, 30)  # 3 at once, one more every 10 s
    assert [buckets.take("n", rate) for _ in range(5)] == [True, True, True, False, False]
    clock.now += 10.5
    assert buckets.take("n", rate) and not buckets.take("n", rate)
    assert buckets.take("other", rate)  # buckets are separate
    assert buckets.take("seg", Rate(10, 3600), cost=7) and not buckets.take("seg", Rate(10, 3600), cost=7)
    buckets.forget("n")
    assert buckets.take("n", rate)


def test_two_gateways_share_one_budget(db_url: str) -> None:
    clock = Clock()
    first, second = Buckets(open_engine(db_url), clock), Buckets(open_engine(db_url), clock)
    rate = Rate(30, 10**9)  # no refill during the test
    won: list[bool] = []

    def gateway(buckets: Buckets) -> None:
        for _ in range(40):
            won.append(buckets.take("everyone", rate))

    threads = [threading.Thread(target=gateway, args=(b,)) for b in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(won) == 30 and len(won) == 80


def test_rates_are_parsed_and_checked() -> None:
    assert Rate.parse("20/600") == Rate(20, 600)
    with pytest.raises(ValueError):
        Rate.parse("0/10")
