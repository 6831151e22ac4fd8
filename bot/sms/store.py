"""SMS state in the gateway database: the durable inbox (dedupe by provider message id,
survives a restart) and per-number state (opt-out, the last numbered menu).

Phone numbers appear only encrypted (inbox, until processed) or as the keyed user hash.
Message text is encrypted while waiting and deleted once processed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot.db import metadata
from bot.handoff import address_cipher

inbox = sa.Table(
    "sms_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("provider_id", sa.String(128), nullable=False),
    sa.Column("user_key", sa.String(64), nullable=False, index=True),
    sa.Column("sealed", sa.Text),  # encrypted {"from": ..., "text": ...}; NULL once processed
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("processed_at", sa.Float, index=True),
    sa.UniqueConstraint("provider", "provider_id", name="uq_sms_inbox_provider_id"),
    sqlite_autoincrement=True,  # ids are never reused (SQLite reuses the largest rowid otherwise)
)
subscribers = sa.Table(
    "sms_subscribers",
    metadata,
    sa.Column("user_key", sa.String(64), primary_key=True),
    sa.Column("opted_out_at", sa.Float),
    sa.Column("menu", sa.Text),  # JSON list of payloads for replies "1", "2", ...
    sa.Column("provider", sa.String(32)),  # the provider she last wrote through: replies go back that way
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class InboxItem:
    id: int
    provider: str
    user_key: str
    sender: str
    text: str


class SmsStore:
    def __init__(self, engine: sa.engine.Engine, pepper: str, clock: Any = time.time) -> None:
        self.engine = engine
        self._cipher = address_cipher(pepper)
        self.clock = clock
        metadata.create_all(engine)

    # -- inbox ------------------------------------------------------------------------------
    def accept(self, provider: str, provider_id: str, user_key: str, sender: str, text: str) -> int | None:
        """Store an inbound SMS durably; None if this provider id was accepted before (a retry)."""
        sealed = self._cipher.encrypt(json.dumps({"from": sender, "text": text}).encode()).decode()
        try:
            with self.engine.begin() as conn:
                return int(
                    conn.execute(
                        inbox.insert().values(
                            provider=provider,
                            provider_id=provider_id[:128],
                            user_key=user_key,
                            sealed=sealed,
                            received_at=self.clock(),
                        )
                    ).inserted_primary_key[0]
                )
        except sa.exc.IntegrityError:
            return None

    def unprocessed(self, limit: int = 100) -> list[InboxItem]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(inbox).where(inbox.c.processed_at.is_(None)).order_by(inbox.c.id).limit(limit)
            ).all()
        items = []
        for row in rows:
            body = json.loads(self._cipher.decrypt(row.sealed.encode())) if row.sealed else {"from": "", "text": ""}
            items.append(InboxItem(row.id, row.provider, row.user_key, body["from"], body["text"]))
        return items

    def done(self, item_id: int) -> None:
        """Processed: the text and number are dropped; the id stays to refuse replays."""
        with self.engine.begin() as conn:
            conn.execute(inbox.update().where(inbox.c.id == item_id).values(processed_at=self.clock(), sealed=None))

    # -- per-number state ---------------------------------------------------------------------
    def _state(self, user_key: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(subscribers).where(subscribers.c.user_key == user_key)).first()

    def _upsert(self, user_key: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                subscribers.update().where(subscribers.c.user_key == user_key).values(updated_at=self.clock(), **values)
            ).rowcount
            if not updated:
                conn.execute(subscribers.insert().values(user_key=user_key, updated_at=self.clock(), **values))

    def opted_out(self, user_key: str) -> bool:
        row = self._state(user_key)
        return bool(row and row.opted_out_at)

    def set_opted_out(self, user_key: str, opted_out: bool) -> None:
        self._upsert(user_key, opted_out_at=self.clock() if opted_out else None, menu=None)

    def menu(self, user_key: str) -> list[str]:
        row = self._state(user_key)
        return list(json.loads(row.menu)) if row and row.menu else []

    def set_menu(self, user_key: str, payloads: tuple[str, ...]) -> None:
        self._upsert(user_key, menu=json.dumps(list(payloads)) if payloads else None)

    def remember_provider(self, user_key: str, provider: str) -> None:
        row = self._state(user_key)
        if row is None or row.provider != provider:
            self._upsert(user_key, provider=provider)

    def provider_of(self, user_key: str) -> str | None:
        row = self._state(user_key)
        return str(row.provider) if row and row.provider else None

    def erase_user(self, user_key: str) -> None:
        """ERASE: her SMS state and any inbox rows. The opt-out is kept if she had opted out."""
        opted_out = self.opted_out(user_key)
        with self.engine.begin() as conn:
            conn.execute(inbox.delete().where(inbox.c.user_key == user_key))
            conn.execute(subscribers.delete().where(subscribers.c.user_key == user_key))
        if opted_out:
            self.set_opted_out(user_key, True)
