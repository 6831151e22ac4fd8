"""Fault injection: every message answered once, none lost, to the right person.

    python -m benchmarks.faults [--messages 200] [--db postgres|sqlite|both]   (or: make benchmark-faults)

Real processes on loopback: the Rasa server and action server with the trained model, gateway
processes (`python -m bot sms`, `python -m bot telegram --webhook`), real PostgreSQL, real
Kannel (bearerbox + smsbox, fake SMSC), and the fake Telegram Bot API of the tests.

How messages are spread over two gateways of a channel, as in production:
- SMS: Kannel's sms-service posts every MO to one URL (post-url). That URL is a load balancer
  here (``Balancer``) that alternates between the two gateways and, like nginx's
  ``proxy_next_upstream error``, tries the other one when a gateway refuses the connection. A
  request cut mid-way (a gateway killed) is answered 502 and Kannel sends it again (smsbox's
  http-request-retry, same message id: the inbox drops the repeat).
- Telegram: webhook mode (two processes cannot share getUpdates). The harness plays Telegram:
  each update is POSTed to the same kind of balancer in front of both webhook servers, and sent
  again (backing off) until a server answers 200, as Telegram does.
- Replies: both SMS gateways send through the same Kannel sendsms (behind ``ProviderFaults``,
  which can answer 500 or refuse a number); both Telegram gateways call the fake Bot API.

Scenarios (a fresh gateway database each):
- crash: one gateway of each channel SIGKILLed mid-run and started again 3 s later (a
  supervisor), and PostgreSQL restarted (fast shutdown: sessions cut) mid-run.
- provider 500: Kannel's sendsms / Telegram's sendMessage answer 500 for a while, then recover.
- blocked: she blocked the bot (Telegram 403) / the SMS provider refuses her number (4xx): her
  replies are dead-lettered after one try, never retried.
SQLite runs the same scenarios with one gateway per channel (no PostgreSQL restart).

Users write like people: many numbers/chats at once, each sends her next message after the
reply to the last one (or after a timeout). A reply belongs to the message she sent last before
it arrived. Counting, per message:
- SMS: every reply SMS (one per inbound SMS; parts reassembled) is one answer.
- Telegram: one handling of the update sends one or more messages; an answer is each webhook
  attempt that sent something (plus the "technical problem" fallback sent after a real reply),
  or the outbox sending what the handling could not; a text received twice counts twice too.
  She writes again after the first part of an answer, so the last parts of the previous answer
  can arrive after her next message (an outage holds them in the outbox): the parts of hers
  still waiting in the outbox when she writes belong to the previous message, not the next one
  (two answers that both end with "Which country are you in now?" are not one answer twice).
- lost: no answer at all; dead-lettered: no answer, and the bot recorded her replies as dead
  letters (she blocked the bot). Late duplicates are waited for: a scenario ends only when the
  inbox and the outbox hold nothing unfinished.
The per-message work is small on purpose (short messages, semantic layer off in the gateways):
the subject is the delivery machinery, not the NLU.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from bot.config import ROOT, Settings
from tests.fake_telegram import FakeTelegram
from tests.kannel import SHORT_CODE, Kannel, Phone, free_port
from tests.services import Postgres, _as_postgres_user, postgres_bin

PER_USER = 4
KILL_RESTART_SECONDS = 3.0  # a supervisor (systemd, compose) starts a killed gateway again
OUTAGE_SECONDS = 10.0
REPLY_TIMEOUT = 240.0  # > the inbox lease (120 s) + backoff: a slow answer is not called lost
SETTLE_TIMEOUT = 300.0
WEBHOOK_SECRET = "webhook-secret-for-the-fault-suite"  # noqa: S105 - test value
LEASE_VARIABLE = "SP_FAULTS_LEASE_SECONDS"

ORDINARY = [
    "hi",
    "what are my rights?",
    "give me the hotline number",
    "someone offered me a job abroad, is it safe?",
    "how can I check if a recruitment agency is real?",
    "thank you",
    "do I need a passport to work abroad?",
    "what is human trafficking?",
    "I want to study abroad",
    "my friend wants to go to Malaysia for work",
    "สวัสดีค่ะ",
    "xin chào",
]
URGENT = [
    "they locked me in and took my passport",
    "my boss took my passport and will not let me leave",
    "I am trapped and they hit me",
]


def script(user: int, count: int) -> list[str]:
    """Her messages: ordinary ones; every fifth user is in danger at her second message (her
    later messages then reach the counsellor's queue and are answered "a counsellor is coming")."""
    texts = [ORDINARY[(user * 3 + k * 5) % len(ORDINARY)] for k in range(count)]
    if user % 5 == 0 and count > 1:
        texts[1] = URGENT[user // 5 % len(URGENT)]
    return texts


# -- services ----------------------------------------------------------------------------------------
class RestartablePostgres(Postgres):
    """tests.services.Postgres that can be restarted on the same data (and stopped quickly)."""

    def _postmaster_pid(self) -> int:
        return int((self.workdir / "pgdata" / "postmaster.pid").read_text().split()[0])

    def _shutdown(self) -> None:
        """Fast shutdown (`pg_ctl stop -m fast`): sessions are cut, as in a restart for an update."""
        assert self.process is not None
        os.kill(self._postmaster_pid(), signal.SIGINT)
        self.process.wait(timeout=60)

    def restart(self, down_seconds: float = 2.0) -> None:
        self._shutdown()
        time.sleep(down_seconds)
        binaries = postgres_bin()
        assert binaries is not None
        log = (self.workdir / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            _as_postgres_user([
                str(binaries / "postgres"), "-D", str(self.workdir / "pgdata"), "-p", str(self.port),
                "-k", str(self.workdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "max_connections=200",
            ]),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                engine = sa.create_engine(self.url())
                engine.connect().close()
                engine.dispose()
                return
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            try:
                self._shutdown()
            except (OSError, ValueError, subprocess.TimeoutExpired):
                super().stop()
            self.process = None


async def serve_app(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class Balancer:
    """A load balancer in front of the gateways of one channel: round robin; a refused connection
    goes to the next gateway (nothing was sent); a request cut mid-way is answered 502."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._turn = 0
        self._http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        return app

    async def _forward(self, request: web.Request) -> web.Response:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180))
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        self._turn += 1
        order = [self.ports[(self._turn + i) % len(self.ports)] for i in range(len(self.ports))]
        for port in order:
            url = f"http://127.0.0.1:{port}{request.rel_url}"
            try:
                async with self._http.request(request.method, url, data=body, headers=headers) as reply:
                    data = await reply.read()
                    return web.Response(status=reply.status, body=data, content_type=reply.content_type)
            except aiohttp.ClientConnectorError:
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return web.Response(status=502, text="upstream went away")
        return web.Response(status=502, text="no gateway up")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


class ProviderFaults:
    """In front of Kannel's sendsms: passes requests on, or answers 500 (an outage) or 403 for
    numbers it refuses. Counts every try per number."""

    def __init__(self, sendsms_url: str) -> None:
        self.sendsms_url = sendsms_url
        self.failing: int | None = None
        self.refused: set[str] = set()
        self.tries: dict[str, int] = defaultdict(int)
        self._http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/sendsms", self._sendsms)
        return app

    async def _sendsms(self, request: web.Request) -> web.Response:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        to = request.query.get("to", "")
        self.tries[to] += 1
        if to in self.refused:
            return web.Response(status=403, text="Number refused")
        if self.failing is not None:
            return web.Response(status=self.failing, text="Internal error")
        async with self._http.get(self.sendsms_url, params=list(request.query.items())) as reply:
            return web.Response(status=reply.status, text=await reply.text())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


@dataclass
class Sent:
    at: float
    chat: int
    text: str


@dataclass
class RecordingTelegram(FakeTelegram):
    """The fake Bot API, recording which sendMessage calls were taken (and when) and every try."""

    delivered: list[Sent] = field(default_factory=list)
    tries: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        if request.match_info["method"] == "sendMessage":
            if request.content_type == "application/json":
                params = await request.json()
            else:
                params = {k: str(v) for k, v in (await request.post()).items()}
            chat = int(params.get("chat_id", 0))
            self.tries[chat] += 1
            if response.status == 200:
                self.delivered.append(Sent(time.monotonic(), chat, str(params.get("text", ""))))
        return response


class Handset(Phone):
    """tests.kannel.Phone, robust to a one-part GSM reply with a line break: the fake SMSC sends
    such text raw, so its second line arrives as a line of its own (not a new message)."""

    KINDS = frozenset({"text", "ucs-2", "ucs2", "data", "udh"})

    def _line(self, line: str) -> None:
        parts = line.split(" ", 3)
        if len(parts) < 4 or parts[0] != SHORT_CODE or parts[2] not in self.KINDS:
            return  # the rest of the previous reply's text
        super()._line(line)


class SmsLine:
    """The handset side: MOs out through the fake SMSC, reassembled MTs in, with arrival times."""

    def __init__(self, port: int) -> None:
        self.phone = Handset(port)
        self.received: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self._running = True
        self._pump = threading.Thread(target=self._collect, daemon=True)
        self._pump.start()

    def _collect(self) -> None:
        while self._running:
            try:
                item = self.phone.receive(timeout=0.2)
            except queue.Empty:
                continue
            self.received[item.receiver].append((time.monotonic(), item.text))

    def close(self) -> None:
        self._running = False
        self.phone.close()


# -- gateways ---------------------------------------------------------------------------------------
@dataclass
class GatewayProcess:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    failed_starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=sink, stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 120.0, restarts: int = 0) -> None:
        """Wait for its healthcheck. ``restarts``: start it again when it exits (as systemd's
        Restart=on-failure would - a gateway does not start while its database is down)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    if restarts <= 0:
                        raise RuntimeError(f"{self.name} exited (code {self.process.returncode}); see {self.log}")
                    restarts -= 1
                    self.failed_starts += 1
                    await asyncio.sleep(1.0)
                    self.start()
                    continue
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthcheck") as reply:
                        if reply.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no graceful finish of what it holds."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def gateway() -> None:
    """`python -m bot ...` with shorter leases (the pytest's time budget): a message held by a
    killed gateway is taken over after this many seconds instead of 60 s (outbox) / 120 s (inbox).
    Still longer than one message's processing here, so a live gateway never loses its lease."""
    from bot.channels.telegram import TelegramBot
    from bot.cli import main as bot_main
    from bot.delivery.outbox import OutboxWorker
    from bot.sms.store import SmsStore

    seconds = float(os.environ[LEASE_VARIABLE])
    claim, init, telegram_init = SmsStore.claim, OutboxWorker.__init__, TelegramBot.__init__

    def short_claim(self: SmsStore, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("lease_seconds", seconds)
        return claim(self, *args, **kwargs)

    def short_init(self: OutboxWorker, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.lease_seconds = min(self.lease_seconds, seconds)

    def short_update_lease(self: TelegramBot, *args: Any, **kwargs: Any) -> None:
        telegram_init(self, *args, **kwargs)
        self.update_lease = min(self.update_lease, seconds)

    SmsStore.claim = short_claim  # type: ignore[method-assign]
    OutboxWorker.__init__ = short_init  # type: ignore[method-assign]
    TelegramBot.__init__ = short_update_lease  # type: ignore[method-assign]
    sys.exit(bot_main(sys.argv[1:]))


# -- one scenario's messages ---------------------------------------------------------------------------
@dataclass
class Inbound:
    channel: str
    user: str  # her number / chat id
    text: str
    sent_at: float = 0.0
    until: float = float("inf")  # when her next message was sent (the end of this one's window)
    attempts: list[tuple[float, float, int]] = field(default_factory=list)  # webhook tries: start, end, status
    blocked: bool = False
    # Telegram: the parts of this message's answer still in the outbox when she wrote her next one
    leftover: list[str] = field(default_factory=list)


@dataclass
class Row:
    scenario: str
    channel: str
    db: str
    gateways: int
    messages: int
    once: int = 0
    twice: int = 0
    lost: int = 0
    dead: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.once + self.dead == self.messages and not self.twice and not self.lost


@dataclass
class Lab:
    """Everything one database kind's scenarios share: Rasa, Kannel, the fake Bot API, PostgreSQL."""

    rasa: Settings
    workdir: Path
    db: str  # "postgres" | "sqlite"
    postgres: RestartablePostgres | None = None
    kannel: Kannel | None = None
    line: SmsLine | None = None
    provider: ProviderFaults | None = None
    provider_url: str = ""
    telegram: RecordingTelegram | None = None
    service_unavailable: tuple[str, ...] = ()
    # None: the production leases (a dead gateway's messages are taken over after 60/120 s);
    # the pytest shortens them so that a takeover costs seconds (gateway() below)
    lease_seconds: float | None = None
    _runners: list[web.AppRunner] = field(default_factory=list)
    _scenario_number: int = 0

    @property
    def gateways(self) -> int:
        return 2 if self.db == "postgres" else 1

    async def start(self) -> None:
        from bot.content import load_catalog

        catalog = load_catalog(self.rasa.data_dir)
        self.service_unavailable = tuple(catalog.text("service_unavailable", code) for code in catalog.languages)
        if self.db == "postgres":
            pg_dir = Path(tempfile.mkdtemp(prefix="sp-faults-pg-", dir=self.workdir))
            pg_dir.chmod(0o755)  # the server runs as the postgres user when this runs as root
            self.postgres = RestartablePostgres(pg_dir)
            await asyncio.to_thread(self.postgres.start)
        self.kannel = Kannel(Path(tempfile.mkdtemp(prefix="sp-faults-kannel-", dir=self.workdir)), free_port())
        await asyncio.to_thread(self.kannel.start)
        self.line = SmsLine(self.kannel.ports.fake_port)
        self.provider = ProviderFaults(self.kannel.sendsms_url)
        runner, port = await serve_app(self.provider.app())
        self._runners.append(runner)
        self.provider_url = f"http://127.0.0.1:{port}/cgi-bin/sendsms"
        self.telegram = RecordingTelegram()
        await self.telegram.start()

    async def close(self) -> None:
        if self.telegram is not None:
            await self.telegram.stop()
        for runner in self._runners:
            await runner.cleanup()
        if self.provider is not None:
            await self.provider.close()
        if self.line is not None:
            self.line.close()
        if self.kannel is not None:
            await asyncio.to_thread(self.kannel.stop)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)

    def database(self) -> str:
        self._scenario_number += 1
        if self.postgres is not None:
            return self.postgres.create_database(f"faults_{self._scenario_number}_{uuid.uuid4().hex[:6]}")
        return f"sqlite:///{self.rasa.var_dir / f'faults-{self._scenario_number}-{uuid.uuid4().hex[:6]}.db'}"

    def gateway_env(self, db_url: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "SP_VAR_DIR": str(self.rasa.var_dir),
            "SP_DATA_DIR": str(self.rasa.data_dir),
            "SP_DB_URL": db_url,
            "SP_RASA_URL": self.rasa.rasa_url,
            "SP_RASA_TIMEOUT": "60",
            "SP_SEMANTIC": "off",
            "SP_CLAIM_TIMEOUT_MINUTES": "600",  # no "nobody claimed yet" notice during the run
            "RASA_TELEMETRY_ENABLED": "false",
        }
        for name in ("SP_PEPPER", "SP_PEPPER_PREVIOUS", "SP_RASA_CHANNEL_TOKEN"):
            env.pop(name, None)  # the secrets are the Rasa stack's, in its var directory
        if self.lease_seconds is not None:
            env[LEASE_VARIABLE] = str(self.lease_seconds)
        return env

    def command(self, *arguments: str) -> list[str]:
        if self.lease_seconds is None:
            return [sys.executable, "-m", "bot", *arguments]
        return [sys.executable, "-c", "from benchmarks.faults import gateway; gateway()", *arguments]

    def sms_gateway(self, db_url: str, index: int, log_dir: Path) -> GatewayProcess:
        assert self.kannel is not None
        port = free_port()
        env = {
            **self.gateway_env(db_url),
            "SP_SMS_LISTEN": f"127.0.0.1:{port}",
            "SP_KANNEL_SENDSMS_URL": self.provider_url,
            "SP_KANNEL_USERNAME": self.kannel.username,
            "SP_KANNEL_PASSWORD": self.kannel.password,
            "SP_KANNEL_MO_KEY": self.kannel.mo_key,
            "SP_KANNEL_SENDER": "1300",
            # the suite sends hundreds of SMS a minute from few numbers: no flood limits here
            "SP_SMS_RATE_PER_NUMBER": "1000/60",
            "SP_SMS_RATE_GLOBAL": "100000/60",
            "SP_SMS_SEGMENTS_PER_HOUR": "1000000/3600",
        }
        command = self.command("sms")
        return GatewayProcess(f"sms-{index}", command, env, port, log_dir / f"sms-{index}.log")

    def telegram_gateway(self, db_url: str, index: int, log_dir: Path) -> GatewayProcess:
        assert self.telegram is not None
        port = free_port()
        env = {
            **self.gateway_env(db_url),
            "SP_TELEGRAM_TOKEN": self.telegram.token,
            "SP_TELEGRAM_API_URL": self.telegram.url,
            "SP_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram/webhook",
            "SP_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SP_TELEGRAM_LISTEN": f"127.0.0.1:{port}",
        }
        command = self.command("telegram", "--webhook")
        return GatewayProcess(f"telegram-{index}", command, env, port, log_dir / f"telegram-{index}.log")


@dataclass
class Run:
    """One scenario: its gateways, balancers and messages."""

    lab: Lab
    name: str
    channels: tuple[str, ...]
    db_url: str
    gateways: dict[str, list[GatewayProcess]] = field(default_factory=dict)
    inbound: list[Inbound] = field(default_factory=list)
    sms_balancer_port: int = 0
    telegram_balancer_port: int = 0
    answered_first: int = 0
    finished: bool = False
    _http: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Run]:
        lab = self.lab
        log_dir = Path(tempfile.mkdtemp(prefix=f"sp-faults-{self.name.replace(' ', '-')}-", dir=lab.workdir))
        async with AsyncExitStack() as stack:
            balancers: list[Balancer] = []
            if "sms" in self.channels:
                assert lab.kannel is not None
                self.gateways["sms"] = [lab.sms_gateway(self.db_url, i, log_dir) for i in range(lab.gateways)]
                balancer = Balancer([g.port for g in self.gateways["sms"]])
                runner, _ = await serve_app(balancer.app(), lab.kannel.gateway_port)  # Kannel's post-url
                stack.push_async_callback(runner.cleanup)
                balancers.append(balancer)
            if "telegram" in self.channels:
                self.gateways["telegram"] = [lab.telegram_gateway(self.db_url, i, log_dir) for i in range(lab.gateways)]
                balancer = Balancer([g.port for g in self.gateways["telegram"]])
                runner, self.telegram_balancer_port = await serve_app(balancer.app())
                stack.push_async_callback(runner.cleanup)
                balancers.append(balancer)
            for balancer in balancers:
                stack.push_async_callback(balancer.close)
            everyone = [g for group in self.gateways.values() for g in group]
            for gateway in everyone:
                gateway.start()

            def stop_all() -> None:
                for gateway in everyone:
                    gateway.stop()

            stack.callback(stop_all)
            await asyncio.gather(*(g.ready() for g in everyone))
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=200))
            stack.push_async_callback(self._http.close)
            yield self

    # -- her side -----------------------------------------------------------------------------------
    def _first_reply(self, item: Inbound) -> bool:
        if item.channel == "sms":
            assert self.lab.line is not None
            return any(at > item.sent_at for at, _ in self.lab.line.received[item.user])
        assert self.lab.telegram is not None
        chat = int(item.user)
        return any(s.chat == chat and s.at > item.sent_at for s in self.lab.telegram.delivered)

    async def _wait_reply(self, item: Inbound, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._first_reply(item):
                return True
            await asyncio.sleep(0.1)
        return False

    async def _post_update(self, item: Inbound, update: dict[str, Any]) -> None:
        """Telegram's side of a webhook: send until a server answers 200, backing off."""
        assert self._http is not None
        url = f"http://127.0.0.1:{self.telegram_balancer_port}/telegram/webhook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        delay, deadline = 1.0, time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                async with self._http.post(url, data=json.dumps(update), headers=headers) as reply:
                    await reply.read()
                    status = reply.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            item.attempts.append((started, time.monotonic(), status))
            if status == 200:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)

    async def user(self, channel: str, address: str, texts: list[str], start_after: float, blocked: bool = False) -> None:
        await asyncio.sleep(start_after)
        previous: Inbound | None = None
        for text in texts:
            item = Inbound(channel, address, text, blocked=blocked)
            self.inbound.append(item)
            item.sent_at = time.monotonic()
            if previous is not None:
                previous.until = item.sent_at
                if channel == "telegram":
                    previous.leftover = await asyncio.to_thread(self._waiting_texts, address)
            if channel == "sms":
                assert self.lab.line is not None
                self.lab.line.phone.send(address, text)
            else:
                assert self.lab.telegram is not None
                await self._post_update(item, self.lab.telegram.message_update(int(address), text))
            answered = await self._wait_reply(item, 5.0 if blocked else REPLY_TIMEOUT)
            self.answered_first += answered
            previous = item
            await asyncio.sleep(random.uniform(0.3, 1.0))  # noqa: S311 - think time, not security

    def _waiting_texts(self, chat: str) -> list[str]:
        """The texts of her answers still waiting in the outbox (held by a handler or backing off)."""
        from bot.handoff import GAVE_UP, address_cipher, outbox
        from bot.profiles import user_key

        pepper = self.lab.rasa.peppers()[0]
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(outbox.c.text)
                    .where(
                        outbox.c.user_key == user_key(pepper, "telegram", chat),
                        outbox.c.sent_at.is_(None),
                        outbox.c.attempts < GAVE_UP,
                    )
                    .order_by(outbox.c.id)
                ).all()
        except sa.exc.OperationalError:
            return []  # the database restarting: counted as before
        finally:
            engine.dispose()
        cipher = address_cipher(pepper)
        return [cipher.decrypt(r.text.encode()).decode() for r in rows]

    def progress(self, total: int) -> float:
        return self.answered_first / max(total, 1)

    async def when(self, fraction: float, total: int) -> bool:
        """Wait until this share of her messages is answered; False if the run ended first."""
        while self.progress(total) < fraction:
            if self.finished:
                return False
            await asyncio.sleep(0.1)
        return True

    # -- the end: wait for late answers, then count ------------------------------------------------------
    async def settle(self) -> None:
        """Until nothing is left unfinished: inbox processed, outbox sent or dead-lettered."""
        from bot.handoff import GAVE_UP, outbox
        from bot.sms.store import inbox

        engine = sa.create_engine(self.db_url)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        try:
            while time.monotonic() < deadline:
                try:
                    with engine.connect() as conn:
                        waiting = conn.execute(
                            sa.select(sa.func.count()).select_from(inbox).where(inbox.c.processed_at.is_(None))
                        ).scalar_one()
                        unsent = conn.execute(
                            sa.select(sa.func.count())
                            .select_from(outbox)
                            .where(outbox.c.sent_at.is_(None), outbox.c.attempts < GAVE_UP)
                        ).scalar_one()
                except sa.exc.OperationalError:
                    waiting = unsent = 1
                if not waiting and not unsent:
                    break
                await asyncio.sleep(0.5)
        finally:
            engine.dispose()
        await asyncio.sleep(3.0)  # the last MT through Kannel to the phone

    def dead_letters(self) -> dict[str, int]:
        """Dead-lettered deliveries per her address's pseudonym."""
        from bot.handoff import GAVE_UP, outbox

        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(outbox.c.user_key, sa.func.count())
                    .where(outbox.c.attempts >= GAVE_UP)
                    .group_by(outbox.c.user_key)
                ).all()
        finally:
            engine.dispose()
        return {r[0]: int(r[1]) for r in rows}

    def count(self, channel: str) -> Row:
        from bot.profiles import user_key

        lab = self.lab
        pepper = lab.rasa.peppers()[0]
        dead = self.dead_letters()
        items = [i for i in self.inbound if i.channel == channel]
        row = Row(self.name, channel, lab.db, lab.gateways, len(items))
        odd = []
        delivered = attribute(items, lab.telegram.delivered if lab.telegram is not None else [])
        for index, item in enumerate(items):
            answers = self._answers(item, delivered.get(index, []))
            if answers != 1:
                odd.append({**dataclasses.asdict(item), "answers": answers, "replies": self._replies(item)})
            if answers == 1:
                row.once += 1
            elif answers > 1:
                row.twice += 1
            elif item.blocked and dead.get(user_key(pepper, channel, item.user), 0) > 0:
                row.dead += 1
            else:
                row.lost += 1
        if odd:  # what went wrong, for the operator (times are monotonic seconds)
            name = f"{self.name}-{channel}-{lab.db}".replace(" ", "_").replace("(", "").replace(")", "")
            (lab.workdir / f"{name}.json").write_text(json.dumps(odd, indent=1, ensure_ascii=False, default=str))
        return row

    def _replies(self, item: Inbound) -> list[tuple[float, str]]:
        if item.channel == "sms":
            assert self.lab.line is not None
            return list(self.lab.line.received[item.user])
        assert self.lab.telegram is not None
        return [(s.at, s.text[:60]) for s in self.lab.telegram.delivered if s.chat == int(item.user)]

    def _answers(self, item: Inbound, sent: list[Sent]) -> int:
        if item.channel == "sms":
            assert self.lab.line is not None
            return sum(1 for at, _ in self.lab.line.received[item.user] if item.sent_at < at < item.until)
        return telegram_answers(item, sent, self.lab.service_unavailable)


def attribute(items: list[Inbound], delivered: list[Sent]) -> dict[int, list[Sent]]:
    """Which Telegram messages the bot sent belong to which of her messages (index in ``items``):
    those between her message and her next one - except the previous answer's parts that were
    still waiting in the outbox when she wrote (``leftover``), which belong to the previous one."""
    found: dict[int, list[Sent]] = {}
    following: dict[int, int] = {}  # her message -> her next message (same chat)
    last: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.channel != "telegram":
            continue
        chat = int(item.user)
        found[index] = [s for s in delivered if s.chat == chat and item.sent_at < s.at < item.until]
        if item.user in last:
            following[last[item.user]] = index
        last[item.user] = index
    for index, item in enumerate(items):
        if index not in following:
            continue
        later = found[following[index]]
        for text in item.leftover:
            part = next((s for s in later if s.text == text), None)
            if part is not None:
                later.remove(part)
                found[index].append(part)
    return found


def telegram_answers(item: Inbound, sent: list[Sent], service_unavailable: tuple[str, ...]) -> int:
    """How many answers one of her Telegram messages got, from the messages attributed to it."""
    if not sent:
        return 0
    handled = 0  # webhook attempts that sent her something
    for start, end, _ in item.attempts:
        during = [s for s in sent if start <= s.at <= end]
        if during:
            handled += 1
            # the error handler's "technical problem" after a real reply is a second answer
            handled += any(any(s.text.startswith(f) for f in service_unavailable) for s in during[1:])
    later = [s for s in sent if not any(start <= s.at <= end for start, end, _ in item.attempts)]
    if not handled and later:
        handled = 1  # the outbox delivered what the handling could not send
    texts = [s.text for s in sent]
    repeated = max(texts.count(t) for t in texts)
    return max(handled, repeated)


# -- scenarios -------------------------------------------------------------------------------------------
def users_for(messages: int) -> int:
    return max(1, messages // PER_USER)


async def drive(run: Run, messages: int, faults: Callable[[int], Coroutine[Any, Any, None]], blocked: int = 0) -> None:
    """Her messages on every channel of the run, the faults beside them, then the late answers."""
    offset = run.lab._scenario_number * 100_000
    tasks = []
    users = users_for(messages)
    total = users * PER_USER * len(run.channels)
    spread = min(15.0, users * 0.3)  # she and the others start over a few seconds
    for index in range(users):
        texts = script(index, PER_USER)
        start = random.uniform(0, spread)  # noqa: S311
        is_blocked = index < blocked
        if "sms" in run.channels:
            number = f"+6689{offset + index:07d}"
            if is_blocked:
                assert run.lab.provider is not None
                run.lab.provider.refused.add(number)
            tasks.append(run.user("sms", number, texts, start, is_blocked))
        if "telegram" in run.channels:
            chat = 10_000_000 + offset + index
            if is_blocked:
                assert run.lab.telegram is not None
                run.lab.telegram.blocked.add(chat)
            tasks.append(run.user("telegram", str(chat), texts, start, is_blocked))
    fault = asyncio.create_task(faults(total))
    await asyncio.gather(*tasks)
    run.finished = True
    await fault
    await run.settle()


async def crash(lab: Lab, messages: int) -> list[Row]:
    """SIGKILL one gateway of each channel mid-run (started again by the "supervisor"), and
    restart PostgreSQL mid-run."""
    run = Run(lab, "crash", ("sms", "telegram"), lab.database())
    notes: list[str] = []

    async def faults(total: int) -> None:
        async def kill(channel: str, at: float) -> None:
            if not await run.when(at, total):
                return
            victim = run.gateways[channel][0]
            victim.kill()
            killed_at, share = time.monotonic(), run.progress(total)
            await asyncio.sleep(KILL_RESTART_SECONDS)
            victim.start()
            await victim.ready(restarts=30)
            back = time.monotonic() - killed_at
            notes.append(f"{channel} gateway SIGKILLed at {share:.0%} answered, serving again {back:.0f} s later")
            if victim.failed_starts:
                notes.append(f"{channel} gateway restarted {victim.failed_starts + 1} times (the database was down)")

        jobs = [kill("sms", 0.25), kill("telegram", 0.35)]
        if lab.postgres is not None:

            async def restart() -> None:
                if not await run.when(0.6, total):
                    return
                started = time.monotonic()
                assert lab.postgres is not None
                await asyncio.to_thread(lab.postgres.restart)
                notes.append(f"PostgreSQL restarted at 60% answered (down {time.monotonic() - started:.1f} s)")

            jobs.append(restart())
        await asyncio.gather(*jobs)

    async with run.running():
        await drive(run, messages, faults)
    rows = [run.count(c) for c in run.channels]
    rows[0].notes.extend(notes)
    return rows


async def outage(lab: Lab, messages: int) -> list[Row]:
    """The SMS provider and the Bot API answer 500 for a while, then recover."""
    run = Run(lab, "provider 500", ("sms", "telegram"), lab.database())
    notes: list[str] = []

    async def faults(total: int) -> None:
        assert lab.provider is not None and lab.telegram is not None
        if not await run.when(0.3, total):
            return
        lab.provider.failing = 500
        lab.telegram.failing["sendMessage"] = 500
        await asyncio.sleep(OUTAGE_SECONDS)
        lab.provider.failing = None
        lab.telegram.failing.pop("sendMessage", None)
        notes.append(f"sendsms and sendMessage answered 500 for {OUTAGE_SECONDS:.0f} s from 30% answered")

    async with run.running():
        await drive(run, messages, faults)
    rows = [run.count(c) for c in run.channels]
    rows[0].notes.extend(notes)
    return rows


async def blocked(lab: Lab, messages: int) -> list[Row]:
    """She blocked the bot (Telegram 403) / the provider refuses her number (4xx)."""
    run = Run(lab, "blocked (403)", ("sms", "telegram"), lab.database())
    users = users_for(messages)
    stuck = max(1, users // 4)

    async def faults(total: int) -> None:
        return None

    async with run.running():
        await drive(run, messages, faults, blocked=stuck)
        assert lab.telegram is not None and lab.provider is not None
        refused = {i.user for i in run.inbound if i.blocked}
        tries = {
            "sms": lambda: sum(n for k, n in lab.provider.tries.items() if k in refused),  # type: ignore[union-attr]
            "telegram": lambda: sum(n for k, n in lab.telegram.tries.items() if str(k) in refused),  # type: ignore[union-attr]
        }
        before = {channel: count() for channel, count in tries.items()}
        await asyncio.sleep(20)  # longer than the first backoffs: a retry would show
        after = {channel: count() for channel, count in tries.items()}
    rows = [run.count(c) for c in run.channels]
    dead = sum(run.dead_letters().values())
    for row in rows:
        row.notes.append(
            f"{row.channel}: {stuck} of {users} users blocked the bot / refused; {before[row.channel]} tries to them "
            f"in all, {after[row.channel] - before[row.channel]} more in the next 20 s"
        )
    rows[0].notes.append(f"dead letters recorded (both channels, every reply part): {dead}")
    return rows


SCENARIOS: dict[str, Callable[[Lab, int], Awaitable[list[Row]]]] = {
    "crash": crash,
    "provider 500": outage,
    "blocked (403)": blocked,
}


async def suite(
    rasa: Settings, db: str, messages: int, scenarios: list[str], workdir: Path, lease_seconds: float | None = None
) -> list[Row]:
    lab = Lab(rasa, workdir, db, lease_seconds=lease_seconds)
    rows: list[Row] = []
    try:
        await lab.start()
        for name in scenarios:
            started = time.monotonic()
            found = await SCENARIOS[name](lab, messages)
            found[0].notes.append(f"{name} on {db}: {time.monotonic() - started:.0f} s")
            rows.extend(found)
    finally:
        await lab.close()
    return rows


def print_rows(rows: list[Row]) -> None:
    header = ("scenario", "channel", "db", "gateways", "messages in", "answered once", "answered twice", "lost",
              "dead-lettered")  # fmt: skip
    body = [
        (r.scenario, r.channel, r.db, str(r.gateways), str(r.messages), str(r.once), str(r.twice), str(r.lost), str(r.dead))
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    print("\n| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in body:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
    notes = [n for r in rows for n in r.notes]
    if notes:
        print()
        for note in notes:
            print(f"- {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="inbound messages per channel and scenario")
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: all")
    args = parser.parse_args()
    from bot.stack import running_stack

    workdir = Path(tempfile.mkdtemp(prefix="sp-faults-"))
    workdir.chmod(0o755)
    os.environ.update({"SP_RASA_PORT": str(free_port()), "SP_ACTION_PORT": str(free_port())})
    os.environ["SP_VAR_DIR"] = str(workdir / "var")
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    scenarios = args.scenario or list(SCENARIOS)
    rows: list[Row] = []
    with running_stack(Settings(), quiet=True) as stack:
        for kind in kinds:
            rows.extend(asyncio.run(suite(stack.settings, kind, args.messages, scenarios, workdir)))
    print_rows(rows)
    print(f"\nlogs: {workdir}")
    if not all(r.exact for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
