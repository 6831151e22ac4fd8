"""The throughput harness's own logic (benchmarks/throughput.py): options, the cells it plans, the
texts each user sends, and the tables it prints. No server is started here."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys

import pytest

from benchmarks import throughput as tp


def cell(config: str, store: str = "sqlite", rate: float = 10.0, prelude: int = 0, users: int = 20, **kw: object) -> tp.Cell:
    """A measured cell with ``rate`` msg/s: 10 s, every user's turns prelude+1..prelude+3."""
    made = tp.Cell(config, users, store, prelude, elapsed=10.0, **kw)  # type: ignore[arg-type]
    count = int(rate * 10)
    for i in range(count):
        made.record(prelude + i % 3, 0.0, (100 + i) / 1000)
    return made


def test_defaults_are_the_old_harness() -> None:
    args = tp.parse_args([])
    assert args.users == [1, 20, 50]
    assert args.configs == list(tp.CONFIGS)
    assert args.stores == ["sqlite"]
    assert args.prelude == [0]
    assert args.messages == 15


def test_stores_prelude_and_users_are_lists() -> None:
    args = tp.parse_args(["--stores", "sqlite,postgres", "--prelude", "0,29", "--users", "20", "--configs", "rest,sms"])
    assert args.stores == ["sqlite", "postgres"]
    assert args.prelude == [0, 29]
    assert args.users == [20]
    assert args.configs == ["rest", "sms"]


@pytest.mark.parametrize(
    "argv",
    [["--stores", "mysql"], ["--stores", ""], ["--configs", "rest,whatsapp"], ["--prelude", "-1"], ["--users", "x"]],
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tp.parse_args(argv)
    assert "error: argument --" in capsys.readouterr().err


def test_messages_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        tp.parse_args(["--messages", "0"])


def test_names_keeps_order_and_drops_repeats() -> None:
    assert tp.names(tp.STORES)("postgres, sqlite,postgres") == ["postgres", "sqlite"]
    with pytest.raises(argparse.ArgumentTypeError):
        tp.names(tp.STORES)("sqlite,oracle")


def test_cell_spec_round_trips_through_the_child_command_line() -> None:
    spec = tp.Spec("telegram", 20, "postgres", 29)
    assert tp.Spec.parse(str(spec)) == spec
    assert tp.Spec.parse("rest:1") == tp.Spec("rest", 1, "sqlite", 0)  # the old form


def test_plan_runs_the_stores_of_a_cell_back_to_back() -> None:
    planned = tp.plan(["rest", "gateway"], [20], [0, 29], ["sqlite", "postgres"])
    assert [str(s) for s in planned] == [
        "rest:20:sqlite:0",
        "rest:20:postgres:0",
        "rest:20:sqlite:29",
        "rest:20:postgres:29",
        "gateway:20:sqlite:0",
        "gateway:20:postgres:0",
        "gateway:20:sqlite:29",
        "gateway:20:postgres:29",
    ]


def test_measured_texts_do_not_depend_on_the_prelude() -> None:
    pool = [f"text {i}" for i in range(50)]
    plain = tp.assign_texts(pool, users=4, per_user=5, prelude=0)
    longer = tp.assign_texts(pool, users=4, per_user=5, prelude=29)
    assert longer.measured == plain.measured  # turn 1 and turn 30 answer the same messages
    assert plain.prelude == [[], [], [], []]
    assert [len(p) for p in longer.prelude] == [29] * 4  # the pool (50) repeats to reach 4 x 34
    assert all(text in pool for p in longer.prelude for text in p)
    assert [len(m) for m in longer.measured] == [5] * 4


def test_turns_are_one_based() -> None:
    assert cell("rest").turns == "1-3"
    assert cell("rest", prelude=29).turns == "30-32"
    assert tp.Cell("rest", 1).turns == "-"


def test_throughput_table_divides_by_rest_of_the_same_store_and_prelude() -> None:
    cells = [
        cell("rest", "sqlite", 20.0),
        cell("rest", "postgres", 10.0),
        cell("gateway", "sqlite", 16.0),
        cell("gateway", "postgres", 9.0),
    ]
    lines = tp.throughput_table(cells).splitlines()
    assert "stores: SQLite, PG+Redis" in lines[1]
    gateway = [line for line in lines if line.startswith("gateway")]
    assert gateway[0].split()[-5] == "0.80"  # 16 / 20 (SQLite REST)
    assert gateway[1].split()[-5] == "0.90"  # 9 / 10 (PG+Redis REST)


def test_stores_table_gives_postgres_over_sqlite_per_cell() -> None:
    cells = [cell("rest", "sqlite", 20.0, load=1.2), cell("rest", "postgres", 17.0, load=1.4), cell("sms", "sqlite", 5.0)]
    text = tp.stores_table(cells)
    rows = [line for line in text.splitlines() if line.startswith("Rasa REST")]
    assert len(rows) == 1  # sms has no PostgreSQL twin
    assert rows[0].split()[-2:] == ["0.85", "1.20/1.40"]
    assert tp.stores_table([cell("rest")]) == ""


def test_length_table_compares_each_prelude_with_the_fresh_conversation() -> None:
    fresh = cell("gateway", "sqlite", 20.0, events=30, tracker_kb=12.0)
    later = cell("gateway", "sqlite", 15.0, prelude=29, events=300, tracker_kb=110.5, load=1.5, load_measured=2.25)
    other = cell("gateway", "postgres", 12.0, prelude=29)  # no fresh twin on PostgreSQL: left out
    rows = [line.split() for line in tp.length_table([fresh, later, other]).splitlines() if line.startswith("gateway")]
    assert [r[-9] for r in rows] == ["1-3", "30-32"]
    assert [r[-5] for r in rows] == ["1.00", "0.75"]
    assert [r[-4:-2] for r in rows] == [["30", "12.0"], ["300", "110.5"]]
    assert rows[1][-1] == "1.50/2.25"  # the load at the start and after the prelude
    assert tp.length_table([fresh]) == ""


def test_cpu_table_has_a_column_for_postgres_and_redis() -> None:
    text = tp.cpu_table([cell("rest", cpu={"rasa": 30.0}), cell("rest", "postgres", cpu={"rasa": 31.0, "postgres": 4.0})])
    assert text.splitlines()[2].split() == ["configuration", "store", "users", "turns", "rasa", "postgres", "total"]
    assert text.splitlines()[-1].split()[-3:] == ["31.0", "4.0", "35.0"]


def test_children_count_in_a_process_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])  # noqa: S603
    try:
        assert child.pid in tp.children_of(os.getpid())
        own = tp.cpu_seconds(os.getpid())
        assert tp.cpu_seconds(os.getpid(), tree=True) >= own
    finally:
        child.kill()
        child.wait()


