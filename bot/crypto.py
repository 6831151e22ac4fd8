"""Keys derived from the pepper, one per purpose (no Rasa imports, no side effects).

The pepper never leaves the gateway processes: the Rasa server receives only the key for its
tracker events (``SP_TRACKER_KEYS``), so a Rasa host cannot compute pseudonyms or read addresses.
A keyring is a comma-separated list, newest first: the newest key seals, every key opens, which is
how a key is rotated without losing what the old one sealed.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte 0x80)
TRACKER_PURPOSE = b"safe-passage/rasa-tracker-events/v1"


def derived_key(pepper: str, purpose: bytes) -> str:
    """A Fernet key for one purpose (HKDF-SHA256 over the pepper)."""
    if not pepper:
        raise ValueError("no pepper: refusing to derive a key from an empty secret")
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(pepper.encode())
    return base64.urlsafe_b64encode(material).decode()


def tracker_keys(peppers: list[str]) -> str:
    """The tracker keyring for the Rasa server's environment (newest pepper first)."""
    return ",".join(derived_key(p, TRACKER_PURPOSE) for p in peppers if p)


def keyring(keys: str) -> MultiFernet:
    """A MultiFernet from ``"newest,older,..."``; an empty ring is an error, never clear text."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ValueError("empty keyring: her words would be stored in clear")
    return MultiFernet([Fernet(k.encode()) for k in parts])
