"""Speed and memory of the assistant; prints a table (numbers go in the README).

    python -m benchmarks.performance [--train] [--messages 300]   (or: make benchmark)

--train also measures training from scratch (a fresh output dir, no cache).
Latency is measured through the full stack: gateway pipeline -> Rasa HTTP -> actions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.config import ROOT, Settings
from bot.evaluation import load_nlu_examples, percentile, print_table
from bot.stack import Stack, child_env, ensure_model, train_command

BENCH_PORTS = {"SP_RASA_PORT": "5205", "SP_ACTION_PORT": "5255"}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def train_from_scratch(settings: Settings) -> float:
    out = Path(tempfile.mkdtemp(prefix="sp-train-"))
    env = child_env(settings)
    env["RASA_CACHE_DIRECTORY"] = str(out / "cache")  # no reuse of cached components
    started = time.perf_counter()
    quiet = subprocess.DEVNULL
    subprocess.run(train_command(out, "bench"), cwd=ROOT, env=env, check=True, stdout=quiet, stderr=quiet)
    elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def model_load_seconds(model: Path) -> float:
    code = (
        "import time,sys;t=time.perf_counter();from rasa.core.agent import Agent;"
        f"Agent.load({str(model)!r});print(time.perf_counter()-t)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=child_env(Settings()), cwd=ROOT
    )
    return float(result.stdout.strip().splitlines()[-1])


def sample_messages(count: int) -> list[str]:
    texts = [t for p in sorted((ROOT / "tests" / "data" / "nlu_heldout").glob("*.yml")) for t, _ in load_nlu_examples(p)]
    return [texts[(i * 7919) % len(texts)] for i in range(count)]


async def measure_latency(settings: Settings, messages: list[str]) -> list[float]:
    from bot.cli import open_pipeline

    timings = []
    async with open_pipeline(settings) as pipeline:
        await pipeline.handle("bench", "warm-up", "hello")
        for i, text in enumerate(messages):
            started = time.perf_counter()
            await pipeline.handle("bench", f"user-{i % 25}", text)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", action="store_true", help="also time training from scratch")
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    os.environ.update(BENCH_PORTS)
    os.environ["SP_VAR_DIR"] = tempfile.mkdtemp(prefix="sp-bench-")
    settings = Settings()
    rows: list[tuple[str, str]] = [("CPU cores", str(os.cpu_count()))]
    if args.train:
        rows.append(("training from scratch", f"{train_from_scratch(settings):.0f} s"))
    model = ensure_model(settings)
    rows.append(("model load (Agent.load)", f"{model_load_seconds(model):.1f} s"))
    stack = Stack(settings)
    started = time.perf_counter()
    stack.start(model)
    settings = stack.settings  # where our servers really listen
    rows.append(("servers ready (Rasa + actions)", f"{time.perf_counter() - started:.1f} s"))
    try:
        timings = asyncio.run(measure_latency(settings, sample_messages(args.messages)))
        rows += [
            (f"latency p50 ({len(timings)} msgs, 11 langs)", f"{percentile(timings, 50):.0f} ms"),
            ("latency p95", f"{percentile(timings, 95):.0f} ms"),
            ("latency max", f"{max(timings):.0f} ms"),
        ]
        rss = {"Rasa server": stack.processes[1].pid, "action server": stack.processes[0].pid}
        for name, pid in rss.items():
            rows.append((f"peak RSS {name}", f"{peak_rss_mb(pid):.0f} MB"))
        rows.append(("peak RSS gateway (this process)", f"{peak_rss_mb(os.getpid()):.0f} MB"))
    finally:
        stack.stop()
    print_table(rows)


if __name__ == "__main__":
    main()
