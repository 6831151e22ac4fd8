"""The web desk under load: 20 counsellors with the live view open while messages flow.

    python -m benchmarks.desk_load [--counsellors 20] [--seconds 30] [--rate 10] [--new-every 5] [--idle 10]
    (or: make benchmark-desk)

What runs:
- ``python -m bot desk`` as its own process (as in production) on a SQLite gateway file;
- 20 counsellor accounts, each signed in over HTTP (aiohttp client, cookies and CSRF as a
  browser sends them), each holding one case (claimed through the desk), each with two live
  streams open: the queue (``/events``) and her case (``/events?case=N``), as the two pages do;
- the gateway's own pipeline (bot/pipeline.py ``Pipeline.handle``: normalisation, language id,
  the lexicon screener, the handoff core) in this process, on the same database, fed
  ``--rate`` messages a second for ``--seconds``: every ``--new-every``-th one is a new girl's
  danger message (a new urgent case: the screener escalates it through ``Handoff.escalate``),
  the others are follow-ups from the 20 girls whose cases are held (``Handoff.user_said``:
  a new transcript line). No Rasa runs: an escalated girl's messages never reach Rasa, and the
  pipeline's attempt to pause her Rasa conversation fails at once (nothing listens) and is
  logged, as in production when Rasa is away. The semantic model is off (lexicon alone).

What is measured:
- event-to-browser latency: from the moment the handoff core's transaction committed (the
  ``escalate`` / ``user_said`` call returned) to the moment the SSE event carrying it was read
  by a client: a new case by each of the 20 queue streams, a new line by the case stream of
  the counsellor who holds it. Clock: this process's ``time.monotonic()`` on both sides;
- the desk process's CPU (user + system, from /proc) with the 40 streams open and nothing
  happening (``--idle`` seconds), then over the load, as % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import html
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from bot.config import ROOT, Settings
from bot.content import load_catalog
from bot.db import open_engine
from bot.evaluation import percentile
from bot.handoff import Escalation, Handoff, address_cipher
from bot.hours import DutyHours
from bot.langid import LanguageIdentifier
from bot.pipeline import Pipeline
from bot.profiles import ProfileStore
from bot.rasa_client import RasaClient
from bot.risk.decision import RiskAssessor
from bot.risk.screener import load_screener
from bot.webdesk.auth import Accounts
from bot.webdesk.data import DeskStore
from tests.kannel import free_port, wait_port

PEPPER = "d" * 40
PASSWORD = "a long benchmark password"  # noqa: S105 - throw-away accounts in a temporary database
DANGER = "Help me, they locked me in a room and took my passport"
CASE_ID = re.compile(r'id="case-(\d+)"')
TOKEN = re.compile(r"\bmsg(\d+)x\b")


class TimedHandoff(Handoff):
    """The handoff core, noting when each new case and each new line was committed."""

    committed_cases: dict[int, float]
    committed_lines: dict[int, float]

    def escalate(self, **kwargs: Any) -> tuple[Escalation, bool]:  # type: ignore[override]
        case, new = super().escalate(**kwargs)
        if new:
            self.committed_cases[case.id] = time.monotonic()
        return case, new

    def user_said(self, escalation_id: int, text: str) -> None:  # type: ignore[override]
        super().user_said(escalation_id, text)
        found = TOKEN.search(text)
        if found:
            self.committed_lines[int(found.group(1))] = time.monotonic()


@dataclasses.dataclass
class Client:
    name: str
    session: aiohttp.ClientSession
    case_id: int = 0
    case_events: str = ""
    csrf: str = ""
    seen_cases: dict[int, float] = dataclasses.field(default_factory=dict)
    seen_lines: dict[int, float] = dataclasses.field(default_factory=dict)
    queue_ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    case_ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def sign_in(url: str, name: str) -> Client:
    session = aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1: an IP host
    page = await (await session.get("/login")).text()
    token = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    response = await session.post("/login", data={"csrf": token, "name": name, "password": PASSWORD, "code": ""})
    queue = await response.text()
    if "queue-rows" not in queue:
        raise RuntimeError(f"{name}: sign-in refused")
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]+)"', queue).group(1))  # type: ignore[union-attr]
    return Client(name, session, csrf=csrf)


async def claim(client: Client, case_id: int) -> None:
    response = await client.session.post(f"/case/{case_id}/claim", data={"csrf": client.csrf})
    page = await response.text()
    if "You hold this case" not in page:
        raise RuntimeError(f"{client.name}: claim of case {case_id} failed")
    client.case_id = case_id
    client.case_events = html.unescape(re.search(r'data-events="([^"]+)"', page).group(1))  # type: ignore[union-attr]


async def read_stream(client: Client, path: str, on_event: Any, ready: asyncio.Event) -> None:
    async with client.session.get(path, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
        ready.set()
        event, data = "", []
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and event:
                on_event(event, "\n".join(data), time.monotonic())
                event, data = "", []


def watch(client: Client) -> list[asyncio.Task[None]]:
    def on_queue(event: str, data: str, at: float) -> None:
        if event == "queue":
            for found in CASE_ID.findall(data):
                client.seen_cases.setdefault(int(found), at)

    def on_case(event: str, data: str, at: float) -> None:
        if event == "lines":
            for found in TOKEN.findall(data):
                client.seen_lines.setdefault(int(found), at)
        elif event == "state":
            raise RuntimeError(f"{client.name}: her case changed state during the run")

    return [
        asyncio.create_task(read_stream(client, "/events", on_queue, client.queue_ready)),
        asyncio.create_task(read_stream(client, client.case_events, on_case, client.case_ready)),
    ]


def open_gateway(settings: Settings) -> tuple[Pipeline, TimedHandoff, RasaClient]:
    """The gateway's pipeline as bot/cli.py wires it, with the lexicon alone and the timed core."""
    engine = open_engine(settings.database_url())
    handoff = TimedHandoff(engine, PEPPER, settings.counsellors)
    handoff.committed_cases, handoff.committed_lines = {}, {}
    screener = load_screener(settings.data_dir)
    identifier = LanguageIdentifier.from_data(settings.data_dir)
    identifier.warm_up()
    rasa = RasaClient(settings.rasa_url, "benchmark", 1.0)
    pipeline = Pipeline(
        load_catalog(settings.data_dir), identifier, ProfileStore(engine), rasa, PEPPER, screener=screener,
        handoff=handoff, hours=DutyHours(settings.counsellor_hours, settings.counsellor_timezone),
        assessor=RiskAssessor(screener),
    )  # fmt: skip
    return pipeline, handoff, rasa


