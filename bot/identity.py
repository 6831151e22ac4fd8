"""Is the server on that port ours? A challenge-response on the secret we share with it.

The local stack reuses a Rasa or action server it finds already running (a second terminal, the
counsellor console). Anything can listen on a loopback port, so "it answered 200" is not enough:
an impostor would receive her words and could answer her with a fake hotline. Our servers answer
a fresh random challenge with HMAC(shared token, role + challenge); a server that cannot is not
used, and the stack starts its own on a free port. No secret crosses the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request

RASA = "rasa"
ACTIONS = "actions"


def proof(token: str, role: str, challenge: str) -> str:
    """What a server holding ``token`` answers to ``challenge`` (empty without a token)."""
    if not token:
        return ""
    return hmac.new(token.encode(), f"{role}:{challenge}".encode(), hashlib.sha256).hexdigest()


def is_ours(identity_url: str, token: str, role: str, timeout: float = 2.0) -> bool:
    """True only when the server at ``identity_url`` proves it holds ``token``."""
    if not token:
        return False
    challenge = secrets.token_hex(16)
    url = f"{identity_url}?{urllib.parse.urlencode({'challenge': challenge})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - loopback URL we built
            answer = json.loads(reply.read(4096) or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return False
    given = answer.get("proof") if isinstance(answer, dict) else None
    return isinstance(given, str) and hmac.compare_digest(given, proof(token, role, challenge))
