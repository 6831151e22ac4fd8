"""Privacy: the retention job (real Rasa tracker store, real gateway database) and the anonymous
statistics command (table + PNG), through the real stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import sqlalchemy as sa

from bot.config import ROOT, Settings
from bot.db import open_engine
from bot.handoff import Handoff, escalations, outbox, transcript
from bot.profiles import profiles_table, user_key
from bot.retention import ANONYMOUS, run
from bot.stats import claim_waits, daily, report
from tests.conftest import Conversation

DAY = 86400.0


def _events(settings: Settings, key: str) -> int:
    tracker = sa.create_engine(settings.tracker_store_url())
    with tracker.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from events where sender_id = :k"), {"k": key}).scalar())


def test_retention_deletes_old_conversations_but_never_an_open_case(live_settings: Settings) -> None:
    pepper = live_settings.secret("pepper", "")
    closed_user, open_user = "retention-closed", "retention-open"
    Conversation(live_settings, closed_user).say("hi", "they took my passport and lock me in")
    Conversation(live_settings, open_user).say("hello", "help me please they locked me in the room")
    closed_key, open_key = (user_key(pepper, "test", u) for u in (closed_user, open_user))
    engine = open_engine(live_settings.database_url())
    handoff = Handoff(engine, pepper, ["counsellor"])
    case = handoff.active_for(closed_key)
    assert case is not None and handoff.active_for(open_key) is not None
    handoff.claim("counsellor", case.id)
    handoff.send("counsellor", case.id, "I am here for you")
    handoff.close("counsellor", case.id, "safe")
    assert _events(live_settings, closed_key) > 0

    tracker = sa.create_engine(live_settings.tracker_store_url())
    soon = run(engine, tracker, days=90, now=time.time() + 10 * DAY)
    assert _events(live_settings, closed_key) > 0 and not soon.deleted.get("cases anonymised")  # too young

    later = run(engine, tracker, days=90, now=time.time() + 91 * DAY)
    assert later.deleted["cases anonymised"] >= 1 and later.deleted["rasa events"] > 0
    assert _events(live_settings, closed_key) == 0
    assert _events(live_settings, open_key) > 0  # her case is open: nothing of hers is touched
    with engine.connect() as conn:
        row = conn.execute(sa.select(escalations).where(escalations.c.id == case.id)).one()
        assert row.user_key == ANONYMOUS and row.address == "" and row.triggers == "[]" and row.outcome == "safe"
        assert conn.execute(sa.select(transcript).where(transcript.c.escalation_id == case.id)).all() == []
        assert conn.execute(sa.select(outbox).where(outbox.c.escalation_id == case.id)).all() == []
        for key in (closed_key,):
            assert conn.execute(sa.select(profiles_table).where(profiles_table.c.user_key == key)).all() == []
        assert conn.execute(sa.select(profiles_table).where(profiles_table.c.user_key == open_key)).all() != []
    handoff.end_by_user(handoff.active_for(open_key).id)  # type: ignore[union-attr]


def test_stats_are_anonymous_counts_with_a_table_and_a_chart(live_settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(live_settings.database_url())
    before = report(engine, days=1)
    Conversation(live_settings, "stats-user").say("hi", "what are my rights?", "ขอเบอร์สายด่วนหน่อย")
    after = report(engine, days=1)
    today = after.days[-1]
    assert sum(after.messages[today].values()) == sum(before.messages.get(today, {}).values()) + 3
    assert after.messages[today].get("th", 0) >= 1
    for table in (daily, claim_waits):  # counters only: nothing that points at a person
        assert not {"user_key", "address", "text", "sender_id"} & set(table.c.keys())
    png = tmp_path / "stats.png"
    env = {**os.environ, "SP_VAR_DIR": str(live_settings.var_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "stats", "--days", "7", "--png", str(png)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Messages per day and language" in out.stdout and "Messages per topic" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_logs_carry_no_message_text_and_no_numbers(live_settings: Settings, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    private_message = "my boss Somchai took my passport at Soi 7, call me on +66812223344"
    with caplog.at_level(logging.DEBUG):
        Conversation(live_settings, "+66812223344").say("hello there", private_message, "what are my rights in Thailand?")
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("bot"))
    assert "escalation id=" in logged  # the gateway did log the event...
    for leak in ("Somchai", "Soi 7", "66812223344", "passport", "rights in Thailand", "hello there"):
        assert leak not in logged, leak  # ...but not what she wrote, nor who she is


def test_her_words_are_in_no_database_file_in_clear(live_settings: Settings) -> None:
    """Through the real Rasa server: the tracker store and the gateway database hold her words
    only sealed (grep the files themselves, as a local user with read access would)."""
    words = "zephyrine the agent holds my passport call 0812349876"
    Conversation(live_settings, "sealed-words").say("hello", words, "i am in danger help")
    files = [p for p in live_settings.var_dir.rglob("*") if p.is_file()]  # with -wal / -journal files
    assert any(p.name == "rasa_tracker.db" for p in files) and any(p.name == "gateway.db" for p in files)
    # read in another process: closing a descriptor of a SQLite file in this one would drop the
    # locks of this process's pooled connections to it (bot/state.py private_file)
    scan = (
        "import sys\nfrom pathlib import Path\n"
        "for p in sys.argv[1:]:\n    raw = Path(p).read_bytes()\n"
        "    for m in (b'zephyrine', b'0812349876'):\n        if m in raw: print(m, p)\n"
    )
    found = subprocess.run([sys.executable, "-c", scan, *map(str, files)], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and found.stdout == "", found.stdout + found.stderr
    tracker = sa.create_engine(live_settings.tracker_store_url())
    with tracker.connect() as conn:
        rows = conn.execute(sa.text("select data, intent_name from events")).all()
    assert rows and all(r.data.startswith("gAAAAA") and r.intent_name is None for r in rows)
