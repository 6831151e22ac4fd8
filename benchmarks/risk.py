"""Risk screener tables: recall / false escalations per language, and latency.

    python -m benchmarks.risk            (or: make eval-risk)
    python -m benchmarks.risk --with-nlu (also the NLU second net, with the trained model)

Evaluation messages: tests/data/risk_eval/<lang>.yml, written apart from the lexicons (which were then
tuned against it), and tests/data/risk_unseen/<lang>.yml, written after the tuning and never used for it:
the second is the honest estimate for wording the lexicons have not seen.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from bot.config import ROOT, Settings
from bot.evaluation import percentile
from bot.risk.screener import Screener, load_screener
from bot.text import normalize

EVAL_DIR = ROOT / "tests" / "data" / "risk_eval"
UNSEEN_DIR = ROOT / "tests" / "data" / "risk_unseen"


def load_sets(directory: Path = EVAL_DIR) -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.yml"))}


def nlu_danger(model: Path, texts: list[str], threshold: float) -> dict[str, bool]:
    """text -> the NLU alone would escalate it (danger intent at or above the threshold)."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def run() -> dict[str, bool]:
        out = {}
        for text in texts:
            intent = (await agent.parse_message(text))["intent"]
            out[text] = intent["name"] == "danger" and float(intent["confidence"]) >= threshold
        return out

    return asyncio.run(run())


def quality_table(
    screener: Screener, sets: dict[str, dict[str, Any]], nlu: dict[str, bool] | None, directory: Path = EVAL_DIR
) -> None:
    title = "screener + NLU second net" if nlu is not None else "screener alone"
    print(f"\nRisk screening on {directory.relative_to(ROOT)} ({title})")
    print(
        f"{'lang':<6}{'urgent':>7}{'recall':>8}{'concern':>8}{'flagged':>8}"
        f"{'benign':>7}{'false esc.':>11}{'traps':>6}{'trap FE':>8}"
    )
    totals = [0, 0, 0, 0]
    for language, data in sets.items():

        def urgent(text: str) -> bool:
            clean = normalize(text).text
            return screener.screen(clean).urgent or bool(nlu and nlu.get(text))

        hits = sum(urgent(u["text"]) for u in data["urgent"])
        concern = sum(screener.screen(normalize(c["text"]).text).level != "none" for c in data["concern"])
        benign = data["benign"]
        false = sum(urgent(b["text"]) for b in benign)
        traps = [b for b in benign if b.get("trap")]
        trap_false = sum(urgent(b["text"]) for b in traps)
        totals = [totals[0] + hits, totals[1] + len(data["urgent"]), totals[2] + false, totals[3] + len(benign)]
        print(
            f"{language:<6}{len(data['urgent']):>7}{hits / len(data['urgent']):>8.3f}{len(data['concern']):>8}"
            f"{concern / max(1, len(data['concern'])):>8.2f}{len(benign):>7}{false / len(benign):>11.3f}"
            f"{len(traps):>6}{trap_false / max(1, len(traps)):>8.3f}"
        )
    if totals[1] and totals[3]:
        print(f"{'all':<6}{totals[1]:>7}{totals[0] / totals[1]:>8.3f}{'':>16}{totals[3]:>7}{totals[2] / totals[3]:>11.3f}")


def latency_table(screener: Screener, sets: dict[str, dict[str, Any]]) -> None:
    messages = [normalize(m["text"]).text for d in sets.values() for key in ("urgent", "concern", "benign") for m in d[key]]
    long_ones = [(m + " ") * 12 for m in messages[:50]]  # ~1000-character messages
    print(f"\nScreener latency, {len(screener.phrases)} phrases / {len(screener.rules)} rules loaded (all languages)")
    print(f"{'messages':<22}{'n':>6}{'p50 µs':>9}{'p95 µs':>9}{'p99 µs':>9}{'max µs':>9}")
    for name, batch in (("chat-length", messages), ("~1000 chars", long_ones)):
        for text in batch[:20]:
            screener.screen(text)  # warm caches
        timings = []
        for _ in range(5):
            for text in batch:
                start = time.perf_counter()
                screener.screen(text)
                timings.append((time.perf_counter() - start) * 1e6)
        print(
            f"{name:<22}{len(batch):>6}{statistics.median(timings):>9.0f}{percentile(timings, 95):>9.0f}"
            f"{percentile(timings, 99):>9.0f}{max(timings):>9.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--with-nlu", action="store_true", help="add the trained model's danger intent")
    args = parser.parse_args()
    settings = Settings()
    started = time.perf_counter()
    screener = load_screener(settings.data_dir)
    print(f"lexicons loaded in {(time.perf_counter() - started) * 1000:.0f} ms")
    sets = load_sets()
    collections = [(EVAL_DIR, sets)] + ([(UNSEEN_DIR, load_sets(UNSEEN_DIR))] if UNSEEN_DIR.is_dir() else [])
    for directory, collection in collections:
        quality_table(screener, collection, None, directory)
    if args.with_nlu:
        from bot.stack import ensure_model

        model = ensure_model(settings)
        for directory, collection in collections:
            texts = [m["text"] for d in collection.values() for key in ("urgent", "benign") for m in d[key]]
            danger = nlu_danger(model, texts, settings.nlu_danger_urgent)
            quality_table(screener, collection, danger, directory)
    latency_table(screener, sets)


if __name__ == "__main__":
    main()
