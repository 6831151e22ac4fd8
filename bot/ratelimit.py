"""Token buckets shared by every gateway process through the database (no Rasa imports).

A bucket holds up to ``capacity`` tokens and gains ``capacity / period`` per second; taking fails
when it holds fewer than asked. Each take is one optimistic UPDATE (the row's previous
``tokens`` and ``updated_at`` must still be there), retried on a lost race, so several gateways on one
PostgreSQL database share one budget. Owned here: the ``rate_buckets`` table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from bot.db import metadata

rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Rate:
    capacity: float
    period: float  # seconds to refill a whole bucket

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"20/600"``: 20 at once, 20 more every 600 seconds."""
        amount, _, seconds = text.partition("/")
        rate = cls(float(amount), float(seconds or 1))
        if rate.capacity <= 0 or rate.period <= 0:
            raise ValueError(f"rate {text!r}: both numbers must be positive")
        return rate


class Buckets:
    def __init__(self, engine: sa.engine.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.clock = engine, clock

    def take(self, name: str, rate: Rate, cost: float = 1.0) -> bool:
        for _ in range(50):  # lost races only
            now = self.clock()
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(rate_buckets).where(rate_buckets.c.name == name)).first()
                if row is None:
                    if cost > rate.capacity:
                        return False
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                rate_buckets.insert().values(name=name, tokens=rate.capacity - cost, updated_at=now)
                            )
                    except sa.exc.IntegrityError:
                        continue  # another process created it first
                    return True
                elapsed = max(0.0, now - row.updated_at)
                tokens = min(rate.capacity, row.tokens + elapsed * rate.capacity / rate.period)
                if tokens < cost:
                    return False
                won = conn.execute(
                    rate_buckets.update()
                    .where(
                        rate_buckets.c.name == name,
                        rate_buckets.c.updated_at == row.updated_at,
                        rate_buckets.c.tokens == row.tokens,
                    )
                    .values(tokens=tokens - cost, updated_at=max(now, row.updated_at))
                ).rowcount
                if won == 1:
                    return True
        return False

    def forget(self, prefix: str) -> None:
        """Drop buckets by name prefix (erase: a number's bucket is keyed by her pseudonym)."""
        with self.engine.begin() as conn:
            conn.execute(rate_buckets.delete().where(rate_buckets.c.name.startswith(prefix)))
