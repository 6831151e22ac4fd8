"""Telegram defects found by the fault-injection suite (benchmarks/faults.py): an update is
answered once and never lost when the database or the Bot API fails while it is handled.
Real python-telegram-bot client, the fake Bot API, the real pipeline and Rasa."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import sqlalchemy as sa

from bot.channels.telegram import TelegramBot, WebhookConfig, serve
from bot.channels.telegram_store import handled_updates
from bot.cli import open_pipeline
from bot.config import Settings
from bot.content import Catalog
from bot.desk import CounsellorDesk
from bot.handoff import GAVE_UP, outbox
from bot.profiles import user_key
from tests.fake_telegram import FakeTelegram
from tests.kannel import free_port
from tests.test_telegram import SECRET, running_bot


def _database_down() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


async def _post(port: int, update: dict) -> int:
    async with httpx.AsyncClient(timeout=60) as client:
        reply = await client.post(
            f"http://127.0.0.1:{port}/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        return reply.status_code


def test_an_update_not_handled_while_the_database_is_down_is_sent_again_and_answered_once(
    live_settings: Settings, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook used to answer 200 whatever happened, so Telegram dropped an update whose
    handling failed (the database restarting): her message was lost. Now it answers 500 when
    nothing reached her, and Telegram's next try (the replay guard forgets it) is answered."""
    chat, port = 4101, free_port()

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            down = {"now": True}
            handle, profile = bot.pipeline.handle, bot.pipeline.profiles.get

            async def failing_handle(*args: object, **kwargs: object) -> object:
                if down["now"]:
                    raise _database_down()
                return await handle(*args, **kwargs)  # type: ignore[arg-type]

            def failing_profile(key: str) -> object:
                if down["now"]:
                    raise _database_down()
                return profile(key)

            monkeypatch.setattr(bot.pipeline, "handle", failing_handle)
            monkeypatch.setattr(bot.pipeline.profiles, "get", failing_profile)
            update = fake.message_update(chat, "who are you?")
            assert await _post(port, update) == 500  # not handled: Telegram must send it again
            assert fake.texts(chat) == []
            down["now"] = False
            assert await _post(port, update) == 200
            assert fake.texts(chat).count(catalog.text("bot_identity", "en")) == 1
            assert await _post(port, update) == 200  # a real replay is still dropped
            await asyncio.sleep(0.5)
            assert len(fake.texts(chat)) == 1

    asyncio.run(scenario())


