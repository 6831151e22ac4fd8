"""Ids are never reused, on SQLite and PostgreSQL: an erased girl's case number never goes to
another girl (a counsellor's reply to the old number's lines would reach her)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bot.db import keep_ids_unique, open_engine
from bot.handoff import Handoff, escalations, transcript


def _escalate(handoff: Handoff, user: str) -> int:
    escalation, _ = handoff.escalate(
        user_key=f"key-{user}", channel="local", address=user, language="en", country=None,
        risk_level="urgent", risk_category="locked_in", triggers=["locked"], message="they locked me in",
    )  # fmt: skip
    return escalation.id


def test_an_erased_case_number_is_never_given_to_the_next_girl(db_url: str) -> None:
    handoff = Handoff(open_engine(db_url), "pepper", ["c"])
    _escalate(handoff, "a")
    erased = _escalate(handoff, "b")
    handoff.erase_user("key-b")
    assert _escalate(handoff, "c") > erased


def test_a_database_made_before_autoincrement_is_rebuilt_with_its_rows(tmp_path: Path) -> None:
    """The landed schema (no AUTOINCREMENT) upgraded in place: rows, transcripts and links kept."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    handoff = Handoff(open_engine(url), "pepper", ["c"])
    first, second = _escalate(handoff, "a"), _escalate(handoff, "b")
    handoff.user_said(first, "still here")
    raw = sa.create_engine(url)
    with raw.begin() as conn:  # make the tables look like the old schema: same columns, no AUTOINCREMENT
        for name in ("escalations", "escalation_messages"):
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name=?", (name,)).scalar()
            conn.exec_driver_sql("PRAGMA writable_schema=ON")
            conn.exec_driver_sql("UPDATE sqlite_master SET sql=? WHERE name=?", (sql.replace(" AUTOINCREMENT", ""), name))
            conn.exec_driver_sql("PRAGMA writable_schema=OFF")
        conn.exec_driver_sql("DROP TABLE alembic_version")  # the landed schema predates the migrations
        from bot.schema import BASELINE_COLUMNS

        for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'").all():
            if name not in BASELINE_COLUMNS and not name.startswith("sqlite_"):
                conn.exec_driver_sql(f'DROP TABLE "{name}"')  # and the tables added by later revisions
    with raw.connect() as conn:
        assert "AUTOINCREMENT" not in conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name='escalations'").scalar()
    raw.dispose()
    engine = open_engine(url)  # the upgrade happens here
    assert keep_ids_unique(engine) == []  # idempotent: nothing left to rebuild
    with engine.connect() as conn:
        assert "AUTOINCREMENT" in conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name='escalations'").scalar()
        assert conn.execute(sa.select(sa.func.count()).select_from(escalations)).scalar_one() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(transcript)).scalar_one() >= 3
    handoff = Handoff(engine, "pepper", ["c"])
    assert "still here" in [line.text for line in handoff.read_transcript("c", first)]
    handoff.erase_user("key-b")
    assert _escalate(handoff, "c") > second