def test_a_gateway_db_bucket_needs_the_database_in_the_stack() -> None:
    """The SMS inbox worker is the outer frame of the whole SMS path: waiting on Rasa under it is
    HTTP, not the database; a query under it is the database."""
    inbox = "_process_in_order (bot/delivery/inbox.py:80);process (bot/sms/gateway.py:150);handle (bot/pipeline.py:170)"
    http = inbox + ";send (bot/rasa_client.py:60);post (httpx/_client.py:1800)"
    query = inbox + ";active_for (bot/handoff.py:252);execute (sqlalchemy/engine/base.py:1300)"
    assert tp.bucket_of(http) == "HTTP client (httpx)"
    assert tp.bucket_of(query) == "gateway DB: handoff, inbox/outbox"
    profile = "get (bot/profiles.py:51);execute (sqlalchemy/engine/base.py:1300);_exec (psycopg2/extras.py:1)"
    assert tp.bucket_of(profile) == "gateway DB: profiles"
    assert tp.bucket_of("_retrieve (bot/tracker_store.py:140);all (sqlalchemy/orm/query.py:2700)") == "tracker store: SQL"


def test_the_telegram_hooks_are_methods_of_the_shipped_channel() -> None:
    """The harness times a Telegram turn by wrapping these methods; one renamed in the channel
    (as `_send_turn` once was) left every Telegram cell waiting for turns that never ended."""
    from bot.channels.telegram import TelegramBot

    timed = tp.timed_telegram_bot(TelegramBot, {}, {})
    for name in tp.TELEGRAM_HOOKS:
        assert callable(vars(TelegramBot).get(name)), name
        assert name in vars(timed)
    assert {n for n in vars(timed) if not n.startswith("__")} == set(tp.TELEGRAM_HOOKS)


def test_recorded_turns_are_kept_per_chat() -> None:
    class FakePipeline:
        async def handle(self, channel: str, user_id: str, raw: str) -> str:
            return f"turn of {user_id}: {raw}"

    turns: dict[int, object] = {}
    pipeline = FakePipeline()
    tp.record_turns(pipeline, turns)
    assert asyncio.run(pipeline.handle("telegram", "10001", "hi")) == "turn of 10001: hi"
    assert turns == {10001: "turn of 10001: hi"}
