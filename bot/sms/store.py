"""SMS state in the gateway database: the durable inbox (dedupe by provider message id,
survives a restart) and per-number state (opt-out, the last numbered menu).

Phone numbers appear only encrypted (inbox, until processed) or as the keyed user hash.
Message text is encrypted while waiting and deleted once processed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import InvalidToken

from bot.db import metadata
from bot.handoff import address_cipher

log = logging.getLogger(__name__)

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
    # Several gateways share the inbox: a row is processed by the one that leased it; a dead
    # gateway's lease runs out and another takes the row over.
    sa.Column("lease_until", sa.Float),
    sa.Column("attempts", sa.Integer),
    sa.Column("last_error", sa.String(64)),  # "dead_letter: <error>" once it is given up
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
class SubscriberState:
    """One number's row: opted out, the numbered menu of her last reply, her provider, when it was last written."""

    opted_out: bool = False
    menu: tuple[str, ...] = ()
    provider: str | None = None
    updated_at: float | None = None  # None: no row yet


INBOX_LEASE_SECONDS = 120.0  # longer than one message's processing (Rasa timeout x retries)
INBOX_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class InboxItem:
    id: int
    provider: str
    user_key: str
    sender: str
    text: str


class SmsStore:
    def __init__(
        self, engine: sa.engine.Engine, pepper: str, clock: Any = time.time, previous_peppers: Sequence[str] = ()
    ) -> None:
        self.engine = engine
        self._cipher = address_cipher(pepper, previous_peppers)
        self.clock = clock

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
        return [self._item(row) for row in rows]

    def claim(self, limit: int = 100, lease_seconds: float = INBOX_LEASE_SECONDS) -> list[InboxItem]:
        """Lease waiting messages for this gateway: each row goes to exactly one gateway.

        A row is claimed with one conditional UPDATE (unprocessed, lease free or expired, and no
        older unprocessed message of the same number), so two gateways never both process it and
        one number's messages are processed in the order they came, whichever gateway takes them."""
        now = self.clock()
        free = sa.or_(inbox.c.lease_until.is_(None), inbox.c.lease_until < now)
        with self.engine.connect() as conn:
            candidates = conn.execute(
                sa.select(inbox.c.id, inbox.c.user_key)
                .where(inbox.c.processed_at.is_(None), free)
                .order_by(inbox.c.id)
                .limit(limit)
            ).all()
        older = inbox.alias("older")
        claimed = []
        for candidate in candidates:
            earlier_waiting = (
                sa.select(older.c.id)
                .where(older.c.user_key == candidate.user_key, older.c.processed_at.is_(None), older.c.id < candidate.id)
                .exists()
            )
            with self.engine.begin() as conn:
                won = conn.execute(
                    inbox.update()
                    .where(inbox.c.id == candidate.id, inbox.c.processed_at.is_(None), free, ~earlier_waiting)
                    .values(lease_until=now + lease_seconds, attempts=sa.func.coalesce(inbox.c.attempts, 0) + 1)
                ).rowcount
                row = conn.execute(sa.select(inbox).where(inbox.c.id == candidate.id)).first() if won == 1 else None
            if row is None:
                continue
            try:
                claimed.append(self._item(row))
            except InvalidToken:
                # sealed under a pepper this gateway does not hold: never block the others
                self._dead_letter(row.id, "unreadable: sealed with another pepper")
                log.error("sms message unreadable with this pepper: dead letter (id=%s); check SP_PEPPER", row.id)
        return claimed

    def _dead_letter(self, item_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                inbox.update()
                .where(inbox.c.id == item_id)
                .values(processed_at=self.clock(), sealed=None, lease_until=None, last_error=f"dead_letter: {error}"[:64])
            )

    def _item(self, row: Any) -> InboxItem:
        body = json.loads(self._cipher.decrypt(row.sealed.encode())) if row.sealed else {"from": "", "text": ""}
        return InboxItem(row.id, row.provider, row.user_key, body["from"], body["text"])

    def failed(self, item_id: int, error: str, max_attempts: int = INBOX_MAX_ATTEMPTS) -> bool:
        """Processing failed: retry after a backoff, or dead-letter after ``max_attempts``.

        Returns True when the message was given up (it stays recorded, without text)."""
        now = self.clock()
        with self.engine.begin() as conn:
            attempts = conn.execute(sa.select(inbox.c.attempts).where(inbox.c.id == item_id)).scalar() or 0
            if attempts >= max_attempts:
                conn.execute(
                    inbox.update()
                    .where(inbox.c.id == item_id)
                    .values(processed_at=now, sealed=None, lease_until=None, last_error=f"dead_letter: {error}"[:64])
                )
                return True
            backoff = min(2.0**attempts, 300.0)
            conn.execute(
                inbox.update().where(inbox.c.id == item_id).values(lease_until=now + backoff, last_error=error[:64])
            )
        return False

    def done(self, item_id: int) -> None:
        """Processed: the text and number are dropped; the id stays to refuse replays."""
        with self.engine.begin() as conn:
            self.mark_done(conn, item_id)

    def mark_done(self, conn: Any, item_id: int) -> None:
        """``done`` in the caller's transaction (the gateway's, which queues her reply in the same one)."""
        conn.execute(
            inbox.update().where(inbox.c.id == item_id).values(processed_at=self.clock(), sealed=None, lease_until=None)
        )

    # -- per-number state ---------------------------------------------------------------------
    def state(self, user_key: str) -> SubscriberState:
        """Her opt-out, menu and provider in one read (the gateway reads it once per message)."""
        row = self._state(user_key)
        if row is None:
            return SubscriberState()
        return SubscriberState(
            opted_out=bool(row.opted_out_at),
            menu=tuple(json.loads(row.menu)) if row.menu else (),
            provider=str(row.provider) if row.provider else None,
            updated_at=float(row.updated_at),
        )

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
