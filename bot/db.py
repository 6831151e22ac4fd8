"""One place that opens the gateway database (SQLite by default, PostgreSQL the same code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    # WAL lets the chat, the counsellor console and the gateway share one file safely.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_engine(url: str) -> sa.engine.Engine:
    """An engine with every table created (idempotent)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    add_missing_columns(engine)
    return engine


def add_missing_columns(engine: sa.engine.Engine) -> list[str]:
    """The one kind of schema change we make: a new nullable column on an existing table.

    create_all() makes new tables but never alters old ones; this adds what a newer version
    defines, so an existing database keeps working after an upgrade."""
    inspector = sa.inspect(engine)
    added = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            added.append(f"{table.name}.{column.name}")
    return added
