"""Who is in the counsellors' Telegram group, and whether her words may be shown there.

The allow-list (``SP_TELEGRAM_COUNSELLOR_IDS``) decides who may act; it cannot decide who reads.
Every member of the group reads every message in it, so the bot relays her words only while it
has no sign of anyone else there. The signs, from the Bot API (no Rasa, no pipeline):

- ``getChatMemberCount``: more members than allow-listed counsellors plus the bot itself;
- ``getChatAdministrators``: an administrator who is not allow-listed;
- ``chat_member`` updates (the bot must be an administrator to receive them) and any message
  posted in the group: someone not allow-listed joined or wrote and has not left.

The count is the check that needs no update to have been seen: with 3 counsellors allowed, a
fourth person makes 5 members and the group is unsafe even if the join was missed. It cannot
tell an outsider who replaced an absent counsellor; the join updates and messages cover that.
Bots other than this one count as outsiders (a moderation bot reads everything too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from bot.db import metadata

# Members seen through chat_member updates and group messages (owned by this module).
group_members = sa.Table(
    "telegram_group_members",
    metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.BigInteger, primary_key=True),
    sa.Column("present", sa.Boolean, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

PRESENT_STATUSES = frozenset({"creator", "owner", "administrator", "member", "restricted"})


@dataclass(frozen=True)
class GroupVerdict:
    safe: bool
    reason: str  # "ok" or what makes the group unsafe (no names, no ids)

    def __str__(self) -> str:
        return self.reason


def judge(
    member_count: int | None,
    admin_ids: set[int] | None,
    seen_present: set[int],
    allowed: frozenset[int],
    bot_id: int,
) -> GroupVerdict:
    """Pure decision: is every sign consistent with a group of allow-listed counsellors only?"""
    if member_count is None or admin_ids is None:
        return GroupVerdict(False, "membership could not be checked")
    outsiders_admin = admin_ids - allowed - {bot_id}
    if outsiders_admin:
        return GroupVerdict(False, f"{len(outsiders_admin)} administrator(s) not on the counsellor list")
    outsiders_seen = seen_present - allowed - {bot_id}
    if outsiders_seen:
        return GroupVerdict(False, f"{len(outsiders_seen)} member(s) not on the counsellor list")
    if member_count > len(allowed) + 1:
        return GroupVerdict(False, f"{member_count} members, at most {len(allowed)} counsellors and this bot allowed")
    return GroupVerdict(True, "ok")


class MemberBook:
    """The members seen joining, leaving or writing (shared by every gateway through the database)."""

    def __init__(self, engine: sa.engine.Engine, chat_id: int, clock: object = time.time) -> None:
        self.engine, self.chat_id, self.clock = engine, chat_id, clock

    def record(self, user_id: int, present: bool) -> None:
        now = float(self.clock())  # type: ignore[operator]
        key = (group_members.c.chat_id == self.chat_id) & (group_members.c.user_id == user_id)
        with self.engine.begin() as conn:
            if conn.execute(group_members.update().where(key).values(present=present, at=now)).rowcount == 0:
                conn.execute(group_members.insert().values(chat_id=self.chat_id, user_id=user_id, present=present, at=now))

    def present(self) -> set[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(group_members.c.user_id).where(
                    group_members.c.chat_id == self.chat_id, group_members.c.present.is_(True)
                )
            )
            return {int(r.user_id) for r in rows}
