"""Remove from data/nlu/**/*.yml every training line that also appears (case-insensitive) in
tests/data/nlu_heldout/: the held-out set must stay unseen. Run after adding training data."""

from __future__ import annotations

from pathlib import Path

from bot.evaluation import load_nlu_examples

ROOT = Path(__file__).resolve().parent.parent


def _is_heldout_example(line: str, heldout: set[str]) -> bool:
    stripped = line.strip()
    return line.startswith("    - ") and stripped[2:].strip().casefold() in heldout


def main() -> None:
    heldout = {
        t.casefold() for p in (ROOT / "tests" / "data" / "nlu_heldout").glob("*.yml") for t, _ in load_nlu_examples(p)
    }
    for path in sorted((ROOT / "data" / "nlu").rglob("*.yml")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if not (
                line.lstrip().startswith("- ") and line.strip()[2:].strip().casefold() in heldout and line.startswith("    ")
            )
        ]
        if len(kept) != len(lines):
            path.write_text("".join(kept), encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: dropped {len(lines) - len(kept)}")


if __name__ == "__main__":
    main()
