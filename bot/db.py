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
    return engine
