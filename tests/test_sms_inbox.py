"""The SMS inbox shared by several gateways (the compose topology), on SQLite and PostgreSQL:
every message is processed by exactly one gateway, one number's messages in order, a dead
gateway's lease runs out, and repeated failures end in a recorded dead letter."""

from __future__ import annotations

import threading

from bot.db import open_engine
from bot.sms.store import SmsStore
from tests.conftest import Clock


def test_two_gateways_never_process_the_same_message(db_url: str) -> None:
    first, second = SmsStore(open_engine(db_url), "pepper"), SmsStore(open_engine(db_url), "pepper")
    for n in range(60):
        first.accept("kannel", f"mo-{n}", f"key-{n % 20}", f"+6681000{n % 20:04d}", f"message {n}")
    taken: dict[str, list[int]] = {"a": [], "b": []}

    def gateway(name: str, store: SmsStore) -> None:
        while True:
            items = store.claim(limit=5)
            if not items and not store.unprocessed():
                return
            for item in items:
                taken[name].append(item.id)
                store.done(item.id)

    threads = [threading.Thread(target=gateway, args=(n, s)) for n, s in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = taken["a"] + taken["b"]
    assert sorted(everything) == sorted(set(everything)) and len(everything) == 60  # once each, none lost


def test_one_numbers_messages_are_claimed_in_order(db_url: str) -> None:
    store = SmsStore(open_engine(db_url), "pepper")
    ids = [store.accept("kannel", f"mo-{n}", "key-her", "+66810000001", f"answer {n}") for n in range(3)]
    assert [i.id for i in store.claim()] == [ids[0]]  # the second waits for the first (the job check's "1"s)
    assert store.claim() == []
    store.done(ids[0])
    assert [i.text for i in store.claim()] == ["answer 1"]


def test_a_dead_gateways_lease_runs_out_and_failures_end_in_a_dead_letter(db_url: str) -> None:
    clock = Clock()
    store = SmsStore(open_engine(db_url), "pepper", clock=clock)
    item_id = store.accept("kannel", "mo-1", "key-her", "+66810000001", "help")
    assert [i.id for i in store.claim(lease_seconds=120)] == [item_id]
    assert store.claim() == []  # leased
    clock.now += 121
    assert [i.id for i in store.claim()] == [item_id]  # the lease ran out: another gateway takes it
    for _ in range(6):
        assert store.failed(item_id, "RasaUnavailable", max_attempts=8) is False
        clock.now += 400
        assert [i.id for i in store.claim()] == [item_id]
    assert store.failed(item_id, "RasaUnavailable", max_attempts=8) is True
    assert store.unprocessed() == [] and store.claim() == []


def test_a_row_sealed_with_another_pepper_is_dead_lettered_and_blocks_nobody(db_url: str) -> None:
    """Issue 14 item 3: one unreadable inbox row (a pepper change) used to stop the inbox for all."""
    import sqlalchemy as sa

    from bot.sms.store import inbox

    old = SmsStore(open_engine(db_url), "an-older-pepper-of-32-characters-x")
    stale = old.accept("kannel", "mo-old", "key-a", "+66810000001", "sealed before the change")
    store = SmsStore(open_engine(db_url), "the-current-pepper-32-characters-y")
    fresh = store.accept("kannel", "mo-new", "key-b", "+66810000002", "help")
    assert [i.id for i in store.claim()] == [fresh]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(inbox).where(inbox.c.id == stale)).one()
    assert row.processed_at is not None and row.sealed is None and row.last_error.startswith("dead_letter: unreadable")


def test_her_state_is_one_read_and_an_unchanged_menu_is_not_written_again_within_the_hour(db_url: str) -> None:
    """The gateway reads provider, opt-out and menu once per message, and rewrites an unchanged menu only once an
    hour - often enough that retention (by updated_at) never takes the row of a girl who is still writing."""
    from types import SimpleNamespace

    from bot.sms.gateway import MENU_REFRESH_SECONDS, SmsGateway
    from bot.sms.store import SubscriberState

    clock = Clock()
    store = SmsStore(open_engine(db_url), "pepper", clock=clock)
    assert store.state("key-her") == SubscriberState()
    store.remember_provider("key-her", "kannel")
    store.set_menu("key-her", ("/affirm", "/deny"))
    state = store.state("key-her")
    assert state.provider == "kannel" and state.menu == ("/affirm", "/deny") and not state.opted_out
    assert state.updated_at == clock.now
    gateway = SimpleNamespace(handoff=SimpleNamespace(clock=clock))
    changed = SmsGateway._menu_changed
    assert changed(gateway, SubscriberState(), ()) is True  # no row yet
    assert changed(gateway, state, ("/affirm", "/deny")) is False
    assert changed(gateway, state, ("/get_help",)) is True
    clock.now += MENU_REFRESH_SECONDS
    assert changed(gateway, state, ("/affirm", "/deny")) is True
    store.set_opted_out("key-her", True)
    assert store.state("key-her").opted_out and store.state("key-her").menu == ()
