"""Real PostgreSQL and Redis for the tests, from the Debian packages, on loopback and free
ports, in throw-away directories (no system service is touched).

PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
`postgres` system user that the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tests.kannel import free_port, wait_port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


def redis_bin() -> str | None:
    return shutil.which("redis-server")


def require_services() -> bool:
    """CI sets SP_REQUIRE_SERVICES=1: missing PostgreSQL/Redis then fail instead of skipping."""
    return os.environ.get("SP_REQUIRE_SERVICES") == "1"


def _as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass
class Postgres:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # fsync=off for the tests (speed); durable=True keeps the server's defaults (fsync and
    # synchronous commits on, as in production) for benchmarks that compare it with SQLite
    durable: bool = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        data = self.workdir / "pgdata"
        data.mkdir(parents=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.workdir, data):
                os.chown(path, user.pw_uid, user.pw_gid)
        subprocess.run(
            _as_postgres_user([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        log = (self.workdir / "postgres.log").open("ab")
        durability = [] if self.durable else ["-c", "fsync=off"]
        self.process = subprocess.Popen(
            _as_postgres_user([
                str(binaries / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.workdir),
                "-c", "listen_addresses=127.0.0.1", *durability, "-c", "max_connections=200",
            ]),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                sa.create_engine(self.url()).connect().close()
                break
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


@dataclass
class Redis:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"

    def start(self) -> None:
        binary = redis_bin()
        if binary is None:
            raise RuntimeError("Redis is not installed: apt-get install redis-server")
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
