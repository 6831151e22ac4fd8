"""Pepper rotation: re-seal with the newest key and move users to their new pseudonyms.

The pepper keys two things: the Fernet keys that seal her words and addresses, and the HMAC
pseudonym (``user_key``) her rows are stored under. After ``python -m bot rotate-pepper`` the
newest pepper seals and names; the previous ones still open (a MultiFernet) and still find her:
``rename_user`` moves a user's rows from an old pseudonym to the new one, which the channels do
on her next message (``Pipeline.key_for``) and the command does at once for every user whose
address the database holds (open cases, queued messages, the SMS inbox).

Tables are found by their columns (every table with ``user_key``; every text value that is a
Fernet token), so a table added later is covered without a change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography.fernet import InvalidToken, MultiFernet

from bot.crypto import SEALED_PREFIX
from bot.profiles import user_key

if TYPE_CHECKING:
    from bot.config import Settings

_reflected: dict[sa.engine.Engine, list[sa.Table]] = {}


def _tables(engine: sa.engine.Engine) -> list[sa.Table]:
    """The database's tables as they are (reflected once per engine: the schema is migrated at start)."""
    if engine not in _reflected:
        metadata = sa.MetaData()
        metadata.reflect(bind=engine)
        _reflected[engine] = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
    return _reflected[engine]


def rename_user(engine: sa.engine.Engine, old: str, new: str) -> int:
    """Move every row of pseudonym ``old`` to ``new`` in one transaction; rows moved.

    Where ``user_key`` is the whole primary key and ``new`` already has a row (she wrote after
    the rotation, under the new name), the newer row wins and the old one is deleted."""
    if old == new:
        return 0
    moved = 0
    with engine.begin() as conn:
        for table in _tables(engine):
            if "user_key" not in table.c:
                continue
            column = table.c.user_key
            keyed = [c.name for c in table.primary_key.columns] == ["user_key"]
            if keyed and conn.execute(sa.select(sa.func.count()).where(column == new)).scalar_one():
                conn.execute(table.delete().where(column == old))
                continue
            moved += conn.execute(table.update().where(column == old).values(user_key=new)).rowcount or 0
    return moved


@dataclass
class Resealed:
    rows: int = 0
    unreadable: int = 0  # sealed with a key not in the ring: left as is, reported


def reseal(engine: sa.engine.Engine, ring: MultiFernet, batch: int = 500) -> Resealed:
    """Re-encrypt every sealed value of the database under the ring's newest key."""
    result = Resealed()
    for table in _tables(engine):
        key = list(table.primary_key.columns)
        texts = [c for c in table.columns if isinstance(c.type, (sa.String, sa.Text)) and c not in key]
        if not key or not texts:
            continue
        for column in texts:
            with engine.begin() as conn:
                rows = conn.execute(sa.select(*key, column).where(column.like(f"{SEALED_PREFIX}%"))).all()
                for row in rows:
                    try:
                        fresh = ring.rotate(row[-1].encode()).decode()
                    except InvalidToken:
                        result.unreadable += 1
                        continue
                    where = sa.and_(*(k == v for k, v in zip(key, row[:-1], strict=True)))
                    conn.execute(table.update().where(where).values({column.name: fresh}))
                    result.rows += 1
    return result


def known_addresses(engine: sa.engine.Engine, ring: MultiFernet) -> set[tuple[str, str, str]]:
    """(old pseudonym, channel, address) for every user whose sealed address the database holds."""
    found: set[tuple[str, str, str]] = set()
    sources = {"escalations": "address", "outbox": "address"}
    with engine.connect() as conn:
        tables = {t.name: t for t in _tables(engine)}
        for name, column in sources.items():
            table = tables.get(name)
            if table is None or column not in table.c or "channel" not in table.c:
                continue
            for user, channel, sealed in conn.execute(sa.select(table.c.user_key, table.c.channel, table.c[column])):
                opened = _open(ring, sealed)
                if opened:
                    found.add((user, channel, opened))
        inbox = tables.get("sms_inbox")
        if inbox is not None:
            for user, sealed in conn.execute(sa.select(inbox.c.user_key, inbox.c.sealed)):
                opened = _open(ring, sealed)
                if opened:
                    found.add((user, "sms", json.loads(opened).get("from", "")))
    return {item for item in found if item[2]}


