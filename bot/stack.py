"""Local process stack: train the model if missing, start the action server and the Rasa
server as child processes (or reuse ones already running), stop them on exit."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bot.config import ROOT, Settings
from bot.identity import ACTIONS, RASA, is_ours

log = logging.getLogger(__name__)

# Files whose change needs a new model. Content and facts are read by the actions at run
# time, so editing an answer or a hotline never needs retraining.
TRAINING_INPUTS = ("config.yml", "domain.yml", "data/rules.yml", "data/nlu", "bot/nlu", "bot/semantic/encoder.py")
RASA_TRAINING_DATA = ("data/nlu", "data/rules.yml")


def training_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def model_path(settings: Settings) -> Path:
    return settings.models_dir / f"safe-passage-{training_fingerprint()}.tar.gz"


def child_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **settings.rasa_env()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def server_env(settings: Settings) -> dict[str, str]:
    """Environment of the Rasa and action servers: ``child_env`` with the encoder's threads."""
    return {**child_env(settings), "OMP_NUM_THREADS": str(settings.encoder_threads)}


def train_command(out_dir: Path, name: str) -> list[str]:
    """`rasa train` on our training data, writing ``out_dir/name.tar.gz``."""
    files = ["--config", "config.yml", "--domain", "domain.yml", "--data", *RASA_TRAINING_DATA]
    return [sys.executable, "-m", "rasa", "train", *files, "--out", str(out_dir), "--fixed-model-name", name]


def ensure_model(settings: Settings, force: bool = False) -> Path:
    """Train the models unless ones for the current training data exist: the semantic risk
    model (the gateway's) and the Rasa model (whose featurizer shares its embedding cache)."""
    if settings.semantic:
        from bot.offer.semantic import ensure_flag_model
        from bot.risk.decision import Thresholds
        from bot.semantic.train import ensure_semantic_model

        enabled, encoder, _ = Thresholds.from_data(settings.data_dir)
        if enabled:
            ensure_semantic_model(settings.models_dir, settings.data_dir, encoder, force=force)
        ensure_flag_model(settings.models_dir, settings.data_dir, force=force)
    target = model_path(settings)
    if target.exists() and not force:
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    print(f"Training the model (once; about 1 minute) -> {target.name}", file=sys.stderr)
    command = train_command(settings.models_dir, target.name.removesuffix(".tar.gz"))
    # training logs go to stderr so that stdout carries only the model path
    subprocess.run(command, cwd=ROOT, env=child_env(settings), check=True, stdout=sys.stderr)
    return target


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback only
            return bool(reply.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _elsewhere(port: int) -> int:
    """A free port for our server, since ``port`` answers but is not ours."""
    free = _free_port()
    log.warning("port %d answers but is not our server: starting ours on port %d", port, free)
    return free


def actions_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "bot.action_server", "--port", str(settings.action_port)]


def rasa_command(settings: Settings, model: Path) -> list[str]:
    files = ["--endpoints", "endpoints.yml", "--credentials", "credentials.yml"]
    where = ["--port", str(settings.rasa_port), "--interface", settings.rasa_host]
    return [sys.executable, "-m", "rasa", "run", "--model", str(model), *files, *where]


def exec_server(settings: Settings, which: str) -> None:
    """Replace this process with the Rasa server or the action server (containers, systemd)."""
    command = rasa_command(settings, ensure_model(settings)) if which == "rasa" else actions_command(settings)
    os.chdir(ROOT)
    os.execve(command[0], command, server_env(settings))  # noqa: S606 - our own fixed command line


class Stack:
    """The Rasa server and the action server, started for the local bot.

    A server already answering on the configured port is reused only when it proves it holds our
    shared token (bot/identity.py). Anything else there - another state directory's server or an
    impostor - is left alone: ours starts on a free port instead, and ``settings`` says where.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def rasa_health(self) -> str:
        return f"http://{self.settings.rasa_host}:{self.settings.rasa_port}/webhooks/gateway/"

    @property
    def actions_health(self) -> str:
        return f"http://127.0.0.1:{self.settings.action_port}/health"

    def _rasa_is_ours(self) -> bool:
        token = self.settings.secret("channel_token", self.settings.channel_token)
        return is_ours(self.rasa_health + "identity", token, RASA)

    def _actions_are_ours(self) -> bool:
        token = self.settings.secret("action_token", self.settings.action_token)
        return is_ours(f"http://127.0.0.1:{self.settings.action_port}/identity", token, ACTIONS)

    def start(self, model: Path, timeout: float = 300.0) -> None:
        from bot.state import private_directory, private_file

        logs = private_directory(self.settings.var_dir / "logs")
        if not self.settings.tracker_url:  # Rasa's SQLite tracker holds her messages: 0600 before Rasa opens it
            private_file(Path(self.settings.tracker_db_path()))
        if _ready(self.actions_health) and not self._actions_are_ours():
            self.settings = dataclasses.replace(self.settings, action_port=_elsewhere(self.settings.action_port))
        if not _ready(self.actions_health):
            self._spawn(actions_command(self.settings), server_env(self.settings), logs / "actions.log")
        if _ready(self.rasa_health) and not self._rasa_is_ours():
            self.settings = dataclasses.replace(self.settings, rasa_port=_elsewhere(self.settings.rasa_port))
        if not _ready(self.rasa_health):
            self._spawn(rasa_command(self.settings, model), server_env(self.settings), logs / "rasa.log")
        deadline = time.monotonic() + timeout
        while not (_ready(self.actions_health) and _ready(self.rasa_health)):
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a server exited early (code {process.returncode}); see {logs}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"servers not ready after {timeout:.0f}s; see {logs}")
            time.sleep(0.5)
        # whatever answers now must be ours (a server that took the port while ours started is not)
        if not (self._actions_are_ours() and self._rasa_is_ours()):
            self.stop()
            raise RuntimeError("a server on our ports did not prove it is ours: refusing to send her words there")

    def _spawn(self, command: list[str], env: dict[str, str], log_file: Path) -> None:
        from bot.state import private_file

        with private_file(log_file).open("ab") as sink:
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


@contextmanager
def running_stack(settings: Settings, quiet: bool = False) -> Iterator[Stack]:
    """Model trained, both servers up (reused if already running); stopped on exit."""
    model = ensure_model(settings)
    stack = Stack(settings)
    if not quiet:
        print("Starting the assistant (Rasa + actions), ~30 s ...", file=sys.stderr)
    stack.start(model)
    try:
        yield stack
    finally:
        stack.stop()
