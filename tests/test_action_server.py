"""The real action server process refuses calls without the shared token and never echoes the
tracker (her words) in an error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.action_server import TOKEN_HEADER, create_app
from bot.config import ROOT

TOKEN = "t" * 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "SP_ACTION_TOKEN": TOKEN, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.action_server", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("action server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _call(url: str, headers: dict[str, str], action: str = "action_no_such_thing") -> httpx.Response:
    body = {
        "next_action": action, "sender_id": "x", "version": "3.6.0", "domain": {},
        "tracker": {"sender_id": "x", "slots": {}, "latest_message": {"text": "her secret words"}, "events": []},
    }  # fmt: skip
    return httpx.post(f"{url}/webhook", json=body, headers=headers, timeout=10)


def test_a_call_without_the_right_token_is_refused(server: str) -> None:
    assert _call(server, {}).status_code == 401
    assert _call(server, {TOKEN_HEADER: "wrong" * 8}).status_code == 401


def test_with_the_token_the_actions_answer_and_errors_do_not_echo_her_words(server: str) -> None:
    missing = _call(server, {TOKEN_HEADER: TOKEN})
    assert missing.status_code == 404  # reached the executor: no such action
    broken = httpx.post(
        f"{server}/webhook", content=b"{not json", headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"}
    )
    assert broken.status_code in (400, 500) and "her secret words" not in broken.text
    assert "her secret words" not in missing.text


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ValueError):
        create_app("short")
