"""Twilio through the real gateway and bot stack. Requests are signed with the `twilio`
package's own RequestValidator; Twilio's REST API is the only fake (at the HTTP boundary)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator

from bot.cli import open_pipeline
from bot.config import Settings
from bot.content import Catalog
from bot.handoff import GAVE_UP, outbox
from bot.sms.gateway import SmsGateway, SmsSettings
from bot.sms.keywords import CallingCodes, Keywords
from bot.sms.providers.twilio import TwilioConfig, TwilioProvider
from bot.sms.store import SmsStore
from tests.kannel import free_port

SID, TOKEN, OUR_NUMBER = "AC" + "0" * 32, "twilio-auth-token-for-tests", "+15005550006"


@dataclass
class FakeTwilioApi:
    """Twilio's Messages endpoint: records what we send; can fail on purpose."""

    failures: list[int] = field(default_factory=list)  # statuses to answer before succeeding
    sent: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    port: int = field(default_factory=free_port)

    async def messages(self, request: web.Request) -> web.Response:
        assert request.match_info["sid"] == SID
        assert request.headers.get("Authorization", "").startswith("Basic ")
        self.attempts += 1
        if self.failures:
            status = self.failures.pop(0)
            return web.json_response({"code": 21610 if status == 400 else 20500, "message": "no"}, status=status)
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.sent.append(form)
        return web.json_response({"sid": f"SM{len(self.sent):032d}", "status": "queued"}, status=201)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeTwilioApi]:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.messages)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


@asynccontextmanager
async def running_gateway(settings: Settings, api: FakeTwilioApi) -> AsyncIterator[tuple[SmsGateway, str]]:
    port = free_port()
    webhook = f"http://127.0.0.1:{port}/sms/twilio"
    provider = TwilioProvider(TwilioConfig(SID, TOKEN, OUR_NUMBER, webhook, f"http://127.0.0.1:{api.port}"))
    async with open_pipeline(settings, variant="sms") as pipeline:
        gateway = SmsGateway(
            pipeline, SmsStore(pipeline.handoff.engine, pipeline.pepper), [provider],
            Keywords.from_data(settings.data_dir), CallingCodes.from_data(settings.data_dir),
            SmsSettings(poll_interval=0.05),
        )  # fmt: skip
        runner = web.AppRunner(gateway.web_app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop))
        try:
            yield gateway, webhook
        finally:
            stop.set()
            await asyncio.wait_for(task, 40)
            await runner.cleanup()
            await gateway.close()


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def inbound(number: str, body: str, sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "AccountSid": SID, "From": number, "To": OUR_NUMBER, "Body": body, "NumMedia": "0"}


async def wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_signatures_are_checked_and_a_signed_message_is_answered(live_settings: Settings, catalog: Catalog) -> None:
    number = "+380501230001"

    async def main() -> None:
        api = FakeTwilioApi()
        async with api.running(), running_gateway(live_settings, api) as (gateway, webhook):
            params = inbound(number, "Чи безпечна робота за кордоном, яку мені пропонують?", "SM-sig-1")
            async with httpx.AsyncClient() as client:
                unsigned = await client.post(webhook, data=params)
                assert unsigned.status_code == 403
                forged = await client.post(webhook, data=params, headers=signed(webhook, params, "not-the-token"))
                assert forged.status_code == 403
                tampered = {**params, "Body": "something else"}
                replayed_sig = await client.post(webhook, data=tampered, headers=signed(webhook, params))
                assert replayed_sig.status_code == 403
                assert not api.sent and gateway.store.unprocessed() == []  # nothing refused was kept
                good = await client.post(webhook, data=params, headers=signed(webhook, params))
                assert good.status_code == 200 and "<Response>" in good.text
                again = await client.post(webhook, data=params, headers=signed(webhook, params))  # Twilio retry
                assert again.status_code == 200
            await wait_for(lambda: len(api.sent) >= 1)
            await asyncio.sleep(1.5)
            assert len(api.sent) == 1  # the retried webhook was processed once
            (message,) = api.sent
            assert message["To"] == number and message["From"] == OUR_NUMBER
            assert any("\u0400" <= c <= "\u04ff" for c in message["Body"])  # Ukrainian reply
            assert "1547" in message["Body"] or "112" in message["Body"] or len(message["Body"]) > 40

    asyncio.run(main())


def test_a_failed_send_is_retried_and_a_refused_one_recorded(live_settings: Settings) -> None:
    number, refused = "+40700000001", "+40700000002"

    async def main() -> None:
        api = FakeTwilioApi(failures=[500, 503])
        async with api.running(), running_gateway(live_settings, api) as (gateway, webhook):
            async with httpx.AsyncClient() as client:
                params = inbound(number, "Salut", "SM-retry-1")
                assert (await client.post(webhook, data=params, headers=signed(webhook, params))).status_code == 200
                await wait_for(lambda: len(api.sent) == 1, timeout=90)
                assert api.attempts == 3  # two failures, then delivered
                api.failures = [400]  # e.g. 21610: the number is blocked at Twilio
                params = inbound(refused, "Salut", "SM-retry-2")
                assert (await client.post(webhook, data=params, headers=signed(webhook, params))).status_code == 200
                await wait_for(lambda: api.attempts == 4)
                await asyncio.sleep(1.0)
            with gateway.handoff.engine.connect() as conn:
                rows = conn.execute(outbox.select().where(outbox.c.channel == "sms")).all()
            failed = [r for r in rows if r.sent_at is None and r.attempts >= GAVE_UP]
            assert len(failed) == 1 and failed[0].last_error.startswith("dead_letter: twilio 400")  # recorded, not retried
            assert api.attempts == 4

    asyncio.run(main())


