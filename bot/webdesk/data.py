"""The web desk's data access: its own tables and SQL, nothing else (no aiohttp, no HTML).

Owned here:
- ``desk_users``: counsellor and supervisor accounts (argon2 hash; TOTP secret sealed like her
  words, so a pepper rotation re-seals it; failed sign-ins and the lock-out);
- ``desk_sessions``: signed-in browsers (only the SHA-256 of the cookie is stored), their CSRF
  token, when they were last used and last had the live view open (who is online);
- ``desk_case_notes``: private notes on a case (sealed);
- ``desk_case_records``: a case's category;
- ``desk_case_referrals``: organisations of her country's sourced facts she was referred to, and
  when the desk sent her their contacts;
- ``desk_transfers``: a case offered by its counsellor to another, accepted or declined.
Case rows reference ``escalations`` with ON DELETE CASCADE: /erase removes them with her case,
and the retention job removes notes, referrals and transfers of old cases (bot/retention.py).
The escalations, transcript and audit tables are the handoff's (bot/handoff.py); this module
reads escalations for history and writes audit rows in the same shape as the handoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot.db import metadata
from bot.handoff import audit, escalations

COUNSELLOR, SUPERVISOR = "counsellor", "supervisor"
ROLES = (COUNSELLOR, SUPERVISOR)
PENDING, ACCEPTED, DECLINED, WITHDRAWN = "pending", "accepted", "declined", "withdrawn"

desk_users = sa.Table(
    "desk_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("totp_secret", sa.Text),  # sealed
    sa.Column("totp_last_step", sa.Integer),  # a code is used once
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Float),
    sa.Column("disabled_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)
desk_sessions = sa.Table(
    "desk_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("desk_users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("live_at", sa.Float),  # the live view was open (supervisor: who is online)
)
case_notes = sa.Table(
    "desk_case_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.Integer, sa.ForeignKey("escalations.id", ondelete="CASCADE"), index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # sealed
    sqlite_autoincrement=True,
)
case_records = sa.Table(
    "desk_case_records",
    metadata,
    sa.Column("escalation_id", sa.Integer, sa.ForeignKey("escalations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("category", sa.String(48)),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(64)),
)
case_referrals = sa.Table(
    "desk_case_referrals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.Integer, sa.ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("organisation", sa.String(200), nullable=False),  # a name from the country's facts
    sa.Column("country", sa.String(8)),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("referred_by", sa.String(64)),
    sa.Column("sent_at", sa.Float),  # its contact sent to her through the outbox
    sqlite_autoincrement=True,
)
transfers = sa.Table(
    "desk_transfers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.Integer, sa.ForeignKey("escalations.id", ondelete="CASCADE"), index=True),
    sa.Column("from_counsellor", sa.String(64), nullable=False),
    sa.Column("to_counsellor", sa.String(64), nullable=False, index=True),
    sa.Column("offered_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("decided_at", sa.Float),
    sqlite_autoincrement=True,
)


class NameTaken(Exception):
    """An account with this name exists."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    password_hash: str
    totp_secret: str | None  # sealed
    totp_last_step: int | None
    failed_logins: int
    locked_until: float | None
    disabled_at: float | None

    @property
    def handle(self) -> str:
        """The counsellor id the handoff core knows her by (owner of a case, audit rows)."""
        return handle_of(self.name)


def handle_of(name: str) -> str:
    return f"desk:{name}"


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    csrf: str
    created_at: float
    seen_at: float
    user: User


@dataclass(frozen=True)
class Note:
    id: int
    at: float
    author: str
    text: str  # sealed until the service opens it


@dataclass(frozen=True)
class Record:
    category: str | None
    updated_by: str | None


@dataclass(frozen=True)
class Referral:
    id: int
    organisation: str
    country: str | None
    at: float
    referred_by: str | None
    sent_at: float | None


@dataclass(frozen=True)
class Transfer:
    id: int
    escalation_id: int
    from_counsellor: str
    to_counsellor: str
    offered_at: float
    status: str


@dataclass(frozen=True)
class PastCase:
    """An earlier case of the same pseudonymous user: facts only, no words."""

    id: int
    created_at: float
    status: str
    risk_level: str
    risk_category: str
    category: str | None
    outcome: str | None
    counsellor: str | None
    channel: str
    referrals: tuple[str, ...] = ()


