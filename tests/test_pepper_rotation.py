"""Pepper rotation: after `python -m bot rotate-pepper` every sealed value opens with the new key
only, every user whose address we hold has her new pseudonym at once, the others move on their
next message (with their Rasa conversation), and /erase still removes everything."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import InvalidToken

from bot.config import ROOT, Settings
from bot.content import Catalog
from bot.crypto import SEALED_PREFIX, keyring, tracker_keys
from bot.db import open_engine
from bot.handoff import Handoff, address_cipher
from bot.langid import LanguageIdentifier
from bot.pipeline import Pipeline
from bot.profiles import ProfileStore, user_key
from bot.rasa_client import RasaClient
from bot.rekey import new_pepper_file, rotate
from bot.risk.screener import Screener
from tests.test_pipeline_unit import FakeRasa


class RenamingRasa(FakeRasa):
    def __init__(self) -> None:
        super().__init__()
        self.renamed: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/rename"):
            body = json.loads(request.content)
            self.renamed.append((body["sender"], body["to"]))
            return httpx.Response(200, json={"moved": 3})
        return super().__call__(request)


def pipeline(
    settings: Settings, rasa: FakeRasa, catalog: Catalog, identifier: LanguageIdentifier, screener: Screener
) -> Pipeline:
    pepper, *previous = settings.peppers()
    engine = open_engine(settings.database_url())
    client = RasaClient("http://rasa.test", "token", transport=httpx.MockTransport(rasa))
    handoff = Handoff(engine, pepper, ["c"], previous_peppers=previous)
    return Pipeline(catalog, identifier, ProfileStore(engine), client, pepper, screener, handoff, previous_peppers=previous)


def sealed_values(db: Path) -> list[str]:
    """Every Fernet token stored anywhere in the SQLite file."""
    found = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):  # noqa: S608 - our own table names
                found += [v for v in row if isinstance(v, str) and v.startswith(SEALED_PREFIX)]
    return found


def rows_of(db: Path, key: str) -> int:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        total = 0
        for table in tables:
            columns = [r[1] for r in conn.execute(f'pragma table_info("{table}")')]
            if "user_key" in columns:
                total += conn.execute(f'select count(*) from "{table}" where user_key = ?', (key,)).fetchone()[0]  # noqa: S608
    return total


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("SP_PEPPER", "SP_PEPPER_PREVIOUS", "SP_DB_URL", "SP_TRACKER_URL", "SP_TRACKER_DB"):
        monkeypatch.delenv(name, raising=False)
    return Settings(var_dir=tmp_path / "var")


def test_rotation_reseals_everything_and_moves_every_user_it_can(
    settings: Settings, catalog: Catalog, identifier: LanguageIdentifier, screener: Screener
) -> None:
    (old,) = settings.peppers()
    world = pipeline(settings, RenamingRasa(), catalog, identifier, screener)
    asyncio.run(world.handle("local", "girl-1", "help me please, they locked me in the room"))
    asyncio.run(world.handle("local", "girl-2", "is a job in a restaurant in Dubai safe?"))
    world.handoff.engine.dispose()
    old_one, old_two = user_key(old, "local", "girl-1"), user_key(old, "local", "girl-2")
    gateway_db = settings.var_dir / "gateway.db"
    assert rows_of(gateway_db, old_one) >= 2  # profile + escalation (+ transcript via the case)
    # Rasa's tracker (a minimal events table: what the command touches is the data and sender_id)
    tracker_db = Path(settings.tracker_db_path())
    old_tracker = keyring(tracker_keys([old]))
    with sqlite3.connect(tracker_db) as conn:
        conn.execute("create table events (id integer primary key, sender_id text, type_name text, data text)")
        for sender in (old_one, old_two):
            data = old_tracker.encrypt(json.dumps({"event": "user", "text": "her words"}).encode()).decode()
            conn.execute("insert into events (sender_id, type_name, data) values (?, 'user', ?)", (sender, data))

    new_pepper_file(settings.var_dir)
    report = rotate(settings)

    new, previous = settings.peppers()
    assert previous == old and new != old and len(new) >= 32
    assert stat.S_IMODE((settings.var_dir / "pepper.previous").stat().st_mode) == 0o600
    assert stat.S_IMODE((settings.var_dir / "pepper").stat().st_mode) == 0o600
    values = sealed_values(gateway_db)
    assert values, "the conversation left sealed values"
    only_new, only_old = address_cipher(new), address_cipher(old)
    for value in values:
        only_new.decrypt(value.encode())  # re-sealed under the new pepper
        with pytest.raises(InvalidToken):
            only_old.decrypt(value.encode())
    new_one = user_key(new, "local", "girl-1")
    assert rows_of(gateway_db, old_one) == 0 and rows_of(gateway_db, new_one) >= 2  # her case follows her
    assert report.users_moved == 1 and report.profiles_left == 1  # girl-2 left only a profile
    with sqlite3.connect(tracker_db) as conn:
        senders = [r[0] for r in conn.execute("select sender_id from events order by id")]
        data = [r[0] for r in conn.execute("select data from events")]
    assert senders == [new_one, old_two]
    new_tracker = keyring(tracker_keys([new]))
    assert all(json.loads(new_tracker.decrypt(d.encode()))["text"] == "her words" for d in data)
    assert report.gateway.unreadable == report.tracker.unreadable == 0


def test_after_rotation_her_next_message_finds_her_and_erase_removes_everything(
    settings: Settings, catalog: Catalog, identifier: LanguageIdentifier, screener: Screener
) -> None:
    (old,) = settings.peppers()
    before = pipeline(settings, RenamingRasa(), catalog, identifier, screener)
    asyncio.run(before.handle("local", "girl-3", "สวัสดีค่ะ อยากถามเรื่องงานที่ต่างประเทศ"))
    before.handoff.engine.dispose()
    new_pepper_file(settings.var_dir)
    rotate(settings)
    new, _ = settings.peppers()
    old_key, new_key = user_key(old, "local", "girl-3"), user_key(new, "local", "girl-3")
    gateway_db = settings.var_dir / "gateway.db"
    assert rows_of(gateway_db, old_key) == 1  # a profile only: no address to compute her new name from

    rasa = RenamingRasa()
    after = pipeline(settings, rasa, catalog, identifier, screener)
    turn = asyncio.run(after.handle("local", "girl-3", "ok"))
    assert rasa.renamed == [(old_key, new_key)]  # her Rasa conversation follows her
    assert rows_of(gateway_db, old_key) == 0 and rows_of(gateway_db, new_key) == 1
    assert turn.language == "th"  # her profile (language) was found under the new name
    asyncio.run(after.handle("local", "girl-3", "/erase"))
    assert rows_of(gateway_db, old_key) == rows_of(gateway_db, new_key) == 0
    assert rasa.erased == [new_key]


def test_a_pepper_from_the_environment_is_rotated_by_the_operator(tmp_path: Path) -> None:
    env = {**os.environ, "SP_VAR_DIR": str(tmp_path), "SP_PEPPER": "p" * 40}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rotate-pepper"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert result.returncode == 2 and "SP_PEPPER_PREVIOUS" in result.stderr
    env["SP_PEPPER_PREVIOUS"] = "short"
    with pytest.raises(ValueError, match="previous pepper"):
        Settings(var_dir=tmp_path, pepper="p" * 40, previous_pepper="short").peppers()


def test_the_real_rasa_server_moves_a_conversation(live_settings: Settings) -> None:
    token = live_settings.secret("channel_token", live_settings.channel_token)

    async def scenario() -> tuple[int, int]:
        client = RasaClient(live_settings.rasa_url, token)
        try:
            await client.send("rotation-old", "hello", {})
            moved = await client.rename("rotation-old", "rotation-new")
            again = await client.rename("rotation-old", "rotation-new")  # nothing left under the old name
            return moved, again
        finally:
            await client.close()

    moved, again = asyncio.run(scenario())
    assert moved >= 2 and again == 0  # her events (user, bot, actions...) moved
    engine = sa.create_engine(live_settings.tracker_store_url())
    with engine.connect() as conn:
        count = dict(
            conn.execute(
                sa.text("select sender_id, count(*) from events where sender_id like 'rotation-%' group by sender_id")
            ).all()
        )
    engine.dispose()
    assert count.get("rotation-old", 0) == 0 and count["rotation-new"] >= 2
