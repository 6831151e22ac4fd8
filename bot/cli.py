"""Entry points: interactive local chat, the scriptable `ask` runner, training."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from bot.config import ROOT, Settings
from bot.content import load_catalog
from bot.content.po import add_arguments as add_content_arguments
from bot.content.po import run as run_content
from bot.db import open_engine
from bot.delivery import OutboxWorker, SendingChannel
from bot.desk import notify_overdue
from bot.handoff import Delivery, Handoff
from bot.hours import DutyHours
from bot.langid import LanguageIdentifier
from bot.offer.semantic import FlagScorer
from bot.pipeline import Pipeline, Turn
from bot.profiles import ProfileStore
from bot.rasa_client import RasaClient
from bot.risk.decision import RiskAssessor, load_assessor
from bot.risk.screener import Screener, load_screener
from bot.stack import ensure_model, running_stack

LOCAL_CHANNEL = "local"


@asynccontextmanager
async def open_pipeline(settings: Settings, variant: str | None = None) -> AsyncIterator[Pipeline]:
    """A pipeline wired to the configured Rasa server (which must be running)."""
    catalog = load_catalog(settings.data_dir)
    identifier = LanguageIdentifier.from_data(settings.data_dir)
    identifier.warm_up()
    rasa = RasaClient(settings.rasa_url, settings.secret("channel_token", settings.channel_token), settings.rasa_timeout)
    engine = open_engine(settings.database_url())
    pepper, *previous = settings.peppers()
    hours = DutyHours(settings.counsellor_hours, settings.counsellor_timezone)
    hours.validate()
    screener = load_screener(settings.data_dir)
    pipeline = Pipeline(
        catalog,
        identifier,
        ProfileStore(engine),
        rasa,
        pepper,
        screener=screener,
        handoff=Handoff(engine, pepper, settings.counsellors, previous_peppers=previous),
        hours=hours,
        nlu_danger_urgent=settings.nlu_danger_urgent,
        variant=variant,
        assessor=open_assessor(settings, screener),
        previous_peppers=previous,
        offer_scorer=open_offer_scorer(settings),
    )
    try:
        yield pipeline
    finally:
        await rasa.close()
        engine.dispose()


def open_offer_scorer(settings: Settings) -> FlagScorer | None:
    """The offer check's semantic flag layer (trained now if its data changed), or None: patterns only."""
    if not settings.semantic:
        return None
    settings.limit_encoder_threads()
    from bot.offer.semantic import load_scorer

    return load_scorer(settings.models_dir, settings.data_dir)


def open_assessor(settings: Settings, screener: Screener) -> RiskAssessor:
    """Lexicon + semantic model (trained now if the data changed), or the lexicon alone."""
    if not settings.semantic:
        return RiskAssessor(screener)
    settings.limit_encoder_threads()
    from bot.risk.decision import Thresholds
    from bot.semantic.train import ensure_semantic_model

    enabled, encoder, _ = Thresholds.from_data(settings.data_dir)
    if not enabled:
        return RiskAssessor(screener)
    model = ensure_semantic_model(settings.models_dir, settings.data_dir, encoder)
    return load_assessor(settings.data_dir, screener, model)


def print_turn(turn: Turn) -> list[str]:
    """Show replies; returns the button payloads, numbered from 1."""
    payloads: list[str] = []
    for reply in turn.replies:
        print(f"bot> {reply.text}")
        for title, payload in reply.buttons:
            payloads.append(payload)
            print(f"     [{len(payloads)}] {title}")
    return payloads


async def deliver_local(pipeline: Pipeline, user: str, timeout_seconds: float) -> list[str]:
    """Supervision tick of the terminal chat: timeout notices, then her queued messages, through
    the same outbox worker (lease, attempts, dead letters) as Telegram and SMS."""
    notify_overdue(pipeline.handoff, pipeline.catalog, timeout_seconds)
    shown: list[str] = []

    async def show(delivery: Delivery) -> None:
        shown.append(delivery.text)

    worker = OutboxWorker(
        pipeline.handoff, SendingChannel(LOCAL_CHANNEL, show), only_user=pipeline.key_for(LOCAL_CHANNEL, user)
    )
    await worker.run_once()
    return shown


