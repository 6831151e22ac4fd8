"""Per-user state the gateway needs before/without Rasa: language, country, and whether she said she is under 18.

Users are stored under a keyed hash (HMAC-SHA256 with a secret pepper) of
channel + channel user id, never the raw id. SQLAlchemy Core: SQLite by default, the
same code on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import sqlalchemy as sa

from bot.db import metadata, open_engine

profiles_table = sa.Table(
    "profiles",
    metadata,
    sa.Column("user_key", sa.String(64), primary_key=True),
    sa.Column("language", sa.String(8)),
    sa.Column("language_pinned", sa.Boolean, nullable=False, default=False),
    sa.Column("country", sa.String(2)),
    # an age band, not her age: True when she said an age under 18, False when 18 or more (bot/offer reads it from
    # her messages); the offer check then adds child advice and her country's child helpline (issue 16)
    sa.Column("under_18", sa.Boolean, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass
class Profile:
    user_key: str
    language: str | None = None
    language_pinned: bool = False
    country: str | None = None
    under_18: bool | None = None  # she said an age under 18 (True) or 18+ (False); None: never said


def user_key(pepper: str, channel: str, user_id: str) -> str:
    """Stable pseudonymous id for a user on a channel."""
    return hmac.new(pepper.encode(), f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:40]


class ProfileStore:
    """Reads and writes profiles."""

    def __init__(self, database: str | sa.engine.Engine) -> None:
        self.engine = open_engine(database) if isinstance(database, str) else database

    def get(self, key: str) -> Profile:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(profiles_table).where(profiles_table.c.user_key == key)).first()
        if row is None:
            return Profile(key)
        under_18 = None if row.under_18 is None else bool(row.under_18)
        return Profile(key, row.language, bool(row.language_pinned), row.country, under_18)

    def save(self, profile: Profile) -> None:
        values = {
            "language": profile.language,
            "language_pinned": profile.language_pinned,
            "country": profile.country,
            "under_18": profile.under_18,
            "updated_at": time.time(),
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                profiles_table.update().where(profiles_table.c.user_key == profile.user_key).values(**values)
            ).rowcount
            if not updated:
                conn.execute(profiles_table.insert().values(user_key=profile.user_key, **values))

    def erase(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(profiles_table.delete().where(profiles_table.c.user_key == key))
