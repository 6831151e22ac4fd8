"""Rasa's tracker events are sealed at rest, on SQLite and PostgreSQL (issue 14, item 1)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.config import Settings
from bot.crypto import derived_key, tracker_keys
from bot.tracker_store import SealedSQLTrackerStore, UnreadableTracker

HER_WORDS = "the agent keeps my passport, call me on +66 81 234 5678"
PEPPER = "p" * 40
NEW_PEPPER = "n" * 40


def _store(url: str, keys: str) -> SealedSQLTrackerStore:
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    return SealedSQLTrackerStore(domain=Domain.empty(), dialect=dialect, host=url, keys=keys)


def _tracker(sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, slots=[])
    for event in (
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered(HER_WORDS, intent={"name": "danger", "confidence": 0.97}),
        SlotSet("country", "TH"),
        ActionExecuted("action_escalate"),
        BotUttered("A counsellor will write to you here."),
    ):
        tracker.update(event)
    return tracker


def _raw_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM events ORDER BY id"))]
    engine.dispose()
    return rows


def test_events_are_sealed_and_read_back(db_url: str) -> None:
    asyncio.run(_test_events_are_sealed_and_read_back(db_url))


async def _test_events_are_sealed_and_read_back(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    await store.save(_tracker("a1b2c3"))
    rows = _raw_rows(db_url)
    assert len(rows) == 7
    for row in rows:
        assert "passport" not in row["data"] and "234 5678" not in row["data"] and '"country"' not in row["data"]
        assert row["data"].startswith("gAAAAA")
        assert row["intent_name"] is None and row["action_name"] is None  # "she reported danger" is not kept in clear
    tracker = await store.retrieve("a1b2c3")
    assert tracker is not None
    assert tracker.latest_message.text == HER_WORDS
    assert [e.type_name for e in tracker.events][-1] == "bot"
    # a second save appends only the new events, still sealed
    tracker.update(UserUttered("thank you"))
    await store.save(tracker)
    assert len(_raw_rows(db_url)) == 8


def test_clear_rows_of_an_older_version_are_sealed_at_start(db_url: str) -> None:
    asyncio.run(_test_clear_rows_of_an_older_version_are_sealed_at_start(db_url))


async def _test_clear_rows_of_an_older_version_are_sealed_at_start(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    SealedSQLTrackerStore.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for i, event in enumerate(_tracker("old").events):
            data = event.as_dict()
            conn.execute(
                sa.text(
                    "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data)"
                    " VALUES ('old', :t, :ts, 'danger', 'x', :d)"
                ),
                {"t": event.type_name, "ts": float(i), "d": json.dumps(data)},
            )
    engine.dispose()
    assert any("passport" in r["data"] for r in _raw_rows(db_url))
    store = _store(db_url, tracker_keys([PEPPER]))
    rows = _raw_rows(db_url)
    assert all(r["data"].startswith("gAAAAA") and r["intent_name"] is None for r in rows)
    tracker = await store.retrieve("old")
    assert tracker is not None and tracker.latest_message.text == HER_WORDS
    assert store.seal_plain_events() == 0  # idempotent


def test_key_rotation_old_key_still_reads_then_rekey(db_url: str) -> None:
    asyncio.run(_test_key_rotation_old_key_still_reads_then_rekey(db_url))


async def _test_key_rotation_old_key_still_reads_then_rekey(db_url: str) -> None:
    old = _store(db_url, tracker_keys([PEPPER]))
    await old.save(_tracker("rot"))
    rotated = _store(db_url, tracker_keys([NEW_PEPPER, PEPPER]))
    assert (await rotated.retrieve("rot")).latest_message.text == HER_WORDS
    assert rotated.rekey() == 7
    only_new = _store(db_url, tracker_keys([NEW_PEPPER]))
    assert (await only_new.retrieve("rot")).latest_message.text == HER_WORDS


def test_a_missing_key_is_a_clear_error_not_lost_events(db_url: str) -> None:
    asyncio.run(_test_a_missing_key_is_a_clear_error_not_lost_events(db_url))


async def _test_a_missing_key_is_a_clear_error_not_lost_events(db_url: str) -> None:
    await _store(db_url, tracker_keys([PEPPER])).save(_tracker("lost"))
    stranger = _store(db_url, tracker_keys([NEW_PEPPER]))
    with pytest.raises(UnreadableTracker):
        await stranger.retrieve("lost")


def test_an_empty_keyring_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError):
        _store(f"sqlite:///{tmp_path / 't.db'}", "")
    with pytest.raises(ValueError):
        derived_key("", b"x")


def test_rasa_gets_a_tracker_key_never_the_pepper(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SP_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SP_PEPPER", PEPPER)
    env = Settings().rasa_env()
    assert env["SP_TRACKER_KEYS"] == tracker_keys([PEPPER])
    assert PEPPER not in "".join(env.values())


def test_endpoints_configure_the_sealed_store() -> None:
    import yaml

    from bot.config import ROOT

    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    assert endpoints["tracker_store"]["type"] == "bot.tracker_store.SealedSQLTrackerStore"


def test_the_saved_tracker_is_kept_only_for_the_sender_asked_for(db_url: str) -> None:
    """The gateway channel's turn summary comes from the tracker Rasa just saved (not read back):
    kept only for the sender it asked for, once, and the same as what the database holds."""

    async def run() -> None:
        store = _store(db_url, tracker_keys([PEPPER]))
        store.keep_next_save("asked")
        await store.save(_tracker("asked"))
        await store.save(_tracker("other"))
        kept = store.take_saved("asked")
        assert kept is not None and kept.sender_id == "asked"
        assert store.take_saved("asked") is None and store.take_saved("other") is None  # once; not asked
        await store.save(_tracker("asked"))  # no longer wanted: not kept
        assert store.take_saved("asked") is None
        stored = await store.retrieve("asked")
        assert stored is not None
        from bot.rasa_channel import _turn_summary

        assert _turn_summary(kept) == _turn_summary(stored) and _turn_summary(kept)["intent"] == "danger"

    asyncio.run(run())


def test_a_sqlite_file_store_keeps_its_connections(tmp_path: Path) -> None:
    path = tmp_path / "rasa.db"
    store = SealedSQLTrackerStore(domain=Domain.empty(), dialect="sqlite", db=str(path), keys=tracker_keys([PEPPER]))
    assert store.engine.url.database == str(path)
    assert isinstance(store.engine.pool, sa.pool.QueuePool)  # not a new connection per session
    asyncio.run(store.save(_tracker("pooled")))
    assert asyncio.run(store.retrieve("pooled")) is not None


def test_a_turn_is_saved_in_one_insert_in_event_order(db_url: str) -> None:
    """The events a save adds go in one multi-row INSERT (one round trip to PostgreSQL, not one per
    event) and keep their order: ids ascend with the tracker's events, and the next turn appends."""

    async def run() -> None:
        store = _store(db_url, tracker_keys([PEPPER]))
        inserts: list[str] = []

        def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
            if statement.lstrip().upper().startswith("INSERT"):
                inserts.append(statement)

        sa.event.listen(store.engine, "before_cursor_execute", seen)
        tracker = _tracker("in-order")
        for number in range(30):
            tracker.update(BotUttered(f"line {number}"))
        await store.save(tracker)
        assert len(inserts) == 1
        first = [e.as_dict() for e in tracker.events]
        start = max(e.timestamp for e in tracker.events if isinstance(e, SessionStarted))
        # the next turn, as Rasa runs it: the tracker of the latest session read back, two events added
        stored = await store.retrieve("in-order")
        assert stored is not None
        assert [e.as_dict() for e in stored.events] == [e for e in first if e["timestamp"] >= start]
        stored.update(UserUttered("and then?"))
        stored.update(BotUttered("then this."))
        await store.save(stored)
        assert len(inserts) == 2
        rows = _raw_rows(db_url)
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        assert [store._open(r["data"]) for r in rows] == first + [e.as_dict() for e in list(stored.events)[-2:]]
        assert [r["type_name"] for r in rows] == [e["event"] for e in first] + ["user", "bot"]
        assert all(r["sender_id"] == "in-order" and r["intent_name"] is None and r["action_name"] is None for r in rows)
        assert [r["timestamp"] for r in rows] == [store._open(r["data"])["timestamp"] for r in rows]
        await store.save(stored)  # nothing new: nothing written
        assert len(inserts) == 2 and len(_raw_rows(db_url)) == len(first) + 2

    asyncio.run(run())


