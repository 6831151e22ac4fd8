"""The SMS gateway: provider webhooks in, the same pipeline as every channel, SMS-shaped replies out.

in:  webhook -> provider checks (key / signature) -> durable inbox (duplicate ids dropped)
     -> 200 at once; a worker processes the inbox in order per number (also after a restart)
     -> keywords (STOP START MENU ERASE LANG, digits of the last menu) -> pipeline
out: replies and counsellor messages -> outbox -> sender (retries with backoff; failures recorded)

Phone numbers are never logged; the database holds them only encrypted.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from dataclasses import dataclass

from aiohttp import web

from bot.content.catalog import fold
from bot.content.render import Message
from bot.delivery import DeliveryFailed, InboxWorker, OutboxWorker, SendingChannel
from bot.desk import notify_overdue
from bot.handoff import Delivery
from bot.pipeline import Pipeline
from bot.ratelimit import Buckets, Rate
from bot.sms import segments
from bot.sms.compose import SmsReply, compose
from bot.sms.keywords import CallingCodes, Keyword, Keywords
from bot.sms.providers import InboundSms, Rejected, SendFailed, SmsProvider
from bot.sms.store import InboxItem, SmsStore, SubscriberState

log = logging.getLogger(__name__)

CHANNEL = "sms"
_CURRENT_ITEM: contextvars.ContextVar[int] = contextvars.ContextVar("sms_inbox_item")
MENU_REFRESH_SECONDS = 3600.0  # an unchanged menu is written again after this (keeps her row fresh for retention)


@dataclass(frozen=True)
class SmsSettings:
    max_segments: int = 3  # per reply; cost-aware
    urgent_max_segments: int = 5  # an escalation reply keeps its numbers even if it costs more
    relay_max_segments: int = 6  # counsellor messages are cut only beyond this
    max_attempts: int = 8  # then the delivery stays recorded as failed (and is counted)
    poll_interval: float = 0.2
    gsm_fold_languages: frozenset[str] = frozenset({"ro"})  # sent without accents: 160 chars per SMS, not 70
    claim_timeout_seconds: float = 300.0
    # Paid SMS: a number may not flood (burst/seconds), all numbers together may not either, and
    # the replies' segments have an hourly budget. A message in danger is never limited.
    per_number: Rate = Rate(20, 600)
    everyone: Rate = Rate(60, 30)
    segments_per_hour: Rate = Rate(2000, 3600)


class SmsGateway:
    """Serves SMS users through one or more providers."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: SmsStore,
        providers: list[SmsProvider],
        keywords: Keywords,
        calling_codes: CallingCodes,
        settings: SmsSettings | None = None,
    ) -> None:
        if not providers:
            raise ValueError("configure at least one SMS provider")
        self.pipeline = pipeline
        self.store = store
        self.providers = {p.name: p for p in providers}
        self.keywords = keywords
        self.calling_codes = calling_codes
        self.settings = settings or SmsSettings()
        self.handoff = pipeline.handoff
        self.buckets = Buckets(self.handoff.engine, self.handoff.clock)
        self._budget_alerted_at = float("-inf")
        self.outbox = OutboxWorker(
            self.handoff, SendingChannel(CHANNEL, self.send_delivery), max_attempts=self.settings.max_attempts
        )
        self.render = pipeline.render
        self.inbox = InboxWorker(self.store, self._process_item, "sms", complete=self._complete, after=self._send_held)
        self._wake = self.inbox.wake
        # replies of the inbox item being processed, queued with its "processed" record in one transaction
        self._pending: dict[int, list[tuple[str, str, str]]] = {}
        # ... then held by this gateway and sent at once, still in her turn: item id -> (those replies, held until)
        self._held: dict[int, tuple[list[Delivery], float]] = {}
        self._housekept_at = float("-inf")
        self._outbox_due = False  # something was queued for the outbox worker now (not only at the next poll)

    def key(self, phone: str) -> str:
        return self.pipeline.key_for(CHANNEL, phone)

    # -- inbound ------------------------------------------------------------------------------
    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        for provider in self.providers.values():
            app.router.add_route("*", provider.path, self._receiver(provider))
        app.router.add_get("/healthcheck", self._healthcheck)
        return app

    def _receiver(self, provider: SmsProvider):  # type: ignore[no-untyped-def]
        async def receive(request: web.Request) -> web.Response:
            try:
                sms = await provider.parse(request)
            except Rejected as refusal:
                log.warning("sms webhook refused (%s): %s", provider.name, refusal.reason)
                return web.json_response({"error": refusal.reason}, status=refusal.status)
            self.accept(provider.name, sms)
            return provider.acknowledge()

        return receive

    def accept(self, provider: str, sms: InboundSms) -> int | None:
        """Durable before acknowledged; a repeated provider id is dropped here."""
        text = sms.text if not sms.has_media or sms.text.strip() else "\x00media"
        item_id = self.store.accept(provider, sms.provider_id, self.key(sms.sender), sms.sender, text)
        if item_id is None:
            log.info("sms duplicate delivery ignored (%s)", provider)
        else:
            self._wake.set()
        return item_id

    async def _healthcheck(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "providers": sorted(self.providers)})

    async def drain_inbox(self) -> int:
        """Start processing every waiting inbound SMS; returns how many were started."""
        return self.inbox.drain()

    async def _process_item(self, item: InboxItem) -> None:
        self._pending[item.id] = []  # a retried item starts again from nothing
        token = _CURRENT_ITEM.set(item.id)  # this task's item (one task per item: the context is the task's own)
        try:
            await self.process(item)  # late-bound: a subclass or a test may replace ``process``
        except BaseException:
            self._pending.pop(item.id, None)
            raise
        finally:
            _CURRENT_ITEM.reset(token)

    def _complete(self, item: InboxItem) -> None:
        """Her replies to this message queued and the message recorded processed, in one transaction: a gateway
        that dies in between leaves neither, so the message is processed again and answered once (before, a reply
        already queued was sent and the message answered again). One commit instead of two per message."""
        replies = self._pending.get(item.id, [])
        # held by this gateway for a lease: it sends them itself right after (_send_held); if it dies first, the
        # lease runs out and the outbox worker of any gateway sends them
        held_until = self.handoff.clock() + self.outbox.lease_seconds
        held: list[Delivery] = []
        behind = False
        with self.handoff.engine.begin() as conn:
            for key, phone, text in replies:
                (delivery_id,) = self.handoff.queue_answer(conn, key, CHANNEL, phone, [(text, ())], held_until)
                held.append(Delivery(delivery_id, None, key, CHANNEL, phone, text, 0))
            self.store.mark_done(conn, item.id)
            ids = [d.id for d in held]
            if ids:
                behind = self.handoff.unsent_before(conn, item.user_key, CHANNEL, ids[0])
        self._pending.pop(item.id, None)
        if not ids:
            return
        if behind:  # an older message to her still waits (an outage, a counsellor's line): the outbox keeps the order
            self.handoff.hold(ids, held_until, None)
            self._wake_outbox()
            return
        self._held[item.id] = (held, held_until)

    async def _send_held(self, item: InboxItem) -> None:
        """Send the replies ``_complete`` just recorded and holds, in order, through the provider she wrote in by -
        instead of waking the outbox worker to find them (a poll, a lease per row, one send after another for all
        numbers). What the provider does not take goes to the outbox (retried with backoff, or dead-lettered)."""
        held, held_until = self._held.pop(item.id, ([], 0.0))
        await self.outbox.send_held(
            [(delivery.id, delivery) for delivery in held], held_until, functools.partial(self._send_by, item.provider)
        )

    async def process(self, item: InboxItem) -> None:
        """One inbound SMS -> keywords or the pipeline -> at most one reply in the outbox."""
        key, phone = item.user_key, item.sender
        state = self.store.state(key)  # one read for her provider, opt-out and menu
        if state.provider != item.provider:
            self.store.remember_provider(key, item.provider)
        if item.text == "\x00media":
            language = self.pipeline.catalog.language(self.pipeline.profiles.get(key).language)
            self._reply(key, phone, compose([Message(self.render.t("input_non_text", language))], "", 1))
            return
        keyword = self.keywords.match(item.text)
        if keyword is not None and keyword.name == "stop":
            await self._stop(key, phone)
            return
        if keyword is not None and keyword.name == "start":
            self.store.set_opted_out(key, False)
            language = self._language(key)
            self._reply(key, phone, self._compose([Message(self.render.t("sms_started", language))], language))
            return
        if state.opted_out:
            # STOP is honoured: no reply - unless she is in danger now, which is a new request for help
            if not self.pipeline.is_urgent(item.text):
                return
            self.store.set_opted_out(key, False)
        elif (
            self.handoff.active_for(key) is None  # her words to a counsellor are never held back
            and not self._within_rates(key)
            and not self.pipeline.is_urgent(item.text)
        ):
            return  # a flood: not processed, no paid reply (logged); danger is never held back
        text, footer = self._command(keyword, state.menu, item.text)
        hint = self.calling_codes.country(phone)
        turn = await self.pipeline.handle(CHANNEL, phone, text, country_hint=hint)
        if "erased" in turn.notes:
            self.store.erase_user(key)
            self.buckets.forget(f"sms:number:{key}")
        language = turn.language
        budget = self.settings.urgent_max_segments if turn.escalate else self.settings.max_segments
        if keyword is not None and keyword.name == "help":
            footer = self.render.t("sms_menu_hint", language)
        reply = self._compose(turn.replies, language, budget, footer)
        if "erased" not in turn.notes and self._menu_changed(state, reply.menu):
            self.store.set_menu(key, reply.menu)
        if not (turn.escalate or turn.risk_level == "urgent") and not self._within_segment_budget(reply):
            return  # the hour's budget is spent: the operator is alerted; danger still gets its reply
        self._reply(key, phone, reply)

    def _within_rates(self, key: str) -> bool:
        if not self.buckets.take(f"sms:number:{key}", self.settings.per_number):
            log.warning("sms flood from one number: message not answered")
            return False
        if not self.buckets.take("sms:everyone", self.settings.everyone):
            log.warning("sms flood overall: message not answered")
            return False
        return True

    def _within_segment_budget(self, reply: SmsReply) -> bool:
        cost = max(1, segments.count(reply.text).segments) if reply.text else 0
        if cost == 0 or self.buckets.take("sms:segments", self.settings.segments_per_hour, cost):
            return True
        now = self.handoff.clock()
        if now - self._budget_alerted_at > 3600:
            self._budget_alerted_at = now
            log.error("ALERT: the hourly SMS segment budget is spent; only urgent replies are sent")
        return False

    def _menu_changed(self, state: SubscriberState, menu: tuple[str, ...]) -> bool:
        """Write her menu only when it changed - or when her row was last written an hour ago or more, so that
        retention (bot/retention.py, by updated_at) never takes the row of a girl who is still writing."""
        if state.updated_at is None or tuple(menu) != state.menu:
            return True
        return self.handoff.clock() - state.updated_at >= MENU_REFRESH_SECONDS

    def _command(self, keyword: Keyword | None, menu: tuple[str, ...], text: str) -> tuple[str, str]:
        """Keyword or menu digit -> what the pipeline should see; plus a footer, if any."""
        stripped = text.strip()
        if keyword is None:
            if stripped.isdigit() and 1 <= int(stripped) <= len(menu):
                return menu[int(stripped) - 1], ""
            return text, ""
        if keyword.name == "erase":
            return "/erase", ""
        if keyword.name == "menu":
            return "/help", ""
        if keyword.name == "lang":
            return f"/language {self._language_code(keyword.argument)}".strip(), ""
        return text, ""  # help: the screener treats it as a cry for help

    def _language_code(self, argument: str) -> str:
        wanted = fold(argument)
        for code, info in self.pipeline.catalog.languages.items():
            if wanted in (code, fold(info.native_name), fold(info.name)):
                return code
        return ""

    async def _stop(self, key: str, phone: str) -> None:
        """Opt-out: persisted, confirmed once, honoured (an open handoff ends too)."""
        active = self.handoff.active_for(key)
        if active is not None:
            self.handoff.end_by_user(active.id)
            await self.pipeline.resume_rasa(key)
        for delivery in self.handoff.pending_deliveries(CHANNEL, limit=1000):
            if delivery.user_key == key:
                self.handoff.mark_failed(delivery.id, "opted_out", final=True)
        language = self._language(key)
        self.store.set_opted_out(key, True)
        self._reply(key, phone, self._compose([Message(self.render.t("sms_stopped", language))], language, footer=""))

    def _language(self, key: str) -> str:
        return self.pipeline.catalog.language(self.pipeline.profiles.get(key).language)

    def _compose(self, replies: list[Message], language: str, budget: int | None = None, footer: str = "") -> SmsReply:
        intro = self.render.t("sms_menu_intro", language)
        fold = language in self.settings.gsm_fold_languages
        return compose(replies, intro, budget or self.settings.max_segments, footer, gsm_fold=fold)

    def _reply(self, key: str, phone: str, reply: SmsReply) -> None:
        if not reply.text:
            return
        pending = self._pending.get(_CURRENT_ITEM.get(-1))
        if pending is not None:  # queued with the message's "processed" record (_complete)
            pending.append((key, phone, reply.text))
            return
        self.handoff.queue_message(key, CHANNEL, phone, reply.text)  # outside an inbox item (a direct call)
        self._wake_outbox()

    def _wake_outbox(self) -> None:
        self._outbox_due = True
        self._wake.set()

    # -- outbound -----------------------------------------------------------------------------
    async def deliver(self) -> int:
        """Send what is due in the outbox (bot/delivery: leased, backed off, dead-lettered)."""
        return await self.outbox.run_once()

    async def send_delivery(self, delivery: Delivery) -> None:
        """The outbox worker's channel: one queued message to her number, by her provider."""
        if delivery.escalation_id is not None and self.store.opted_out(delivery.user_key):
            raise DeliveryFailed("opted_out", retry=False)
        await self._send_by(self.store.provider_of(delivery.user_key), delivery)

    async def _send_by(self, provider_name: str | None, delivery: Delivery) -> None:
        provider = self.providers.get(provider_name or "") or next(iter(self.providers.values()))
        text = compose([Message(delivery.text)], "", self.settings.relay_max_segments).text
        try:
            await provider.send(delivery.address, text)
        except SendFailed as failure:
            raise DeliveryFailed(failure.reason, retry=failure.retry) from None

    # -- running ------------------------------------------------------------------------------
    async def tick(self) -> None:
        now = self.handoff.clock()
        polled = now - self._housekept_at >= self.settings.poll_interval
        if polled:
            # once per poll interval, not on every wake (each message processed wakes the loop): her replies are sent
            # by her turn itself, so the outbox holds counsellors' lines, retries and other gateways' leftovers
            self._housekept_at = now
            notify_overdue(self.handoff, self.pipeline.catalog, self.settings.claim_timeout_seconds)
            await self.pipeline.retry_erasures()
        await self.drain_inbox()
        if polled or self._outbox_due:
            self._outbox_due = False
            await self.deliver()

    async def run(self, stop: asyncio.Event) -> None:
        """Process and deliver until ``stop``; then let in-flight messages finish (graceful)."""
        while not stop.is_set():
            # cleared before the tick: a wake during the tick (a message accepted, a turn finished) runs the next
            # tick at once, instead of waiting out the poll interval
            self._wake.clear()
            try:
                await self.tick()
            except Exception as error:  # noqa: BLE001 - keep serving; logged without content
                log.error("sms gateway tick: %s", type(error).__name__, exc_info=error)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval)
            except asyncio.TimeoutError:
                pass
        await self.inbox.finish()
        await self.deliver()

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
