"""Telegram (python-telegram-bot v22): girls and parents in private chats, counsellors in
one allow-listed group. Polling for local use, webhook (secret token checked on every
request) behind our own aiohttp app with /healthcheck for deployments.

Every private message goes through the same pipeline as every other channel; escalations
reach the counsellors' group as a card with a Claim button; the claiming counsellor
answers with reply-to, and the bot relays both ways through the handoff core.
Message text never goes to the logs.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram import Message as TgMessage
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.channels.telegram_guard import PRESENT_STATUSES, GroupVerdict, MemberBook, judge
from bot.channels.telegram_store import BUSY, DONE, UPDATE_LEASE_SECONDS, TelegramStore
from bot.content import Message
from bot.content.render import Renderer
from bot.delivery import DeliveryFailed, OutboxWorker
from bot.desk import CounsellorDesk, notify_overdue
from bot.handoff import AlreadyClaimed, Delivery, Escalation, NotAllowed
from bot.offer import ocr
from bot.pipeline import Pipeline

log = logging.getLogger(__name__)
CHANNEL = "telegram"
GROUP_READER = "telegram-group"  # the identity the group relay reads transcripts under (audited)
DELETE_WINDOW = 48 * 3600  # Telegram lets bots delete private-chat messages for 48 hours
# How long a request to the Bot API may wait for its answer. python-telegram-bot's 5 s made a
# sendMessage that Telegram took, but answered slowly (a loaded machine), look failed - and the
# retry delivered the reply twice. Telegram answers in well under a second when it can.
READ_TIMEOUT = 30.0
PRUNE_EVERY = 600.0  # seconds between prunings of old update ids (supervisor tick)
T = TypeVar("T")


@dataclass
class _Handling:
    """The webhook update being handled by this task (it claimed the update id)."""

    update_id: int
    answered: bool = False  # her answer is recorded and the update marked done, by this handling
    superseded: bool = False  # another gateway answered it first (our lease had run out): say nothing


_HANDLING: ContextVar[_Handling | None] = ContextVar("telegram_update", default=None)


PRUNE_ABOVE = 1000  # chats remembered before quiet ones are forgotten


class RateLimiter:
    """At most ``limit`` messages per ``window`` seconds per chat (flood protection)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: defaultdict[int, deque[float]] = defaultdict(deque)
        self._warned: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        """Forget chats quiet for a whole window (memory stays bounded by the active chats)."""
        for chat in [c for c, seen in self._seen.items() if not seen or now - seen[-1] > self.window]:
            del self._seen[chat]
        for chat in [c for c, at in self._warned.items() if now - at > self.window]:
            del self._warned[chat]

    def allow(self, chat_id: int) -> bool:
        now = self.clock()
        if len(self._seen) > PRUNE_ABOVE and chat_id not in self._seen:
            self._prune(now)
        seen = self._seen[chat_id]
        while seen and now - seen[0] > self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True

    def should_warn(self, chat_id: int) -> bool:
        """Warn once per window, so flooding does not flood her back."""
        now = self.clock()
        if now - self._warned.get(chat_id, -1e9) < self.window:
            return False
        self._warned[chat_id] = now
        return True


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    api_url: str = "https://api.telegram.org"
    counsellor_chat: int | None = None
    counsellor_ids: frozenset[int] = frozenset()
    rate_limit: int = 8
    rate_window: float = 10.0
    poll_interval: float = 1.0
    claim_timeout_seconds: float = 300.0
    # Cards carry no words of hers unless the operator says so (every group member reads them).
    card_shows_words: bool = False
    group_check_interval: float = 60.0  # seconds between membership checks (and after any change)


NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def maybe_taken(error: BaseException) -> bool:
    """Did the request leave without an answer coming back (a read timeout, the connection cut)?
    Then Telegram may have taken it, and sending it again may deliver it twice. An error that
    Telegram answered (5xx, 429) or a connection never made means it was not taken."""
    cause = error.__cause__
    return cause is not None and not isinstance(cause, NOT_SENT)