def _insert_events(store: SealedSQLTrackerStore, rows: list[tuple[str, str, float]]) -> None:
    """(sender, type_name, timestamp) rows, in this id order; the data does not matter here."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(store.SQLEvent.__table__),
            [{"sender_id": s, "type_name": t, "timestamp": ts, "data": "{}"} for s, t, ts in rows],
        )


def test_the_session_query_selects_what_rasas_does(db_url: str) -> None:
    """Our session-start subquery (scalar, computed once) picks the same rows, in the same order,
    as Rasa's own query: no session start, one, two (with events before, at and after the latest,
    and a late-stored event older than it), other senders interleaved."""
    from rasa.core.tracker_store import SQLTrackerStore

    store = _store(db_url, tracker_keys([PEPPER]))
    rows = [
        ("none", "action", 10.0), ("none", "user", 11.0),
        ("one", "action", 20.0), ("one", "session_started", 20.5), ("other", "session_started", 99.0),
        ("one", "action", 21.0), ("one", "user", 22.0),
        ("two", "action", 30.0), ("two", "session_started", 30.5), ("two", "user", 31.0), ("two", "bot", 32.0),
        ("two", "action", 39.0), ("two", "session_started", 40.0), ("two", "slot", 40.0), ("two", "user", 41.0),
        ("two", "bot", 35.0), ("other", "user", 100.0), ("two", "user", 42.0),
    ]  # fmt: skip
    _insert_events(store, rows)
    with store.session_scope() as session:
        for sender in ("none", "one", "two", "other", "nobody"):
            for every_session in (False, True):
                ours = store._event_query(session, sender, fetch_events_from_all_sessions=every_session)
                rasas = SQLTrackerStore._event_query(store, session, sender, fetch_events_from_all_sessions=every_session)
                assert [e.id for e in ours.all()] == [e.id for e in rasas.all()], (sender, every_session)
                assert ours.count() == rasas.count()
        since = [(e.type_name, e.timestamp) for e in store._event_query(session, "two", False).all()]
        assert since == [("session_started", 40.0), ("slot", 40.0), ("user", 41.0), ("user", 42.0)]


def test_postgresql_computes_the_session_start_once(db_url: str) -> None:
    """On a young events table PostgreSQL ran Rasa's session-start join once per event row (a
    quadratic read on every turn); ours is a scalar subquery: every plan node runs once."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL plan")
    store = _store(db_url, tracker_keys([PEPPER]))
    _insert_events(
        store,
        [("long", "session_started" if i == 1 else "bot", 1000.0 + i) for i in range(300)]
        + [(f"u{n}", "bot", 5000.0 + n) for n in range(30)],
    )
    with store.session_scope() as session:
        for query in (
            store._event_query(session, "long", False).with_entities(store.SQLEvent.data),
            store._event_query(session, "long", False),
        ):
            sql = str(query.statement.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
            plan = [row[0] for row in session.execute(sa.text("EXPLAIN ANALYZE " + sql))]
            loops = [int(part.split(")")[0]) for line in plan for part in line.split("loops=")[1:]]
            assert loops and set(loops) == {1}, "\n".join(plan)
        assert store._event_query(session, "long", False).count() == 299


# -- her tracker kept in memory between turns (issue 18: 58% of Rasa's CPU at turn 30) ---------
def _rows_of(store: SealedSQLTrackerStore, sender: str) -> list[dict]:
    tracker = asyncio.run(store.retrieve(sender))
    store.forget(sender)  # a look from the test is not a turn
    return [] if tracker is None else [e.as_dict() for e in tracker.events]


def _turn(store: SealedSQLTrackerStore, sender: str, text: str) -> DialogueStateTracker:
    """One turn as Rasa's processor does it: read (or create), add events, save."""
    tracker = asyncio.run(store.get_or_create_tracker(sender))
    for event in (UserUttered(text), ActionExecuted("action_answer"), BotUttered(f"answer to {text}")):
        tracker.update(event)
    asyncio.run(store.save(tracker))
    return tracker


def _fresh(db_url: str) -> SealedSQLTrackerStore:
    return SealedSQLTrackerStore(
        domain=Domain.empty(),
        dialect=db_url.split(":", 1)[0].split("+", 1)[0],
        host=db_url,
        keys=tracker_keys([PEPPER]),
        cache_size=0,
    )


def test_a_kept_tracker_is_what_the_database_gives(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    database = _fresh(db_url)
    asyncio.run(store.save(_tracker("k1")))  # a new conversation: not handed out by the store, not kept
    assert store.cached_senders() == []
    saved = _turn(store, "k1", "turn two")  # read from the database, then kept
    assert store.cached_senders() == ["k1"]
    for n in range(3, 8):
        tracker = _turn(store, "k1", f"turn {n}")
        assert tracker is saved  # handed back from memory: no read, no replay
        assert [e.as_dict() for e in tracker.events] == _rows_of(database, "k1")
        saved = tracker
    assert len(_raw_rows(db_url)) == 7 + 6 * 3


def test_another_server_or_an_erasure_sends_the_read_to_the_database(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    other = _fresh(db_url)  # another Rasa server sharing the database
    asyncio.run(store.save(_tracker("k2")))
    _turn(store, "k2", "mine")
    _turn(other, "k2", "through the other server")
    tracker = _turn(store, "k2", "mine again")
    assert [e.text for e in tracker.events if isinstance(e, UserUttered)][-2:] == ["through the other server", "mine again"]
    assert [e.as_dict() for e in tracker.events] == _rows_of(other, "k2")
    # erased by another process (the gateway's retention, an operator): nothing comes back from memory
    assert store.cached_senders() == ["k2"]
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM events WHERE sender_id = 'k2'"))
    engine.dispose()
    assert asyncio.run(store.retrieve("k2")) is None


def test_a_turn_that_never_saves_leaves_nothing_behind(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    asyncio.run(store.save(_tracker("k3")))
    _turn(store, "k3", "saved")
    lent = asyncio.run(store.retrieve("k3"))
    assert lent is not None
    lent.update(UserUttered("never saved: the turn failed"))
    again = asyncio.run(store.retrieve("k3"))
    assert again is not lent
    assert [e.text for e in again.events if isinstance(e, UserUttered)][-1] == "saved"


def test_a_turn_another_server_wrote_during_is_not_kept(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    asyncio.run(store.save(_tracker("k4")))
    _turn(store, "k4", "first")
    lent = asyncio.run(store.retrieve("k4"))
    _turn(_fresh(db_url), "k4", "meanwhile elsewhere")
    lent.update(UserUttered("mine"))
    asyncio.run(store.save(lent))
    assert store.cached_senders() == []


def test_a_new_session_is_read_from_the_database(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    asyncio.run(store.save(_tracker("k5")))
    _turn(store, "k5", "old session")
    tracker = asyncio.run(store.retrieve("k5"))
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        tracker.update(event)
    asyncio.run(store.save(tracker))
    assert store.cached_senders() == []  # the database's read starts at the new session; memory would not


def test_kept_trackers_are_bounded_in_number_and_time(db_url: str) -> None:
    now = [1000.0]
    store = SealedSQLTrackerStore(
        domain=Domain.empty(),
        dialect=db_url.split(":", 1)[0].split("+", 1)[0],
        host=db_url,
        keys=tracker_keys([PEPPER]),
        cache_size=2,
        cache_seconds=60,
        clock=lambda: now[0],
    )
    for sender in ("a", "b", "c"):
        asyncio.run(store.save(_tracker(sender)))
        _turn(store, sender, "hello")
    assert store.cached_senders() == ["b", "c"]
    now[0] += 61
    assert store.cached_senders() == []  # her words do not stay in memory after she has gone


def test_forget_and_a_new_model_drop_what_is_kept(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    asyncio.run(store.save(_tracker("k6")))
    saved = _turn(store, "k6", "hello")
    store.forget("k6")
    assert store.cached_senders() == []
    saved = _turn(store, "k6", "hello again")
    store.domain = Domain.empty()  # a model loaded at runtime: trackers are rebuilt with its slots
    assert asyncio.run(store.retrieve("k6")) is not saved


def test_every_session_is_always_read_from_the_database(db_url: str) -> None:
    store = _store(db_url, tracker_keys([PEPPER]))
    asyncio.run(store.save(_tracker("k7")))
    saved = _turn(store, "k7", "hello")
    full = asyncio.run(store.retrieve_full_tracker("k7"))
    assert full is not saved and store.cached_senders() == ["k7"]
