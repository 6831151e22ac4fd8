"""NLU quality gate on held-out data (never trained on): macro-F1 >= 0.90 per language."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.evaluate import nlu_predictions
from bot.config import Settings
from bot.evaluation import macro_f1

TARGET = 0.90


@pytest.fixture(scope="module")
def predictions() -> dict[str, tuple[list[str], list[str], list[str]]]:
    from bot.stack import ensure_model

    return nlu_predictions(ensure_model(Settings()))


def test_heldout_covers_every_language(predictions: dict) -> None:
    assert sorted(predictions) == sorted(["en", "th", "my", "km", "vi", "id", "tl", "zh", "ru", "uk", "ro"])


@pytest.mark.parametrize("language", ["en", "th", "my", "km", "vi", "id", "tl", "zh", "ru", "uk", "ro"])
def test_macro_f1_per_language(predictions: dict, language: str) -> None:
    texts, truth, predicted = predictions[language]
    score = macro_f1(truth, predicted)
    misses = [(t, a, b) for t, a, b in zip(texts, truth, predicted, strict=False) if a != b][:10]
    assert score >= TARGET, f"{language} macro-F1 {score:.3f}; e.g. {misses}"


def test_heldout_is_not_in_training() -> None:
    from bot.config import ROOT
    from bot.evaluation import load_nlu_examples

    training = {t.casefold() for p in Path(ROOT, "data", "nlu").rglob("*.yml") for t, _ in load_nlu_examples(p)}
    for path in Path(ROOT, "tests", "data", "nlu_heldout").glob("*.yml"):
        leaked = [t for t, _ in load_nlu_examples(path) if t.casefold() in training]
        assert not leaked, f"{path.name}: {leaked[:5]}"
