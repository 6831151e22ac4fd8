"""Training the semantic risk model (``python -m bot train`` runs it beside `rasa train`)."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from bot.config import ROOT
from bot.semantic.data import load_examples, training_files
from bot.semantic.risk_model import SemanticRiskModel

CODE = ("bot/semantic/data.py", "bot/semantic/risk_model.py", "bot/semantic/encoder.py", "bot/semantic/train.py")


def fingerprint(data_dir: Path, encoder_name: str) -> str:
    digest = hashlib.sha256(encoder_name.encode())
    for path in [*training_files(data_dir), *(ROOT / c for c in CODE)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def semantic_model_path(models_dir: Path, data_dir: Path, encoder_name: str) -> Path:
    return models_dir / f"semantic-risk-{fingerprint(data_dir, encoder_name)}.npz"


def embedding_cache(models_dir: Path, encoder_name: str) -> Path:
    """Vectors of training sentences only (shared with the Rasa featurizer's training)."""
    return models_dir / f"embeddings-{encoder_name}.npz"


def ensure_semantic_model(models_dir: Path, data_dir: Path, encoder_name: str, force: bool = False) -> Path:
    """Train unless a model for the current data exists; returns its path."""
    from bot.semantic.encoder import load_encoder

    encoder = load_encoder(encoder_name)
    target = semantic_model_path(models_dir, data_dir, encoder.name)
    if target.exists() and not force:
        return target
    started = time.monotonic()
    examples = load_examples(data_dir)
    print(f"Training the semantic risk model on {len(examples)} sentences -> {target.name}", file=sys.stderr)
    vectors = encoder.encode_for_training([e.text for e in examples], embedding_cache(models_dir, encoder.name))
    model = SemanticRiskModel.fit(
        vectors,
        [e.label for e in examples],
        [e.category for e in examples],
        encoder.name,
        written=[e.source == "semantic" for e in examples],
    )
    model.save(target)
    print(f"semantic risk model trained in {time.monotonic() - started:.0f} s "
          f"(temperature {model.level.temperature:.4f})", file=sys.stderr)  # fmt: skip
    return target
