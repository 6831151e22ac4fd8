"""The whole bot on the unseen risk set: what a girl's message actually gets.

    python -m benchmarks.risk_bot        (or: make eval-risk-bot)

Every message of tests/data/risk_unseen/<lang>.yml goes, as the first message of its own user,
through `python -m bot ask` (screener, language id, Rasa model, actions, handoff store, in a
throwaway SP_VAR_DIR). Per language it prints the share of urgent messages escalated at once and
the share of benign messages escalated needlessly; escalation is the screener, or the NLU `danger`
intent (at SP_NLU_DANGER_URGENT, or with a screener concern).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

from benchmarks.risk import UNSEEN_DIR, load_sets
from bot.config import ROOT


def main() -> None:
    sets = load_sets(UNSEEN_DIR)
    lines, keys = [], []
    for language, data in sets.items():
        for kind in ("urgent", "benign"):
            for index, message in enumerate(data[kind]):
                lines.append(json.dumps({"user": f"{kind}-{language}-{index}", "text": message["text"]}))
                keys.append((language, kind))
    with tempfile.TemporaryDirectory() as var_dir:
        env = {**os.environ, "SP_VAR_DIR": var_dir, "RASA_TELEMETRY_ENABLED": "false"}
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ask"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            check=True,
        )
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(answers) == len(keys), f"{len(answers)} answers for {len(keys)} messages"
    escalated: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for key, answer in zip(keys, answers, strict=True):
        escalated[key].append(bool(answer["escalate"]))
    print(f"\nWhole bot on {UNSEEN_DIR.relative_to(ROOT)} (first message of each user)")
    print(f"{'lang':<6}{'urgent':>7}{'escalated':>10}{'benign':>7}{'escalated':>10}")
    totals = {"urgent": [0, 0], "benign": [0, 0]}
    for language in sets:
        row = f"{language:<6}"
        for kind in ("urgent", "benign"):
            values = escalated[(language, kind)]
            totals[kind][0] += sum(values)
            totals[kind][1] += len(values)
            row += f"{len(values):>7}{sum(values) / len(values):>10.3f}"
        print(row)
    urgent, benign = totals["urgent"], totals["benign"]
    print(f"{'all':<6}{urgent[1]:>7}{urgent[0] / urgent[1]:>10.3f}{benign[1]:>7}{benign[0] / benign[1]:>10.3f}")


if __name__ == "__main__":
    main()
