"""SMS end to end through real Kannel (bearerbox + smsbox) and the real bot stack:
phone -> fake SMSC -> bearerbox -> smsbox -> our webhook -> pipeline/Rasa -> outbox ->
sendsms -> smsbox -> bearerbox -> phone. Counsellors act through the real console process."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web

from bot.cli import open_pipeline
from bot.config import Settings
from bot.content import Catalog
from bot.sms import segments
from bot.sms.gateway import SmsGateway, SmsSettings
from bot.sms.kannel_conf import MO_USER, render
from bot.sms.keywords import CallingCodes, Keywords
from bot.sms.providers.kannel import KannelConfig, KannelProvider
from bot.sms.store import SmsStore
from tests.kannel import Kannel, Phone, environment_requires_kannel, free_port, kannel_binaries
from tests.test_escalation_e2e import console

if kannel_binaries() is None and not environment_requires_kannel():
    pytest.skip("Kannel not installed (apt-get install kannel kannel-extras)", allow_module_level=True)


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    gateway = Kannel(tmp_path_factory.mktemp("kannel"), gateway_port=free_port())
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def phone(kannel: Kannel) -> Iterator[Phone]:
    """One SMSC link for the module, like a real operator connection; tests use their own numbers."""
    handset = Phone(kannel.ports.fake_port)
    try:
        yield handset
    finally:
        handset.close()


@asynccontextmanager
async def running_gateway(settings: Settings, kannel: Kannel) -> AsyncIterator[SmsGateway]:
    provider = KannelProvider(
        KannelConfig(kannel.sendsms_url, kannel.username, kannel.password, kannel.mo_key, sender="1300")
    )
    async with open_pipeline(settings, variant="sms") as pipeline:
        store = SmsStore(pipeline.handoff.engine, pipeline.pepper)
        gateway = SmsGateway(
            pipeline, store, [provider], Keywords.from_data(settings.data_dir),
            CallingCodes.from_data(settings.data_dir), SmsSettings(poll_interval=0.1),
        )  # fmt: skip
        runner = web.AppRunner(gateway.web_app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", kannel.gateway_port).start()
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            yield gateway
        finally:
            stop.set()
            await asyncio.wait_for(task, 40)
            await runner.cleanup()
            await gateway.close()


def run(settings: Settings, kannel: Kannel, phone: Phone, scenario: Callable[[SmsGateway, Phone], Awaitable[None]]) -> None:
    async def main() -> None:
        async with running_gateway(settings, kannel) as gateway:
            await scenario(gateway, phone)

    asyncio.run(main())


async def reply(phone: Phone, number: str, timeout: float = 60.0) -> str:
    received = await asyncio.to_thread(phone.receive_for, number, timeout)
    return received.text


def test_thai_sms_in_thai_reply_out_intact(live_settings: Settings, kannel: Kannel, phone: Phone, catalog: Catalog) -> None:
    number = "+66810000001"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        phone.send(number, "มีคนเสนองานที่ต่างประเทศให้ฉัน ปลอดภัยไหม")
        received = await asyncio.to_thread(phone.receive_for, number, 60)
        text = received.text
        assert received.coding == "ucs-2" and received.receiver == number
        assert "?" * 3 not in text and "\ufffd" not in text
        assert sum("\u0e00" <= c <= "\u0e7f" for c in text) > len(text) // 2  # Thai, intact
        count = segments.count(text)
        assert count.encoding == segments.UCS2 and count.segments <= 3
        assert received.parts == count.segments  # Kannel's concatenation matches our count
        # delivered, so nothing left in the outbox (the phone can get the SMS a moment before
        # Kannel's sendsms answer reaches the gateway and the delivery is marked sent)
        for _ in range(50):
            pending = [d for d in gateway.handoff.pending_deliveries("sms", limit=1000) if d.address == number]
            if not pending:
                break
            await asyncio.sleep(0.1)
        assert pending == []
        # the country came from +66: Thai hotlines without asking
        phone.send(number, "ขอเบอร์สายด่วนหน่อย")
        helplines = await reply(phone, number)
        assert "1300" in helplines

    run(live_settings, kannel, phone, scenario)


def test_danger_sms_escalates_and_the_counsellor_reaches_the_phone(
    live_settings: Settings, kannel: Kannel, phone: Phone, catalog: Catalog
) -> None:
    number = "+66810000002"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        phone.send(number, "ช่วยด้วย นายจ้างยึดพาสปอร์ตแล้วขังฉันไว้ในห้อง")
        first = await reply(phone, number)
        assert "191" in first  # Thai emergency number, in the first reply
        key = gateway.key(number)
        escalation = gateway.handoff.active_for(key)
        assert escalation is not None and escalation.channel == "sms" and escalation.risk_level == "urgent"

        queue = json.loads((await asyncio.to_thread(console, live_settings, "--json", "queue")).stdout)
        (card,) = [c for c in queue if c["id"] == escalation.id]
        assert card["channel"] == "sms" and card["language"] == "th"
        assert number not in json.dumps(card)  # the counsellor never sees her number
        claimed = await asyncio.to_thread(console, live_settings, "claim", str(escalation.id))
        assert claimed.returncode == 0, claimed.stderr
        said = await asyncio.to_thread(console, live_settings, "say", str(escalation.id), "สวัสดีค่ะ พี่เป็นที่ปรึกษา ตอนนี้ปลอดภัยไหม")
        assert said.returncode == 0, said.stderr
        texts = [await reply(phone, number) for _ in range(2)]  # "a counsellor joined" + her words
        assert any("พี่เป็นที่ปรึกษา" in t for t in texts), texts

        phone.send(number, "ตอนนี้ฉันอยู่ในห้องน้ำ")  # goes to the counsellor, not to Rasa
        for _ in range(100):
            lines = gateway.handoff.read_transcript("counsellor", escalation.id)
            if any(line.text == "ตอนนี้ฉันอยู่ในห้องน้ำ" for line in lines):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("her SMS did not reach the transcript")
        assert phone.nothing_for(number, 2.0)  # the bot did not talk over the counsellor
        closed = await asyncio.to_thread(console, live_settings, "close", str(escalation.id), "safe")
        assert closed.returncode == 0, closed.stderr

    run(live_settings, kannel, phone, scenario)


def test_stop_is_confirmed_persisted_and_honoured(
    live_settings: Settings, kannel: Kannel, phone: Phone, catalog: Catalog
) -> None:
    number = "+66810000003"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        phone.send(number, "hello")
        await reply(phone, number)
        phone.send(number, "STOP")
        confirmation = await reply(phone, number)
        assert confirmation == catalog.text("sms_stopped", "en", "sms")
        fresh = SmsStore(gateway.handoff.engine, gateway.pipeline.pepper)  # persisted, not in memory
        assert fresh.opted_out(gateway.key(number))
        phone.send(number, "what are my rights?")
        assert phone.nothing_for(number, 4.0)
        phone.send(number, "START")
        assert await reply(phone, number) == catalog.text("sms_started", "en", "sms")
        assert not fresh.opted_out(gateway.key(number))

    run(live_settings, kannel, phone, scenario)


def test_opted_out_number_in_danger_still_reaches_a_counsellor(
    live_settings: Settings, kannel: Kannel, phone: Phone, catalog: Catalog
) -> None:
    number = "+66810000004"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        phone.send(number, "หยุด")  # Thai STOP
        stopped = await reply(phone, number)
        assert stopped
        phone.send(number, "help they took my passport and locked me in")
        urgent = await reply(phone, number)
        assert catalog.text("escalation_alerted", "en", "sms") in urgent or "191" in urgent
        escalation = gateway.handoff.active_for(gateway.key(number))
        assert escalation is not None
        gateway.handoff.end_by_user(escalation.id)

    run(live_settings, kannel, phone, scenario)


def test_webhook_refuses_a_wrong_key_and_processes_a_retry_once(
    live_settings: Settings, kannel: Kannel, phone: Phone
) -> None:
    number = "+66810000005"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        url = f"http://127.0.0.1:{kannel.gateway_port}/sms/kannel"
        headers = {"X-Kannel-From": number, "Content-Type": "text/plain; charset=UTF-8"}
        auth = httpx.BasicAuth(MO_USER, kannel.mo_key)
        async with httpx.AsyncClient() as client:
            post = functools.partial(client.post, url, params={"id": "retry-1"}, content=b"hello")
            assert (await post(headers=headers, auth=httpx.BasicAuth(MO_USER, "guess"))).status_code == 403
            assert (await post(headers=headers)).status_code == 403
            assert (await post(headers={**headers, "Authorization": "Basic !!"})).status_code == 403
            no_sender = await post(headers={"Content-Type": "text/plain"}, auth=auth)
            assert no_sender.status_code == 400
            missing_id = await client.post(url, content=b"x", headers=headers, auth=auth)
            assert missing_id.status_code == 400
            for _ in range(3):  # smsbox retries after a timeout: same %I id
                assert (await post(headers=headers, auth=auth)).status_code == 200
        first = await reply(phone, number)
        assert first
        assert phone.nothing_for(number, 3.0)  # one reply, not three

    run(live_settings, kannel, phone, scenario)


def test_the_older_get_url_form_is_still_accepted_with_a_warning(
    live_settings: Settings, kannel: Kannel, phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    """Deployments whose kannel.conf still has the get-url keep working for one release."""
    number = "+66810000015"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        url = f"http://127.0.0.1:{kannel.gateway_port}/sms/kannel"
        params = {"from": number, "to": "1300", "text": "hello", "id": "get-1", "charset": "UTF-8"}
        async with httpx.AsyncClient() as client:
            assert (await client.get(url, params={**params, "key": "guess"})).status_code == 403
            assert (await client.get(url, params=params)).status_code == 403
            missing_id = await client.get(url, params={"key": kannel.mo_key, "from": number, "text": "x"})
            assert missing_id.status_code == 400
            assert (await client.get(url, params={**params, "key": kannel.mo_key})).status_code == 200
        assert await reply(phone, number)

    with caplog.at_level(logging.WARNING, logger="bot.sms.providers.kannel"):
        run(live_settings, kannel, phone, scenario)
    warnings = [r.getMessage() for r in caplog.records if "get-url" in r.getMessage()]
    assert len(warnings) == 1 and "post-url" in warnings[0]
    assert kannel.mo_key not in warnings[0] and number not in warnings[0]


def test_kannel_sends_no_key_number_or_text_in_the_url() -> None:
    """The MO URL holds only Kannel's message id: the key is basic auth, the number a header."""
    conf = render("http://127.0.0.1:8090", "k3y", "sp", "pw", "admin", Path("/l"), Path("/s"))
    service = conf[conf.index("group = sms-service") :]
    url = re.search(r'post-url = "([^"]+)"', service)
    assert url is not None and "get-url" not in service
    assert url.group(1) == "http://kannel:k3y@127.0.0.1:8090/sms/kannel?id=%I"
    assert "send-sender = true" in service
    with pytest.raises(ValueError, match="basic auth"):
        render("http://127.0.0.1:8090", "a@b:c", "sp", "pw", "admin", Path("/l"), Path("/s"))


