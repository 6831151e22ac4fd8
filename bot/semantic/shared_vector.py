"""A message's sentence vector, computed once: by the gateway (for the risk decision), sent with
the message to Rasa, whose featurizer (bot/nlu/dense.py) then finds it in its encoder's memory
instead of encoding the message again (~15 ms of CPU per message; docs/performance.md).

The vector travels in the message metadata under ``FIELD`` and is taken out by the gateway
channel (bot/rasa_channel.py) before Rasa sees the message: it is never stored in the tracker
nor sent to the action server. It is used only when both sides run the same encoder (by name and
dimension) and for the exact text that was encoded; anything else is ignored, and Rasa encodes
the message itself, as before.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

FIELD = "sentence_vector"


def pack(encoder_name: str, vector: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(vector, dtype="<f4")
    return {"encoder": encoder_name, "dim": int(data.shape[-1]), "f32": base64.b64encode(data.tobytes()).decode()}


def unpack(packed: Any, encoder_name: str, dim: int) -> np.ndarray | None:
    """The vector, if ``packed`` was made by the same encoder with the same dimension."""
    if not isinstance(packed, dict) or packed.get("encoder") != encoder_name or packed.get("dim") != dim:
        return None
    try:
        raw = base64.b64decode(str(packed.get("f32", "")), validate=True)
    except ValueError:
        return None
    if len(raw) != 4 * dim:
        return None
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return vector if bool(np.isfinite(vector).all()) else None


def remember(encoder: Any, text: str, packed: Any) -> bool:
    """Put the gateway's vector for ``text`` in a CachingEncoder's memory (bot/semantic/encoder.py),
    where its next ``encode([text])`` finds it; returns whether it was used."""
    vector = unpack(packed, getattr(encoder, "name", ""), getattr(encoder, "dim", -1))
    if vector is None or not hasattr(encoder, "_remember"):
        return False
    with encoder._lock:  # noqa: SLF001 - the encoder's own memory, filled as its encode() does
        encoder._remember(encoder._key(text), vector)  # noqa: SLF001
    return True