def _user(row: Any) -> User:
    return User(
        row.id, row.name, row.role, row.password_hash, row.totp_secret, row.totp_last_step,
        row.failed_logins or 0, row.locked_until, row.disabled_at,
    )  # fmt: skip


class DeskStore:
    def __init__(self, engine: sa.engine.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.clock = engine, clock

    # -- accounts ---------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password_hash: str, totp_secret: str | None = None) -> int:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        try:
            with self.engine.begin() as conn:
                return int(
                    conn.execute(
                        desk_users.insert().values(
                            name=name,
                            role=role,
                            password_hash=password_hash,
                            totp_secret=totp_secret,
                            failed_logins=0,
                            created_at=self.clock(),
                        )  # fmt: skip
                    ).inserted_primary_key[0]
                )
        except sa.exc.IntegrityError:
            raise NameTaken(name) from None

    def user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(desk_users).where(desk_users.c.name == name)).first()
        return _user(row) if row else None

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(desk_users).order_by(desk_users.c.name))]

    def active_handles(self) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(desk_users.c.name).where(desk_users.c.disabled_at.is_(None)))
            return {handle_of(r.name) for r in rows}

    def set_password(self, name: str, password_hash: str) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    desk_users.update().where(desk_users.c.name == name).values(password_hash=password_hash)
                ).rowcount
            )

    def set_disabled(self, name: str, disabled: bool) -> bool:
        """Disable (every session of hers ends at once) or enable again (and unlock)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(desk_users.c.id).where(desk_users.c.name == name)).first()
            if row is None:
                return False
            values: dict[str, Any] = {"disabled_at": self.clock() if disabled else None}
            if not disabled:
                values.update(failed_logins=0, locked_until=None)
            conn.execute(desk_users.update().where(desk_users.c.id == row.id).values(**values))
            if disabled:
                conn.execute(desk_sessions.delete().where(desk_sessions.c.user_id == row.id))
            return True

    def record_failure(self, user_id: int, max_failures: int, lock_seconds: float) -> None:
        """One more failed sign-in; ``max_failures`` in a row lock the account for ``lock_seconds``."""
        with self.engine.begin() as conn:
            conn.execute(
                desk_users.update().where(desk_users.c.id == user_id).values(failed_logins=desk_users.c.failed_logins + 1)
            )
            failures = conn.execute(sa.select(desk_users.c.failed_logins).where(desk_users.c.id == user_id)).scalar_one()
            if failures >= max_failures:
                conn.execute(
                    desk_users.update()
                    .where(desk_users.c.id == user_id)
                    .values(locked_until=self.clock() + lock_seconds, failed_logins=0)
                )

    def record_success(self, user_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(desk_users.update().where(desk_users.c.id == user_id).values(failed_logins=0, locked_until=None))

    def use_totp_step(self, user_id: int, step: int) -> bool:
        """Accept a TOTP time step once (a code seen on the wire cannot be replayed)."""
        with self.engine.begin() as conn:
            last = desk_users.c.totp_last_step
            return bool(
                conn.execute(
                    desk_users.update()
                    .where(desk_users.c.id == user_id, sa.or_(last.is_(None), last < step))
                    .values(totp_last_step=step)
                ).rowcount
            )

    # -- sessions ---------------------------------------------------------------------------
    def create_session(self, token_hash: str, user_id: int, csrf: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                desk_sessions.insert().values(token_hash=token_hash, user_id=user_id, csrf=csrf, created_at=now, seen_at=now)
            )

    def session(self, token_hash: str) -> SessionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(desk_sessions, desk_users)
                .join(desk_users, desk_users.c.id == desk_sessions.c.user_id)
                .where(desk_sessions.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        user = User(
            row.user_id, row.name, row.role, row.password_hash, row.totp_secret, row.totp_last_step,
            row.failed_logins or 0, row.locked_until, row.disabled_at,
        )  # fmt: skip
        return SessionRow(row.token_hash, row.csrf, row.created_at, row.seen_at, user)

    def touch_session(self, token_hash: str, live: bool = False) -> None:
        """A request (``seen_at``: keeps the session from going idle) or the live view being
        open (``live_at``: who is online; live updates are not activity, so an unattended
        screen still signs out after the idle time)."""
        now = self.clock()
        values = {"live_at": now} if live else {"seen_at": now}
        with self.engine.begin() as conn:
            conn.execute(desk_sessions.update().where(desk_sessions.c.token_hash == token_hash).values(**values))

    def delete_session(self, token_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(desk_sessions.delete().where(desk_sessions.c.token_hash == token_hash))

    def delete_stale_sessions(self, idle_seconds: float, max_age_seconds: float) -> int:
        now = self.clock()
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    desk_sessions.delete().where(
                        sa.or_(
                            desk_sessions.c.seen_at < now - idle_seconds, desk_sessions.c.created_at < now - max_age_seconds
                        )
                    )
                ).rowcount
            )

    def online(self, within_seconds: float) -> dict[str, float]:
        """Accounts with the live view open lately: name -> last seen."""
        since = self.clock() - within_seconds
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(desk_users.c.name, sa.func.max(desk_sessions.c.live_at).label("at"))
                .join(desk_users, desk_users.c.id == desk_sessions.c.user_id)
                .where(desk_sessions.c.live_at >= since, desk_users.c.disabled_at.is_(None))
                .group_by(desk_users.c.name)
            ).all()
        return {r.name: float(r.at) for r in rows}

    # -- audit (the handoff's table: one place for "who read or did what, when") --------------
    def audit(self, counsellor: str, action: str, escalation_id: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                audit.insert().values(
                    at=self.clock(), counsellor=counsellor[:64], action=action[:32], escalation_id=escalation_id
                )
            )

    def audit_rows(self, counsellor: str | None = None) -> list[tuple[str, str, int | None]]:
        query = sa.select(audit.c.counsellor, audit.c.action, audit.c.escalation_id).order_by(audit.c.id)
        if counsellor is not None:
            query = query.where(audit.c.counsellor == counsellor)
        with self.engine.connect() as conn:
            return [(r.counsellor, r.action, r.escalation_id) for r in conn.execute(query)]

    # -- case record ------------------------------------------------------------------------
    def add_note(self, escalation_id: int, author: str, sealed_text: str) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    case_notes.insert().values(escalation_id=escalation_id, at=self.clock(), author=author, text=sealed_text)
                ).inserted_primary_key[0]
            )

    def notes(self, escalation_id: int) -> list[Note]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(case_notes).where(case_notes.c.escalation_id == escalation_id).order_by(case_notes.c.id)
            ).all()
        return [Note(r.id, r.at, r.author, r.text) for r in rows]

    def record(self, escalation_id: int) -> Record:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(case_records).where(case_records.c.escalation_id == escalation_id)).first()
        if row is None:
            return Record(None, None)
        return Record(row.category, row.updated_by)

    def update_record(self, escalation_id: int, by: str, category: str | None = None) -> None:
        values: dict[str, Any] = {"updated_at": self.clock(), "updated_by": by}
        if category is not None:
            values["category"] = category
        with self.engine.begin() as conn:
            changed = conn.execute(
                case_records.update().where(case_records.c.escalation_id == escalation_id).values(**values)
            ).rowcount
            if not changed:
                conn.execute(case_records.insert().values(escalation_id=escalation_id, **values))

    # -- referrals --------------------------------------------------------------------------
    def referrals(self, escalation_ids: list[int]) -> dict[int, list[Referral]]:
        if not escalation_ids:
            return {}
        found: dict[int, list[Referral]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(case_referrals)
                .where(case_referrals.c.escalation_id.in_(escalation_ids))
                .order_by(case_referrals.c.id)
            )
            for r in rows:
                found.setdefault(r.escalation_id, []).append(
                    Referral(r.id, r.organisation, r.country, r.at, r.referred_by, r.sent_at)
                )
        return found

    def set_referrals(self, escalation_id: int, country: str | None, by: str, names: list[str]) -> tuple[int, int]:
        """Make ``names`` the case's referrals: new ones added; ones no longer chosen removed,
        unless their contact was already sent to her (that happened). Returns (added, removed)."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(case_referrals.c.id, case_referrals.c.organisation, case_referrals.c.sent_at).where(
                    case_referrals.c.escalation_id == escalation_id
                )
            ).all()
            have = {r.organisation for r in rows}
            drop = [r.id for r in rows if r.organisation not in names and r.sent_at is None]
            new = [n for n in dict.fromkeys(names) if n not in have]
            if drop:
                conn.execute(case_referrals.delete().where(case_referrals.c.id.in_(drop)))
            now = self.clock()
            for name in new:
                conn.execute(
                    case_referrals.insert().values(
                        escalation_id=escalation_id, organisation=name, country=country, at=now, referred_by=by
                    )
                )
        return len(new), len(drop)

    def mark_referrals_sent(self, referral_ids: list[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                case_referrals.update()
                .where(case_referrals.c.id.in_(referral_ids), case_referrals.c.sent_at.is_(None))
                .values(sent_at=self.clock())
            )

    def categories(self, escalation_ids: list[int]) -> dict[int, str]:
        if not escalation_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(case_records.c.escalation_id, case_records.c.category).where(
                    case_records.c.escalation_id.in_(escalation_ids), case_records.c.category.is_not(None)
                )
            )
            return {r.escalation_id: r.category for r in rows}

    def history(self, user_key: str, before_id: int) -> list[PastCase]:
        """Her other cases (same pseudonym, newest first). Anonymised cases have no pseudonym,
        so what retention has anonymised is never shown."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    escalations.c.id,
                    escalations.c.created_at,
                    escalations.c.status,
                    escalations.c.risk_level,
                    escalations.c.risk_category,
                    escalations.c.outcome,
                    escalations.c.counsellor,
                    escalations.c.channel,
                    case_records.c.category,
                )  # fmt: skip
                .select_from(escalations.outerjoin(case_records, case_records.c.escalation_id == escalations.c.id))
                .where(escalations.c.user_key == user_key, escalations.c.id != before_id)
                .order_by(escalations.c.id.desc())
                .limit(50)
            ).all()
        referred = self.referrals([r.id for r in rows])
        return [
            PastCase(
                r.id,
                r.created_at,
                r.status,
                r.risk_level,
                r.risk_category,
                r.category,
                r.outcome,
                r.counsellor,
                r.channel,
                tuple(x.organisation for x in referred.get(r.id, [])),
            )  # fmt: skip
            for r in rows
        ]

    # -- transfers --------------------------------------------------------------------------
    def offer_transfer(self, escalation_id: int, from_counsellor: str, to_counsellor: str) -> int:
        """Offer a case to a colleague (an earlier offer of the same case is withdrawn)."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                transfers.update()
                .where(transfers.c.escalation_id == escalation_id, transfers.c.status == PENDING)
                .values(status=WITHDRAWN, decided_at=now)
            )
            return int(
                conn.execute(
                    transfers.insert().values(
                        escalation_id=escalation_id,
                        from_counsellor=from_counsellor,
                        to_counsellor=to_counsellor,
                        offered_at=now,
                        status=PENDING,
                    )  # fmt: skip
                ).inserted_primary_key[0]
            )

    def transfer(self, transfer_id: int) -> Transfer | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(transfers).where(transfers.c.id == transfer_id)).first()
        return _transfer(row) if row else None

    def pending_transfers(self, to_counsellor: str | None = None, escalation_id: int | None = None) -> list[Transfer]:
        query = sa.select(transfers).where(transfers.c.status == PENDING).order_by(transfers.c.id)
        if to_counsellor is not None:
            query = query.where(transfers.c.to_counsellor == to_counsellor)
        if escalation_id is not None:
            query = query.where(transfers.c.escalation_id == escalation_id)
        with self.engine.connect() as conn:
            return [_transfer(r) for r in conn.execute(query)]

    def decide_transfer(self, transfer_id: int, status: str) -> bool:
        """Settle a pending offer once (True only for the request that settled it)."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    transfers.update()
                    .where(transfers.c.id == transfer_id, transfers.c.status == PENDING)
                    .values(status=status, decided_at=self.clock())
                ).rowcount
            )

    def withdraw_transfers(self, escalation_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                transfers.update()
                .where(transfers.c.escalation_id == escalation_id, transfers.c.status == PENDING)
                .values(status=WITHDRAWN, decided_at=self.clock())
            )

    def transfers_signature(self) -> tuple[int, int]:
        """Changes when an offer is made or settled (the live views redraw)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(transfers.c.id), 0)).where(
                    transfers.c.status == PENDING
                )
            ).one()
        return int(row[0]), int(row[1])


def _transfer(row: Any) -> Transfer:
    return Transfer(row.id, row.escalation_id, row.from_counsellor, row.to_counsellor, row.offered_at, row.status)
