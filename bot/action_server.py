"""The action server: rasa_sdk's app for the ``actions`` package, behind a shared token.

rasa_sdk's own server has no authentication, and its error handler echoes the request body - the
whole tracker, her words included - in a 500. Here every call to ``/webhook`` must carry
``X-Action-Token`` (``SP_ACTION_TOKEN``, which Rasa sends from ``endpoints.yml``; compared in
constant time), and errors answer without the body. It listens on ``SANIC_HOST`` (loopback by
default; compose sets its private network).

    python -m bot.action_server --port 5055
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.identity import ACTIONS, proof

log = logging.getLogger(__name__)
TOKEN_HEADER = "X-Action-Token"  # noqa: S105 - a header name, not a secret


def create_app(token: str, actions_package: str = "actions") -> Sanic:
    from rasa_sdk.endpoint import create_app as create_sdk_app

    if len(token) < 32:
        raise ValueError("SP_ACTION_TOKEN: at least 32 random characters are required")
    app = create_sdk_app(actions_package, cors_origins=None)

    @app.route("/identity", methods=["GET"])
    async def identity(request: Request) -> HTTPResponse:
        """Proves to the gateway's stack that this server holds the token (bot/identity.py)."""
        challenge = str(request.args.get("challenge", ""))[:128]
        return response.json({"proof": proof(token, ACTIONS, challenge) if challenge else ""})

    @app.on_request
    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path in ("/health", "/identity"):
            return None
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            log.warning("action server: call refused (no or wrong token)")
            return response.json({"error": "unauthorised"}, status=401)
        return None

    @app.exception(Exception)
    async def no_body_in_errors(request: Request, exception: Exception) -> HTTPResponse:
        log.error("action server: %s", type(exception).__name__)  # never the tracker
        return response.json({"error": type(exception).__name__}, status=500)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.action_server")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    app = create_app(os.environ.get("SP_ACTION_TOKEN", ""))
    app.run(os.environ.get("SANIC_HOST", "127.0.0.1"), args.port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