def test_a_reply_sent_whose_message_id_cannot_be_stored_is_not_answered_twice(
    live_settings: Settings, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remembering the message id (for /erase) failed after Telegram took the reply: the error
    handler then sent "technical problem" too - two answers to one message."""
    chat, port = 4102, free_port()

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            remember = bot.store.remember_sent

            def failing(key: str, message_id: int) -> None:
                if message_id in fake.message_ids.values():  # one of the bot's replies
                    raise _database_down()
                remember(key, message_id)

            monkeypatch.setattr(bot.store, "remember_sent", failing)
            assert await _post(port, fake.message_update(chat, "who are you?")) == 200
            await asyncio.sleep(0.5)
            assert fake.texts(chat) == [catalog.text("bot_identity", "en")]

    asyncio.run(scenario())


def test_a_reply_telegram_refuses_with_500_goes_to_the_outbox_and_arrives_once(
    live_settings: Settings, catalog: Catalog
) -> None:
    """sendMessage answered 500 for longer than the in-line retries: the reply was lost. Now the
    outbox takes it (backoff, attempt limit) and sends it when Telegram is back."""
    chat = 4103

    async def scenario(fake: FakeTelegram, bot: TelegramBot) -> None:
        fake.failing["sendMessage"] = 500
        fake.say(chat, "who are you?")
        key = user_key(bot.pipeline.pepper, "telegram", str(chat))
        await fake.wait_for(lambda: _waiting(bot, key), timeout=30)
        refused = len(fake.calls)  # the fake records refused calls too
        del fake.failing["sendMessage"]

        def taken() -> list[str]:
            return [
                c.params["text"] for c in fake.calls[refused:] if c.method == "sendMessage" and c.params["chat_id"] == chat
            ]

        await fake.wait_for(taken, timeout=30)
        await asyncio.sleep(1.0)
        assert taken() == [catalog.text("bot_identity", "en")]

    async def main() -> None:
        async with running_bot(live_settings) as (fake, bot):
            await scenario(fake, bot)

    asyncio.run(main())


def test_her_reply_when_she_blocked_the_bot_is_dead_lettered_after_one_try(live_settings: Settings) -> None:
    """403 on the reply to her message: recorded as a dead letter (it was dropped unrecorded),
    and never tried again."""
    chat = 4104

    async def main() -> None:
        async with running_bot(live_settings) as (fake, bot):
            fake.blocked.add(chat)
            key = user_key(bot.pipeline.pepper, "telegram", str(chat))
            fake.say(chat, "who are you?")
            await fake.wait_for(lambda: _dead(bot, key) >= 1, timeout=30)
            await asyncio.sleep(1.5)  # many supervisor ticks
            tries = [c for c in fake.calls if c.method == "sendMessage" and int(c.params["chat_id"]) == chat]
            assert len(tries) <= 2 * _dead(bot, key)  # the reply itself, then the outbox's one try

    asyncio.run(main())


def _waiting(bot: TelegramBot, key: str) -> bool:
    with bot.handoff.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.id).where(outbox.c.user_key == key, outbox.c.sent_at.is_(None))).all()
    return bool(rows)


def _dead(bot: TelegramBot, key: str) -> int:
    with bot.handoff.engine.connect() as conn:
        return len(conn.execute(sa.select(outbox.c.id).where(outbox.c.user_key == key, outbox.c.attempts >= GAVE_UP)).all())


@asynccontextmanager
async def another_gateway(settings: Settings, bot: TelegramBot, port: int) -> AsyncIterator[TelegramBot]:
    """A second gateway process's worth: its own pipeline (own per-user locks), the same database,
    Rasa and Bot API, its own webhook server (Telegram posts to either, behind a balancer)."""
    stop = asyncio.Event()
    async with open_pipeline(settings) as pipeline:
        other = TelegramBot(bot.config, pipeline, CounsellorDesk(pipeline.handoff, pipeline.catalog, pipeline.rasa))
        hook = WebhookConfig("https://example.org/telegram/webhook", SECRET, "127.0.0.1", port)
        task = asyncio.create_task(serve(other, stop, hook))
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                for _ in range(200):
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/healthcheck")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            yield other
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _until_acknowledged(port: int, update: dict) -> None:
    """Telegram's side: send the update again (backing off) until it is answered 200."""
    for _ in range(60):
        if await _post(port, update) == 200:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("never acknowledged")


def test_two_gateways_receiving_one_update_at_once_answer_it_once(live_settings: Settings, catalog: Catalog) -> None:
    """Two gateways on one database get the same update at the same moment (Telegram re-sent it
    behind a balancer): one handles it, the other answers 503 while the first holds it, and every
    later try on either is acknowledged without a second answer."""
    chat, port, other_port = 4201, free_port(), free_port()
    identity = catalog.text("bot_identity", "en")

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            async with another_gateway(live_settings, bot, other_port):
                fake.slow["sendMessage"] = [1.5]  # her answer takes a moment: the two handlings overlap
                update = fake.message_update(chat, "who are you?")
                statuses = await asyncio.gather(_post(port, update), _post(other_port, update))
                assert sorted(statuses) in ([200, 503], [200, 200]), statuses
                await asyncio.gather(_until_acknowledged(port, update), _until_acknowledged(other_port, update))
                await asyncio.sleep(1.0)
                assert fake.texts(chat) == [identity]

    asyncio.run(scenario())


def test_an_update_answered_by_a_gateway_whose_200_never_reached_telegram_is_not_answered_again(
    live_settings: Settings, catalog: Catalog
) -> None:
    """The open item of docs/reliability.md: a gateway sent her answer, then died before Telegram
    got its 200; Telegram sent the update again, to the other gateway, which answered again (the
    update ids were remembered per process, in memory). The ledger in the database knows it."""
    chat, port, other_port = 4202, free_port(), free_port()

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            async with another_gateway(live_settings, bot, other_port):
                update = fake.message_update(chat, "who are you?")
                assert await _post(port, update) == 200  # answered - and Telegram never saw this 200
                assert fake.texts(chat) == [catalog.text("bot_identity", "en")]
                assert await _post(other_port, update) == 200  # the replay, to the other gateway
                await asyncio.sleep(1.0)
                assert fake.texts(chat) == [catalog.text("bot_identity", "en")]

    asyncio.run(scenario())


def test_an_update_whose_gateway_died_before_answering_is_taken_over_once_its_lease_runs_out(
    live_settings: Settings, catalog: Catalog
) -> None:
    """A gateway claimed the update and died before she got anything: the other one asks Telegram
    to send it again while the lease lives (503), then takes it over and answers once."""
    chat, port = 4203, free_port()

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            update = fake.message_update(chat, "who are you?")
            from bot.channels.telegram_store import TelegramStore

            assert TelegramStore(bot.handoff.engine).claim_update(update["update_id"]) == "claimed"  # the dead one
            assert await _post(port, update) == 503
            assert fake.texts(chat) == []
            with bot.handoff.engine.begin() as conn:  # its lease runs out
                conn.execute(
                    handled_updates.update()
                    .where(handled_updates.c.update_id == update["update_id"])
                    .values(lease_until=0.0)
                )
            assert await _post(port, update) == 200
            assert await _post(port, update) == 200
            await asyncio.sleep(0.5)
            assert fake.texts(chat) == [catalog.text("bot_identity", "en")]

    asyncio.run(scenario())


def test_a_reply_telegram_takes_but_answers_slowly_is_sent_once(live_settings: Settings, catalog: Catalog) -> None:
    """sendMessage taken by the Bot API but answered after 7 s (a loaded machine): the client's
    5 s read timeout called it failed, and the reply was sent again - she got it twice (once
    more when the retries then met an outage: once more from the outbox). A request whose
    outcome is unknown is never repeated at once, and the Bot API gets 30 s to answer."""
    chat, port = 4204, free_port()

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            fake.slow["sendMessage"] = [7.0]
            assert await _post(port, fake.message_update(chat, "who are you?")) == 200
            await asyncio.sleep(3.0)  # an outbox tick or two
            assert fake.texts(chat) == [catalog.text("bot_identity", "en")]

    asyncio.run(scenario())


def test_a_telegram_request_that_may_have_been_taken_is_not_repeated_at_once() -> None:
    """with_retries repeats a request Telegram did not take (connection refused, a 5xx answer),
    never one whose answer did not come back (read timeout, connection cut after sending)."""
    from telegram.error import NetworkError, TimedOut

    from bot.channels.telegram import with_retries

    def failing(error: Exception) -> tuple[list[int], object]:
        calls: list[int] = []

        async def call() -> str:
            calls.append(1)
            if len(calls) == 1:
                raise error
            return "ok"

        return calls, call

    def caused(error: Exception, cause: BaseException) -> Exception:
        error.__cause__ = cause
        return error

    async def run() -> None:
        for error in (
            caused(TimedOut(), httpx.ConnectTimeout("no connection")),
            caused(NetworkError("httpx.ConnectError"), httpx.ConnectError("refused")),
            NetworkError("Internal Server Error (500)"),  # Telegram answered: not taken
        ):
            calls, call = failing(error)
            assert await with_retries(call) == "ok" and len(calls) == 2  # type: ignore[arg-type]
        for error in (
            caused(TimedOut(), httpx.ReadTimeout("no answer")),
            caused(NetworkError("httpx.RemoteProtocolError"), httpx.RemoteProtocolError("cut")),
        ):
            calls, call = failing(error)
            with pytest.raises(type(error)):
                await with_retries(call)  # type: ignore[arg-type]
            assert len(calls) == 1

    asyncio.run(run())


def test_a_part_telegram_took_is_forgotten_before_anything_else_is_written(
    live_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the crash run: a gateway SIGKILLed after Telegram took the first part of an answer
    but before the outbox forgot it (the message id for /erase was written first, under load) left
    that part to the outbox, which sent it again. Now the part is forgotten - in the statement that
    renews the hold on the next parts - before anything else is written."""
    chat, port = 4205, free_port()

    async def scenario() -> None:
        async with running_bot(live_settings, webhook_port=port) as (fake, bot):
            key = user_key(bot.pipeline.pepper, "telegram", str(chat))
            waiting_then: list[int] = []
            remember = bot.store.remember_sent

            def counting(user: str, message_id: int) -> None:
                if user == key and message_id in fake.message_ids.values():  # one of the bot's parts
                    with bot.handoff.engine.connect() as conn:
                        waiting_then.append(len(conn.execute(sa.select(outbox.c.id).where(outbox.c.user_key == key)).all()))
                remember(user, message_id)

            monkeypatch.setattr(bot.store, "remember_sent", counting)
            update = fake.message_update(chat, "/start")  # an answer of several parts
            assert await _post(port, update) == 200
            parts = len(fake.texts(chat))
            assert parts >= 4
            assert waiting_then == [parts - n for n in range(1, parts + 1)]  # each one gone when it is remembered

    asyncio.run(scenario())
