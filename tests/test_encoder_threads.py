"""SP_ENCODER_THREADS (OMP_NUM_THREADS of the sentence encoder in serving processes) changes
speed only: the vectors and every risk decision are bit-identical to OpenMP's default."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from bot.config import ROOT

SCRIPT = r"""
import hashlib, json, os, sys
from bot.cli import open_assessor
from bot.config import Settings
from bot.risk.screener import load_screener
settings = Settings()
assessor = open_assessor(settings, load_screener(settings.data_dir))
if assessor.encoder is None:
    print(json.dumps(None)); sys.exit(0)
texts = json.loads(sys.stdin.read())
vectors = assessor.encoder.inner.encode(texts)
decisions = [
    [a.level, a.category, list(a.triggers), a.wants_person, a.source,
     None if a.semantic is None else [repr(v) for v in a.semantic.__dict__.values()]]
    for a in (assessor.assess(t) for t in texts)
]
print(json.dumps({
    "omp": os.environ.get("OMP_NUM_THREADS"),
    "threads": len(os.listdir("/proc/self/task")),
    "vectors": hashlib.sha256(vectors.tobytes()).hexdigest(),
    "decisions": decisions,
}))
"""


def texts() -> list[str]:
    chosen: list[str] = []
    for path in sorted((ROOT / "tests" / "data" / "risk_unseen").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for items in data.values():
            if isinstance(items, list):
                chosen += [item["text"] for item in items[:4] if isinstance(item, dict) and "text" in item]
    return chosen


def run(threads: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SP_ENCODER_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    if threads is not None:
        env["SP_ENCODER_THREADS"] = threads
    done = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, "-c", SCRIPT], input=json.dumps(texts()), env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_thread_gives_bit_identical_vectors_and_decisions() -> None:
    one, two = run("1"), run("2")
    if one is None:
        pytest.skip("the semantic model is off")
    assert one["omp"] == "1" and two["omp"] == "2"
    assert two["threads"] > one["threads"]  # the setting does reach the encoder's OpenMP
    assert len(one["decisions"]) > 50 and any(d[0] == "urgent" for d in one["decisions"])
    assert one["vectors"] == two["vectors"]
    assert one["decisions"] == two["decisions"]
