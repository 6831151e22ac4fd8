"""Shared fixtures: the real content catalog, the real language identifier, and a live
Rasa + action server stack (real trained model) on test ports."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.config import ROOT, Settings
from bot.content import Catalog, load_catalog
from bot.content.render import Renderer
from bot.langid import LanguageIdentifier
from bot.risk.screener import Screener, load_screener

TEST_PORTS = {"SP_RASA_PORT": "5105", "SP_ACTION_PORT": "5155"}


def configured_languages() -> list[str]:
    """The languages the bot serves (data/languages.yml); every test runs over all of them."""
    import yaml

    languages = yaml.safe_load((ROOT / "data" / "languages.yml").read_text(encoding="utf-8"))["languages"]
    return [code for code, info in languages.items() if info.get("enabled", True)]


LANGUAGES = configured_languages()


def needs(*languages: str) -> pytest.MarkDecorator:
    """Skip (visibly) a test written for languages that are not configured yet."""
    missing = sorted(set(languages) - set(LANGUAGES))
    return pytest.mark.skipif(bool(missing), reason=f"language(s) not configured yet: {missing}")


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(ROOT / "data")


@pytest.fixture(scope="session")
def renderer(catalog: Catalog) -> Renderer:
    return Renderer(catalog)


@pytest.fixture(scope="session")
def screener() -> Screener:
    return load_screener(ROOT / "data")


@pytest.fixture(scope="session")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_data(ROOT / "data")


@pytest.fixture(scope="session")
def live_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Real Rasa server + action server with the trained model, on test ports."""
    from bot.stack import Stack, ensure_model

    saved = {k: os.environ.get(k) for k in [*TEST_PORTS, "SP_VAR_DIR"]}
    os.environ.update(TEST_PORTS)
    os.environ["SP_VAR_DIR"] = str(tmp_path_factory.mktemp("var"))
    settings = Settings()
    stack = Stack(settings)
    stack.start(ensure_model(settings))
    try:
        yield stack.settings  # where our servers really listen (moved if a port was taken)
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Conversation:
    """Drives the real pipeline (gateway -> Rasa -> actions) for one test user."""

    def __init__(self, settings: Settings, user: str) -> None:
        self.settings, self.user = settings, user

    def say(self, *texts: str) -> list[dict[str, Any]]:
        from bot.cli import open_pipeline

        async def run() -> list[dict[str, Any]]:
            async with open_pipeline(self.settings) as pipeline:
                return [(await pipeline.handle("test", self.user, t)).as_json() for t in texts]

        return asyncio.run(run())


@pytest.fixture
def conversation(live_settings: Settings, request: pytest.FixtureRequest) -> Conversation:
    return Conversation(live_settings, request.node.name)


def data_path(*parts: str) -> Path:
    return ROOT.joinpath("tests", "data", *parts)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server (Debian package) on a free loopback port, for the whole run."""
    import tempfile

    from tests.services import Postgres, postgres_bin, require_services

    if postgres_bin() is None and not require_services():
        pytest.skip("PostgreSQL not installed (apt-get install postgresql)")
    workdir = Path(tempfile.mkdtemp(prefix="sp-test-pg-"))
    workdir.chmod(0o755)  # the server runs as the postgres user when the tests run as root
    server = Postgres(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real Redis server on a free loopback port, for the whole run."""
    import tempfile

    from tests.services import Redis, redis_bin, require_services

    if redis_bin() is None and not require_services():
        pytest.skip("Redis not installed (apt-get install redis-server)")
    server = Redis(Path(tempfile.mkdtemp(prefix="sp-test-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Clock:
    """A settable clock for the handoff and delivery stores."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh gateway database: the embedded SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    import uuid

    server = request.getfixturevalue("postgres")
    return str(server.create_database(f"test_{uuid.uuid4().hex[:12]}"))
