"""Metrics for the held-out evaluations (no Rasa imports)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    """Unweighted mean F1 over the labels present in ``truth``."""
    labels = sorted(set(truth))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for t, p in zip(truth, predicted, strict=False):
        if t == p:
            tp[t] += 1
        else:
            fp[p] += 1
            fn[t] += 1
    scores = []
    for label in labels:
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def load_nlu_examples(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from a Rasa 3 YAML NLU file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    pairs = []
    for block in data.get("nlu") or []:
        for line in str(block.get("examples") or "").splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                pairs.append((text, block["intent"]))
    return pairs


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def print_table(rows: list[tuple[str, str]], heading: str = "measure") -> None:
    """Two-column text table (benchmarks print these; the README quotes them)."""
    width = max(len(heading), *(len(k) for k, _ in rows))
    print(f"\n{heading:<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