async def with_retries(call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Retry a Telegram call on flood control and network errors, with backoff - but never a
    request whose outcome is unknown (``maybe_taken``): that error goes to the caller, which
    leaves a message to the outbox (bot/delivery) instead of sending it again at once."""
    delay, attempts = 0.5, 4
    for attempt in range(attempts):
        try:
            return await call(*args, **kwargs)
        except RetryAfter as error:
            wait = error.retry_after
            await asyncio.sleep(wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait))
        except (TimedOut, NetworkError) as error:
            if attempt == attempts - 1 or maybe_taken(error):
                raise
            await asyncio.sleep(delay)
            delay *= 2
    return await call(*args, **kwargs)


def counsellor_name(user_id: int) -> str:
    return f"tg:{user_id}"


class TelegramBot:
    """Handlers, the group relay and the delivery loop, around one pipeline."""

    def __init__(self, config: TelegramConfig, pipeline: Pipeline, desk: CounsellorDesk) -> None:
        self.config = config
        self.pipeline = pipeline
        self.desk = desk
        self.handoff = pipeline.handoff
        self.store = TelegramStore(self.handoff.engine)  # this channel's own tables
        self.render = Renderer(pipeline.catalog)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window)
        self._supervisor: asyncio.Task[None] | None = None
        self.handoff.counsellors = self.handoff.counsellors | {counsellor_name(i) for i in config.counsellor_ids}
        if config.counsellor_chat is not None:
            self.handoff.counsellors = self.handoff.counsellors | {GROUP_READER}
        self.members = (
            MemberBook(self.handoff.engine, config.counsellor_chat) if config.counsellor_chat is not None else None
        )
        self.name = CHANNEL  # as an OutboxChannel
        self.outbox = OutboxWorker(self.handoff, self)
        self.update_lease = UPDATE_LEASE_SECONDS
        self._pruned_at = float("-inf")
        self.verdict = GroupVerdict(False, "membership not checked yet")
        self._checked_at = float("-inf")
        self._announced_verdict: str | None = None
        # updates whose handling failed before anything reached her: the webhook asks Telegram to
        # send them again instead of acknowledging them (bounded: polling mode never asks)
        self._unanswered: OrderedDict[int, None] = OrderedDict()

    # -- application ----------------------------------------------------------------------
    def build_application(self, webhook: bool = False) -> Application:
        base = self.config.api_url.rstrip("/")
        builder = (
            Application.builder()
            .token(self.config.token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .concurrent_updates(64)  # per-user order is kept by the pipeline's per-user lock
            .read_timeout(READ_TIMEOUT)
        )
        if webhook:
            builder = builder.updater(None)
        application = builder.build()
        private = filters.ChatType.PRIVATE
        group = filters.Chat(self.config.counsellor_chat) if self.config.counsellor_chat is not None else None
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(ChatMemberHandler(self.on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
        if group is not None:
            application.add_handler(ChatMemberHandler(self.on_group_member, ChatMemberHandler.CHAT_MEMBER))
            application.add_handler(MessageHandler(group & filters.TEXT, self.on_group_message))
            # every group message (service messages included) also tells who is in the group
            application.add_handler(MessageHandler(group, self.on_group_any), group=1)
        application.add_handler(MessageHandler(private & filters.UpdateType.MESSAGES & filters.TEXT, self.on_text))
        application.add_handler(MessageHandler(private & filters.UpdateType.MESSAGES & ~filters.TEXT, self.on_non_text))
        application.add_error_handler(self.on_error)
        return application

    async def start_supervisor(self, application: Application) -> None:
        self._reannounce_missing_cards()
        self._supervisor = asyncio.create_task(self._supervise(application))

    def _reannounce_missing_cards(self) -> int:
        """After a restart: announce again the open cases whose card never reached the group
        (a gateway died between taking the announcement and posting it). A case that has its
        card is not posted again, so starting a second gateway does not repeat every card."""
        chat = self.config.counsellor_chat
        return 0 if chat is None else self.store.reannounce_missing_cards(chat)

    async def stop_supervisor(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The one error handler: log the error type (never message text), answer kindly if we can."""
        log.error("telegram handler failed: %s", type(context.error).__name__, exc_info=context.error)
        handling = _HANDLING.get()
        if handling is not None and (handling.answered or handling.superseded):
            return  # her answer was recorded before the failure: the outbox delivers what is left
        if isinstance(update, Update) and update.effective_chat and update.effective_chat.type == ChatType.PRIVATE:
            try:
                chat_id = update.effective_chat.id
                language = self._language(chat_id)
                await self._answer(chat_id, [self._helplines_message(chat_id, language, "service_unavailable")])
            except Exception:  # noqa: BLE001 - the error handler must never raise
                log.exception("could not send the fallback reply")
                # nothing reached her (the database restarting, Telegram failing): not acknowledged,
                # Telegram sends the update again and it is handled then
                self._unanswered[update.update_id] = None
                while len(self._unanswered) > 10_000:
                    self._unanswered.popitem(last=False)

    def unanswered(self, update_id: int) -> bool:
        """Did handling this update fail before she got any answer? (asked once, by the webhook)"""
        if update_id not in self._unanswered:
            return False
        del self._unanswered[update_id]
        return True

    async def handle_update(self, application: Application, update: Update) -> int:
        """One webhook update, answered once whichever gateway Telegram sends it (or its replays) to.

        The update id is claimed in the database first (``telegram_updates``, a lease): a replay
        of an update already answered is acknowledged (200) without a second answer; one that
        another handling holds right now is answered 503, so Telegram sends it again later; one
        whose handler died before answering (its lease ran out) is taken over. Her answer marks
        it done in the transaction that records the answer (``_answer``). Returns the HTTP status."""
        try:
            verdict = self.store.claim_update(update.update_id, self.update_lease)
        except SQLAlchemyError as error:  # the database restarting: Telegram tries again later
            log.warning("update not claimed (%s): asked to be sent again", type(error).__name__)
            return 500
        if verdict == DONE:
            return 200
        if verdict == BUSY:
            return 503
        handling = _Handling(update.update_id)
        token = _HANDLING.set(handling)
        try:
            await application.process_update(update)
        finally:
            _HANDLING.reset(token)
        if self.unanswered(update.update_id):  # nothing reached her: free it for the next try at once
            try:
                self.store.release_update(update.update_id)
            except SQLAlchemyError as error:  # its lease runs out instead
                log.warning("update not released (%s)", type(error).__name__)
            return 500
        if not handling.answered and not handling.superseded:
            try:  # handled without an answer to her (a group message, a button, a silent drop)
                self.store.finish_update(update.update_id)
            except SQLAlchemyError as error:
                log.warning("update handled, not marked done (%s)", type(error).__name__)
        return 200

    # -- private chats ------------------------------------------------------------------------
    def _key(self, chat_id: int) -> str:
        return self.pipeline.key_for(CHANNEL, str(chat_id))

    def _language(self, chat_id: int) -> str:
        return self.pipeline.catalog.language(self.pipeline.profiles.get(self._key(chat_id)).language)

    def _helplines_message(self, chat_id: int, language: str, intro_key: str) -> Message:
        """Her country's numbers (the one she chose; else her language's usual country)."""
        catalog = self.pipeline.catalog
        code = self.pipeline.profiles.get(self._key(chat_id)).country or catalog.default_country(language)
        country = catalog.countries.get(code or "")
        numbers = self.render.hotlines(country, language) if country else self.render.emergency_numbers_everywhere(language)
        return Message(self.render.t(intro_key, language) + "\n" + numbers)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text message or command from a girl or parent (edited messages are read again)."""
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or message.text is None:
            return
        self._remember(chat.id, message.message_id)
        await self._handle(chat.id, message.text)

    async def _handle(self, chat_id: int, text: str, typed: bool = True) -> None:
        """One message or button tap. The flood limit is for typed messages only: a tap on a
        button (the job check's yes/no, the menu) is never dropped, nor is danger."""
        if typed and not self.limiter.allow(chat_id) and not self.pipeline.is_urgent(text):
            if self.limiter.should_warn(chat_id):
                await self._answer(chat_id, [Message(self.render.t("rate_limited", self._language(chat_id)))])
            return
        command = text.strip().split(" ", 1)[0].split("@", 1)[0].lower()
        if command == "/erase":
            await self._erase(chat_id)
            return
        if command == "/stop" and self.handoff.active_for(self._key(chat_id)) is None:
            await self._erase(chat_id)  # /stop ends and forgets (inside a handoff it only ends the handoff)
            return
        turn = await self.pipeline.handle(CHANNEL, str(chat_id), text)
        extra = self._pickers(turn.language) if command == "/start" else []
        await self._answer(chat_id, [*turn.replies, *extra])

    def _pickers(self, language: str) -> list[Message]:
        """After /start: language and country pickers and the privacy notice."""
        catalog = self.pipeline.catalog
        languages = tuple((info.native_name, f"/language {code}") for code, info in catalog.languages.items())
        return [
            Message(self.render.t("language_prompt", language), languages),
            Message(self.render.t("ask_country", language), self.render.country_buttons(language)),
            # Quick exit: one tap deletes the chat (as far as Telegram allows) and forgets her.
            Message(self.render.t("privacy", language), (("/erase", "/erase"),)),
        ]

    async def on_non_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, voice, stickers, documents...: a kind reply in her language."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None:
            return
        self._remember(chat.id, message.message_id)
        language = self._language(chat.id)
        if message.voice or message.audio or message.video_note:
            await self._answer(chat.id, [self._helplines_message(chat.id, language, "input_voice")])
            return
        image = self._image_of(message)
        if image is None:
            await self._answer(chat.id, [Message(self.render.t("input_non_text", language))])
            return
        # a picture, also while a counsellor has her (Pipeline.handle_image: counsellors cannot see pictures; she is
        # shown the words read from it and asked before they go to the counsellor)
        handed_over = self.handoff.active_for(self._key(chat.id)) is not None
        unreadable = "handoff_photo_unreadable" if handed_over else "offer_image_unreadable"
        if not self.limiter.allow(chat.id):
            if self.limiter.should_warn(chat.id):
                await self._answer(chat.id, [Message(self.render.t("rate_limited", language))])
            return
        file_id, size = image
        if size is not None and size > ocr.MAX_BYTES:  # refused before it is even downloaded
            await self._answer(chat.id, [Message(self.render.t(unreadable, language))])
            return
        try:
            file = await with_retries(self._bot.get_file, file_id)
            data = bytes(await file.download_as_bytearray())  # in memory only, never written to disk
        except TelegramError as error:
            log.warning("image not downloaded (%s)", type(error).__name__)
            await self._answer(chat.id, [Message(self.render.t(unreadable, language))])
            return
        turn = await self.pipeline.handle_image(CHANNEL, str(chat.id), data)
        del data
        await self._answer(chat.id, turn.replies)

    @staticmethod
    def _image_of(message: TgMessage) -> tuple[str, int | None] | None:
        """A photo (its largest size) or a document that says it is an image: (file id, size in bytes)."""
        if message.photo:
            largest = max(message.photo, key=lambda p: p.width * p.height)
            return largest.file_id, largest.file_size
        document = message.document
        if document is not None and (document.mime_type or "").startswith("image/"):
            return document.file_id, document.file_size
        return None

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Inline buttons: her menu/yes-no/country choices, or a counsellor's Claim."""
        query = update.callback_query
        if query is None or query.data is None or query.message is None:
            return
        chat_id = query.message.chat.id
        if query.data.startswith("claim:"):
            number = query.data.split(":", 1)[1]
            if not number.isdigit():  # a malformed or forged payload: refused, never logged
                await query.answer("Not a case.", show_alert=True)
                return
            await self._claim_button(update, int(number))
            return
        await query.answer()
        if chat_id == self.config.counsellor_chat or query.message.chat.type != ChatType.PRIVATE:
            return
        await self._handle(chat_id, query.data, typed=False)

    async def on_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The bot was added to a group that is not the counsellors' group: leave it."""
        change = update.my_chat_member
        if change is None:
            return
        chat = change.chat
        joined = change.new_chat_member.status in ("member", "administrator")
        if chat.type != ChatType.PRIVATE and joined and chat.id != self.config.counsellor_chat:
            log.warning("added to an unknown group; leaving it")
            await with_retries(context.bot.leave_chat, chat.id)

    async def on_group_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone joined or left the counsellors' group (needs the bot to be an administrator)."""
        change = update.chat_member
        if change is None or self.members is None or change.chat.id != self.config.counsellor_chat:
            return
        member = change.new_chat_member
        self.members.record(member.user.id, member.status in PRESENT_STATUSES)
        self._checked_at = float("-inf")  # check again at the next tick

    async def on_group_any(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or self.members is None:
            return
        changed = False
        if message.from_user is not None and not message.from_user.is_bot:
            if message.from_user.id not in self.config.counsellor_ids or message.from_user.id not in self.members.present():
                self.members.record(message.from_user.id, True)
                changed = True
        for user in message.new_chat_members or ():
            self.members.record(user.id, True)
            changed = True
        if message.left_chat_member is not None:
            self.members.record(message.left_chat_member.id, False)
            changed = True
        if changed:
            self._checked_at = float("-inf")

    async def _check_group(self) -> None:
        """Decide whether her words may be shown in the group; tell the group when that changes."""
        chat = self.config.counsellor_chat
        if chat is None or self.members is None:
            return
        if time.monotonic() - self._checked_at < self.config.group_check_interval:
            return
        self._checked_at = time.monotonic()
        count: int | None
        admins: set[int] | None
        try:
            count = await with_retries(self._bot.get_chat_member_count, chat)
            admins = {a.user.id for a in await with_retries(self._bot.get_chat_administrators, chat)}
            for user_id in self.members.present() - self.config.counsellor_ids:
                # someone seen joining or writing: still there? (a missed "left" must not block forever)
                member = await with_retries(self._bot.get_chat_member, chat, user_id)
                if member.status not in PRESENT_STATUSES:
                    self.members.record(user_id, False)
        except TelegramError as error:
            log.warning("group membership not checked (%s)", type(error).__name__)
            count, admins = None, None
            if self.verdict.safe:  # keep a good verdict through a short outage, re-check soon
                self._checked_at = time.monotonic() - self.config.group_check_interval + 5
                return
        self.verdict = judge(count, admins, self.members.present(), self.config.counsellor_ids, self._bot.id)
        if str(self.verdict) == self._announced_verdict:
            return
        if self.verdict.safe:
            if self._announced_verdict is not None:
                back = "Only counsellors are in this group again: her messages are relayed here."
                await with_retries(self._bot.send_message, chat, back)
        else:
            log.warning("counsellors' group not safe for her words: %s", self.verdict.reason)
            await with_retries(
                self._bot.send_message,
                chat,
                f"Her messages are NOT relayed here: {self.verdict.reason}. Remove anyone who is not a "
                "counsellor (or add them to SP_TELEGRAM_COUNSELLOR_IDS). Cases still arrive and can be "
                "claimed; read them in the console meanwhile.",
            )
        self._announced_verdict = str(self.verdict)

    async def deliver(self, delivery: Delivery) -> None:
        """The outbox worker's channel: one queued message to her chat (bot/delivery)."""
        try:
            chat_id = int(delivery.address)
        except ValueError:
            raise DeliveryFailed("no chat id", retry=False) from None
        await self._deliver_to(chat_id, Message(delivery.text, delivery.buttons))

    async def _deliver_to(self, chat_id: int, message: Message) -> None:
        """One recorded message to her chat; Telegram's refusals as DeliveryFailed (retry or not)."""
        try:
            sent = await self._send(chat_id, message, remember=False)
        except Forbidden:  # she blocked the bot or deleted her account: retrying cannot help
            raise DeliveryFailed("forbidden", retry=False) from None
        except BadRequest as error:  # chat not found, text refused
            raise DeliveryFailed(f"bad_request: {type(error).__name__}", retry=False) from None
        except (NetworkError, TelegramError) as error:  # timeouts, 5xx: try again later
            raise DeliveryFailed(type(error).__name__) from None
        # remembered for /erase once the delivery is recorded (done before the next yield): a crash in between
        # must not leave it unrecorded, to be sent again
        asyncio.get_running_loop().call_soon(self._remember_quietly, chat_id, sent.message_id)

    async def _erase(self, chat_id: int) -> None:
        """Quick exit: delete what Telegram allows (48 h) and forget her on our side."""
        key = self._key(chat_id)
        ids = self.store.take_sent(key, newer_than=time.time() - DELETE_WINDOW)
        # Her data first, whatever Telegram answers: erasure must not depend on its API.
        profile = self.pipeline.profiles.get(key)
        turn = await self.pipeline.erase(profile)
        bot = self._bot
        for start in range(0, len(ids), 100):  # deleteMessages takes up to 100 ids; best effort, retried
            batch = ids[start : start + 100]
            try:
                await with_retries(bot.delete_messages, chat_id, batch)
            except TelegramError as error:
                log.warning("chat messages not deleted (%s); her data is erased", type(error).__name__)
        if not self._mark_answered():
            return  # another gateway erased her and confirmed it (this handling's lease had run out)
        # The confirmation is not remembered: there is nothing left to delete later.
        for reply in turn.replies:
            await with_retries(bot.send_message, chat_id, reply.text)

    # -- sending ----------------------------------------------------------------------------
    @property
    def _bot(self) -> Any:
        assert self._application is not None
        return self._application.bot

    _application: Application | None = None

    def attach(self, application: Application) -> None:
        self._application = application

    def _remember(self, chat_id: int, message_id: int) -> None:
        self.store.remember_sent(self._key(chat_id), message_id)

    async def _send(self, chat_id: int, reply: Message, remember: bool = True) -> TgMessage:
        markup = (
            InlineKeyboardMarkup([[InlineKeyboardButton(title, callback_data=payload)] for title, payload in reply.buttons])
            if reply.buttons
            else None
        )
        sent: TgMessage = await with_retries(self._bot.send_message, chat_id, reply.text, reply_markup=markup)
        if remember:
            self._remember_quietly(chat_id, sent.message_id)
        return sent

    def _remember_quietly(self, chat_id: int, message_id: int) -> None:
        try:  # for /erase, best effort: she has the reply, a failure here must not answer her twice
            self._remember(chat_id, message_id)
        except SQLAlchemyError as error:
            log.warning("sent message id not remembered (%s): /erase cannot delete it", type(error).__name__)

    def _mark_answered(self) -> bool:
        """Mark the update being handled done (its own transaction, nothing recorded with it);
        False if another gateway answered it already. Outside the webhook: True."""
        handling = _HANDLING.get()
        if handling is None or handling.answered:
            return handling is None or not handling.superseded
        with self.handoff.engine.begin() as conn:
            handling.answered = self.store.mark_done(conn, handling.update_id)
        handling.superseded = not handling.answered
        return handling.answered

    async def _answer(self, chat_id: int, messages: Sequence[Message]) -> None:
        """Her answer to the update being handled, exactly once.

        Through the webhook, every part is first recorded in the outbox, in the transaction that
        marks the update done: a replay of the update (to any gateway) is then acknowledged
        without a second answer, and a gateway that dies while sending leaves the rest to the
        outbox (its hold runs out). Then the parts are sent at once; what Telegram does not take
        now stays in the outbox - retried with backoff, or dead-lettered, never dropped."""
        if not messages:
            return
        handling = _HANDLING.get()
        if handling is None:  # long polling (one gateway, Telegram's offset): no update ledger
            await self._send_or_queue(chat_id, messages)
            return
        if handling.superseded:
            return
        key = self._key(chat_id)
        held_until = self.handoff.clock() + self.outbox.lease_seconds
        parts = [(m.text, m.buttons) for m in messages]
        with self.handoff.engine.begin() as conn:
            if not handling.answered and not self.store.mark_done(conn, handling.update_id):
                handling.superseded = True
                log.warning("update answered by another gateway meanwhile: not answered again")
                return
            ids = self.handoff.queue_answer(conn, key, CHANNEL, str(chat_id), parts, held_until)
            behind = self.handoff.unsent_before(conn, key, CHANNEL, ids[0])
        handling.answered = True
        if behind:  # an earlier answer of hers still waits (an outage): this one follows it, in order
            self.handoff.hold(ids, held_until, None)
            return
        await self.outbox.send_held(
            list(zip(ids, messages, strict=True)), held_until, functools.partial(self._deliver_to, chat_id)
        )

    async def _send_or_queue(self, chat_id: int, messages: Sequence[Message]) -> None:
        """Long polling: send; what Telegram does not take now goes to the outbox."""
        for index, reply in enumerate(messages):
            try:
                await self._send(chat_id, reply)
            except TelegramError as error:
                log.warning("reply not sent (%s): handed to the outbox", type(error).__name__)
                for rest in messages[index:]:
                    self.handoff.queue_message(self._key(chat_id), CHANNEL, str(chat_id), rest.text, rest.buttons)
                return

    # -- counsellors' group --------------------------------------------------------------------
    def _card_text(self, e: Escalation) -> str:
        """Category, language, country, channel, when, and why - by default without her words:
        the lexicon's matches are her words, so only their number is shown; the semantic
        category is not. Her last lines only with SP_TELEGRAM_CARD_SHOWS_WORDS, and only while
        the group holds counsellors alone."""
        label = {"urgent": "URGENT", "concern": "concern"}.get(e.risk_level, e.risk_level)
        since = time.strftime("%H:%M UTC", time.gmtime(e.created_at))
        head = (
            f"#{e.id} {label} - {e.risk_category}\n"
            f"language {e.language}, country {e.country or '?'}, via {e.channel}, since {since}\n"
        )
        if self.config.card_shows_words and self.verdict.safe:
            lines = self.handoff.read_transcript(GROUP_READER, e.id)
            shown = "\n".join(f"{'she' if t.sender == 'user' else t.sender}: {t.text[:300]}" for t in lines[-5:])
            return f"{head}triggers: {', '.join(e.triggers) or '-'}\n\n{shown}"
        model = [t for t in e.triggers if t.startswith(("semantic:", "nlu:", "person:", "cry:", "offer:"))]
        matched = len(e.triggers) - len(model)
        why = ", ".join([*model, *([f"{matched} word match(es)"] if matched else [])]) or "-"
        return f"{head}why: {why}\nHer words are not shown here. Claim the case to talk with her."

    async def _post_cards(self) -> None:
        chat = self.config.counsellor_chat
        if chat is None:
            return
        for escalation in self.handoff.unnotified():
            if not self.handoff.take_notification(escalation.id):
                continue  # another gateway process posts this card
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(f"Claim #{escalation.id}", callback_data=f"claim:{escalation.id}")]]
            )
            text = self._card_text(escalation)
            try:
                sent = await with_retries(self._bot.send_message, chat, text, reply_markup=markup)
            except Exception:
                self.handoff.untake_notification(escalation.id)
                raise
            self.store.record_group_message(chat, sent.message_id, escalation.id, is_card=True)
            self.store.start_relay(escalation.id)
            self.handoff.mark_notified(escalation.id)

    def _card_of(self, escalation_id: int) -> int | None:
        return self.store.card_of(self.config.counsellor_chat, escalation_id)

    async def _relay_to_group(self) -> None:
        """Her new messages (any channel) go to the group, as replies to the case's card - only
        while the group holds counsellors alone; otherwise they wait, in order, until it does."""
        chat = self.config.counsellor_chat
        if chat is None or not self.verdict.safe:
            return
        for escalation_id in self.store.relayed_cases():
            escalation = self.handoff.get(escalation_id)
            if escalation is None or not escalation.active:
                self.store.stop_relay(escalation_id)
                continue
            last_id = self.store.lease_relay(escalation_id)
            if last_id is None:
                continue  # another gateway is relaying this case right now
            try:
                # the system relaying (every tick), not a person reading: not audited
                lines = self.handoff.read_transcript(GROUP_READER, escalation_id, last_id, audit="never")
                card = self._card_of(escalation_id)
                for line in lines:
                    if line.sender == "user":
                        text = f"#{escalation_id} she: {line.text}"
                        sent = await with_retries(self._bot.send_message, chat, text, reply_to_message_id=card)
                        self.store.record_group_message(chat, sent.message_id, escalation_id)
                    self.store.relayed(escalation_id, line.id)  # the position moves line by line
            finally:
                self.store.release_relay(escalation_id)

    async def _claim_button(self, update: Update, escalation_id: int) -> None:
        query = update.callback_query
        assert query is not None and query.from_user is not None
        if query.from_user.id not in self.config.counsellor_ids:
            await query.answer("Only allow-listed counsellors can claim.", show_alert=True)
            return
        name = counsellor_name(query.from_user.id)
        try:
            self.desk.claim(name, escalation_id)
        except (AlreadyClaimed, NotAllowed):
            await query.answer("Already claimed by another counsellor.", show_alert=True)
            return
        await query.answer(f"You hold #{escalation_id}. Reply to its messages to write to her.")
        who = query.from_user.full_name
        chat = self.config.counsellor_chat
        card = self._card_of(escalation_id)
        await with_retries(self._bot.send_message, chat, f"#{escalation_id} claimed by {who}.", reply_to_message_id=card)
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except BadRequest:
            pass

    def _escalation_of_reply(self, message: TgMessage) -> int | None:
        replied = message.reply_to_message
        if replied is None:
            return None
        return self.store.escalation_of(message.chat_id, replied.message_id)

    async def on_group_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Counsellors: reply to a case to write to her; /release N, /close N outcome, /queue."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        if user.id not in self.config.counsellor_ids:
            return  # not a counsellor: ignore silently, never relay
        name = counsellor_name(user.id)
        words = message.text.split()
        command = words[0].split("@", 1)[0].lower() if words else ""
        target = self._escalation_of_reply(message)
        if command.startswith("/") and len(words) > 1 and words[1].lstrip("#").isdigit():
            target = int(words[1].lstrip("#"))
            words = [words[0], *words[2:]]
        replied = message.reply_to_message
        if target is None and not command.startswith("/") and replied is not None and replied.from_user is not None:
            if replied.from_user.id == self._bot.id:  # a line of ours that no longer belongs to any case
                await message.reply_text("Not sent: that case has ended or was erased.")
                return
        if target is not None and not command.startswith("/"):
            case = self.handoff.get(target)
            if case is None or not case.active:
                await message.reply_text(f"Not sent: case #{target} has ended or was erased.")
                return
        try:
            if command == "/queue":
                queue = self.handoff.queue(name)
                lines = [f"#{e.id} {e.risk_level} {e.risk_category} {e.language} {e.status}" for e in queue]
                await message.reply_text("\n".join(lines) or "No open cases.")
            elif command == "/release" and target:
                await self.desk.release(name, target)
                await message.reply_text(f"#{target} handed back to the bot.")
            elif command == "/close" and target:
                outcome = "_".join(words[1:]) or "closed"
                await self.desk.close(name, target, outcome)
                await message.reply_text(f"#{target} closed: {outcome}.")
            elif not command.startswith("/") and target:
                self.desk.send(name, target, message.text)
        except (NotAllowed, AlreadyClaimed, ValueError) as error:
            await message.reply_text(f"Not done: {error}")

    # -- supervision ----------------------------------------------------------------------------
    async def _supervise(self, application: Application) -> None:
        self.attach(application)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep supervising; the error is logged
                log.error("telegram supervisor: %s", type(error).__name__, exc_info=error)
            await asyncio.sleep(self.config.poll_interval)

    async def tick(self) -> None:
        """Timeout notices, queued messages to users, cards and relays to the group."""
        notify_overdue(self.handoff, self.pipeline.catalog, self.config.claim_timeout_seconds)
        await self.outbox.run_once()
        if time.monotonic() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            self.store.prune_updates()  # replays come within 24 hours; ids are kept for 48
        await self.pipeline.retry_erasures()
        await self._check_group()
        await self._forget_erased_cases()
        await self._post_cards()
        await self._relay_to_group()

    async def _forget_erased_cases(self) -> None:
        """Cases closed, released or erased on any channel (/erase, SMS ERASE, retention) leave
        the group too (an erased one with a notice; a closed one was already announced).

        The group's copies of her card and lines are deleted where Telegram still allows it
        (48 h), the message->case mapping and relay position are dropped, so a reply to an old
        line can never reach whoever gets a later case, and the counsellors are told - without
        her words."""
        chat = self.config.counsellor_chat
        rows = self.store.take_ended_cases()
        if not rows or chat is None:
            return
        messages = sorted({r.message_id for r in rows})
        for start in range(0, len(messages), 100):
            try:
                await with_retries(self._bot.delete_messages, chat, messages[start : start + 100])
            except (BadRequest, NetworkError) as error:  # too old or gone: the mapping is gone anyway
                log.warning("group copies not deleted (%s)", type(error).__name__)
        for escalation_id in sorted({r.escalation_id for r in rows if r.erased}):
            await with_retries(self._bot.send_message, chat, f"Case #{escalation_id} was erased by the user.")


