"""One place that opens the gateway database (SQLite by default, PostgreSQL the same code)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.state import private_file

metadata = sa.MetaData()

# SQLAlchemy 1.4 gives a SQLite file NullPool: a new connection (and its three PRAGMAs) for every
# query, and closing the last one checkpoints the WAL - 1-6 ms a statement, several per message
# (docs/performance.md). Kept open in a pool, as SQLAlchemy 2.0 does; a pooled connection is used
# by one thread at a time, so it may move between threads.
SQLITE_FILE_POOL: dict[str, Any] = {"poolclass": sa.pool.QueuePool, "connect_args": {"check_same_thread": False}}


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """WAL lets the chat, the counsellor console and the gateway share one file safely.

    Switching a file to WAL takes an exclusive lock and SQLite answers "database is locked"
    at once, without its busy handler, when several processes open a fresh file together
    (six gateways starting at once did, in CI). The mode is stored in the file, so only the
    first switch needs the lock: read it first, and retry the switch a few times."""
    for attempt in range(50):
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 49:
                raise
            time.sleep(0.05 + 0.01 * attempt)


def open_engine(url: str) -> sa.engine.Engine:
    """An engine on a database migrated to the newest schema (bot/schema.py, Alembic)."""
    options: dict[str, Any] = {}
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        private_file(Path(url.removeprefix("sqlite:///")))  # 0600 in a 0700 directory, before SQLite opens it
        options = SQLITE_FILE_POOL
    engine = sa.create_engine(url, future=True, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    from bot.schema import upgrade

    upgrade(engine)
    return engine


def keep_ids_unique(engine: sa.engine.Engine) -> list[str]:
    """Rebuild SQLite tables made before their ids were AUTOINCREMENT.

    Without AUTOINCREMENT SQLite hands out the largest deleted rowid again: after an /erase of
    the newest case, the next girl got its number, and a counsellor's reply to the old case's
    lines in the Telegram group reached her. Tables declared ``sqlite_autoincrement`` are
    rebuilt once, rows kept, with Alembic's batch operation (copy, drop, rename), foreign keys
    off so that dropping the old table cascades nothing. PostgreSQL sequences never reuse ids."""
    if engine.dialect.name != "sqlite":
        return []
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    rebuilt = []
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
        conn.commit()
        try:
            for table in metadata.sorted_tables:
                if not table.dialect_options["sqlite"]["autoincrement"]:
                    continue
                sql = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table.name,)
                ).scalar()
                conn.commit()
                if sql is None or "AUTOINCREMENT" in str(sql).upper():
                    continue
                with conn.begin():
                    operations = Operations(MigrationContext.configure(conn))
                    with operations.batch_alter_table(
                        table.name, recreate="always", table_kwargs={"sqlite_autoincrement": True}
                    ):
                        pass
                rebuilt.append(table.name)
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
    return rebuilt


def add_missing_columns(engine: sa.engine.Engine, only: dict[str, list[str]] | None = None) -> list[str]:
    """Adopting a database made before the migrations: the nullable columns it lacks are added
    (what the pre-Alembic versions did at every start). New changes are Alembic revisions."""
    inspector = sa.inspect(engine)
    added = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name) or (only is not None and table.name not in only):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            if only is not None and column.name not in only[table.name]:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            added.append(f"{table.name}.{column.name}")
    return added