def test_a_restart_loses_no_accepted_message(live_settings: Settings, kannel: Kannel, phone: Phone) -> None:
    """Accepted into the inbox but not processed (the gateway died): the next gateway answers it."""
    number = "+66810000006"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        answer = await reply(phone, number)  # nobody sent anything new: this is the accepted one
        assert "agency" in answer.lower()
        assert gateway.store.unprocessed() == []

    async def accept_only() -> None:
        async with open_pipeline(live_settings, variant="sms") as pipeline:
            store = SmsStore(pipeline.handoff.engine, pipeline.pepper)
            provider = KannelProvider(
                KannelConfig(kannel.sendsms_url, kannel.username, kannel.password, kannel.mo_key, "1300")
            )
            gateway = SmsGateway(
                pipeline, store, [provider], Keywords.from_data(live_settings.data_dir),
                CallingCodes.from_data(live_settings.data_dir),
            )  # fmt: skip
            from bot.sms.providers import InboundSms

            assert gateway.accept("kannel", InboundSms("before-crash-1", number, "what is safe migration?"))
            await provider.close()  # "crash": never processed

    asyncio.run(accept_only())
    run(live_settings, kannel, phone, scenario)


def test_erase_by_sms_leaves_no_trace(live_settings: Settings, kannel: Kannel, phone: Phone, catalog: Catalog) -> None:
    number = "+66810000007"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        phone.send(number, "my boyfriend online wants me to move to him, is it safe?")
        assert await reply(phone, number)
        phone.send(number, "they took my passport, help")
        assert "1155" in await reply(phone, number)  # Thai police for a girl writing English (191 speaks Thai)
        key = gateway.key(number)
        assert gateway.handoff.active_for(key) is not None
        phone.send(number, "ERASE")
        assert await reply(phone, number) == catalog.text("erased", "en", "sms")
        await asyncio.sleep(0.5)
        engine = gateway.handoff.engine
        reflected = sa.MetaData()
        reflected.reflect(engine)
        with engine.connect() as conn:
            for table in reflected.sorted_tables:  # every table of the gateway database
                for column in ("user_key", "sender_id"):
                    if column in table.c:
                        found = conn.execute(sa.select(sa.func.count()).where(table.c[column] == key)).scalar()
                        assert found == 0, (table.name, column)
                for row in conn.execute(sa.select(table)):
                    assert number not in " ".join(str(v) for v in row), table.name  # never in clear anywhere
        tracker = sa.create_engine(f"sqlite:///{live_settings.tracker_db_path()}")
        with tracker.connect() as conn:
            events = conn.execute(sa.text("select count(*) from events where sender_id = :k"), {"k": key}).scalar()
        assert events == 0

    run(live_settings, kannel, phone, scenario)


def test_a_flooding_number_is_not_answered_but_danger_always_is(
    live_settings: Settings, kannel: Kannel, phone: Phone, catalog: Catalog
) -> None:
    """Security issue item 7: paid replies are limited per number; a cry for help never is."""
    import dataclasses

    from bot.ratelimit import Rate

    number = "+66810000031"

    async def scenario(gateway: SmsGateway, phone: Phone) -> None:
        gateway.settings = dataclasses.replace(gateway.settings, per_number=Rate(3, 3600))
        for n in range(6):
            phone.send(number, f"what is the weather like today number {n}")
        for _ in range(3):
            assert await reply(phone, number)
        assert await asyncio.to_thread(phone.nothing_for, number, 5.0)  # messages 4-6: no paid reply
        with gateway.handoff.engine.connect() as conn:  # all six were taken in and processed, none lost
            waiting = conn.execute(sa.text("select count(*) from sms_inbox where processed_at is null")).scalar()
        assert waiting == 0
        phone.send(number, "help they locked me in")
        urgent = await reply(phone, number)
        assert gateway.handoff.active_for(gateway.key(number)) is not None and urgent

    run(live_settings, kannel, phone, scenario)