async def chat(settings: Settings, user: str) -> None:
    """Interactive terminal chat; numbers pick buttons; /language, /country, /counsellor, /quit."""
    async with open_pipeline(settings) as pipeline:
        print("Safe Passage - local chat. Write in any of 11 languages. /language, /country, /counsellor, /quit.")
        print("(Counsellors: run `python -m bot counsellor` in another terminal.)")
        pipeline.handoff.renotify_open()
        payloads = print_turn(await pipeline.handle(LOCAL_CHANNEL, user, "/start"))
        loop = asyncio.get_running_loop()
        reader = loop.run_in_executor(None, _read_line)
        timeout = settings.claim_timeout_minutes * 60
        while True:
            done, _ = await asyncio.wait({reader}, timeout=1.0)
            for text in await deliver_local(pipeline, user, timeout):
                print(f"\n{text}")
            await pipeline.retry_erasures()
            if not done:
                continue
            line = reader.result()
            if line is None or line.strip() in ("/quit", "/exit"):
                return
            choice = line.strip()
            if choice.isdigit() and 0 < int(choice) <= len(payloads):
                line = payloads[int(choice) - 1]
            payloads = print_turn(await pipeline.handle(LOCAL_CHANNEL, user, line))
            reader = loop.run_in_executor(None, _read_line)


def _read_line() -> str | None:
    try:
        return input("you> ")
    except EOFError:
        return None


async def ask(settings: Settings, text: str | None) -> int:
    """JSON lines in ({"user", "text"}), one JSON line out per input."""
    async with open_pipeline(settings) as pipeline:
        lines = [json.dumps({"user": "cli", "text": text})] if text is not None else sys.stdin
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                user, message, image = str(item.get("user") or "anonymous"), item.get("text"), item.get("image")
            except (ValueError, AttributeError):
                print(json.dumps({"error": 'each line must be a JSON object {"user": ..., "text": ...}'}), flush=True)
                continue
            if isinstance(image, str) and message is None:  # a screenshot: the same path as a Telegram photo
                try:
                    data = _read_image_file(Path(image))
                except OSError as error:
                    print(json.dumps({"error": f"image not readable ({type(error).__name__})"}), flush=True)
                    continue
                turn = await pipeline.handle_image(LOCAL_CHANNEL, user, data)
                print(json.dumps(turn.as_json(), ensure_ascii=False), flush=True)
                continue
            turn = await pipeline.handle(LOCAL_CHANNEL, user, message if isinstance(message, str) else None)
            print(json.dumps(turn.as_json(), ensure_ascii=False), flush=True)
    return 0


def _read_image_file(path: Path) -> bytes:
    """An image file for `ask`, read into memory with the same byte limit as a Telegram photo (checked first)."""
    from bot.offer.ocr import MAX_BYTES

    with path.open("rb") as file:
        return file.read(MAX_BYTES + 1)  # one byte over the limit is enough for the size check to refuse it


