"""The Telegram channel's own tables and SQL (no Telegram or Rasa imports).

Four tables, owned here and nowhere else:
- ``telegram_messages``: ids of messages sent into her private chat, so /erase can delete them
  (Telegram allows it for 48 hours); no text, no chat id (the chat id comes with /erase);
- ``telegram_group_messages_v2``: which message of the counsellors' group (a card or a relayed
  line) belongs to which case, so a counsellor's reply reaches the right girl - and only while
  the case is active;
- ``telegram_relay_progress``: the last line of each case relayed to the group, and a lease, so
  that with several gateway processes each line is relayed once, in order;
- ``telegram_updates``: the update ids the webhook took, each claimed by one gateway with a lease
  and marked done in the transaction that records her answer (bot/channels/telegram.py), so a
  replay - Telegram sends an update again when it got no 200, to any gateway - is acknowledged
  without a second answer. Only the id, the lease and two times; pruned after 48 hours
  (Telegram gives up re-sending an update after 24).
The escalations and transcript are the handoff's (bot/handoff.py); this module only reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from bot.db import metadata
from bot.handoff import ACTIVE, escalations, transcript

RELAY_LEASE_SECONDS = 60.0
UPDATE_LEASE_SECONDS = 120.0  # longer than handling one update (Rasa's timeout, retries, an image)
UPDATE_RETENTION_SECONDS = 48 * 3600
CLAIMED, BUSY, DONE = "claimed", "busy", "done"

sent_messages = sa.Table(
    "telegram_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_key", sa.String(64), nullable=False, index=True),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (SQLite reuses the largest rowid otherwise)
)
group_messages = sa.Table(
    "telegram_group_messages_v2",
    metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True),
    sa.Column("message_id", sa.BigInteger, primary_key=True),
    sa.Column("escalation_id", sa.Integer, nullable=False, index=True),
    sa.Column("is_card", sa.Boolean, nullable=False, default=False),
)
relay_progress = sa.Table(
    "telegram_relay_progress",
    metadata,
    sa.Column("escalation_id", sa.Integer, primary_key=True),
    sa.Column("last_line_id", sa.Integer, nullable=False, default=0),
    sa.Column("lease_until", sa.Float),  # a gateway is relaying this case's new lines (several run)
)

handled_updates = sa.Table(
    "telegram_updates",
    metadata,
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    sa.Column("lease_until", sa.Float),  # a gateway is handling it; another may take it once this passes
    sa.Column("done_at", sa.Float),  # handled (her answer recorded): replays are acknowledged, not answered
)


@dataclass(frozen=True)
class EndedCaseMessage:
    """A group message of a case that is no longer active (closed, released or erased)."""

    escalation_id: int
    message_id: int
    erased: bool


class TelegramStore:
    def __init__(self, engine: sa.engine.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    # -- her private chat --------------------------------------------------------------------
    def remember_sent(self, user_key: str, message_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sent_messages.insert().values(user_key=user_key, message_id=message_id, at=self.clock()))

    def take_sent(self, user_key: str, newer_than: float) -> list[int]:
        """Forget every message id of hers; return those Telegram may still delete."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(sent_messages.c.message_id, sent_messages.c.at).where(sent_messages.c.user_key == user_key)
            ).all()
            conn.execute(sent_messages.delete().where(sent_messages.c.user_key == user_key))
        return sorted({r.message_id for r in rows if r.at >= newer_than})

    # -- the counsellors' group ----------------------------------------------------------------
    def record_group_message(self, chat_id: int, message_id: int, escalation_id: int, is_card: bool = False) -> None:
        with self.engine.begin() as conn:
            key = (group_messages.c.chat_id == chat_id) & (group_messages.c.message_id == message_id)
            conn.execute(group_messages.delete().where(key))  # ids restart if the group is re-created
            conn.execute(
                group_messages.insert().values(
                    chat_id=chat_id, message_id=message_id, escalation_id=escalation_id, is_card=is_card
                )
            )

    def card_of(self, chat_id: int | None, escalation_id: int) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(group_messages.c.message_id)
                .where(
                    group_messages.c.chat_id == chat_id,
                    group_messages.c.escalation_id == escalation_id,
                    group_messages.c.is_card.is_(True),
                )
                .order_by(group_messages.c.message_id.desc())
            ).scalar()

    def escalation_of(self, chat_id: int, message_id: int) -> int | None:
        """The case a group message belongs to (None: not ours, or its case has ended)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(group_messages.c.escalation_id).where(
                    group_messages.c.chat_id == chat_id, group_messages.c.message_id == message_id
                )
            ).scalar()

    def reannounce_missing_cards(self, chat_id: int) -> int:
        """Open cases whose card never reached the group are announced again (not the others)."""
        has_card = (
            sa.select(group_messages.c.message_id)
            .where(
                group_messages.c.chat_id == chat_id,
                group_messages.c.escalation_id == escalations.c.id,
                group_messages.c.is_card.is_(True),
            )
            .exists()
        )
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    escalations.update().where(escalations.c.status == "open", ~has_card).values(notified_at=None)
                ).rowcount
            )

    def take_ended_cases(self) -> list[EndedCaseMessage]:
        """Drop the mappings and relay positions of cases no longer active; return their messages."""
        with self.engine.begin() as conn:
            alive = sa.select(escalations.c.id).where(
                escalations.c.id == group_messages.c.escalation_id, escalations.c.status.in_(ACTIVE)
            )
            erased = ~sa.exists().where(escalations.c.id == group_messages.c.escalation_id)
            rows = conn.execute(
                sa.select(group_messages.c.escalation_id, group_messages.c.message_id, erased.label("erased")).where(
                    ~sa.exists(alive)
                )
            ).all()
            if not rows:
                return []
            ids = sorted({r.escalation_id for r in rows})
            conn.execute(group_messages.delete().where(group_messages.c.escalation_id.in_(ids)))
            conn.execute(relay_progress.delete().where(relay_progress.c.escalation_id.in_(ids)))
        return [EndedCaseMessage(r.escalation_id, r.message_id, bool(r.erased)) for r in rows]

    # -- relaying her lines to the group --------------------------------------------------------
    def start_relay(self, escalation_id: int) -> None:
        """The card is posted: relay her lines from now on (the card announced the earlier ones)."""
        with self.engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(transcript.c.id))).scalar()
            conn.execute(relay_progress.delete().where(relay_progress.c.escalation_id == escalation_id))
            conn.execute(relay_progress.insert().values(escalation_id=escalation_id, last_line_id=last or 0))

    def relayed_cases(self) -> list[int]:
        with self.engine.connect() as conn:
            return [int(r.escalation_id) for r in conn.execute(sa.select(relay_progress.c.escalation_id))]

    def stop_relay(self, escalation_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(relay_progress.delete().where(relay_progress.c.escalation_id == escalation_id))

    def lease_relay(self, escalation_id: int) -> int | None:
        """Take the case's relay position for this gateway (one conditional UPDATE); its last
        relayed line id, or None when another gateway holds it. A dead gateway's lease expires."""
        now = self.clock()
        free = sa.or_(relay_progress.c.lease_until.is_(None), relay_progress.c.lease_until < now)
        with self.engine.begin() as conn:
            won = conn.execute(
                relay_progress.update()
                .where(relay_progress.c.escalation_id == escalation_id, free)
                .values(lease_until=now + RELAY_LEASE_SECONDS)
            ).rowcount
            if won != 1:
                return None
            return int(
                conn.execute(
                    sa.select(relay_progress.c.last_line_id).where(relay_progress.c.escalation_id == escalation_id)
                ).scalar_one()
            )

    def relayed(self, escalation_id: int, line_id: int) -> None:
        """The position moves line by line: a crash repeats at most the line being sent."""
        with self.engine.begin() as conn:
            conn.execute(
                relay_progress.update().where(relay_progress.c.escalation_id == escalation_id).values(last_line_id=line_id)
            )

    def release_relay(self, escalation_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                relay_progress.update().where(relay_progress.c.escalation_id == escalation_id).values(lease_until=None)
            )

    # -- updates the webhook took (several gateways behind one URL) ------------------------------
    def claim_update(self, update_id: int, lease_seconds: float = UPDATE_LEASE_SECONDS) -> str:
        """CLAIMED: this gateway handles it now; BUSY: another handling holds a live lease (ask
        Telegram to send it again later); DONE: handled before (acknowledge, do not answer).

        A new id is claimed by its INSERT (the primary key lets one gateway in); a known one by
        one conditional UPDATE (not done, lease free or expired), as the SMS inbox claims rows."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    handled_updates.insert().values(update_id=update_id, received_at=now, lease_until=now + lease_seconds)
                )
            return CLAIMED
        except sa.exc.IntegrityError:
            pass
        free = sa.or_(handled_updates.c.lease_until.is_(None), handled_updates.c.lease_until < now)
        with self.engine.begin() as conn:
            won = conn.execute(
                handled_updates.update()
                .where(handled_updates.c.update_id == update_id, handled_updates.c.done_at.is_(None), free)
                .values(lease_until=now + lease_seconds)
            ).rowcount
            if won == 1:
                return CLAIMED
            done = conn.execute(
                sa.select(handled_updates.c.done_at).where(handled_updates.c.update_id == update_id)
            ).scalar()
        return DONE if done is not None else BUSY

    def mark_done(self, conn: sa.engine.Connection, update_id: int) -> bool:
        """In the caller's transaction (the one recording her answer): True if this handling is the
        one that answers; False if another gateway (which took over an expired lease) already did."""
        now = self.clock()
        return bool(
            conn.execute(
                handled_updates.update()
                .where(handled_updates.c.update_id == update_id, handled_updates.c.done_at.is_(None))
                .values(done_at=now, lease_until=None)
            ).rowcount
        )

    def finish_update(self, update_id: int) -> None:
        """Handled with nothing recorded for her (a group message, a button, nothing to say)."""
        with self.engine.begin() as conn:
            self.mark_done(conn, update_id)

    def release_update(self, update_id: int) -> None:
        """Handling failed before anything reached her: the next try (any gateway) takes it at once."""
        with self.engine.begin() as conn:
            conn.execute(
                handled_updates.update()
                .where(handled_updates.c.update_id == update_id, handled_updates.c.done_at.is_(None))
                .values(lease_until=None)
            )

    def prune_updates(self, retention_seconds: float = UPDATE_RETENTION_SECONDS) -> int:
        """Forget update ids older than the retention (Telegram stopped re-sending them long ago)."""
        with self.engine.begin() as conn:
            cutoff = self.clock() - retention_seconds
            return int(conn.execute(handled_updates.delete().where(handled_updates.c.received_at < cutoff)).rowcount)
