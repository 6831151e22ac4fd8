"""The Telegram channel's tables (bot/channels/telegram_store.py), on SQLite and PostgreSQL: one
relay lease per case across gateways, group messages map to a case only while it is active, and
/erase forgets her message ids."""

from __future__ import annotations

import sqlalchemy as sa

from bot.channels.telegram_store import TelegramStore
from bot.db import open_engine
from bot.handoff import Handoff, escalations
from tests.conftest import Clock

GROUP = -100


def _case(handoff: Handoff, user: str) -> int:
    escalation, _ = handoff.escalate(
        user_key=user, channel="telegram", address="1", language="en", country="TH",
        risk_level="urgent", risk_category="locked_in", triggers=(), message="words",
    )  # fmt: skip
    return escalation.id


def test_one_gateway_relays_a_case_at_a_time_and_a_dead_ones_lease_expires(db_url: str) -> None:
    clock = Clock()
    engine = open_engine(db_url)
    handoff = Handoff(engine, "p" * 40, ["c"], clock=clock)
    first, second = TelegramStore(engine, clock=clock), TelegramStore(engine, clock=clock)
    case = _case(handoff, "her")
    first.start_relay(case)
    assert first.relayed_cases() == [case]
    start = first.lease_relay(case)
    assert start is not None and second.lease_relay(case) is None  # held by the first gateway
    first.relayed(case, start + 1)
    clock.now += 61  # the first gateway died holding the lease
    assert second.lease_relay(case) == start + 1  # the second goes on from the last line relayed
    second.release_relay(case)
    assert first.lease_relay(case) == start + 1


def test_group_messages_belong_to_a_case_only_while_it_is_active(db_url: str) -> None:
    engine = open_engine(db_url)
    handoff = Handoff(engine, "p" * 40, ["c"])
    store = TelegramStore(engine)
    open_case, erased_case = _case(handoff, "a"), _case(handoff, "b")
    store.record_group_message(GROUP, 10, open_case, is_card=True)
    store.record_group_message(GROUP, 11, open_case)
    store.record_group_message(GROUP, 20, erased_case, is_card=True)
    store.start_relay(erased_case)
    assert store.card_of(GROUP, open_case) == 10 and store.escalation_of(GROUP, 11) == open_case
    assert store.reannounce_missing_cards(GROUP) == 0  # both cards reached the group
    handoff.erase_user("b")
    with engine.connect() as conn:
        assert conn.execute(sa.select(escalations.c.id).where(escalations.c.id == erased_case)).first() is None
    ended = store.take_ended_cases()
    assert [(e.escalation_id, e.message_id, e.erased) for e in ended] == [(erased_case, 20, True)]
    assert store.escalation_of(GROUP, 20) is None and store.relayed_cases() == []  # a reply reaches no one
    assert store.escalation_of(GROUP, 11) == open_case and store.take_ended_cases() == []


def test_erase_forgets_every_message_id_and_returns_the_deletable_ones(db_url: str) -> None:
    clock = Clock()
    store = TelegramStore(open_engine(db_url), clock=clock)
    store.remember_sent("her", 1)
    clock.now += 49 * 3600
    store.remember_sent("her", 2)
    store.remember_sent("other", 3)
    assert store.take_sent("her", newer_than=clock.now - 48 * 3600) == [2]  # 1 is too old to delete
    assert store.take_sent("her", newer_than=0) == []  # forgotten, both
    assert store.take_sent("other", newer_than=0) == [3]


def test_an_update_is_claimed_by_one_gateway_taken_over_after_its_lease_and_never_answered_twice(db_url: str) -> None:
    """The update ledger behind the webhook (issue 13): claimed with a lease, marked done in the
    transaction that records her answer; a replay of a done update is only acknowledged."""
    from bot.channels.telegram_store import BUSY, CLAIMED, DONE

    clock = Clock()
    engine = open_engine(db_url)
    first, second = TelegramStore(engine, clock=clock), TelegramStore(engine, clock=clock)
    assert first.claim_update(7001, lease_seconds=120) == CLAIMED
    assert second.claim_update(7001, lease_seconds=120) == BUSY  # being handled: Telegram sends it again later
    clock.now += 121  # the first gateway died before she got anything
    assert second.claim_update(7001, lease_seconds=120) == CLAIMED
    with engine.begin() as conn:
        assert second.mark_done(conn, 7001)  # her answer recorded
    with engine.begin() as conn:
        assert not first.mark_done(conn, 7001)  # the first came back to life: it must not answer too
    assert first.claim_update(7001) == DONE and second.claim_update(7001) == DONE
    # a handling that failed before anything reached her frees the update for the next try at once
    assert first.claim_update(7002) == CLAIMED
    first.release_update(7002)
    assert second.claim_update(7002) == CLAIMED
    second.finish_update(7002)
    assert first.claim_update(7002) == DONE
    with engine.connect() as conn:
        columns = set(conn.execute(sa.text("SELECT * FROM telegram_updates")).keys())
    assert columns == {"update_id", "received_at", "lease_until", "done_at"}  # no text, no chat
    clock.now += 48 * 3600 + 1
    assert first.claim_update(7003) == CLAIMED
    assert first.prune_updates() == 2  # 7001 and 7002 are older than 48 hours
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(sa.text("SELECT update_id FROM telegram_updates"))] == [7003]


def test_gateways_claiming_one_update_at_the_same_moment_let_exactly_one_in(db_url: str) -> None:
    import threading

    from bot.channels.telegram_store import CLAIMED

    engine = open_engine(db_url)
    for update_id in range(8000, 8010):
        start = threading.Barrier(4)
        verdicts: list[str] = []

        def claim(update_id: int = update_id, start: threading.Barrier = start, verdicts: list[str] = verdicts) -> None:
            store = TelegramStore(sa.create_engine(db_url) if engine.dialect.name == "postgresql" else engine)
            start.wait()
            verdicts.append(store.claim_update(update_id))

        threads = [threading.Thread(target=claim) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert verdicts.count(CLAIMED) == 1 and len(verdicts) == 4, verdicts


def test_the_retention_job_forgets_update_ids_after_48_hours_whatever_its_cutoff(db_url: str) -> None:
    from bot import retention

    clock = Clock()
    engine = open_engine(db_url)
    store = TelegramStore(engine, clock=clock)
    store.claim_update(9001)
    clock.now += 47 * 3600
    store.claim_update(9002)
    retention.run(engine, None, days=90, now=clock.now + 3600 + 1)  # 9001 is 48 h old, 9002 1 h
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(sa.text("SELECT update_id FROM telegram_updates"))] == [9002]
