"""Accounts and sign-in for the web desk: argon2 passwords, optional TOTP, lock-out, sessions.

- Passwords are hashed with argon2id (argon2-cffi's defaults); a wrong password, an unknown
  name, a disabled or locked account all get the same answer and take the same time.
- ``max_failures`` wrong attempts in a row lock the account for ``lockout_seconds``; sign-ins
  from one client address are rate-limited through the shared token buckets (bot/ratelimit.py).
- A TOTP code (pyotp, 30 s steps, one step of clock drift) is accepted once.
- A session is a random token in the cookie; the database keeps only its SHA-256, its CSRF
  token and when it was used. It ends after ``idle_seconds`` unused, ``max_age_seconds`` in
  all, at sign-out, and at once when the account is disabled.
Every sign-in, failure and sign-out is written to the counsellor audit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import InvalidToken, MultiFernet

from bot.ratelimit import Buckets, Rate
from bot.webdesk.data import ROLES, DeskStore, User, handle_of
from bot.webdesk.permissions import Actor

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 12
_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB, 3 passes)


class LoginRefused(Exception):
    """Sign-in refused (the reason is audited, never shown: one answer for every failure)."""


@dataclass(frozen=True)
class AuthPolicy:
    max_failures: int = 5
    lockout_seconds: float = 900.0
    idle_seconds: float = 1800.0
    max_age_seconds: float = 12 * 3600.0
    login_rate: Rate = Rate(20, 300)  # sign-in attempts per client address


@dataclass(frozen=True)
class Session:
    token: str  # only in the cookie; the database has its hash
    actor: Actor
    csrf: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError("a name is 2-32 characters: lower-case letters, digits, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    return password


class Accounts:
    def __init__(
        self,
        store: DeskStore,
        cipher: MultiFernet,
        policy: AuthPolicy | None = None,
        buckets: Buckets | None = None,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher = _HASHER,
    ) -> None:
        self.store, self.cipher, self.clock = store, cipher, clock
        self.policy = policy or AuthPolicy()
        self.buckets = buckets
        self.hasher = hasher
        self._dummy_hash = hasher.hash("not a password of anyone: the same time for unknown names")

    # -- accounts ---------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, with_totp: bool = False) -> str | None:
        """Create an account; returns the TOTP secret to enrol in an authenticator app, if asked."""
        check_name(name)
        check_password(password)
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        secret = pyotp.random_base32() if with_totp else None
        sealed = self.cipher.encrypt(secret.encode()).decode() if secret else None
        self.store.add_user(name, role, self.hasher.hash(password), sealed)
        return secret

    def set_password(self, name: str, password: str) -> bool:
        return self.store.set_password(name, self.hasher.hash(check_password(password)))

    def totp_uri(self, name: str, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="Safe Passage desk")

    # -- sign-in ----------------------------------------------------------------------------
    def login(self, name: str, password: str, code: str, client: str) -> Session:
        name = name.strip().lower()[:64]
        if self.buckets is not None:
            bucket = "desk-login:" + hashlib.sha256(client.encode()).hexdigest()[:24]
            if not self.buckets.take(bucket, self.policy.login_rate):
                self.store.audit(handle_of(name), "desk_login_throttled")
                raise LoginRefused("throttled")
        user = self.store.user(name)
        if user is None or user.disabled_at is not None:
            self._verify(self._dummy_hash, password)
            self.store.audit(handle_of(name), "desk_login_failed")
            raise LoginRefused("unknown or disabled")
        if user.locked_until is not None and user.locked_until > self.clock():
            self._verify(self._dummy_hash, password)
            self.store.audit(user.handle, "desk_login_locked")
            raise LoginRefused("locked")
        if not self._verify(user.password_hash, password) or not self._second_factor(user, code):
            self.store.record_failure(user.id, self.policy.max_failures, self.policy.lockout_seconds)
            self.store.audit(user.handle, "desk_login_failed")
            raise LoginRefused("wrong password or code")
        self.store.record_success(user.id)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.set_password(user.name, self.hasher.hash(password))
        token, csrf = secrets.token_urlsafe(32), secrets.token_hex(32)
        self.store.create_session(token_hash(token), user.id, csrf)
        self.store.audit(user.handle, "desk_login")
        return Session(token, Actor(user.id, user.name, user.role), csrf)

    def _second_factor(self, user: User, code: str) -> bool:
        if user.totp_secret is None:
            return True
        code = code.strip().replace(" ", "")
        if not code.isdigit():
            return False
        try:
            secret = self.cipher.decrypt(user.totp_secret.encode()).decode()
        except InvalidToken:
            return False
        totp = pyotp.TOTP(secret)
        now = self.clock()
        for drift in (0, -1, 1):
            at = now + drift * totp.interval
            if hmac.compare_digest(totp.at(at), code):
                return self.store.use_totp_step(user.id, int(at // totp.interval))
        return False

    # -- sessions ---------------------------------------------------------------------------
    def session(self, token: str) -> Session | None:
        """The signed-in session of this cookie, if it is still valid (and mark it used)."""
        if not token:
            return None
        hashed = token_hash(token)
        row = self.store.session(hashed)
        if row is None:
            return None
        now = self.clock()
        expired = now - row.seen_at > self.policy.idle_seconds or now - row.created_at > self.policy.max_age_seconds
        if row.user.disabled_at is not None or expired:
            self.store.delete_session(hashed)
            return None
        self.store.touch_session(hashed)
        return Session(token, Actor(row.user.id, row.user.name, row.user.role), row.csrf)

    def still_valid(self, token: str) -> bool:
        """For the live stream: is the session alive? (Not counted as activity.)"""
        row = self.store.session(token_hash(token))
        if row is None or row.user.disabled_at is not None:
            return False
        now = self.clock()
        return now - row.seen_at <= self.policy.idle_seconds and now - row.created_at <= self.policy.max_age_seconds

    def mark_live(self, token: str) -> None:
        self.store.touch_session(token_hash(token), live=True)

    def logout(self, session: Session) -> None:
        self.store.delete_session(token_hash(session.token))
        self.store.audit(session.actor.handle, "desk_logout")

    def sweep(self) -> int:
        return self.store.delete_stale_sessions(self.policy.idle_seconds, self.policy.max_age_seconds)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False
