"""The gateway's sentence vector, sent to Rasa so that its featurizer does not encode the message
again (bot/semantic/shared_vector.py): the same NLU result, never stored in the tracker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bot.config import Settings
from bot.content import Catalog
from bot.db import open_engine
from bot.handoff import Handoff
from bot.langid import LanguageIdentifier
from bot.pipeline import Pipeline
from bot.profiles import ProfileStore
from bot.rasa_client import RasaClient
from bot.risk.decision import RiskAssessor, Thresholds
from bot.risk.screener import Screener
from bot.semantic import shared_vector
from bot.semantic.encoder import CachingEncoder
from bot.semantic.risk_model import SemanticRisk

TEXTS = ["is this job offer in Malaysia safe?", "บริษัทจัดหางานขอเก็บพาสปอร์ตไว้", "xin chào, mình có câu hỏi"]


class CountingInner:
    name, dim = "counting", 3

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        return np.ones((len(texts), 3), np.float32)


def test_pack_unpack_round_trip_is_exact() -> None:
    vector = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    packed = json.loads(json.dumps(shared_vector.pack("enc", vector)))  # as it travels
    assert np.array_equal(shared_vector.unpack(packed, "enc", 384), vector)


@pytest.mark.parametrize(
    "packed",
    [
        None,
        "text",
        {"encoder": "other", "dim": 3, "f32": shared_vector.pack("x", np.zeros(3))["f32"]},
        {**shared_vector.pack("enc", np.zeros(4)), "dim": 3},  # wrong length for the dimension
        shared_vector.pack("enc", np.zeros(2)),  # another dimension
        {"encoder": "enc", "dim": 3, "f32": "not base64!"},
        shared_vector.pack("enc", np.array([0.0, np.nan, 1.0])),
    ],
)
def test_anything_else_is_ignored(packed: Any) -> None:
    assert shared_vector.unpack(packed, "enc", 3) is None


def test_a_remembered_vector_is_not_encoded_again() -> None:
    inner = CountingInner()
    encoder = CachingEncoder(inner)  # type: ignore[arg-type]
    vector = np.array([0.5, -0.5, 0.25], np.float32)
    assert shared_vector.remember(encoder, "hello", shared_vector.pack("counting", vector))
    assert np.array_equal(encoder.encode(["hello"])[0], vector) and inner.calls == 0
    assert not shared_vector.remember(encoder, "other", shared_vector.pack("another encoder", vector))
    encoder.encode(["other"])
    assert inner.calls == 1


class LengthInner:
    """A vector per text that says which text it is (its length), so a wrong row is seen."""

    name, dim = "length", 3

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], np.float32)


def test_a_full_cache_never_loses_a_row_it_found_in_the_same_call() -> None:
    """A message whose first sentence was seen long ago and whose other sentences are new: remembering the new
    rows evicts the old one. It must still be returned (this raised KeyError, and the offer check silently lost
    its semantic layer on long screenshots)."""
    inner = LengthInner()
    encoder = CachingEncoder(inner, memory_items=3)  # type: ignore[arg-type]
    encoder.encode(["a", "bb", "ccc"])
    rows = encoder.encode(["a", "dddd", "eeeee", "ffffff", "a"])
    assert rows[:, 0].tolist() == [1, 4, 5, 6, 1]
    assert inner.encoded == ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"]  # "a" was a hit, encoded once
    assert encoder.encode(["ffffff"])[0, 0] == 6 and len(inner.encoded) == 6  # the newest rows are kept


def test_a_hit_is_recently_used() -> None:
    inner = LengthInner()
    encoder = CachingEncoder(inner, memory_items=2)  # type: ignore[arg-type]
    encoder.encode(["a", "bb"])
    encoder.encode(["a"])  # "a" is now the most recently used: "bb" goes first
    encoder.encode(["ccc"])
    encoder.encode(["a"])
    assert inner.encoded == ["a", "bb", "ccc"]


class Recorder:
    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.metadata.append(json.loads(request.content)["metadata"])
        return httpx.Response(200, json={"messages": [{"text": "an answer"}], "intent": "job_offer", "confidence": 0.9})


class Model:
    encoder_name = "counting"

    def predict(self, vectors: np.ndarray) -> list[SemanticRisk]:
        return [SemanticRisk(0.01, 0.01, 0.01, 0.97, None, 0.5) for _ in vectors]


def test_the_pipeline_sends_the_vector_it_computed_for_the_risk_decision(
    tmp_path: Path, catalog: Catalog, identifier: LanguageIdentifier, screener: Screener
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    recorder, inner = Recorder(), CountingInner()
    rasa = RasaClient("http://rasa.test", "token", transport=httpx.MockTransport(recorder))
    assessor = RiskAssessor(screener, Model(), CachingEncoder(inner), Thresholds())  # type: ignore[arg-type]
    handoff = Handoff(engine, "pepper", ["c"])
    pipeline = Pipeline(catalog, identifier, ProfileStore(engine), rasa, "pepper", screener, handoff, assessor=assessor)
    asyncio.run(pipeline.handle("local", "girl", "is this job offer in Malaysia safe?"))
    asyncio.run(pipeline.handle("local", "girl", "/start"))  # a command: nothing was encoded, nothing sent
    sent, command = recorder.metadata
    assert np.array_equal(shared_vector.unpack(sent[shared_vector.FIELD], "counting", 3), np.ones(3, np.float32))
    assert shared_vector.FIELD not in command
    assert inner.calls == 1  # encoded once, for the risk decision


def test_rasa_gives_the_same_result_and_keeps_no_vector(live_settings: Settings) -> None:
    """Through the real Rasa server: with the gateway's vector the NLU result is the one Rasa gets
    encoding the message itself, and the vector is not in her stored conversation."""
    from rasa.shared.core.domain import Domain

    from bot.cli import open_assessor
    from bot.risk.screener import load_screener
    from bot.tracker_store import SealedSQLTrackerStore

    settings = live_settings
    assessor = open_assessor(settings, load_screener(settings.data_dir))
    if assessor.encoder is None:
        pytest.skip("the semantic model is off")

    async def ask(sender: str, text: str, share: bool) -> tuple[str | None, float]:
        client = RasaClient(settings.rasa_url, settings.secret("channel_token", settings.channel_token))
        metadata: dict[str, Any] = {"language": "en"}
        if share:
            metadata[shared_vector.FIELD] = shared_vector.pack(assessor.encoder.name, assessor.encoder.encode([text])[0])
        try:
            turn = await client.send(sender, text, metadata)
        finally:
            await client.close()
        return turn.intent, turn.confidence

    for i, text in enumerate(TEXTS):
        own = asyncio.run(ask(f"own-vector-{i}", text, share=False))  # Rasa encodes (and remembers) it
        shared = asyncio.run(ask(f"shared-vector-{i}", text, share=True))  # the gateway's replaces it
        assert shared == own, text
    store = SealedSQLTrackerStore(
        Domain.empty(), dialect="sqlite", db=settings.tracker_db_path(), keys=settings.rasa_env()["SP_TRACKER_KEYS"]
    )
    tracker = asyncio.run(store.retrieve("shared-vector-0"))
    assert tracker is not None and tracker.latest_message is not None
    stored = tracker.latest_message.metadata
    assert stored["language"] == "en" and shared_vector.FIELD not in stored  # Rasa adds its model and assistant ids
    # no event keeps the packed vector (the key "f32" is searched as a JSON key: Rasa's random model id
    # may contain the letters f32)
    assert '"f32":' not in json.dumps([e.as_dict() for e in tracker.events], default=str)
    assert shared_vector.FIELD not in json.dumps([e.as_dict() for e in tracker.events], default=str)
