"""The gateway database's schema, in one place: Alembic migrations (bot/migrations) own it.

``upgrade(engine)`` brings any database to the newest revision, and every server runs it when it
opens the database (``open_engine``); ``python -m bot db upgrade`` runs it by hand. A database
made before the migrations existed (tables, no ``alembic_version``) is adopted once: the tables
and nullable columns it lacks are added, SQLite tables are rebuilt AUTOINCREMENT, rows kept, and
it is stamped at the baseline; later revisions then apply as on any database.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
# The tables and columns of the baseline, frozen: adopting a pre-migration database creates and
# adds only these (anything newer comes from the later revisions, as on every database).
BASELINE_COLUMNS: dict[str, list[str]] = {
    "counsellor_audit": ["id", "at", "counsellor", "action", "escalation_id"],
    "escalation_messages": ["id", "escalation_id", "at", "sender", "counsellor", "text"],
    "escalations": [
        "id",
        "user_key",
        "channel",
        "address",
        "language",
        "country",
        "risk_level",
        "risk_category",
        "triggers",
        "status",
        "counsellor",
        "created_at",
        "claimed_at",
        "ended_at",
        "outcome",
        "notified_at",
        "timeout_notice_at",
        "rasa_paused",
    ],
    "outbox": [
        "id",
        "escalation_id",
        "user_key",
        "channel",
        "address",
        "text",
        "created_at",
        "sent_at",
        "attempts",
        "last_error",
        "lease_until",
    ],
    "profiles": ["user_key", "language", "language_pinned", "country", "updated_at"],
    "sms_inbox": [
        "id",
        "provider",
        "provider_id",
        "user_key",
        "sealed",
        "received_at",
        "processed_at",
        "lease_until",
        "attempts",
        "last_error",
    ],
    "sms_subscribers": ["user_key", "opted_out_at", "menu", "provider", "updated_at"],
    "stats_claim_waits": ["id", "day", "seconds"],
    "stats_daily": ["day", "channel", "language", "topic", "messages", "escalations"],
    "telegram_group_members": ["chat_id", "user_id", "present", "at"],
    "telegram_group_messages_v2": ["chat_id", "message_id", "escalation_id", "is_card"],
    "telegram_messages": ["id", "user_key", "message_id", "at"],
    "telegram_relay_progress": ["escalation_id", "last_line_id", "lease_until"],
}
# Alembic's `context` is module-global: two threads of one process must not migrate at once
# (processes are serialised by an advisory lock on PostgreSQL, a file lock beside a SQLite file).
_MIGRATING = threading.Lock()


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def all_tables() -> sa.MetaData:
    """The metadata with every table of every module (each module owns its tables)."""
    import bot.channels.telegram_guard
    import bot.channels.telegram_store
    import bot.erasure
    import bot.handoff
    import bot.profiles
    import bot.ratelimit
    import bot.sms.store
    import bot.stats
    import bot.webdesk.data  # noqa: F401 - imported for their tables
    from bot.db import metadata

    return metadata


def _config(connection: sa.engine.Connection) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: sa.engine.Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.engine.Engine, revision: str = "head") -> str | None:
    """Migrate to ``revision`` (serialised between processes on PostgreSQL); returns the revision."""
    if revision == "head" and current_revision(engine) == head_revision():
        return head_revision()  # the common case at every start: nothing to do, no Alembic run
    with _MIGRATING, _sqlite_file_lock(engine):
        return _upgrade(engine, revision)


@contextlib.contextmanager
def _sqlite_file_lock(engine: sa.engine.Engine) -> Iterator[None]:
    """Processes migrating one SQLite file take turns (PostgreSQL has its advisory lock).

    SQLite's write lock covers one statement, not the migration: two processes starting on a
    fresh file both saw no tables and the second failed with "table ... already exists"."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl
    import os

    descriptor = os.open(f"{database}.migrating", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # released when closed, also if the process dies
        yield
    finally:
        os.close(descriptor)


def _upgrade(engine: sa.engine.Engine, revision: str) -> str | None:
    from alembic import command

    from bot.db import add_missing_columns, keep_ids_unique

    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_lock(7202612)")  # one migrating process at a time
        try:
            metadata = all_tables()
            existing = set(sa.inspect(conn).get_table_names())
            legacy = "alembic_version" not in existing and bool(existing & set(metadata.tables))
            conn.commit()
            if legacy:
                baseline = [metadata.tables[name] for name in BASELINE_COLUMNS]
                metadata.create_all(conn, tables=baseline)
                conn.commit()
                add_missing_columns(conn.engine, BASELINE_COLUMNS)
                keep_ids_unique(conn.engine)
                command.stamp(_config(conn), BASELINE)  # type: ignore[arg-type]
                conn.commit()
            command.upgrade(_config(conn), revision)  # type: ignore[arg-type]
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_unlock(7202612)")
                conn.commit()
    return current_revision(engine)
