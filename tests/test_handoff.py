"""The handoff core on a real SQLite database: durable escalations, one owner, relay both
ways through the transcript and the outbox, timeouts, restart, erasure, allow-list."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.content import Catalog
from bot.db import open_engine
from bot.desk import notify_overdue
from bot.handoff import AlreadyClaimed, Handoff, NotAllowed, audit
from tests.conftest import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def handoff(db_url: str, clock: Clock) -> Handoff:
    return Handoff(open_engine(db_url), "pepper", ["alice", "bob"], clock=clock)


def escalate(handoff: Handoff, user: str = "u1", message: str = "they took my passport") -> int:
    escalation, is_new = handoff.escalate(
        user_key=f"key-{user}",
        channel="local",
        address=user,
        language="th",
        country="TH",
        risk_level="urgent",
        risk_category="documents_taken",
        triggers=["passport*", "took"],
        message=message,
    )
    assert is_new
    return escalation.id


def test_full_lifecycle(handoff: Handoff) -> None:
    number = escalate(handoff)
    assert [e.id for e in handoff.unnotified()] == [number]
    (queued,) = handoff.queue("alice")
    assert (queued.risk_category, queued.language, queued.channel, queued.status) == (
        "documents_taken",
        "th",
        "local",
        "open",
    )
    assert queued.triggers == ("passport*", "took")
    handoff.claim("alice", number)
    with pytest.raises(AlreadyClaimed):
        handoff.claim("bob", number)
    with pytest.raises(NotAllowed):
        handoff.send("bob", number, "hello")  # bob does not own it
    handoff.send("alice", number, "I'm Alice, a counsellor. Are you safe right now?")
    (delivery,) = handoff.pending_deliveries("local")
    assert delivery.address == "u1" and delivery.text.startswith("I'm Alice")
    handoff.mark_sent(delivery.id)
    assert handoff.pending_deliveries("local") == []
    handoff.user_said(number, "yes, I'm in the bathroom")
    lines = handoff.read_transcript("alice", number)
    assert [line.sender for line in lines] == ["user", "counsellor", "user"]
    assert handoff.release("alice", number).status == "released"
    assert handoff.active_for("key-u1") is None


def test_a_second_danger_message_joins_the_open_case(handoff: Handoff) -> None:
    first = escalate(handoff)
    again, is_new = handoff.escalate(
        user_key="key-u1", channel="local", address="u1", language="th", country="TH",
        risk_level="urgent", risk_category="threats_violence", triggers=[], message="he hits me",
    )  # fmt: skip
    assert not is_new and again.id == first
    assert len(handoff.read_transcript("alice", first)) == 2


def test_only_allow_listed_counsellors(handoff: Handoff) -> None:
    number = escalate(handoff)
    for action in (lambda: handoff.queue("mallory"), lambda: handoff.read_transcript("mallory", number)):
        with pytest.raises(NotAllowed):
            action()
    with pytest.raises(NotAllowed):
        handoff.claim("mallory", number)


def test_exactly_one_of_many_concurrent_claims_wins(db_url: str) -> None:
    counsellors = [f"c{i}" for i in range(8)]
    handoff = Handoff(open_engine(db_url), "pepper", counsellors)
    number = escalate(handoff)
    wins: list[str] = []
    barrier = threading.Barrier(len(counsellors))

    def claim(name: str) -> None:
        mine = Handoff(open_engine(db_url), "pepper", counsellors)
        barrier.wait()
        try:
            mine.claim(name, number)
            wins.append(name)
        except AlreadyClaimed:
            pass

    threads = [threading.Thread(target=claim, args=(c,)) for c in counsellors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert handoff.get(number).counsellor == wins[0]  # type: ignore[union-attr]


def test_unclaimed_escalation_times_out_honestly_once(handoff: Handoff, clock: Clock, catalog: Catalog) -> None:
    escalate(handoff)
    assert notify_overdue(handoff, catalog, timeout_seconds=300) == []
    clock.now += 301
    (told,) = notify_overdue(handoff, catalog, timeout_seconds=300)
    assert notify_overdue(handoff, catalog, timeout_seconds=300) == []  # once only
    (delivery,) = handoff.pending_deliveries("local")
    assert delivery.text.startswith(catalog.text("escalation_timeout", "th"))
    assert "1300" in delivery.text  # Thailand's hotline, from data/facts/TH.yml
    assert handoff.get(told).status == "open"  # type: ignore[union-attr]  # a counsellor may still claim


def test_restart_loses_nothing_and_renotifies(db_url: str, clock: Clock) -> None:
    first = Handoff(open_engine(db_url), "pepper", ["alice"], clock=clock)
    number = escalate(first)
    first.mark_notified(number)
    first.engine.dispose()  # "crash"
    second = Handoff(open_engine(db_url), "pepper", ["alice"], clock=clock)
    assert [e.id for e in second.queue("alice")] == [number]
    assert second.unnotified() == []
    assert second.renotify_open() == 1
    assert [e.id for e in second.unnotified()] == [number]
    assert second.get(number).address == "u1"  # type: ignore[union-attr]


def test_addresses_are_encrypted_at_rest(handoff: Handoff, db_url: str) -> None:
    escalate(handoff, user="+66812345678")
    with sa.create_engine(db_url).connect() as conn:
        stored = conn.execute(sa.text("select address from escalations")).scalar_one()
    assert "812345678" not in stored


def test_erase_user_leaves_no_trace(handoff: Handoff, db_url: str) -> None:
    number = escalate(handoff)
    handoff.claim("alice", number)
    handoff.send("alice", number, "hello")
    handoff.erase_user("key-u1")
    with sa.create_engine(db_url).connect() as conn:
        for table in ("escalations", "escalation_messages", "outbox"):
            assert conn.execute(sa.text(f"select count(*) from {table}")).scalar_one() == 0  # noqa: S608


def test_counsellor_reads_are_audited(handoff: Handoff, db_url: str) -> None:
    number = escalate(handoff)
    handoff.read_transcript("alice", number)
    handoff.claim("alice", number)
    with sa.create_engine(db_url).connect() as conn:
        rows = conn.execute(sa.text("select counsellor, action, escalation_id from counsellor_audit")).all()
    assert ("alice", "read_transcript", number) in rows and ("alice", "claim", number) in rows


def test_two_gateway_processes_never_send_one_message_twice(db_url: str) -> None:
    engine = open_engine(db_url)
    first, second = Handoff(engine, "pepper", ["alice"]), Handoff(open_engine(db_url), "pepper", ["alice"])
    ids = {first.queue_message(f"user-{i}", "sms", f"+6681000{i:04d}", f"reply {i}") for i in range(20)}
    mine = first.pending_deliveries("sms", lease_seconds=60)
    theirs = second.pending_deliveries("sms", lease_seconds=60)
    assert {d.id for d in mine} == ids and theirs == []  # leased: the other process waits
    for delivery in mine[:5]:
        first.mark_failed(delivery.id, "network")
        first.postpone(delivery.id, -1)  # backoff over: any process may retry it
    assert {d.id for d in second.pending_deliveries("sms", lease_seconds=60)} == {d.id for d in mine[:5]}


def test_an_older_database_gets_new_columns(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:  # the outbox as an earlier version created it
        conn.execute(sa.text(
            "create table outbox (id integer primary key, escalation_id integer, user_key varchar(64) not null,"
            " channel varchar(16) not null, address text not null, text text not null, created_at float not null,"
            " sent_at float, attempts integer not null, last_error varchar(200))"
        ))  # fmt: skip
    handoff = Handoff(open_engine(url), "pepper", ["alice"])
    handoff.queue_message("u", "sms", "+66810000000", "hello")
    assert [d.text for d in handoff.pending_deliveries("sms", lease_seconds=30)] == ["hello"]


def test_system_polling_is_not_audited_but_human_reads_and_refusals_are(handoff: Handoff) -> None:
    """The audit log answers "who read what": the group relay's polling writes nothing, a live
    view writes only when it showed new lines, a refused stranger is recorded."""
    number = escalate(handoff)
    with handoff.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()
    for _ in range(5):
        handoff.read_transcript("alice", number, 10**9, audit="never")
        handoff.read_transcript("alice", number, 10**9, audit="when_shown")  # nothing new: no row
    handoff.read_transcript("alice", number)
    with pytest.raises(NotAllowed):
        handoff.claim("mallory", number)
    with handoff.engine.connect() as conn:
        rows = conn.execute(sa.select(audit.c.counsellor, audit.c.action).where(audit.c.id > 0)).all()[before:]
    assert [tuple(r) for r in rows] == [("alice", "read_transcript"), ("mallory", "refused")]