async def telegram(settings: Settings, webhook: bool) -> None:
    """Serve Telegram until interrupted (polling, or webhook with SP_TELEGRAM_WEBHOOK_URL)."""
    import signal

    from bot.channels.telegram import TelegramBot, TelegramConfig, WebhookConfig, serve
    from bot.desk import CounsellorDesk

    if not settings.telegram_token:
        raise SystemExit("SP_TELEGRAM_TOKEN is not set (from @BotFather).")
    config = TelegramConfig(
        token=settings.telegram_token,
        api_url=settings.telegram_api_url,
        counsellor_chat=int(settings.telegram_counsellor_chat) if settings.telegram_counsellor_chat else None,
        counsellor_ids=frozenset(int(i) for i in settings.telegram_counsellor_ids.split(",") if i.strip()),
        claim_timeout_seconds=settings.claim_timeout_minutes * 60,
        card_shows_words=settings.telegram_card_shows_words,
    )
    hook = None
    if webhook:
        if not (settings.telegram_webhook_url and settings.telegram_webhook_secret):
            raise SystemExit("--webhook needs SP_TELEGRAM_WEBHOOK_URL and SP_TELEGRAM_WEBHOOK_SECRET.")
        host, _, port = settings.telegram_listen.rpartition(":")
        hook = WebhookConfig(settings.telegram_webhook_url, settings.telegram_webhook_secret, host, int(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_pipeline(settings) as pipeline:
        bot = TelegramBot(config, pipeline, CounsellorDesk(pipeline.handoff, pipeline.catalog, pipeline.rasa))
        print("Telegram channel running (Ctrl-C to stop).")
        await serve(bot, stop, hook)


async def sms(settings: Settings) -> None:
    """Serve SMS users through Kannel and/or Twilio until interrupted."""
    import signal

    from aiohttp import web

    from bot.sms.gateway import SmsGateway, SmsSettings
    from bot.sms.keywords import CallingCodes, Keywords
    from bot.sms.providers import SmsProvider
    from bot.sms.providers.kannel import KannelConfig, KannelProvider
    from bot.sms.providers.twilio import TwilioConfig, TwilioProvider
    from bot.sms.store import SmsStore

    providers: list[SmsProvider] = []
    if settings.kannel_sendsms_url:
        kannel = KannelConfig(
            settings.kannel_sendsms_url, settings.kannel_username, settings.kannel_password,
            settings.kannel_mo_key, settings.kannel_sender,
        )  # fmt: skip
        providers.append(KannelProvider(kannel))
    if settings.twilio_account_sid:
        twilio = TwilioConfig(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_sender,
            settings.twilio_webhook_url, settings.twilio_api_url,
        )  # fmt: skip
        providers.append(TwilioProvider(twilio))
    if not providers:
        raise SystemExit("No SMS provider: set SP_KANNEL_SENDSMS_URL (+ SP_KANNEL_MO_KEY) or SP_TWILIO_ACCOUNT_SID.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_pipeline(settings, variant="sms") as pipeline:
        store = SmsStore(pipeline.handoff.engine, pipeline.pepper, previous_peppers=pipeline.previous_peppers)
        from bot.ratelimit import Rate

        options = SmsSettings(
            max_segments=settings.sms_max_segments,
            claim_timeout_seconds=settings.claim_timeout_minutes * 60,
            per_number=Rate.parse(settings.sms_rate_per_number),
            everyone=Rate.parse(settings.sms_rate_everyone),
            segments_per_hour=Rate.parse(settings.sms_segments_per_hour),
        )
        gateway = SmsGateway(
            pipeline, store, providers, Keywords.from_data(settings.data_dir),
            CallingCodes.from_data(settings.data_dir), options,
        )  # fmt: skip
        runner = web.AppRunner(gateway.web_app())
        await runner.setup()
        host, _, port = settings.sms_listen.rpartition(":")
        await web.TCPSite(runner, host, int(port)).start()
        print(f"SMS gateway on {settings.sms_listen} ({', '.join(p.name for p in providers)}); Ctrl-C to stop.", flush=True)
        try:
            await gateway.run(stop)
        finally:
            await runner.cleanup()
            await gateway.close()


def stats(settings: Settings, days: int, png: str | None) -> int:
    """Anonymous counts for the NGO: a table, and a chart if asked."""
    from pathlib import Path

    from bot.stats import print_report, report, write_png

    engine = open_engine(settings.database_url())
    result = report(engine, days)
    print_report(result)
    if png:
        write_png(result, Path(png))
        print(f"\nChart written to {png}")
    engine.dispose()
    return 0


def retention(settings: Settings, days: float | None, dry_run: bool) -> int:
    """Delete / anonymise conversations older than the retention period (open cases kept)."""
    from pathlib import Path

    import sqlalchemy as sa

    from bot import retention as job

    engine = open_engine(settings.database_url())
    local_tracker = Path(settings.tracker_db_path())
    has_tracker = bool(settings.tracker_url) or local_tracker.exists()
    tracker = sa.create_engine(settings.tracker_store_url()) if has_tracker else None
    result = job.run(engine, tracker, days if days is not None else settings.retention_days, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for what, count in result.deleted.items():
        print(f"{verb} {count:>7}  {what}")
    engine.dispose()
    return 0


def database(settings: Settings, action: str) -> int:
    """`db upgrade` (what every server does when it starts) or `db current`."""
    import sqlalchemy as sa

    from bot import schema

    if action == "upgrade":
        engine = open_engine(settings.database_url())  # migrates
    else:
        engine = sa.create_engine(settings.database_url())
    print(f"gateway database at revision {schema.current_revision(engine) or '(none)'}")
    engine.dispose()
    return 0


def rotate_pepper(settings: Settings, rekey_only: bool) -> int:
    """``python -m bot rotate-pepper``: see bot/rekey.py and docs/security.md."""
    from bot.rekey import new_pepper_file, rotate

    if not rekey_only:
        if settings.pepper:
            print(
                "SP_PEPPER is set in the environment: put the new pepper in SP_PEPPER and the old one first in "
                "SP_PEPPER_PREVIOUS (your secret store), then run `python -m bot rotate-pepper --rekey-only`.",
                file=sys.stderr,
            )
            return 2
        new_pepper_file(settings.var_dir)
    report = rotate(settings)
    rows = [
        ("gateway values re-sealed", report.gateway.rows),
        ("gateway values no key opens", report.gateway.unreadable),
        ("Rasa events re-sealed", report.tracker.rows),
        ("Rasa events no key opens", report.tracker.unreadable),
        ("users moved to new pseudonyms", report.users_moved),
        ("Rasa conversations moved", report.tracker_conversations_moved),
        ("users who move on their next message", report.profiles_left),
    ]
    for label, value in rows:
        print(f"{label:<40}{value:>8}")
    print(
        "Keep the previous pepper(s) until SP_RETENTION_DAYS have passed: they still open and erase older "
        "data. Start the services again now (they read the new pepper at start)."
    )
    return 1 if report.gateway.unreadable or report.tracker.unreadable else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Safe Passage assistant")
    sub = parser.add_subparsers(dest="command")
    chat_cmd = sub.add_parser("chat", help="chat in the terminal (default)")
    chat_cmd.add_argument("--user", default="local-user")
    ask_cmd = sub.add_parser("ask", help="JSON lines in, JSON lines out (or one message as argument)")
    ask_cmd.add_argument("text", nargs="?")
    ask_cmd.add_argument("--no-start", action="store_true", help="use servers that are already running")
    train_cmd = sub.add_parser("train", help="train the model if the training data changed")
    train_cmd.add_argument("--force", action="store_true")
    tg_cmd = sub.add_parser("telegram", help="serve Telegram users and the counsellors' group")
    tg_cmd.add_argument("--webhook", action="store_true", help="webhook instead of long polling")
    sms_cmd = sub.add_parser("sms", help="serve SMS users (Kannel and/or Twilio)")
    sms_cmd.add_argument("--no-start", action="store_true", help="use servers that are already running")
    stats_cmd = sub.add_parser("stats", help="anonymous statistics (table, and a PNG chart with --png)")
    stats_cmd.add_argument("--days", type=int, default=30)
    stats_cmd.add_argument("--png", help="write a chart to this file")
    db_cmd = sub.add_parser("db", help="the gateway database: `db upgrade` migrates it to the newest schema")
    db_cmd.add_argument("action", choices=["upgrade", "current"])
    rotate_cmd = sub.add_parser(
        "rotate-pepper", help="new pepper; re-seal all data and move users to new pseudonyms (services stopped)"
    )
    rotate_cmd.add_argument(
        "--rekey-only", action="store_true", help="SP_PEPPER was changed by hand (old one in SP_PEPPER_PREVIOUS)"
    )
    retention_cmd = sub.add_parser("retention", help="delete / anonymise conversations older than SP_RETENTION_DAYS")
    retention_cmd.add_argument("--days", type=float, help="override SP_RETENTION_DAYS")
    retention_cmd.add_argument("--dry-run", action="store_true", help="count, change nothing")
    sub.add_parser("rasa", help="run one Rasa server in the foreground (production; SP_RASA_PORT)")
    sub.add_parser("actions", help="run one action server in the foreground (production; SP_ACTION_PORT)")
    sub.add_parser("counsellor", help="counsellor console (queue, claim, talk, release, close)", add_help=False)
    sub.add_parser("desk", help="counsellors' web desk; `desk add-user NAME --role ...` (docs/desk.md)", add_help=False)
    content_cmd = sub.add_parser("content", help="texts as gettext PO files for translators: export / import")
    add_content_arguments(content_cmd)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["counsellor"]:
        from bot.console import main as console_main

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return console_main(argv[1:])
    if argv[:1] == ["desk"]:
        from bot.webdesk.app import main as desk_main

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        return desk_main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    command = args.command or "chat"
    if command != "train":  # every other command serves (or starts servers): before any encoder loads
        settings.limit_encoder_threads()
    if command == "train":
        print(ensure_model(settings, force=args.force))
        return 0
    if command == "stats":
        return stats(settings, args.days, args.png)
    if command == "retention":
        return retention(settings, args.days, args.dry_run)
    if command == "rotate-pepper":
        return rotate_pepper(settings, args.rekey_only)
    if command == "db":
        return database(settings, args.action)
    if command == "content":
        return run_content(args, settings.data_dir / "content", ROOT / "translations")
    if command in ("rasa", "actions"):
        from bot.stack import exec_server

        exec_server(settings, command)
    if command in ("ask", "sms") and settings.rasa_urls:
        args.no_start = True  # SP_RASA_URL names the servers: nothing to start here
    if command == "telegram" and settings.rasa_urls:
        asyncio.run(telegram(settings, args.webhook))
        return 0
    if command == "ask" and args.no_start:
        return asyncio.run(ask(settings, args.text))
    if command == "sms" and args.no_start:
        asyncio.run(sms(settings))
        return 0
    with running_stack(settings, quiet=command == "ask") as stack:
        settings = stack.settings  # the ports ours really listen on (see Stack)
        if command == "telegram":
            asyncio.run(telegram(settings, args.webhook))
            return 0
        if command == "sms":
            asyncio.run(sms(settings))
            return 0
        if command == "ask":
            return asyncio.run(ask(settings, args.text))
        asyncio.run(chat(settings, args.user))
    return 0
