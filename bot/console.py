"""Terminal counsellor console: `python -m bot counsellor` (interactive) or one command.

Works beside the local chat (`make run`) on the same database, for demos and tests.
Only allow-listed counsellors (SP_COUNSELLORS) get in; every read is audited.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

from bot.config import Settings
from bot.content import load_catalog
from bot.db import open_engine
from bot.desk import CounsellorDesk
from bot.handoff import AlreadyClaimed, Escalation, Handoff, NotAllowed, TranscriptLine
from bot.rasa_client import RasaClient

HELP = """commands:
  queue                 open and claimed conversations (urgent first)
  show N                transcript of conversation N
  claim N               take conversation N (only one counsellor can)
  say TEXT              write to the user of the conversation you hold
  release               hand her back to the bot
  close OUTCOME         end the case (e.g. safe, referred_police, no_contact)
  quit"""


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def _card(e: Escalation) -> dict[str, Any]:
    return {
        "id": e.id,
        "status": e.status,
        "risk_level": e.risk_level,
        "risk_category": e.risk_category,
        "language": e.language,
        "country": e.country,
        "channel": e.channel,
        "triggers": list(e.triggers),
        "counsellor": e.counsellor,
        "waiting_since": _when(e.created_at),
    }


def _line(e: Escalation) -> str:
    owner = f" held by {e.counsellor}" if e.counsellor else ""
    triggers = ", ".join(e.triggers) or "-"
    return (
        f"#{e.id} [{e.risk_level.upper()}] {e.risk_category} | {e.language}/{e.country or '??'} via {e.channel} | "
        f"since {_when(e.created_at)} | {e.status}{owner} | triggers: {triggers}"
    )


def _say(line: TranscriptLine) -> str:
    who = line.counsellor if line.sender == "counsellor" else line.sender
    return f"  {_when(line.at)} {who}> {line.text}"


class Console:
    """One counsellor's session."""

    def __init__(self, desk: CounsellorDesk, name: str) -> None:
        self.desk, self.name = desk, name
        self.current: int | None = None
        self.seen: dict[int, int] = {}  # escalation id -> last transcript line shown
        self.known: set[int] = set()

    async def run_command(self, line: str) -> list[str]:
        word, _, rest = line.strip().partition(" ")
        handoff = self.desk.handoff
        try:
            if word == "queue":
                return [_line(e) for e in handoff.queue(self.name)] or ["(no open conversations)"]
            if word == "show":
                number = int(rest)
                lines = handoff.read_transcript(self.name, number)
                self.seen[number] = lines[-1].id if lines else 0
                return [_say(t) for t in lines]
            if word == "claim":
                escalation = self.desk.claim(self.name, int(rest))
                self.current = escalation.id
                return [f"you hold #{escalation.id}; `say ...` to write to her"]
            if word == "say":
                self.desk.send(self.name, self._held(), rest)
                return ["(sent)"]
            if word == "release":
                await self.desk.release(self.name, self._held())
                self.current = None
                return ["handed back to the bot"]
            if word == "close":
                await self.desk.close(self.name, self._held(), rest or "closed")
                self.current = None
                return ["closed"]
            if word in ("help", "?"):
                return [HELP]
            return [f"unknown command {word!r}; type help"]
        except (AlreadyClaimed, NotAllowed, ValueError) as error:
            return [f"error: {error}"]

    def _held(self) -> int:
        if self.current is None:
            raise ValueError("claim a conversation first")
        return self.current

    def news(self) -> list[str]:
        """New escalations and new messages from the user you hold."""
        out = []
        for e in self.desk.handoff.queue(self.name):
            if e.id not in self.known:
                self.known.add(e.id)
                if e.status == "open":
                    out.append("\a*** NEW " + _line(e))
        if self.current is not None:
            lines = self.desk.handoff.read_transcript(
                self.name, self.current, self.seen.get(self.current, 0), audit="when_shown"
            )
            for t in lines:
                if t.sender == "user":
                    out.append(_say(t))
            if lines:
                self.seen[self.current] = lines[-1].id
        return out


async def interactive(console: Console) -> None:
    print(f"Safe Passage counsellor console - signed in as {console.name}. Type help.")
    for line in await console.run_command("queue"):
        print(line)
    console.news()  # everything shown once
    loop = asyncio.get_running_loop()
    reader = loop.run_in_executor(None, _read)
    while True:
        done, _ = await asyncio.wait({reader}, timeout=1.0)
        for line in console.news():
            print(line)
        if not done:
            continue
        text = reader.result()
        if text is None or text.strip() in ("quit", "exit"):
            return
        if text.strip():
            for line in await console.run_command(text):
                print(line)
        reader = loop.run_in_executor(None, _read)


def _read() -> str | None:
    try:
        return input()
    except EOFError:
        return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot counsellor", description=__doc__)
    parser.add_argument("--as", dest="name", default="counsellor", help="your counsellor id (must be in SP_COUNSELLORS)")
    parser.add_argument("--json", action="store_true", help="machine-readable output for `queue`")
    parser.add_argument(
        "command", nargs="*", help="one command (queue, show N, claim N, say N TEXT, release N, close N OUTCOME)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    engine = open_engine(settings.database_url())
    pepper, *previous = settings.peppers()
    handoff = Handoff(engine, pepper, settings.counsellors, previous_peppers=previous)
    if args.name not in handoff.counsellors:
        print(f"{args.name!r} is not an allow-listed counsellor (SP_COUNSELLORS).", file=sys.stderr)
        return 2
    rasa = RasaClient(settings.rasa_url, settings.secret("channel_token", settings.channel_token), settings.rasa_timeout)
    desk = CounsellorDesk(handoff, load_catalog(settings.data_dir), rasa)
    console = Console(desk, args.name)

    async def run() -> int:
        try:
            if not args.command:
                await interactive(console)
                return 0
            words = list(args.command)
            if words[0] == "queue" and args.json:
                print(json.dumps([_card(e) for e in handoff.queue(args.name)], ensure_ascii=False))
                return 0
            if words[0] in ("say", "release", "close") and len(words) >= 2 and words[1].isdigit():
                console.current = int(words.pop(1))  # one-shot commands name the conversation
            output = await console.run_command(" ".join(words))
            print("\n".join(output))
            return 1 if output and output[0].startswith("error") else 0
        finally:
            await rasa.close()
            engine.dispose()

    return asyncio.run(run())
