"""Entry points: interactive local chat, the scriptable `ask` runner, training."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from bot.config import Settings
from bot.content import load_catalog
from bot.langid import LanguageIdentifier
from bot.pipeline import Pipeline, Turn
from bot.profiles import ProfileStore
from bot.rasa_client import RasaClient
from bot.stack import ensure_model, running_stack

LOCAL_CHANNEL = "local"


@asynccontextmanager
async def open_pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    """A pipeline wired to the configured Rasa server (which must be running)."""
    catalog = load_catalog(settings.data_dir)
    identifier = LanguageIdentifier.from_data(settings.data_dir)
    identifier.warm_up()
    rasa = RasaClient(settings.rasa_url, settings.secret("channel_token", settings.channel_token), settings.rasa_timeout)
    pipeline = Pipeline(
        catalog, identifier, ProfileStore(settings.database_url()), rasa, settings.secret("pepper", settings.pepper)
    )
    try:
        yield pipeline
    finally:
        await rasa.close()


def print_turn(turn: Turn) -> list[str]:
    """Show replies; returns the button payloads, numbered from 1."""
    payloads: list[str] = []
    for reply in turn.replies:
        print(f"bot> {reply.text}")
        for title, payload in reply.buttons:
            payloads.append(payload)
            print(f"     [{len(payloads)}] {title}")
    return payloads


async def chat(settings: Settings, user: str) -> None:
    """Interactive terminal chat; numbers pick buttons; /language, /country, /quit."""
    async with open_pipeline(settings) as pipeline:
        print("Safe Passage - local chat. Write in any of 11 languages. /language, /country, /quit.")
        payloads = print_turn(await pipeline.handle(LOCAL_CHANNEL, user, "/start"))
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, _read_line)
            if line is None or line.strip() in ("/quit", "/exit"):
                return
            choice = line.strip()
            if choice.isdigit() and 0 < int(choice) <= len(payloads):
                line = payloads[int(choice) - 1]
            payloads = print_turn(await pipeline.handle(LOCAL_CHANNEL, user, line))


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
                user, message = str(item.get("user") or "anonymous"), item.get("text")
            except (ValueError, AttributeError):
                print(json.dumps({"error": 'each line must be a JSON object {"user": ..., "text": ...}'}), flush=True)
                continue
            turn = await pipeline.handle(LOCAL_CHANNEL, user, message if isinstance(message, str) else None)
            print(json.dumps(turn.as_json(), ensure_ascii=False), flush=True)
    return 0


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    command = args.command or "chat"
    if command == "train":
        print(ensure_model(settings, force=args.force))
        return 0
    if command == "ask" and args.no_start:
        return asyncio.run(ask(settings, args.text))
    with running_stack(settings, quiet=command == "ask"):
        if command == "ask":
            return asyncio.run(ask(settings, args.text))
        asyncio.run(chat(settings, args.user))
    return 0
