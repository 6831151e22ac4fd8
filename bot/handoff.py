"""The handoff core: durable escalations, one counsellor per conversation, relay, outbox.

Every channel (local chat, Telegram, SMS) and every counsellor interface (terminal
console, Telegram group) goes through this one module, so the rules hold everywhere:
- an escalation is committed to the database before the user is answered;
- only allow-listed counsellors act, and one counsellor owns a conversation (the claim
  is a single conditional UPDATE, so two counsellors cannot both win);
- while a conversation is handed over her messages go to the transcript (for the
  counsellor), not to Rasa; counsellor replies go to a durable outbox that the channel
  delivers and marks sent;
- counsellor reads and actions are audited; channel addresses (chat ids, phone numbers)
  are stored encrypted with a key derived from the secret pepper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.crypto import SEALED_PREFIX
from bot.db import metadata
from bot.stats import record_claim_wait

OPEN, CLAIMED, RELEASED, CLOSED = "open", "claimed", "released", "closed"
UNREADABLE = "[unreadable: sealed with another pepper]"
GAVE_UP = 1_000_000  # outbox attempts value of a delivery that will not be retried
ACTIVE = (OPEN, CLAIMED)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_key", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.Text, nullable=False),  # encrypted
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("country", sa.String(2)),
    sa.Column("risk_level", sa.String(8), nullable=False),
    sa.Column("risk_category", sa.String(32), nullable=False),
    sa.Column("triggers", sa.Text, nullable=False, default="[]"),
    sa.Column("status", sa.String(10), nullable=False, index=True),
    sa.Column("counsellor", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("outcome", sa.String(64)),
    sa.Column("notified_at", sa.Float),
    sa.Column("timeout_notice_at", sa.Float),
    sa.Column("rasa_paused", sa.Boolean, nullable=False, default=False),
    sqlite_autoincrement=True,  # ids are never reused (SQLite reuses the largest rowid otherwise)
)
transcript = sa.Table(
    "escalation_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.Integer, sa.ForeignKey("escalations.id", ondelete="CASCADE"), index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("sender", sa.String(16), nullable=False),  # user | bot | counsellor
    sa.Column("counsellor", sa.String(64)),
    sa.Column("text", sa.Text, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (SQLite reuses the largest rowid otherwise)
)
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.Integer, sa.ForeignKey("escalations.id", ondelete="CASCADE"), index=True),
    sa.Column("user_key", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False, index=True),
    sa.Column("address", sa.Text, nullable=False),  # encrypted
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.String(200)),
    sa.Column("lease_until", sa.Float),  # a gateway process is sending it (several run side by side)
    sa.Column("buttons", sa.Text),  # sealed JSON [[title, payload], ...] (Telegram), or NULL
    sqlite_autoincrement=True,  # ids are never reused (SQLite reuses the largest rowid otherwise)
)
audit = sa.Table(
    "counsellor_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("counsellor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("escalation_id", sa.Integer),
    sqlite_autoincrement=True,  # ids are never reused (SQLite reuses the largest rowid otherwise)
)


class NotAllowed(Exception):
    """The person is not an allow-listed counsellor, or does not own this conversation."""


class AlreadyClaimed(Exception):
    """Another counsellor owns this conversation (or it has ended)."""


@dataclass(frozen=True)
class Escalation:
    id: int
    user_key: str
    channel: str
    address: str
    language: str
    country: str | None
    risk_level: str
    risk_category: str
    triggers: tuple[str, ...]
    status: str
    counsellor: str | None
    created_at: float
    claimed_at: float | None
    outcome: str | None
    timeout_notice_at: float | None
    rasa_paused: bool

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    at: float
    sender: str
    counsellor: str | None
    text: str


@dataclass(frozen=True)
class Delivery:
    """A message waiting in the outbox for its channel."""

    id: int
    escalation_id: int | None
    user_key: str
    channel: str
    address: str
    text: str
    attempts: int
    buttons: tuple[tuple[str, str], ...] = ()


Buttons = Sequence[tuple[str, str]]


def address_cipher(pepper: str, previous: Sequence[str] = ()) -> MultiFernet:
    """Encrypts addresses, her words and outgoing texts at rest with a key derived from the pepper;
    keys of ``previous`` peppers (before a rotation) still open what they sealed."""
    return MultiFernet([_fernet(p) for p in (pepper, *previous)])


def _fernet(pepper: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"safe-passage-address:" + pepper.encode()).digest()))


class Handoff:
    """Escalations and the counsellor handoff, on the gateway database."""

    def __init__(
        self,
        engine: sa.engine.Engine,
        pepper: str,
        counsellors: Iterable[str],
        clock: Any = time.time,
        previous_peppers: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self._cipher = address_cipher(pepper, previous_peppers)
        self.counsellors = frozenset(c.strip() for c in counsellors if c.strip())
        self.clock = clock
        self.seal_plain_rows()  # an older version's plain-text rows (idempotent, cheap when none)

    # -- helpers -------------------------------------------------------------------------
    def _seal(self, address: str) -> str:
        return self._cipher.encrypt(address.encode()).decode()

    def _open(self, sealed: str) -> str:
        try:
            return self._cipher.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return ""

    def _open_text(self, stored: str) -> str:
        """Her words, triggers and outgoing texts are sealed like addresses; rows written before
        that (plain text) are still read, and sealed by ``seal_plain_rows`` at start."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        try:
            return self._cipher.decrypt(stored.encode()).decode()
        except InvalidToken:
            return UNREADABLE

    def seal_plain_rows(self) -> int:
        """Seal transcript lines, triggers and outbox texts stored in clear by an older version."""
        sealed = 0
        with self.engine.begin() as conn:
            for table, column in (
                (transcript, transcript.c.text),
                (outbox, outbox.c.text),
                (escalations, escalations.c.triggers),
            ):
                rows = conn.execute(sa.select(table.c.id, column).where(~column.startswith(SEALED_PREFIX))).all()
                for row in rows:
                    value = row[1]
                    if table is escalations and value in ("", "[]"):
                        continue  # nothing to hide (also the anonymised rows retention leaves)
                    conn.execute(table.update().where(table.c.id == row.id).values({column.name: self._seal(value)}))
                    sealed += 1
        return sealed

    def _row(self, row: Any) -> Escalation:
        return Escalation(
            id=row.id,
            user_key=row.user_key,
            channel=row.channel,
            address=self._open(row.address),
            language=row.language,
            country=row.country,
            risk_level=row.risk_level,
            risk_category=row.risk_category,
            triggers=tuple(json.loads(self._open_text(row.triggers or "[]"))),
            status=row.status,
            counsellor=row.counsellor,
            created_at=row.created_at,
            claimed_at=row.claimed_at,
            outcome=row.outcome,
            timeout_notice_at=row.timeout_notice_at,
            rasa_paused=bool(row.rasa_paused),
        )

    def _check_counsellor(self, counsellor: str, escalation_id: int | None = None) -> None:
        if counsellor not in self.counsellors:
            with self.engine.begin() as conn:  # a refusal is part of "who tried to see what"
                self._audit(conn, counsellor[:64], "refused", escalation_id)
            raise NotAllowed(f"{counsellor!r} is not on the counsellor allow-list")

    def _audit(self, conn: Any, counsellor: str, action: str, escalation_id: int | None) -> None:
        conn.execute(
            audit.insert().values(at=self.clock(), counsellor=counsellor, action=action, escalation_id=escalation_id)
        )

    # -- user side -----------------------------------------------------------------------
    def active_for(self, user_key: str) -> Escalation | None:
        """Her open or claimed escalation, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(escalations)
                .where(escalations.c.user_key == user_key, escalations.c.status.in_(ACTIVE))
                .order_by(escalations.c.id.desc())
            ).first()
        return self._row(row) if row else None

    def escalate(
        self,
        *,
        user_key: str,
        channel: str,
        address: str,
        language: str,
        country: str | None,
        risk_level: str,
        risk_category: str,
        triggers: Iterable[str],
        message: str,
    ) -> tuple[Escalation, bool]:
        """Open (and commit) an escalation, or add to her active one. Returns (escalation, is_new)."""
        now = self.clock()
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(escalations.c.id, escalations.c.risk_level)
                .where(escalations.c.user_key == user_key, escalations.c.status.in_(ACTIVE))
                .order_by(escalations.c.id.desc())
            ).first()
            if existing is None:
                escalation_id = conn.execute(
                    escalations.insert().values(
                        user_key=user_key,
                        channel=channel,
                        address=self._seal(address),
                        language=language,
                        country=country,
                        risk_level=risk_level,
                        risk_category=risk_category,
                        triggers=self._seal(json.dumps(list(triggers), ensure_ascii=False)),
                        status=OPEN,
                        created_at=now,
                        rasa_paused=False,
                    )
                ).inserted_primary_key[0]
                is_new = True
            else:
                escalation_id, is_new = existing.id, False
                if existing.risk_level != "urgent" and risk_level == "urgent":
                    conn.execute(
                        escalations.update()
                        .where(escalations.c.id == escalation_id)
                        .values(risk_level=risk_level, risk_category=risk_category, notified_at=None)
                    )
            conn.execute(
                transcript.insert().values(escalation_id=escalation_id, at=now, sender="user", text=self._seal(message))
            )
        escalation = self.get(escalation_id)
        assert escalation is not None
        return escalation, is_new

    def user_said(self, escalation_id: int, text: str) -> None:
        """A message from her while handed over: into the transcript for the counsellor."""
        with self.engine.begin() as conn:
            conn.execute(
                transcript.insert().values(
                    escalation_id=escalation_id, at=self.clock(), sender="user", text=self._seal(text)
                )
            )

    def bot_said(self, escalation_id: int, text: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                transcript.insert().values(escalation_id=escalation_id, at=self.clock(), sender="bot", text=self._seal(text))
            )

    def mark_paused(self, escalation_id: int, paused: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(escalations.update().where(escalations.c.id == escalation_id).values(rasa_paused=paused))

    def end_by_user(self, escalation_id: int) -> None:
        """She ended the handoff herself (/stop)."""
        with self.engine.begin() as conn:
            conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id, escalations.c.status.in_(ACTIVE))
                .values(status=CLOSED, outcome="ended_by_user", ended_at=self.clock())
            )

    # -- counsellor side -----------------------------------------------------------------
    def get(self, escalation_id: int) -> Escalation | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(escalations).where(escalations.c.id == escalation_id)).first()
        return self._row(row) if row else None

    def queue(self, counsellor: str, audit: bool = True) -> list[Escalation]:
        """Open and claimed escalations, urgent first, oldest first. ``audit=False`` for a live
        view that redraws itself (the web desk's updates), which is not a person reading."""
        self._check_counsellor(counsellor)
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(escalations).where(escalations.c.status.in_(ACTIVE)).order_by(escalations.c.created_at)
            ).all()
            if audit:
                self._audit(conn, counsellor, "view_queue", None)
        items = [self._row(r) for r in rows]
        return sorted(items, key=lambda e: (e.risk_level != "urgent", e.created_at))

    def read_transcript(
        self, counsellor: str, escalation_id: int, after_id: int = 0, audit: str = "always"
    ) -> list[TranscriptLine]:
        """The conversation since escalation. Human reads are audited (who read what, when):
        ``audit="always"`` for an explicit read, ``"when_shown"`` for a live view that polls
        (a row only when new lines were shown), ``"never"`` for the system's own relay."""
        self._check_counsellor(counsellor, escalation_id)
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(transcript)
                .where(transcript.c.escalation_id == escalation_id, transcript.c.id > after_id)
                .order_by(transcript.c.id)
            ).all()
            if audit == "always" or (audit == "when_shown" and rows):
                self._audit(conn, counsellor, "read_transcript", escalation_id)
        return [TranscriptLine(r.id, r.at, r.sender, r.counsellor, self._open_text(r.text)) for r in rows]

    def claim(self, counsellor: str, escalation_id: int) -> Escalation:
        """Take ownership; exactly one counsellor can win."""
        self._check_counsellor(counsellor, escalation_id)
        with self.engine.begin() as conn:
            now = self.clock()
            won = conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id, escalations.c.status == OPEN)
                .values(status=CLAIMED, counsellor=counsellor, claimed_at=now)
            ).rowcount
            self._audit(conn, counsellor, "claim" if won else "claim_refused", escalation_id)
            if won:
                created = conn.execute(sa.select(escalations.c.created_at).where(escalations.c.id == escalation_id))
                record_claim_wait(conn, now - float(created.scalar_one()), now)
        if not won:
            raise AlreadyClaimed(f"escalation {escalation_id} is not open")
        escalation = self.get(escalation_id)
        assert escalation is not None
        return escalation

    def transfer(self, counsellor: str, escalation_id: int, to: str) -> Escalation:
        """Hand a claimed case from its owner to another allow-listed counsellor (who accepted it):
        one conditional UPDATE, so the case still has exactly one owner at every moment."""
        self._check_counsellor(to, escalation_id)
        self._owned(counsellor, escalation_id)
        with self.engine.begin() as conn:
            moved = conn.execute(
                escalations.update()
                .where(
                    escalations.c.id == escalation_id,
                    escalations.c.status == CLAIMED,
                    escalations.c.counsellor == counsellor,
                )
                .values(counsellor=to)
            ).rowcount
            self._audit(conn, counsellor, "transfer_out" if moved else "transfer_refused", escalation_id)
            if moved:
                self._audit(conn, to, "transfer_in", escalation_id)
        if not moved:
            raise AlreadyClaimed(f"escalation {escalation_id} is no longer held by {counsellor!r}")
        escalation = self.get(escalation_id)
        assert escalation is not None
        return escalation

    def _owned(self, counsellor: str, escalation_id: int) -> Escalation:
        self._check_counsellor(counsellor)
        escalation = self.get(escalation_id)
        if escalation is None or escalation.status != CLAIMED or escalation.counsellor != counsellor:
            raise NotAllowed(f"escalation {escalation_id} is not claimed by {counsellor!r}")
        return escalation

    def send(self, counsellor: str, escalation_id: int, text: str) -> int:
        """Counsellor -> user: transcript plus a durable outbox entry for her channel."""
        escalation = self._owned(counsellor, escalation_id)
        text = text.strip()
        if not text:
            raise ValueError("empty message")
        with self.engine.begin() as conn:
            conn.execute(
                transcript.insert().values(
                    escalation_id=escalation_id,
                    at=self.clock(),
                    sender="counsellor",
                    counsellor=counsellor,
                    text=self._seal(text),
                )
            )
            self._audit(conn, counsellor, "send", escalation_id)
            return self._enqueue(conn, escalation, text)

    def _enqueue(self, conn: Any, escalation: Escalation, text: str) -> int:
        return int(
            conn.execute(
                outbox.insert().values(
                    escalation_id=escalation.id,
                    user_key=escalation.user_key,
                    channel=escalation.channel,
                    address=self._seal(escalation.address),
                    text=self._seal(text),
                    created_at=self.clock(),
                    attempts=0,
                )
            ).inserted_primary_key[0]
        )

    def notify_user(self, escalation: Escalation, text: str) -> int:
        """A bot message to her outside a turn (timeout notice, hand-back)."""
        with self.engine.begin() as conn:
            conn.execute(
                transcript.insert().values(escalation_id=escalation.id, at=self.clock(), sender="bot", text=self._seal(text))
            )
            return self._enqueue(conn, escalation, text)

    def release(self, counsellor: str, escalation_id: int) -> Escalation:
        """Hand the conversation back to the bot."""
        return self._end(counsellor, escalation_id, RELEASED, "released_to_bot")

    def close(self, counsellor: str, escalation_id: int, outcome: str) -> Escalation:
        """End the case with an outcome (e.g. referred_police, safe, no_contact)."""
        outcome = outcome.strip()[:64] or "closed"
        return self._end(counsellor, escalation_id, CLOSED, outcome)

    def _end(self, counsellor: str, escalation_id: int, status: str, outcome: str) -> Escalation:
        self._owned(counsellor, escalation_id)
        with self.engine.begin() as conn:
            conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id)
                .values(status=status, outcome=outcome, ended_at=self.clock())
            )
            self._audit(conn, counsellor, status, escalation_id)
        escalation = self.get(escalation_id)
        assert escalation is not None
        return escalation

    # -- supervision (timeouts, notifications, delivery) ---------------------------------
    def overdue(self, timeout_seconds: float) -> list[Escalation]:
        """Open escalations nobody claimed in time and not yet told so."""
        limit = self.clock() - timeout_seconds
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(escalations).where(
                    escalations.c.status == OPEN,
                    escalations.c.created_at <= limit,
                    escalations.c.timeout_notice_at.is_(None),
                )
            ).all()
        return [self._row(r) for r in rows]

    def mark_timeout_notice(self, escalation_id: int) -> bool:
        """Record the timeout notice once (True only for the process that recorded it)."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    escalations.update()
                    .where(escalations.c.id == escalation_id, escalations.c.timeout_notice_at.is_(None))
                    .values(timeout_notice_at=self.clock())
                ).rowcount
            )

    def unnotified(self) -> list[Escalation]:
        """Active escalations counsellors have not been alerted to (yet, or since a restart)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(escalations)
                .where(escalations.c.status == OPEN, escalations.c.notified_at.is_(None))
                .order_by(escalations.c.id)
            ).all()
        return [self._row(r) for r in rows]

    def postpone(self, delivery_id: int, seconds: float) -> None:
        """Retry this delivery no sooner than ``seconds`` from now (backoff, shared by all processes)."""
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == delivery_id).values(lease_until=self.clock() + seconds))

    def take_notification(self, escalation_id: int) -> bool:
        """Exactly one gateway process announces a new escalation to the counsellors."""
        with self.engine.begin() as conn:
            won = conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id, escalations.c.notified_at.is_(None))
                .values(notified_at=self.clock())
            ).rowcount
        return bool(won)

    def untake_notification(self, escalation_id: int) -> None:
        """The announcement failed: let the next tick (of any process) try again."""
        with self.engine.begin() as conn:
            conn.execute(escalations.update().where(escalations.c.id == escalation_id).values(notified_at=None))

    def mark_notified(self, escalation_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(escalations.update().where(escalations.c.id == escalation_id).values(notified_at=self.clock()))

    def renotify_open(self) -> int:
        """After a restart: alert counsellors again about every open escalation."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(escalations.update().where(escalations.c.status == OPEN).values(notified_at=None)).rowcount
            )

    def queue_message(self, user_key: str, channel: str, address: str, text: str, buttons: Buttons = ()) -> int:
        """A bot reply for a channel that delivers through the outbox (SMS): durable, retried."""
        with self.engine.begin() as conn:
            return self.queue_answer(conn, user_key, channel, address, [(text, buttons)])[0]

    def queue_answer(
        self,
        conn: Any,
        user_key: str,
        channel: str,
        address: str,
        parts: Sequence[tuple[str, Buttons]],
        held_until: float | None = None,
    ) -> list[int]:
        """Her answer's parts, in the caller's transaction (so that recording them can be atomic
        with the caller's own record, e.g. a Telegram update marked done). ``held_until``: the
        caller sends them itself now; the outbox takes them over only if that lease runs out."""
        ids = []
        for text, buttons in parts:
            sealed_buttons = self._seal(json.dumps([list(b) for b in buttons], ensure_ascii=False)) if buttons else None
            ids.append(
                int(
                    conn.execute(
                        outbox.insert().values(
                            user_key=user_key,
                            channel=channel,
                            address=self._seal(address),
                            text=self._seal(text),
                            buttons=sealed_buttons,
                            created_at=self.clock(),
                            attempts=0,
                            lease_until=held_until,
                        )
                    ).inserted_primary_key[0]
                )
            )
        return ids

    def unsent_before(self, conn: Any, user_key: str, channel: str, delivery_id: int) -> bool:
        """Does an older message to her still wait in the outbox? (then newer ones must wait too)"""
        waiting = conn.execute(
            sa.select(outbox.c.id)
            .where(
                outbox.c.user_key == user_key,
                outbox.c.channel == channel,
                outbox.c.id < delivery_id,
                outbox.c.sent_at.is_(None),
                outbox.c.attempts < GAVE_UP,
            )
            .limit(1)
        ).first()
        return waiting is not None

    def hold(self, delivery_ids: Sequence[int], held_until: float, until: float | None) -> bool:
        """Renew the sender's lease on these unsent messages, only while it still holds them all
        (``held_until`` is the lease it set); ``until`` None hands them to the outbox worker now."""
        if not delivery_ids:
            return True
        with self.engine.begin() as conn:
            return _renew_hold(conn, delivery_ids, held_until, until)

    def pending_deliveries(
        self,
        channel: str,
        limit: int = 50,
        max_attempts: int = GAVE_UP,
        lease_seconds: float | None = None,
        user_key: str | None = None,
    ) -> list[Delivery]:
        """Unsent messages, oldest first (those that failed ``max_attempts`` times are left recorded).

        With ``lease_seconds``, only messages this process has leased: when several gateway
        processes deliver from one database, each message is sent by one of them. With
        ``user_key``, only hers (a terminal chat serves one user)."""
        now = self.clock()
        condition = sa.and_(outbox.c.channel == channel, outbox.c.sent_at.is_(None), outbox.c.attempts < max_attempts)
        if user_key is not None:
            condition = sa.and_(condition, outbox.c.user_key == user_key)
        if lease_seconds is not None:
            condition = sa.and_(condition, sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(outbox).where(condition).order_by(outbox.c.id).limit(limit)).all()
            if lease_seconds is not None:
                leased = []
                for row in rows:
                    won = conn.execute(
                        outbox.update()
                        .where(outbox.c.id == row.id, sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))
                        .values(lease_until=now + lease_seconds)
                    ).rowcount
                    if won:
                        leased.append(row)
                rows = leased
        return [
            Delivery(
                r.id,
                r.escalation_id,
                r.user_key,
                r.channel,
                self._open(r.address),
                self._open_text(r.text),
                r.attempts,
                self._buttons(r.buttons),
            )  # fmt: skip
            for r in rows
        ]

    def _buttons(self, sealed: str | None) -> tuple[tuple[str, str], ...]:
        if not sealed:
            return ()
        try:
            return tuple((str(title), str(payload)) for title, payload in json.loads(self._open_text(sealed)))
        except ValueError:
            return ()  # unreadable with this pepper: the text still goes

    def mark_sent(
        self, delivery_id: int, forget: bool = False, hold: tuple[Sequence[int], float, float] | None = None
    ) -> bool:
        """Delivered. ``forget``: delete it instead (a plain bot reply has no reason to be kept).

        ``hold``: (ids, held_until, until) - in the same transaction, renew the sender's lease on
        the parts it sends next (see ``hold``); returns whether it still held them all."""
        with self.engine.begin() as conn:
            if forget:
                conn.execute(outbox.delete().where(outbox.c.id == delivery_id))
            else:
                conn.execute(outbox.update().where(outbox.c.id == delivery_id).values(sent_at=self.clock()))
            if hold is None or not hold[0]:
                return True
            ids, held_until, until = hold
            return _renew_hold(conn, ids, held_until, until)

    def mark_failed(self, delivery_id: int, error: str, final: bool = False) -> None:
        """One failed attempt; ``final`` (e.g. she opted out) means never try again - still recorded."""
        attempts = GAVE_UP if final else outbox.c.attempts + 1
        reason = f"dead_letter: {error}" if final else error
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update().where(outbox.c.id == delivery_id).values(attempts=attempts, last_error=reason[:200])
            )

    def dead_letters(self, channel: str | None = None) -> int:
        """Messages given up (kept with their reason for the operator; never retried)."""
        condition = outbox.c.attempts >= GAVE_UP
        if channel is not None:
            condition = sa.and_(condition, outbox.c.channel == channel)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(outbox).where(condition)).scalar_one())

    def erase_user(self, user_key: str) -> None:
        """Her escalations, transcripts and queued messages, everywhere (cases stay counted, not kept)."""
        with self.engine.begin() as conn:
            ids = [r.id for r in conn.execute(sa.select(escalations.c.id).where(escalations.c.user_key == user_key))]
            if ids:
                conn.execute(transcript.delete().where(transcript.c.escalation_id.in_(ids)))
            conn.execute(outbox.delete().where(outbox.c.user_key == user_key))
            conn.execute(escalations.delete().where(escalations.c.user_key == user_key))


def _renew_hold(conn: sa.engine.Connection, ids: Sequence[int], held_until: float, until: float | None) -> bool:
    """Renew a sender's lease on unsent outbox rows, only while it still holds them all."""
    renewed = conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(list(ids)), outbox.c.sent_at.is_(None), outbox.c.lease_until == held_until)
        .values(lease_until=until)
    ).rowcount
    return renewed == len(ids)
