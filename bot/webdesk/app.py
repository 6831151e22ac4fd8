"""Wiring and the command line: ``python -m bot desk`` serves the web desk; ``desk add-user``,
``disable-user``, ``enable-user``, ``set-password`` and ``list-users`` manage accounts.

Run it beside the channel gateways on the same database (SQLite file or PostgreSQL): what a
counsellor writes here goes to the outbox, which her channel's gateway delivers.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import ipaddress
import logging
import signal
import sys
from dataclasses import dataclass

import sqlalchemy as sa
from aiohttp import web

from bot.config import Settings
from bot.content import load_catalog
from bot.crypto import derived_key
from bot.db import open_engine
from bot.desk import CounsellorDesk
from bot.handoff import Handoff, address_cipher
from bot.rasa_client import RasaClient
from bot.ratelimit import Buckets, Rate
from bot.webdesk.auth import Accounts, AuthPolicy
from bot.webdesk.canned import CannedReplies, load_canned, load_referral_texts, load_taxonomy
from bot.webdesk.data import ROLES, DeskStore, NameTaken
from bot.webdesk.routes import WebOptions, make_app
from bot.webdesk.service import DeskService

log = logging.getLogger(__name__)
LOGIN_PURPOSE = b"safe-passage/web-desk-login/v1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Desk:
    service: DeskService
    accounts: Accounts
    options: WebOptions
    engine: sa.engine.Engine
    rasa: RasaClient | None

    async def close(self) -> None:
        if self.rasa is not None:
            await self.rasa.close()
        self.engine.dispose()


def policy_from(settings: Settings) -> AuthPolicy:
    return AuthPolicy(
        max_failures=settings.desk_max_failures,
        lockout_seconds=settings.desk_lockout_minutes * 60,
        idle_seconds=settings.desk_idle_minutes * 60,
        max_age_seconds=settings.desk_session_hours * 3600,
        login_rate=Rate.parse(settings.desk_login_rate),
    )


def open_accounts(settings: Settings, engine: sa.engine.Engine) -> Accounts:
    pepper, *previous = settings.peppers()
    return Accounts(DeskStore(engine), address_cipher(pepper, previous), policy_from(settings), Buckets(engine))


def open_desk(settings: Settings, with_rasa: bool = True) -> Desk:
    engine = open_engine(settings.database_url())
    pepper, *previous = settings.peppers()
    catalog = load_catalog(settings.data_dir)
    handoff = Handoff(engine, pepper, settings.counsellors, previous_peppers=previous)
    rasa = None
    if with_rasa:
        token = settings.secret("channel_token", settings.channel_token)
        rasa = RasaClient(settings.rasa_url, token, settings.rasa_timeout)
    cipher = address_cipher(pepper, previous)
    store = DeskStore(engine)
    service = DeskService(
        handoff,
        CounsellorDesk(handoff, catalog, rasa),
        store,
        cipher,
        CannedReplies(
            catalog, load_canned(settings.data_dir), settings.retention_days, load_referral_texts(settings.data_dir)
        ),
        load_taxonomy(settings.data_dir),
        catalog,
        settings.claim_timeout_minutes * 60,
    )
    options = WebOptions(
        secure_cookies=settings.desk_secure_cookies,
        trust_forwarded=settings.desk_trust_forwarded,
        login_key=derived_key(pepper, LOGIN_PURPOSE).encode(),
    )
    return Desk(service, Accounts(store, cipher, policy_from(settings), Buckets(engine)), options, engine, rasa)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    host, _, port = settings.desk_listen.rpartition(":")
    if not settings.desk_secure_cookies and not is_loopback(host):
        raise SystemExit("SP_DESK_SECURE_COOKIES=false is for plain http on loopback only (tests).")
    desk = open_desk(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(desk.service, desk.accounts, desk.options), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    print(f"Counsellors' desk on http://{settings.desk_listen} (put it behind your TLS proxy); Ctrl-C to stop.", flush=True)
    try:
        while not stop.is_set():
            desk.accounts.sweep()  # sessions past their idle or total time
            try:
                await asyncio.wait_for(stop.wait(), timeout=300)
            except asyncio.TimeoutError:
                pass
    finally:
        await runner.cleanup()
        await desk.close()


def _password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise SystemExit("The two passwords differ.")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot desk", description="The counsellors' web desk (docs/desk.md).")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the desk on SP_DESK_LISTEN (the default command)")
    add = sub.add_parser("add-user", help="create an account (password prompted, or one line on stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--totp", action="store_true", help="require a code from an authenticator app (prints its secret)")
    for name, text in (
        ("disable-user", "disable an account; its sessions end at once"),
        ("enable-user", "enable an account again (also lifts a lock-out)"),
        ("set-password", "set a new password (prompted, or one line on stdin)"),
    ):
        sub.add_parser(name, help=text).add_argument("name")
    sub.add_parser("list-users", help="accounts, roles and whether they are enabled")
    args = parser.parse_args(argv)
    settings = Settings()
    command = args.command or "serve"
    if command == "serve":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        asyncio.run(serve(settings))
        return 0
    engine = open_engine(settings.database_url())
    try:
        accounts = open_accounts(settings, engine)
        if command == "add-user":
            try:
                secret = accounts.add_user(args.name, args.role, _password("password: "), with_totp=args.totp)
            except NameTaken:
                print(f"An account named {args.name!r} exists.", file=sys.stderr)
                return 1
            except ValueError as error:
                print(str(error), file=sys.stderr)
                return 2
            print(f"Account {args.name} ({args.role}) created.")
            if secret:
                print(f"TOTP secret (enter it in her authenticator app, then forget it): {secret}")
                print(accounts.totp_uri(args.name, secret))
            return 0
        if command in ("disable-user", "enable-user"):
            done = accounts.store.set_disabled(args.name, command == "disable-user")
            if not done:
                print(f"No account named {args.name!r}.", file=sys.stderr)
                return 1
            accounts.store.audit(f"desk:{args.name}", "account_disabled" if command == "disable-user" else "account_enabled")
            print(f"{args.name}: {'disabled; her sessions ended' if command == 'disable-user' else 'enabled'}.")
            return 0
        if command == "set-password":
            try:
                done = accounts.set_password(args.name, _password("new password: "))
            except ValueError as error:
                print(str(error), file=sys.stderr)
                return 2
            print(f"{args.name}: password set." if done else f"No account named {args.name!r}.")
            return 0 if done else 1
        for user in accounts.store.users():
            state = "disabled" if user.disabled_at else "enabled"
            print(f"{user.name:<24}{user.role:<12}{state:<10}{'totp' if user.totp_secret else ''}")
        return 0
    finally:
        engine.dispose()
