"""Erasures of her Rasa tracker that could not be done at once (Rasa unreachable), retried until
done. Only the pseudonym and when it was asked are kept - no text, no address. Owned here.

/erase removes her gateway data at once; Rasa's tracker is another service. When Rasa does not
answer, she is told honestly that one part is pending, and every gateway's supervision tick
retries (``retry``) until Rasa confirms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from bot.db import metadata

log = logging.getLogger(__name__)

pending_erasures = sa.Table(
    "pending_erasures",
    metadata,
    sa.Column("user_key", sa.String(64), primary_key=True),
    sa.Column("asked_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
)


class PendingErasures:
    def __init__(self, engine: sa.engine.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.clock = engine, clock

    def add(self, user_key: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            key = pending_erasures.c.user_key == user_key
            if conn.execute(sa.select(pending_erasures.c.user_key).where(key)).first() is None:
                conn.execute(pending_erasures.insert().values(user_key=user_key, asked_at=now, attempts=0, next_at=now))

    def keys(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.user_key for r in conn.execute(sa.select(pending_erasures.c.user_key))]

    async def retry(self, erase: Callable[[str], Awaitable[object]], limit: int = 20) -> int:
        """Try the due ones again (backoff up to 10 minutes); returns how many were completed."""
        now = self.clock()
        with self.engine.connect() as conn:
            due = conn.execute(sa.select(pending_erasures).where(pending_erasures.c.next_at <= now).limit(limit)).all()
        done = 0
        for row in due:
            try:
                await erase(row.user_key)
            except Exception as error:  # noqa: BLE001 - Rasa still away: later
                delay = min(30.0 * 2**row.attempts, 600.0)
                with self.engine.begin() as conn:
                    conn.execute(
                        pending_erasures.update()
                        .where(pending_erasures.c.user_key == row.user_key)
                        .values(attempts=row.attempts + 1, next_at=now + delay)
                    )
                log.warning("rasa tracker erasure still pending (%s)", type(error).__name__)
                continue
            with self.engine.begin() as conn:
                conn.execute(pending_erasures.delete().where(pending_erasures.c.user_key == row.user_key))
            done += 1
        return done
