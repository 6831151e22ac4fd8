"""The state directory and every database, secret and log in it are private to this user
(a security review read her sentence out of a 0644 gateway.db as `nobody`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

from bot.config import Settings
from bot.db import open_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_directory_databases_and_secrets_are_private(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    var = tmp_path / "var"
    monkeypatch.setenv("SP_VAR_DIR", str(var))
    settings = Settings()
    settings.secret("pepper", "")
    engine = open_engine(settings.database_url())
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x text)"))
        conn.execute(sa.text("insert into t values ('her words')"))
    assert mode(var) == 0o700
    assert mode(var / "pepper") == 0o600
    assert mode(var / "gateway.db") == 0o600
    for sidecar in var.glob("gateway.db-*"):
        assert mode(sidecar) == 0o600, sidecar


def test_an_existing_installation_is_tightened(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    (var / "gateway.db").touch(mode=0o644)
    os.chmod(var / "gateway.db", 0o644)
    monkeypatch.setenv("SP_VAR_DIR", str(var))
    open_engine(Settings().database_url())
    assert mode(var) == 0o700 and mode(var / "gateway.db") == 0o600


def test_a_weak_or_empty_pepper_is_refused_never_used(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    monkeypatch.setenv("SP_VAR_DIR", str(tmp_path / "var"))
    with pytest.raises(ValueError, match="32"):
        Settings().secret("pepper", "x")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "pepper").write_text("")
    with pytest.raises(RuntimeError, match="backup"):
        Settings().secret("pepper", "")


def test_two_processes_creating_the_pepper_agree_on_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bot.config import ROOT

    code = "from bot.config import Settings; print(Settings().secret('pepper', ''))"
    env = {**os.environ, "SP_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    values = {p.communicate(timeout=60)[0].strip() for p in runs}
    assert len(values) == 1 and len(values.pop()) == 64
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["pepper"]  # no temporary file left behind


def test_the_action_server_listens_on_loopback_unless_told_otherwise(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.stack import child_env

    monkeypatch.delenv("SP_ACTION_HOST", raising=False)
    assert child_env(Settings())["SANIC_HOST"] == "127.0.0.1"
    monkeypatch.setenv("SP_ACTION_HOST", "0.0.0.0")  # noqa: S104 - a container on a private network
    assert child_env(Settings())["SANIC_HOST"] == "0.0.0.0"  # noqa: S104


def test_her_words_triggers_and_outgoing_texts_are_sealed_at_rest(tmp_path: Path) -> None:
    """Whoever copies gateway.db reads no sentence of hers: transcript, triggers and outbox are sealed
    with the pepper-derived key, and rows an older version stored in clear are sealed at start."""
    from bot.handoff import Handoff, escalations, transcript

    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    engine = open_engine(url)
    handoff = Handoff(engine, "p" * 64, ["c"])
    case, _ = handoff.escalate(
        user_key="key", channel="sms", address="+66810000001", language="en", country="TH", risk_level="urgent",
        risk_category="locked_in", triggers=["locked in"], message="i am locked in at 12 red street",
    )  # fmt: skip
    handoff.claim("c", case.id)
    handoff.send("c", case.id, "stay where you are, help is on the way to red street")
    with engine.begin() as conn:  # a row as the previous version wrote it
        conn.execute(transcript.insert().values(escalation_id=case.id, at=1.0, sender="user", text="old clear line"))
    handoff = Handoff(engine, "p" * 64, ["c"])
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gateway.db*"))
    for secret in (b"red street", b"locked in", b"old clear line", b"+66810000001"):
        assert secret not in raw, secret
    lines = [line.text for line in handoff.read_transcript("c", case.id)]
    assert "i am locked in at 12 red street" in lines and "old clear line" in lines
    assert handoff.get(case.id).triggers == ("locked in",)
    assert [d.text for d in handoff.pending_deliveries("sms")] == ["stay where you are, help is on the way to red street"]
    with open_engine(url).connect() as conn:
        assert conn.execute(sa.select(escalations.c.triggers)).scalar_one().startswith("gAAAAA")


def test_aiohttp_parses_requests_with_its_c_parser() -> None:
    """The request-smuggling advisories of aiohttp 3.9.5 (the newest Rasa 3.6 allows) are in its
    pure-Python parser: the public webhooks must run on the C (llhttp) parser (docs/security.md)."""
    from aiohttp import http_parser

    assert "AIOHTTP_NO_EXTENSIONS" not in os.environ
    assert http_parser.HttpRequestParser.__module__ == "aiohttp._http_parser"


def test_making_an_open_sqlite_file_private_keeps_this_process_locks(tmp_path: Path) -> None:
    """private_file must not open an existing database: closing any descriptor of the file drops
    every POSIX lock the process holds on it, and another process writing then corrupts it
    (CI: "database disk image is malformed" after a second engine was opened in one process)."""
    import sqlite3
    import subprocess
    import sys

    from bot.state import private_file

    database = tmp_path / "state" / "gateway.db"
    private_file(database)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # this process holds the write lock
    private_file(database)  # what a second open_engine in the same process does
    other = subprocess.run(
        [sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0).execute('BEGIN IMMEDIATE')",
         str(database)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert other.returncode != 0 and "locked" in other.stderr, other.stderr  # the lock survived
    holder.execute("ROLLBACK")
    holder.close()
