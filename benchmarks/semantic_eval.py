"""Risk decision and whole-bot figures on the evaluation sets, lexicon alone vs lexicon + semantic.

    python -m benchmarks.semantic_eval            (or: make eval-semantic)   decision only, no Rasa
    python -m benchmarks.semantic_eval --bot      + the whole bot (`python -m bot ask`) on the blind set

Sets (tests/data/):
- ``semantic_dev/``: written blind from docs/labels.md by other writers, then used to choose the
  model and its thresholds: a regression floor, not a promise.
- ``semantic_eval5/``: written blind from docs/labels.md by other writers after the round-8 model
  was built (2026-12-07, second session; parents and relatives, long messages, everyday traps); never
  trained or tuned on. The honest figures.
- ``semantic_eval4/``: written blind the same way (2026-12-07), measured on rounds 7 and 8 (aggregates
  only, five times): a development set since set 5 was written.
- ``semantic_eval2/``, ``semantic_eval3/``: written blind the same way (2026-12-06), measured on
  the round-7 model and then read for its errors: development sets since 2026-12-07.
- ``semantic_eval/``: written blind from docs/labels.md, never trained on, but measured after every
  round of data since round 3 (and read for errors on 2026-12-06): a development set now.
- ``risk_unseen/``: written after the lexicons were tuned; read for figures only. Not trained on.
- ``risk_eval/``: the lexicons were tuned on it: a regression floor, not a promise.
A message "reaches a counsellor" when the decision is urgent or a request for a person.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from bot.config import ROOT, Settings
from bot.risk.decision import RiskAssessor
from bot.risk.screener import load_screener
from bot.text import normalize

SETS = {
    "semantic_dev (written blind, then TUNED ON: a floor)": ROOT / "tests" / "data" / "semantic_dev",
    "semantic_eval5 (blind, never tuned on)": ROOT / "tests" / "data" / "semantic_eval5",
    "semantic_eval4 (blind, measured 5 times: development)": ROOT / "tests" / "data" / "semantic_eval4",
    "semantic_eval2 (blind once, then read: development)": ROOT / "tests" / "data" / "semantic_eval2",
    "semantic_eval3 (blind once, then read: development)": ROOT / "tests" / "data" / "semantic_eval3",
    "semantic_eval (blind once, measured every round: development)": ROOT / "tests" / "data" / "semantic_eval",
    "risk_unseen (not tuned on)": ROOT / "tests" / "data" / "risk_unseen",
    "risk_eval (tuned on: floor)": ROOT / "tests" / "data" / "risk_eval",
}
KINDS = ("urgent", "concern", "person", "benign")


def load_sets(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.yml"))}


def decision_rates(assessor: RiskAssessor, data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """kind -> (hits, total): urgent/person reach a counsellor, concern flagged, benign handed over."""
    out: dict[str, tuple[int, int]] = {}
    for kind in KINDS:
        items = data.get(kind) or []
        hits = 0
        for item in items:
            a = assessor.assess(normalize(item["text"]).text)
            reached = a.urgent or a.wants_person
            hits += (a.level != "none") if kind == "concern" else reached
        out[kind] = (hits, len(items))
    return out


def _ratio(hits_total: tuple[int, int]) -> str:
    hits, total = hits_total
    return f"{hits / total:.3f}" if total else "  -  "


def decision_table(title: str, sets: dict[str, dict[str, Any]], assessors: dict[str, RiskAssessor]) -> None:
    print(f"\nRisk decision on {title}: urgent->counsellor / concern flagged / person->counsellor / benign handed over")
    header = f"{'lang':<6}" + "".join(f"{name + ' ' + k[:4]:>{len(name) + 7}}" for name in assessors for k in KINDS)
    print(header)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for language, data in sets.items():
        row = f"{language:<6}"
        for name, assessor in assessors.items():
            rates = decision_rates(assessor, data)
            for kind in KINDS:
                totals[(name, kind)][0] += rates[kind][0]
                totals[(name, kind)][1] += rates[kind][1]
                row += f"{_ratio(rates[kind]):>{len(name) + 7}}"
        print(row)
    row = f"{'all':<6}"
    for name in assessors:
        for kind in KINDS:
            row += f"{_ratio((totals[(name, kind)][0], totals[(name, kind)][1])):>{len(name) + 7}}"
    print(row)


def whole_bot(directory: Path, semantic: bool, confusions: bool = False) -> None:
    """Every message as the first message of its own user through `python -m bot ask`."""
    sets = load_sets(directory)
    lines, keys = [], []
    for language, data in sets.items():
        for kind in KINDS:
            for index, item in enumerate(data.get(kind) or []):
                lines.append(json.dumps({"user": f"{kind}-{language}-{index}", "text": item["text"]}))
                keys.append((language, kind, item.get("topic"), item.get("category")))
    with tempfile.TemporaryDirectory() as var_dir:
        env = {**os.environ, "SP_VAR_DIR": var_dir, "SP_SEMANTIC": "on" if semantic else "off"}
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ask"], input="\n".join(lines) + "\n", capture_output=True, text=True,
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(answers) == len(keys), f"{len(answers)} answers for {len(keys)} messages"
    stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    confused: Counter[tuple[str, str]] = Counter()
    for (language, kind, topic, _), answer in zip(keys, answers, strict=True):
        if kind in ("concern", "benign") and topic and answer["topic"] != topic:
            confused[(topic, str(answer["topic"]))] += 1
        reached = answer["handoff"] in ("waiting", "counsellor")
        for lang in (language, "all"):
            if kind in ("urgent", "person", "benign"):
                stats[(lang, kind)][0] += reached
                stats[(lang, kind)][1] += 1
            if kind in ("concern", "benign") and topic:
                stats[(lang, "topic")][0] += answer["topic"] == topic
                stats[(lang, "topic")][1] += 1
            stats[(lang, "lang")][0] += answer["language"] == language
            stats[(lang, "lang")][1] += 1
    label = "lexicon + semantic" if semantic else "lexicon alone"
    print(f"\nWhole bot ({label}) on {directory.relative_to(ROOT)}, first message of each user")
    print(
        f"{'lang':<6}{'urgent->counsellor':>19}{'person->counsellor':>19}{'benign handed over':>19}"
        f"{'topic':>7}{'language':>9}"
    )
    for language in [*sets, "all"]:
        cells = [_ratio((stats[(language, k)][0], stats[(language, k)][1])) for k in ("urgent", "person", "benign")]
        topic = _ratio((stats[(language, "topic")][0], stats[(language, "topic")][1]))
        lang = _ratio((stats[(language, "lang")][0], stats[(language, "lang")][1]))
        print(f"{language:<6}{cells[0]:>19}{cells[1]:>19}{cells[2]:>19}{topic:>7}{lang:>9}")
    if confusions:
        print("topic confusions (expected -> answered):")
        for (expected, got), count in confused.most_common(20):
            print(f"  {expected:>14} -> {got:<14} {count}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bot", action="store_true", help="also run the whole bot on the blind set (starts Rasa)")
    parser.add_argument("--bot-set", default="semantic_eval5", help="set for --bot (others: development)")
    parser.add_argument("--confusions", action="store_true", help="with --bot: topic confusions (development sets only)")
    parser.add_argument("--decision-only", action="store_true", help="only the risk decision tables")
    args = parser.parse_args()
    from bot.cli import open_assessor

    settings = Settings()
    screener = load_screener(settings.data_dir)
    assessors = {"lex": RiskAssessor(screener), "lex+sem": open_assessor(settings, screener)}
    for title, directory in SETS.items():
        decision_table(title, load_sets(directory), assessors)
    if args.bot:
        for semantic in (False, True):
            whole_bot(ROOT / "tests" / "data" / args.bot_set, semantic, args.confusions)


if __name__ == "__main__":
    main()
