"""Cost of the semantic layer, side by side with the lexicon alone, in one run; prints a table.

    python -m benchmarks.semantic_speed [--messages 300] [--train]   (or: make benchmark-semantic)

Rows: the encoder per message; the risk decision per message (lexicon alone vs lexicon +
semantic); the whole stack per message, sequential (gateway -> Rasa -> actions), with the
gateway's semantic model off and on against the same Rasa server; added RSS of a process that
loads the encoder and the model; with --train, training the semantic model from scratch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.performance import measure_latency, peak_rss_mb, sample_messages
from bot.config import ROOT, Settings
from bot.evaluation import percentile, print_table
from bot.risk.decision import RiskAssessor
from bot.risk.screener import load_screener
from bot.stack import Stack, ensure_model
from bot.text import normalize

BENCH_PORTS = {"SP_RASA_PORT": "5305", "SP_ACTION_PORT": "5355"}


def timed(fn, items: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1000)
    return out


def added_rss_mb() -> float:
    code = (
        f"import sys;sys.path.insert(0,{str(ROOT)!r});from benchmarks.performance import peak_rss_mb;"
        "import os;base=peak_rss_mb(os.getpid());from bot.config import Settings;from bot.cli import open_assessor;"
        "from bot.risk.screener import load_screener;s=Settings();a=open_assessor(s,load_screener(s.data_dir));"
        "a.assess('hello there');print(peak_rss_mb(os.getpid())-base)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(done.stdout.strip().splitlines()[-1])


def train_from_scratch(settings: Settings) -> float:
    from bot.risk.decision import Thresholds
    from bot.semantic.train import ensure_semantic_model

    _, encoder, _ = Thresholds.from_data(settings.data_dir)
    with tempfile.TemporaryDirectory() as empty:
        started = time.perf_counter()
        ensure_semantic_model(Path(empty), settings.data_dir, encoder, force=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--train", action="store_true", help="also time training the semantic model from scratch")
    args = parser.parse_args()
    os.environ.update(BENCH_PORTS)
    os.environ["SP_VAR_DIR"] = tempfile.mkdtemp(prefix="sp-bench-")
    settings = Settings()
    from bot.cli import open_assessor

    messages = [normalize(m).text for m in sample_messages(args.messages)]
    screener = load_screener(settings.data_dir)
    lexicon, combined = RiskAssessor(screener), open_assessor(settings, screener)
    assert combined.encoder is not None
    encoder = combined.encoder.inner  # no cache: every message encoded
    rows: list[tuple[str, str]] = [("CPU cores", str(os.cpu_count()))]
    enc = timed(lambda m: encoder.encode([m]), messages)
    rows += [("encoder per message p50 / p95", f"{percentile(enc, 50):.1f} / {percentile(enc, 95):.1f} ms")]
    lex = timed(lexicon.assess, messages)
    combined.encoder._memory.clear()  # noqa: SLF001 - measure cold, as for a new message
    both = timed(lambda m: combined.assess(m + " "), messages)
    rows += [
        ("risk decision, lexicon alone p50 / p95", f"{percentile(lex, 50):.2f} / {percentile(lex, 95):.2f} ms"),
        ("risk decision, lexicon + semantic p50 / p95", f"{percentile(both, 50):.1f} / {percentile(both, 95):.1f} ms"),
        ("added RSS (encoder + model, one process)", f"{added_rss_mb():.0f} MB"),
    ]
    if args.train:
        rows.append(("semantic model training from scratch (no cache)", f"{train_from_scratch(settings):.0f} s"))
    model = ensure_model(settings)
    stack = Stack(settings)
    stack.start(model)
    settings = stack.settings  # where our servers really listen
    try:
        results = {}
        for semantic in ("off", "on"):
            os.environ["SP_SEMANTIC"] = semantic
            results[semantic] = asyncio.run(measure_latency(Settings(), messages))
        for semantic, timings in results.items():
            label = "lexicon + semantic" if semantic == "on" else "lexicon alone"
            rate = 1000 * len(timings) / sum(timings)
            rows.append(
                (f"whole stack, gateway {label}: p50 / p95, msg/s (sequential)",
                 f"{percentile(timings, 50):.0f} / {percentile(timings, 95):.0f} ms, {rate:.1f}")
            )  # fmt: skip
        rows.append(("peak RSS Rasa server (with the featurizer)", f"{peak_rss_mb(stack.processes[1].pid):.0f} MB"))
    finally:
        stack.stop()
        os.environ.pop("SP_SEMANTIC", None)
    print_table(rows)


if __name__ == "__main__":
    main()
