"""A server the stack did not start is used only if it proves it is ours.

Anything can listen on a loopback port. Before this check, the stack reused whatever answered 200
on the configured ports: a fake server received the gateway token and her words, and its "call
+000" reply reached her. Now a server must answer a fresh challenge with an HMAC of the token it
shares with us (bot/identity.py); otherwise ours starts on a free port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bot.config import ROOT
from bot.identity import ACTIONS, RASA, is_ours, proof

TOKEN = "s" * 40
FAKE_REPLY = "Call +000 0000, our special hotline"


class Impostor:
    """Answers 200 to everything, like any web server, and records what it was sent."""

    def __init__(self, answer_proof: str | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answer_proof = answer_proof
        impostor = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                impostor.requests.append((self.command, self.path, dict(self.headers), body))
                if self.path.startswith(("/identity", "/webhooks/gateway/identity")):
                    reply = {"proof": impostor.proof_for(self.path)}
                elif self.command == "POST":
                    reply = {"messages": [{"text": FAKE_REPLY}], "intent": "greet", "confidence": 1.0, "slots": {}}
                else:
                    reply = {"status": "ok"}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def proof_for(self, path: str) -> str:
        if self.answer_proof is not None:
            return self.answer_proof
        challenge = path.split("challenge=", 1)[-1]
        return proof("a token we do not share", RASA, challenge)  # a plausible-looking wrong proof

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def impostor() -> Iterator[Impostor]:
    server = Impostor()
    yield server
    server.close()


def test_only_a_server_holding_the_token_is_ours(impostor: Impostor) -> None:
    url = f"http://127.0.0.1:{impostor.port}/identity"
    assert not is_ours(url, TOKEN, ACTIONS)  # answers 200 with a proof made with another key
    impostor.answer_proof = ""
    assert not is_ours(url, TOKEN, ACTIONS)
    assert not is_ours(url, "", ACTIONS)  # no token: nothing can be proved
    assert not is_ours("http://127.0.0.1:9/identity", TOKEN, ACTIONS)  # nobody there
    challenges = [path.split("challenge=", 1)[1] for _, path, _, _ in impostor.requests]
    assert len(set(challenges)) == len(challenges)  # a fresh challenge each time: no replay
    assert all(TOKEN not in json.dumps(headers) + path for _, path, headers, _ in impostor.requests)


def test_the_real_action_server_proves_it_holds_the_token() -> None:
    from tests.test_action_server import TOKEN as ACTION_TOKEN
    from tests.test_action_server import _free_port

    port = _free_port()
    env = {**os.environ, "SP_ACTION_TOKEN": ACTION_TOKEN, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.action_server", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert is_ours(f"{url}/identity", ACTION_TOKEN, ACTIONS)
        assert not is_ours(f"{url}/identity", "x" * 40, ACTIONS)  # another state directory's token
        assert not is_ours(f"{url}/identity", ACTION_TOKEN, RASA)  # a proof is bound to its role
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_ask_never_talks_to_an_impostor_on_the_configured_ports(tmp_path: object) -> None:
    """Impostors on both configured ports: her words go to servers the stack starts itself."""
    rasa, actions = Impostor(), Impostor()
    try:
        env = {
            **os.environ,
            "SP_RASA_PORT": str(rasa.port),
            "SP_ACTION_PORT": str(actions.port),
            "SP_VAR_DIR": str(tmp_path),
            "RASA_TELEMETRY_ENABLED": "false",
        }
        env.pop("SP_ACTION_URL", None)
        env.pop("SP_RASA_URL", None)
        result = subprocess.run(
            [sys.executable, "-m", "bot", "ask", "ขอเบอร์สายด่วนหน่อยค่ะ"],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=True,
        )  # fmt: skip
        answer = json.loads(result.stdout)
        assert FAKE_REPLY not in json.dumps(answer, ensure_ascii=False)
        assert answer["replies"] and answer["language"] == "th"
        for server in (rasa, actions):
            assert all(method == "GET" for method, _, _, _ in server.requests)  # probes only, no message
            assert not any(b"\xe0\xb8" in body for _, _, _, body in server.requests)
            assert not any(
                "X-Gateway-Token" in headers or "X-Action-Token" in headers for _, _, headers, _ in server.requests
            )
        assert "is not our server" in result.stderr
    finally:
        rasa.close()
        actions.close()
