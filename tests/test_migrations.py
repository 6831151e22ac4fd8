"""One Alembic history owns the gateway schema (delivery issue): a fresh database and one made by
the schema before migrations end at the same revision and schema, rows kept, on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot import schema
from bot.config import ROOT
from bot.db import open_engine
from bot.handoff import Handoff


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def test_many_threads_opening_a_fresh_database_at_once(db_url: str) -> None:
    import threading

    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_engine(db_url)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and schema.current_revision(sa.create_engine(db_url)) == _head()


def _schema_differences(engine: sa.engine.Engine) -> list:
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), schema.all_tables())
    internal = ("sqlite_sequence", "alembic_version")  # SQLite's and Alembic's own bookkeeping
    return [d for d in found if not (d[0] == "remove_table" and d[1].name in internal)]


def test_a_fresh_database_is_built_by_the_migrations_and_matches_the_models(db_url: str) -> None:
    engine = open_engine(db_url)
    assert schema.current_revision(engine) == _head()
    assert _schema_differences(engine) == []  # a model change without a migration fails here


def test_a_database_made_before_migrations_is_adopted_without_losing_rows(db_url: str) -> None:
    """The landed schema made its tables with create_all (and older ones lacked columns)."""
    legacy = sa.create_engine(db_url)
    metadata = schema.all_tables()
    metadata.create_all(legacy, tables=[metadata.tables[name] for name in schema.BASELINE_COLUMNS])
    with legacy.begin() as conn:  # an older version: no `notified_at` on escalations yet
        if legacy.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE escalations DROP COLUMN notified_at")
    handoff_rows = 3
    with legacy.begin() as conn:
        for n in range(handoff_rows):
            conn.execute(
                sa.text(
                    "INSERT INTO escalations (user_key, channel, address, language, risk_level, risk_category,"
                    " triggers, status, created_at, rasa_paused) VALUES (:k, 'sms', 'x', 'en', 'urgent', 'locked_in',"
                    " '[]', 'open', 1.0, false)"
                ),
                {"k": f"key-{n}"},
            )
    legacy.dispose()
    engine = open_engine(db_url)
    assert schema.current_revision(engine) == _head()
    assert _schema_differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from escalations")).scalar_one() == handoff_rows
    # and it works: a new case gets a new number, never a reused one
    case, _ = Handoff(engine, "p" * 40, ["c"]).escalate(
        user_key="new", channel="sms", address="+1", language="en", country=None, risk_level="urgent",
        risk_category="locked_in", triggers=(), message="help",
    )  # fmt: skip
    assert case.id == handoff_rows + 1
    assert open_engine(db_url) is not None and schema.current_revision(engine) == _head()  # idempotent


def test_db_upgrade_command(tmp_path: Path) -> None:
    env = {**os.environ, "SP_VAR_DIR": str(tmp_path / "var"), "RASA_TELEMETRY_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert f"revision {_head()}" in done.stdout


def test_processes_starting_together_on_a_fresh_sqlite_file_all_migrate_it(tmp_path: Path) -> None:
    """Before the file lock, two of six gateways starting at once failed with "table ... already
    exists" about one run in two (SQLite's write lock covers a statement, not a migration)."""
    env = {**os.environ, "SP_VAR_DIR": str(tmp_path), "SP_DB_URL": f"sqlite:///{tmp_path / 'gateway.db'}"}
    for _ in range(3):
        (tmp_path / "gateway.db").unlink(missing_ok=True)
        starts = [
            subprocess.Popen(
                [sys.executable, "-m", "bot", "db", "upgrade"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for _ in range(6)
        ]
        failures = [p.stderr.read().decode()[-200:] for p in starts if p.wait(timeout=120) != 0]  # type: ignore[union-attr]
        assert failures == []
        assert schema.current_revision(sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")) == _head()


def test_desk_referrals_move_from_the_case_record_to_their_own_table(db_url: str) -> None:
    """0005: the JSON list of referral names on a case record becomes one row per organisation
    (so /erase and retention remove them), and back on a downgrade."""
    engine = sa.create_engine(db_url, future=True)
    schema.upgrade(engine, "0004")
    case, _ = Handoff(engine, "p" * 40, ["c"]).escalate(
        user_key="k", channel="sms", address="+1", language="th", country="TH", risk_level="urgent",
        risk_category="locked_in", triggers=(), message="help",
    )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO desk_case_records (escalation_id, category, referrals, updated_at, updated_by)"
                " VALUES (:e, 'sextortion', :r, 5.0, 'desk:alice')"
            ),
            {"e": case.id, "r": '["Foundation For Women (FFW)", "Childline Thailand Foundation"]'},
        )
    schema.upgrade(engine)
    assert schema.current_revision(engine) == _head() and _schema_differences(engine) == []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT escalation_id, organisation, at, referred_by FROM desk_case_referrals ORDER BY id")
        ).all()
        category = conn.execute(sa.text("SELECT category FROM desk_case_records")).scalar_one()
    assert [tuple(r) for r in rows] == [
        (case.id, "Foundation For Women (FFW)", 5.0, "desk:alice"),
        (case.id, "Childline Thailand Foundation", 5.0, "desk:alice"),
    ]
    assert category == "sextortion"
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(schema._config(conn), "0004")  # type: ignore[arg-type]
    with engine.connect() as conn:
        back = conn.execute(sa.text("SELECT referrals FROM desk_case_records")).scalar_one()
    assert back == '["Foundation For Women (FFW)", "Childline Thailand Foundation"]'
    engine.dispose()


def test_the_telegram_update_ledger_and_outbox_buttons_arrive_without_losing_rows(db_url: str) -> None:
    """0006/0007 (issue 13): a database at 0005 with queued messages gets the table of handled
    Telegram updates and the outbox's buttons column; its rows are kept and still delivered."""
    from bot.channels.telegram_store import CLAIMED, DONE, TelegramStore

    engine = sa.create_engine(db_url, future=True)
    schema.upgrade(engine, "0005")
    handoff = Handoff(engine, "p" * 40, ["c"])
    with engine.begin() as conn:  # what 0005's code wrote: no buttons column yet
        for n in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (user_key, channel, address, text, created_at, attempts)"
                    " VALUES (:k, 'telegram', :a, :t, 1.0, 0)"
                ),
                {"k": f"key-{n}", "a": handoff._seal(str(100 + n)), "t": handoff._seal(f"reply {n}")},
            )
    schema.upgrade(engine)
    assert schema.current_revision(engine) == _head() and _schema_differences(engine) == []
    waiting = handoff.pending_deliveries("telegram")
    assert [(d.address, d.text, d.buttons) for d in waiting] == [(str(100 + n), f"reply {n}", ()) for n in range(3)]
    store = TelegramStore(engine)
    assert store.claim_update(5) == CLAIMED
    store.finish_update(5)
    assert store.claim_update(5) == DONE
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(schema._config(conn), "0005")  # type: ignore[arg-type]
    assert "telegram_updates" not in sa.inspect(engine).get_table_names()
    schema.upgrade(engine)
    assert len(handoff.pending_deliveries("telegram")) == 3
    engine.dispose()