def _open(ring: MultiFernet, sealed: str | None) -> str:
    if not sealed:
        return ""
    try:
        return ring.decrypt(sealed.encode()).decode()
    except InvalidToken:
        return ""


def rekey_known_users(engine: sa.engine.Engine, ring: MultiFernet, newest_pepper: str) -> dict[str, str]:
    """Move every user with a known address to the newest pepper's pseudonym; old -> new."""
    renamed: dict[str, str] = {}
    for old, channel, address in known_addresses(engine, ring):
        new = user_key(newest_pepper, channel, address)
        if old != new and old not in renamed:
            rename_user(engine, old, new)
            renamed[old] = new
    return renamed


@dataclass
class Rotation:
    gateway: Resealed
    tracker: Resealed
    users_moved: int
    tracker_conversations_moved: int
    profiles_left: int  # users with no stored address: they move on their next message


def new_pepper_file(var_dir: Path) -> None:
    """Make a fresh pepper the newest: the current one goes first into ``pepper.previous``.

    Both files are written to a private temporary file and renamed into place, so a crash
    leaves either the old state or the new one, never a missing pepper."""
    import os
    import secrets

    from bot.config import MIN_SECRET_CHARS, PREVIOUS_PEPPERS
    from bot.state import private_file

    current_path, previous_path = var_dir / "pepper", var_dir / PREVIOUS_PEPPERS
    current = current_path.read_text().strip()
    if len(current) < MIN_SECRET_CHARS:
        raise RuntimeError(f"{current_path} is missing or short: restore it before rotating")
    older = previous_path.read_text().split() if previous_path.exists() else []

    def replace(path: Path, text: str) -> None:
        temporary = private_file(path.with_name(f".{path.name}.{secrets.token_hex(4)}"))
        temporary.write_text(text)
        os.replace(temporary, path)

    replace(previous_path, "\n".join([current, *(p for p in older if p != current)]) + "\n")
    replace(current_path, secrets.token_hex(32))


def rotate(settings: Settings) -> Rotation:
    """Re-seal everything under the newest pepper and move every user it can to her new pseudonym.

    Run with the gateways, Rasa and the action server stopped (they read the ring at start)."""
    from bot.crypto import keyring, tracker_keys
    from bot.db import open_engine
    from bot.handoff import address_cipher

    peppers = settings.peppers()
    ring = address_cipher(peppers[0], peppers[1:])
    gateway = open_engine(settings.database_url())
    tracker = sa.create_engine(settings.tracker_store_url())
    try:
        renamed = rekey_known_users(gateway, ring, peppers[0])
        resealed = reseal(gateway, ring)
        tracker_ring = keyring(tracker_keys(peppers))
        tracker_resealed = reseal(tracker, tracker_ring) if sa.inspect(tracker).has_table("events") else Resealed()
        conversations = _rename_conversations(tracker, renamed)
        with gateway.connect() as conn:
            profiles = sa.Table("profiles", sa.MetaData(), autoload_with=gateway)
            new_names = set(renamed.values())
            left = sum(1 for (key,) in conn.execute(sa.select(profiles.c.user_key)) if key not in new_names)
    finally:
        gateway.dispose()
        tracker.dispose()
    return Rotation(resealed, tracker_resealed, len(renamed), conversations, left)


def _rename_conversations(tracker: sa.engine.Engine, renamed: dict[str, str]) -> int:
    if not renamed or not sa.inspect(tracker).has_table("events"):
        return 0
    events = sa.Table("events", sa.MetaData(), autoload_with=tracker)
    moved = 0
    with tracker.begin() as conn:
        for old, new in renamed.items():
            taken = conn.execute(sa.select(sa.func.count()).where(events.c.sender_id == new)).scalar_one()
            if taken:
                conn.execute(events.delete().where(events.c.sender_id == old))
            elif conn.execute(events.update().where(events.c.sender_id == old).values(sender_id=new)).rowcount:
                moved += 1
    return moved