def webhook_app(
    application: Application,
    secret: str,
    path: str = "/telegram/webhook",
    handle: Callable[[Update], Awaitable[int]] | None = None,
) -> web.Application:
    """Our own web app: Telegram's POSTs (secret token checked) are handled before they are acknowledged.

    ``handle(update)`` handles one update and says what Telegram is answered (the gateway's
    ``TelegramBot.handle_update``: 200 done, 503 another handling holds it, 500 send it again)."""

    async def process(update: Update) -> int:
        await application.process_update(update)
        return 200

    handle = handle or process

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not secret or not hmac.compare_digest(given, secret):
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except Exception:  # noqa: BLE001 - any malformed body is the sender's error
            return web.json_response({"error": "malformed update"}, status=400)
        if update is None:
            return web.json_response({"error": "malformed update"}, status=400)
        # Processed before the 200: if this process dies first, Telegram sends the update again,
        # so an accepted message is never lost; the update ledger keeps it answered once.
        status = await handle(update)
        if status == 200:
            return web.json_response({"ok": True})
        return web.json_response({"error": "not handled here now, send it again"}, status=status)

    async def healthcheck(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "running": application.running})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(path, receive)
    app.router.add_get("/healthcheck", healthcheck)
    return app


@dataclass(frozen=True)
class WebhookConfig:
    url: str  # the public https URL Telegram posts to (ends with the path below)
    secret: str
    host: str = "127.0.0.1"  # loopback: the reverse proxy (TLS) forwards Telegram's requests
    port: int = 8443
    path: str = "/telegram/webhook"


async def serve(bot: TelegramBot, stop: asyncio.Event, webhook: WebhookConfig | None = None) -> None:
    """Run until ``stop`` is set: long polling by default, or our webhook app."""
    application = bot.build_application(webhook=webhook is not None)
    bot.attach(application)
    async with application:
        await application.start()
        await bot.start_supervisor(application)
        runner: web.AppRunner | None = None
        try:
            if webhook is None:
                assert application.updater is not None
                await application.bot.delete_webhook()
                await application.updater.start_polling(allowed_updates=Update.ALL_TYPES, poll_interval=0.0, timeout=5)
            else:
                handle = functools.partial(bot.handle_update, application)
                runner = web.AppRunner(webhook_app(application, webhook.secret, webhook.path, handle))
                await runner.setup()
                await web.TCPSite(runner, webhook.host, webhook.port).start()
                await application.bot.set_webhook(webhook.url, secret_token=webhook.secret, allowed_updates=Update.ALL_TYPES)
            await stop.wait()
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if runner is not None:
                await runner.cleanup()
            await bot.stop_supervisor()
            await application.stop()