def test_pictures_get_a_kind_text_only_reply(live_settings: Settings, catalog: Catalog) -> None:
    number = "+66810000009"

    async def main() -> None:
        api = FakeTwilioApi()
        async with api.running(), running_gateway(live_settings, api) as (_, webhook):
            params = {**inbound(number, "", "SM-media-1"), "NumMedia": "1", "MediaUrl0": "https://example.org/x.jpg"}
            async with httpx.AsyncClient() as client:
                assert (await client.post(webhook, data=params, headers=signed(webhook, params))).status_code == 200
            await wait_for(lambda: len(api.sent) == 1)
            assert api.sent[0]["Body"] == catalog.text("input_non_text", "en", "sms")

    asyncio.run(main())


def test_a_gateway_dying_before_the_message_is_recorded_leaves_no_reply_queued(live_settings: Settings) -> None:
    """Her reply is queued in the same transaction that records her message processed: when that record fails (a
    gateway killed, the database gone), nothing was queued, so processing the message again answers it once -
    before, the reply was already queued and sent, and the retry answered her a second time."""
    import sqlalchemy as sa

    number = "+40700000009"

    async def main() -> None:
        api = FakeTwilioApi()
        async with api.running(), running_gateway(live_settings, api) as (gateway, webhook):
            real, calls = gateway.store.mark_done, []

            def dies_once(conn: object, item_id: int) -> None:
                calls.append(item_id)
                if len(calls) == 1:
                    raise RuntimeError("gateway killed here")  # not a database error: no in-place retry
                real(conn, item_id)

            gateway.store.mark_done = dies_once  # type: ignore[method-assign]

            def queued() -> int:  # outbox rows (the module's other tests share this database)
                with gateway.handoff.engine.connect() as conn:
                    return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())

            before, sent_before = queued(), len(api.sent)
            params = inbound(number, "Este sigur un job in Italia prin agentie?", "SM-crash-1")
            async with httpx.AsyncClient() as client:
                ok = await client.post(webhook, data=params, headers=signed(webhook, params))
                assert ok.status_code == 200
            await wait_for(lambda: len(calls) >= 1)
            await asyncio.sleep(1.0)
            assert queued() == before and len(api.sent) == sent_before  # the failed record took her reply with it
            assert [i.id for i in gateway.store.unprocessed()] == calls[:1]  # waits to be processed again

    asyncio.run(main())


def test_her_reply_is_sent_in_her_turn_and_a_failed_one_goes_to_the_outbox(live_settings: Settings) -> None:
    """The reply recorded with her message is sent at once by the turn that recorded it (no wait for the outbox
    worker's poll); it is forgotten once Twilio took it. When Twilio fails, it stays in the outbox, held back for
    a moment, and the outbox worker sends it - once."""
    import sqlalchemy as sa

    number, other = "+40700000011", "+40700000012"

    async def main() -> None:
        api = FakeTwilioApi()
        async with api.running(), running_gateway(live_settings, api) as (gateway, webhook):
            worker_runs: list[int] = []
            real_run_once = gateway.outbox.run_once

            async def no_outbox() -> int:  # the outbox worker finds nothing to do
                worker_runs.append(1)
                return 0

            gateway.outbox.run_once = no_outbox  # type: ignore[method-assign]

            def to(*phones: str) -> list[str]:  # sent to these numbers (another test's message may be answered here)
                return [m["To"] for m in api.sent if m["To"] in phones]

            def hers(phone: str) -> list[sa.Row]:
                key = gateway.key(phone)
                with gateway.handoff.engine.connect() as conn:
                    return list(conn.execute(outbox.select().where(outbox.c.user_key == key)).all())

            async with httpx.AsyncClient() as client:
                params = inbound(number, "Salut, este sigur un job in Italia?", "SM-direct-1")
                assert (await client.post(webhook, data=params, headers=signed(webhook, params))).status_code == 200
                await wait_for(lambda: len(to(number)) == 1)
                assert worker_runs  # the worker ran, found nothing: the turn sent it
                assert hers(number) == []  # forgotten once sent

                attempts = api.attempts
                api.failures = [503]
                params = inbound(other, "Salut, este sigur un job in Italia?", "SM-direct-2")
                assert (await client.post(webhook, data=params, headers=signed(webhook, params))).status_code == 200
                await wait_for(lambda: api.attempts > attempts and not api.failures)
                await asyncio.sleep(0.5)
                (waiting,) = hers(other)
                assert waiting.sent_at is None and waiting.attempts == 1 and waiting.last_error
                gateway.outbox.run_once = real_run_once  # type: ignore[method-assign]
                await wait_for(lambda: len(to(other)) == 1, timeout=30)
                await asyncio.sleep(1.0)
                assert to(number, other) == [number, other]  # each once
                assert hers(other) == []

    asyncio.run(main())
