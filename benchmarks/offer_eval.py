"""Offer check (issue 16): the analyser on the blind offer set (text), and on screenshots of it (OCR).

    python -m benchmarks.offer_eval            # or: make eval-offer
    python -m benchmarks.offer_eval --images 5 # screenshots per language (default 6)
    python -m benchmarks.offer_eval --set dev  # the development set (tuned on: a regression floor, text only)

Text: per-flag and per-language precision/recall of `bot.offer.analyse` against the labels of
tests/data/offers/<lang>.yml (written blind from the label definitions; never tune patterns on it).
Images: offer texts of that set rendered with Debian Noto fonts, clean and degraded (phone frame, slight rotation,
blur, JPEG 55): OCR character accuracy per language, and how often the flags from the image equal the flags from
the text. Latency p50/p95: the analyser per text, OCR per (degraded) image.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import regex
import yaml

from benchmarks.offer_images import drawable, render
from bot.config import ROOT
from bot.evaluation import percentile
from bot.offer import FLAG_IDS, analyse
from bot.offer.ocr import ImageRejected, available, read_image

LANGUAGES = ("en", "th", "my", "km", "vi", "id", "tl", "zh", "ru", "uk", "ro")
_SKIP = regex.compile(r"[\s\p{P}\p{S}]")  # spaces and punctuation are not counted in character accuracy


SETS = {"blind": "tests/data/offers", "dev": "tests/data/offers_dev"}  # dev: tuned on (a regression floor)


def load(language: str, which: str = "blind") -> list[dict]:
    return yaml.safe_load((ROOT / SETS[which] / f"{language}.yml").read_text(encoding="utf-8"))["items"]


def scores(which: str = "blind") -> tuple[dict[str, Counter], dict[str, Counter]]:
    """tp/fp/fn per flag and per language (plus items / exact per language) of the analyser on a set."""
    per_flag: dict[str, Counter] = {f: Counter() for f in FLAG_IDS}
    per_language: dict[str, Counter] = {}
    for language in LANGUAGES:
        counts = per_language.setdefault(language, Counter())
        for item in load(language, which):
            found = set(analyse(item["text"], language, None).flags)
            truth = set(item.get("flags") or [])
            for flag in FLAG_IDS:
                for counter in (per_flag[flag], counts):
                    counter["tp"] += flag in found and flag in truth
                    counter["fp"] += flag in found and flag not in truth
                    counter["fn"] += flag in truth and flag not in found
            counts["items"] += 1
            counts["exact"] += found == truth
    return per_flag, per_language


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def char_accuracy(truth: str, read: str) -> float:
    """1 - edit distance / length, on letters and digits only (OCR spacing and punctuation do not count)."""
    t, r = _SKIP.sub("", truth), _SKIP.sub("", read)
    return max(0.0, 1 - edit_distance(t, r) / max(1, len(t)))


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "-"


def pr(c: Counter) -> str:
    """precision | recall cells."""
    return f"{ratio(c['tp'], c['tp'] + c['fp'])} | {ratio(c['tp'], c['tp'] + c['fn'])}"


def text_tables(which: str = "blind") -> list[float]:
    seconds: list[float] = []
    for language in LANGUAGES:  # latency: the analyser per text of the set
        for item in load(language, which):
            start = time.perf_counter()
            analyse(item["text"], language, None)
            seconds.append(time.perf_counter() - start)
    per_flag, per_language = scores(which)
    print(f"\n### Text ({which} set): per flag (all languages)\n")
    print("| flag | labelled | found | precision | recall |")
    print("|---|---:|---:|---:|---:|")
    total: Counter = Counter()
    for flag, c in per_flag.items():
        total.update(c)
        print(f"| {flag} | {c['tp'] + c['fn']} | {c['tp'] + c['fp']} | {pr(c)} |")
    print(f"| **all (micro)** | {total['tp'] + total['fn']} | {total['tp'] + total['fp']} | {pr(total)} |")
    print(f"\n### Text ({which} set): per language (micro over flags)\n")
    print("| language | offers | precision | recall | all flags exact |")
    print("|---|---:|---:|---:|---:|")
    for language, c in per_language.items():
        print(f"| {language} | {c['items']} | {pr(c)} | {ratio(c['exact'], c['items'])} |")
    return seconds


def image_tables(per_language: int) -> list[float]:
    seconds: list[float] = []
    print(f"\n### Screenshots ({per_language} per language, offers with flags first): OCR and flags\n")
    print("| language | images | char accuracy clean | char accuracy degraded | flags = text flags, clean | "
          "flags = text flags, degraded |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for language in LANGUAGES:
        items = load(language)
        chosen = [i for i in items if i.get("flags")][:per_language]
        accuracy: dict[bool, list[float]] = {False: [], True: []}
        same: dict[bool, int] = {False: 0, True: 0}
        for n, item in enumerate(chosen):
            text = item["text"]
            from_text = analyse(text, language, None).flags
            for degrade in (False, True):
                image = render(text, language, degrade=degrade, seed=n)
                start = time.perf_counter()
                try:
                    read = read_image(image, language).text
                except ImageRejected:
                    read = ""
                if degrade:
                    seconds.append(time.perf_counter() - start)
                accuracy[degrade].append(char_accuracy(drawable(text), read))
                same[degrade] += analyse(read, language, None).flags == from_text
        k = len(chosen)
        print(f"| {language} | {k} | {sum(accuracy[False]) / k:.3f} | {sum(accuracy[True]) / k:.3f} | "
              f"{same[False]}/{k} | {same[True]}/{k} |", flush=True)  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6, help="screenshots per language (0: text only)")
    parser.add_argument(
        "--set", choices=sorted(SETS), default="blind", help="blind (measure only) or dev (tuned on; text only)"
    )
    args = parser.parse_args()
    text_seconds = text_tables(args.set)
    image_seconds = image_tables(args.images) if args.images and available() and args.set == "blind" else []
    print("\n### Latency\n")
    print("| step | n | p50 | p95 |")
    print("|---|---:|---:|---:|")
    print(f"| analyser, per text | {len(text_seconds)} | {percentile(text_seconds, 50) * 1000:.2f} ms | "
          f"{percentile(text_seconds, 95) * 1000:.2f} ms |")  # fmt: skip
    if image_seconds:
        print(f"| OCR, per degraded image | {len(image_seconds)} | {percentile(image_seconds, 50):.2f} s | "
              f"{percentile(image_seconds, 95):.2f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
