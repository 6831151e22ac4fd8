"""Retention: after N days (SP_RETENTION_DAYS, default 90) conversations are deleted or
anonymised, except open cases. Run daily (cron / a systemd timer / the compose `retention` job):

    python -m bot retention [--days 90] [--dry-run]

What happens to what (docs/privacy.md has the why):
- Rasa tracker events older than the cutoff: deleted (unless her case is still open).
- Ended escalations older than the cutoff: transcript and queued messages deleted; the case row
  is anonymised (no user key, no address, no trigger words) and kept as a count.
- Profiles (language, country) not used since the cutoff: deleted.
- Outbox rows sent or given up before the cutoff, processed SMS inbox rows (kept only to refuse
  replays), SMS per-number state unused since the cutoff (an opt-out is kept: STOP must hold),
  Telegram message ids (only useful for /erase within 48 hours): deleted. Telegram update ids
  (kept only to refuse replays, which come within 24 hours) go after 48 hours whatever the
  cutoff; the gateways' supervisor tick prunes them too.
- Web desk notes, referrals and transfers of those cases: deleted (the category stays, anonymous).
- Counsellor audit: kept (accountability: who read what, when); it holds no message text.
- Anonymous statistics (bot/stats.py): kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from bot.channels.telegram_store import UPDATE_RETENTION_SECONDS
from bot.handoff import ACTIVE, escalations, outbox, transcript
from bot.profiles import profiles_table

ANONYMOUS = "anonymised"


@dataclass
class RetentionReport:
    cutoff: float
    deleted: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, count: int) -> None:
        self.deleted[what] = self.deleted.get(what, 0) + max(count, 0)


def _table(engine: sa.engine.Engine, name: str) -> sa.Table | None:
    if not sa.inspect(engine).has_table(name):
        return None
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def run(
    engine: sa.engine.Engine,
    tracker: sa.engine.Engine | None,
    days: float = 90,
    now: float | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Delete / anonymise everything older than ``days``, except open cases."""
    cutoff = (now or time.time()) - days * 86400
    result = RetentionReport(cutoff)
    with engine.begin() as conn:
        open_keys = {r[0] for r in conn.execute(sa.select(escalations.c.user_key).where(escalations.c.status.in_(ACTIVE)))}
        ended = sa.and_(
            escalations.c.status.not_in(ACTIVE),
            sa.func.coalesce(escalations.c.ended_at, escalations.c.created_at) < cutoff,
            escalations.c.user_key != ANONYMOUS,
        )
        old_cases = [r[0] for r in conn.execute(sa.select(escalations.c.id).where(ended))]
        if old_cases:
            result.add(
                "transcript lines",
                conn.execute(transcript.delete().where(transcript.c.escalation_id.in_(old_cases))).rowcount,
            )
            result.add(
                "queued case messages", conn.execute(outbox.delete().where(outbox.c.escalation_id.in_(old_cases))).rowcount
            )
            result.add("desk notes, referrals and transfers", _desk_tables(engine, conn, old_cases))
            result.add(
                "cases anonymised",
                conn.execute(
                    escalations.update()
                    .where(escalations.c.id.in_(old_cases))
                    .values(user_key=ANONYMOUS, address="", triggers="[]", counsellor=None)
                ).rowcount,
            )
        done = sa.and_(
            sa.or_(outbox.c.sent_at.is_not(None), outbox.c.attempts >= 8),
            outbox.c.created_at < cutoff,
            outbox.c.user_key.not_in(open_keys) if open_keys else sa.true(),
        )
        result.add("outbox rows", conn.execute(outbox.delete().where(done)).rowcount)
        stale = sa.and_(profiles_table.c.updated_at < cutoff)
        if open_keys:
            stale = sa.and_(stale, profiles_table.c.user_key.not_in(open_keys))
        result.add("profiles", conn.execute(profiles_table.delete().where(stale)).rowcount)
        result.add("channel records", _channel_tables(engine, conn, cutoff, open_keys, now or time.time()))
        if dry_run:
            conn.rollback()
    if tracker is not None:
        result.add("rasa events", _tracker(tracker, cutoff, open_keys, dry_run))
    return result


def _channel_tables(
    engine: sa.engine.Engine, conn: sa.engine.Connection, cutoff: float, open_keys: set[str], now: float
) -> int:
    """SMS and Telegram tables, when those channels have created them."""
    removed = 0
    inbox = _table(engine, "sms_inbox")
    if inbox is not None:
        removed += conn.execute(inbox.delete().where(inbox.c.processed_at < cutoff)).rowcount
    subscribers = _table(engine, "sms_subscribers")
    if subscribers is not None:
        stale = sa.and_(subscribers.c.updated_at < cutoff, subscribers.c.opted_out_at.is_(None))
        removed += conn.execute(subscribers.delete().where(stale)).rowcount
    sent = _table(engine, "telegram_messages")
    if sent is not None:
        removed += conn.execute(sent.delete().where(sent.c.at < cutoff)).rowcount
    updates = _table(engine, "telegram_updates")
    if updates is not None:
        # 48 hours whatever the cutoff: longer than Telegram's replays last, shorter than any retention
        removed += conn.execute(updates.delete().where(updates.c.received_at < now - UPDATE_RETENTION_SECONDS)).rowcount
    return removed


def _desk_tables(engine: sa.engine.Engine, conn: sa.engine.Connection, old_cases: list[int]) -> int:
    """The web desk's private notes, referrals and transfers of old cases go; the category stays
    with the anonymous case row, without who set it."""
    removed = 0
    for name in ("desk_case_notes", "desk_case_referrals", "desk_transfers"):
        table = _table(engine, name)
        if table is not None:
            removed += conn.execute(table.delete().where(table.c.escalation_id.in_(old_cases))).rowcount
    records = _table(engine, "desk_case_records")
    if records is not None:
        conn.execute(records.update().where(records.c.escalation_id.in_(old_cases)).values(updated_by=None))
    return removed


def _tracker(tracker: sa.engine.Engine, cutoff: float, open_keys: set[str], dry_run: bool) -> int:
    events = _table(tracker, "events")
    if events is None:
        return 0
    condition = events.c.timestamp < cutoff
    if open_keys:
        condition = sa.and_(condition, events.c.sender_id.not_in(open_keys))
    with tracker.begin() as conn:
        count = int(conn.execute(events.delete().where(condition)).rowcount)
        if dry_run:
            conn.rollback()
    return count
