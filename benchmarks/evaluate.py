"""Held-out evaluation tables: NLU intent macro-F1 per language, language-id accuracy.

    python -m benchmarks.evaluate            (or: make eval)

Held-out data lives in tests/data/ and is never used for training or tuning.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import yaml

from bot.config import ROOT, Settings
from bot.evaluation import load_nlu_examples, macro_f1
from bot.langid import LanguageIdentifier, count_words

HELDOUT_NLU = ROOT / "tests" / "data" / "nlu_heldout"
HELDOUT_LANGID = ROOT / "tests" / "data" / "langid_heldout.yml"


def nlu_predictions(model: Path) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """language -> (texts, true intents, predicted intents) with the trained model."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def run() -> dict[str, tuple[list[str], list[str], list[str]]]:
        out: dict[str, tuple[list[str], list[str], list[str]]] = {}
        for path in sorted(HELDOUT_NLU.glob("*.yml")):
            pairs = load_nlu_examples(path)
            predicted = [(await agent.parse_message(text))["intent"]["name"] for text, _ in pairs]
            out[path.stem] = ([t for t, _ in pairs], [i for _, i in pairs], predicted)
        return out

    return asyncio.run(run())


def nlu_table(model: Path) -> dict[str, float]:
    scores = {}
    print(f"\nNLU intent macro-F1 on held-out data ({model.name})")
    print(f"{'lang':<6}{'examples':>9}{'accuracy':>10}{'macro-F1':>10}")
    for language, (_, truth, predicted) in nlu_predictions(model).items():
        accuracy = sum(t == p for t, p in zip(truth, predicted, strict=False)) / len(truth)
        scores[language] = macro_f1(truth, predicted)
        print(f"{language:<6}{len(truth):>9}{accuracy:>10.3f}{scores[language]:>10.3f}")
    return scores


def langid_table() -> dict[str, float]:
    identifier = LanguageIdentifier.from_data(Settings().data_dir)
    data = yaml.safe_load(HELDOUT_LANGID.read_text(encoding="utf-8"))["languages"]
    confusions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    accuracy = {}
    print("\nLanguage identification on held-out chat messages")
    print(f"{'lang':<6}{'4+ words':>9}{'accuracy':>10}{'short':>7}{'short raw':>10}{'short kept':>11}")
    for language, sets in data.items():
        long_msgs = [m for m in sets["long"] if count_words(m) >= 4]
        hits = 0
        for message in long_msgs:
            got = identifier.detect(message).language
            hits += got == language
            confusions[language][str(got)] += got != language
        short = sets["short"]
        raw = sum(identifier.detect(m).language == language for m in short)
        kept = sum(identifier.decide(m, language).language == language for m in short)
        accuracy[language] = hits / len(long_msgs)
        print(
            f"{language:<6}{len(long_msgs):>9}{accuracy[language]:>10.3f}{len(short):>7}"
            f"{raw / len(short):>10.2f}{kept / len(short):>11.2f}"
        )
    print("short raw = detected alone; short kept = language kept when the conversation is already in it")
    return accuracy


if __name__ == "__main__":
    from bot.stack import ensure_model

    langid_table()
    nlu_table(ensure_model(Settings()))