def summary(values: list[float]) -> tuple[str, str, str, str]:
    if not values:
        return ("-", "-", "-", "-")
    ms = [v * 1000 for v in values]
    return (f"{percentile(ms, 50):.0f}", f"{percentile(ms, 95):.0f}", f"{percentile(ms, 99):.0f}", f"{max(ms):.0f}")


async def run(args: argparse.Namespace, workdir: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SP_VAR_DIR": str(workdir / "var"),
        "SP_PEPPER": PEPPER,
        "SP_DESK_LISTEN": f"127.0.0.1:{port}",
        "SP_DESK_SECURE_COOKIES": "false",  # plain http on loopback (refused on any other address)
        "SP_DESK_LOGIN_RATE": "1000/60",
        "SP_RASA_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "SP_SEMANTIC": "off",
        "SP_COUNSELLORS": "console",
        "RASA_TELEMETRY_ENABLED": "false",
    }
    os.environ.update({k: env[k] for k in ("SP_VAR_DIR", "SP_PEPPER", "SP_RASA_URL", "SP_SEMANTIC", "SP_COUNSELLORS")})
    settings = Settings()
    pipeline, handoff, rasa = open_gateway(settings)
    store = DeskStore(handoff.engine)
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # the desk re-hashes at first sign-in
    accounts = Accounts(store, address_cipher(PEPPER), hasher=cheap)
    names = [f"counsellor{i:02d}" for i in range(args.counsellors)]
    for name in names:
        accounts.add_user(name, "counsellor", PASSWORD)
    for i in range(args.counsellors):  # one girl per counsellor, already talking to her
        await pipeline.handle("telegram", f"held-{i}", DANGER)
    held = sorted(handoff.committed_cases)
    log_file = (workdir / "desk.log").open("w")
    desk = subprocess.Popen([sys.executable, "-m", "bot", "desk"], cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
    tasks: list[asyncio.Task[None]] = []
    clients: list[Client] = []
    try:
        wait_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}"
        clients = [await sign_in(url, name) for name in names]
        for client, case_id in zip(clients, held, strict=True):
            await claim(client, case_id)
        for client in clients:
            tasks += watch(client)
        await asyncio.gather(*(c.queue_ready.wait() for c in clients), *(c.case_ready.wait() for c in clients))
        await asyncio.sleep(2)  # the first full queue drawn everywhere
        handoff.committed_cases.clear()
        idle_cpu, idle_started = cpu_seconds(desk.pid), time.monotonic()
        await asyncio.sleep(args.idle)  # the live views open, nothing happening
        idle_cpu, idle_wall = cpu_seconds(desk.pid) - idle_cpu, time.monotonic() - idle_started

        total = int(args.seconds * args.rate)
        started_cpu, started = cpu_seconds(desk.pid), time.monotonic()
        for k in range(total):
            due = started + k / args.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if k % args.new_every == 0:
                await pipeline.handle("telegram", f"new-{k}", DANGER)
            else:
                girl = k % args.counsellors
                await pipeline.handle("telegram", f"held-{girl}", f"I am still here, message msg{k}x")
        sent_for = time.monotonic() - started
        await asyncio.sleep(3)  # the last events
        cpu = cpu_seconds(desk.pid) - started_cpu
        wall = time.monotonic() - started
        case_latency = [
            c.seen_cases[case] - at for case, at in handoff.committed_cases.items() for c in clients if case in c.seen_cases
        ]
        missed_cases = len(handoff.committed_cases) * len(clients) - len(case_latency)
        line_latency = [
            c.seen_lines[token] - at
            for token, at in handoff.committed_lines.items()
            for c in clients
            if token in c.seen_lines
        ]
        missed_lines = len(handoff.committed_lines) - len(line_latency)
        print()
        print(
            f"{len(clients)} counsellors (40 live streams: queue + her case), {total} messages in {sent_for:.1f} s "
            f"({args.rate:g}/s; every {args.new_every}th a new danger case), desk on SQLite, live check every 0.25 s"
        )
        print()
        print("| event -> SSE client | events | deliveries | missed | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|")
        for label, events, values, missed in (
            ("new case -> 20 queue streams", len(handoff.committed_cases), case_latency, missed_cases),
            ("new line -> her counsellor's case stream", len(handoff.committed_lines), line_latency, missed_lines),
        ):
            print(f"| {label} | {events} | {len(values)} | {missed} | " + " | ".join(summary(values)) + " |")
        print()
        print("| desk process CPU | CPU s | wall s | % of one core |")
        print("|---|---|---|---|")
        print(
            f"| idle, {2 * len(clients)} live streams open | {idle_cpu:.1f} | {idle_wall:.1f} "
            f"| {100 * idle_cpu / idle_wall:.0f}% |"
        )
        print(f"| during the load (and 3 s after) | {cpu:.1f} | {wall:.1f} | {100 * cpu / wall:.0f}% |")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.session.close()
        await rasa.close()
        desk.terminate()
        try:
            desk.wait(timeout=10)
        except subprocess.TimeoutExpired:
            desk.kill()
        log_file.close()
        handoff.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counsellors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=10, help="messages per second from the girls")
    parser.add_argument("--idle", type=float, default=10, help="seconds of desk CPU measured before the load")
    parser.add_argument("--new-every", type=int, default=5, help="every Nth message is a new girl's danger message")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the pipeline logs each escalation and the absent Rasa
    with tempfile.TemporaryDirectory(prefix="sp-bench-desk-") as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()
