"""A small run of the fault-injection suite (benchmarks/faults.py; `make benchmark-faults` runs
the full one): real PostgreSQL, real Kannel, the fake Bot API, two gateway processes per channel.
One SMS and one Telegram gateway are SIGKILLed (and started again) mid-run and PostgreSQL is
restarted mid-run: none is lost, and a message is answered twice only when the kill fell between
the provider taking its part and the database recording it (at most one per channel)."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

import pytest

from benchmarks.faults import suite
from bot.config import Settings
from tests.kannel import environment_requires_kannel, kannel_binaries
from tests.services import postgres_bin, require_services

if kannel_binaries() is None and not environment_requires_kannel():
    pytest.skip("Kannel not installed (apt-get install kannel kannel-extras)", allow_module_level=True)
if postgres_bin() is None and not require_services():
    pytest.skip("PostgreSQL not installed (apt-get install postgresql)", allow_module_level=True)


def test_a_killed_gateway_and_a_postgres_restart_lose_nothing_and_answer_once(live_settings: Settings) -> None:
    random.seed(13)
    workdir = Path(tempfile.mkdtemp(prefix="sp-test-faults-"))
    workdir.chmod(0o755)  # PostgreSQL runs as the postgres user when the tests run as root
    # leases of 20 s instead of 60/120 s: a killed gateway's messages are taken over sooner
    rows = asyncio.run(suite(live_settings, "postgres", 30, ["crash"], workdir, lease_seconds=20.0))
    assert [(r.channel, r.gateways) for r in rows] == [("sms", 2), ("telegram", 2)]
    for row in rows:
        assert row.messages >= 28, row
        # Nothing lost, ever. At most one message answered twice per channel: the part a provider took
        # in the instant its gateway was SIGKILLed, before the database recorded it, is sent again by
        # the outbox - neither Telegram nor Kannel accepts an idempotency key, and the code chooses twice
        # over lost (docs/reliability.md; CI hit it once in this run's telegram row).
        assert row.lost == 0 and row.dead == 0, (row, f"details in {workdir}")
        assert row.twice <= 1 and row.once + row.twice == row.messages, (row, f"details in {workdir}")
    notes = " ".join(rows[0].notes)
    assert "sms gateway SIGKILLed" in notes and "telegram gateway SIGKILLed" in notes and "PostgreSQL restarted" in notes


def test_kannel_keeps_an_mo_while_the_only_gateway_restarts(tmp_path: Path) -> None:
    """Found by the SQLite run (one gateway): Kannel's sms-service tried 5 times 2 s apart, so an
    SMS gateway that took more than ~10 s to come back (a crash, a deploy) lost the MOs Kannel
    held meanwhile. deploy/kannel/kannel.conf.template now keeps trying for minutes."""
    from aiohttp import web

    from tests.kannel import Kannel, Phone, free_port

    async def scenario() -> list[bytes]:
        port = free_port()
        kannel = Kannel(tmp_path, gateway_port=port)
        await asyncio.to_thread(kannel.start)
        phone = Phone(kannel.ports.fake_port)
        arrived: list[bytes] = []

        async def receive(request: web.Request) -> web.Response:
            arrived.append(await request.read())
            return web.Response(text="")

        app = web.Application()
        app.router.add_route("*", "/sms/kannel", receive)
        runner = web.AppRunner(app)
        try:
            phone.send("+66810009999", "are you there")  # the gateway is down
            await asyncio.sleep(20)  # restarting
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            for _ in range(100):
                if arrived:
                    break
                await asyncio.sleep(0.1)
            return arrived
        finally:
            phone.close()
            await runner.cleanup()
            await asyncio.to_thread(kannel.stop)

    assert asyncio.run(scenario()) == [b"are you there"]


def test_the_last_part_of_an_answer_arriving_after_her_next_message_is_not_a_second_answer() -> None:
    """The SQLite provider-500 "double answer" of docs/reliability.md, from the run's record: she
    wrote again after the first part of an answer, the outage held its last part ("Which country
    are you in now?") until after her next message, whose own answer ends with the same question.
    Counted by time window alone, that was one answer twice; each of her messages was answered
    once. The parts still waiting in the outbox when she writes belong to the previous message."""
    from benchmarks.faults import Inbound, Sent, attribute, telegram_answers

    chat = 10200043
    ask = "Which country are you in now? Then I can give you the right numbers and laws."
    first = Inbound(
        "telegram", str(chat), "my friend wants to go to Malaysia for work", sent_at=55801.0, until=55806.752,
        attempts=[(55801.0, 55806.40, 200)], leftover=[ask],
    )  # fmt: skip
    second = Inbound(
        "telegram", str(chat), "give me the hotline number", sent_at=55806.752, until=55821.148,
        attempts=[(55806.752, 55820.442, 200)],
    )  # fmt: skip
    delivered = [
        Sent(55806.380, chat, "To work abroad safely: use only a licensed agency"),
        Sent(55807.575, chat, ask),  # the first answer's last part, after the outage
        Sent(55820.334, chat, "Emergency numbers: China 110; Indonesia 110"),
        Sent(55820.399, chat, ask),  # the second answer's own last part
    ]
    window = [s for s in delivered if second.sent_at < s.at < second.until]
    assert telegram_answers(second, window, ()) == 2  # what the suite reported
    found = attribute([first, second], delivered)
    assert [telegram_answers(item, found[n], ()) for n, item in enumerate([first, second])] == [1, 1]
    assert [s.text for s in found[0]] == ["To work abroad safely: use only a licensed agency", ask]
    # a real second answer is still seen: the same part sent twice for one message
    twice = [*delivered, Sent(55820.420, chat, ask)]
    found = attribute([first, second], twice)
    assert telegram_answers(second, found[1], ()) == 2
