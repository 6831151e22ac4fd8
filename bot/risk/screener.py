"""Deterministic risk screener: runs before the NLU, needs no model and no server.

Lexicons live in ``data/risk/<lang>.yml`` (one per language, reviewed like content) and
categories with their level in ``data/risk/categories.yml``. Every lexicon is loaded and
every message is screened against all of them: a girl may write in a language the
identifier missed, mix two languages, or type one English word ("help") in Thai text.

Rule kinds (see data/risk/README.md):
- a phrase: words in order; ``word*`` matches a prefix, ``..`` allows up to three words;
  Thai/Burmese/Khmer/Chinese phrases match anywhere in the text (no spaces needed);
- ``all``: groups of alternative phrases that must all occur somewhere in the message;
- ``only``: a lone cry ("help", "sos") - the message holds nothing but cry words and fillers;
- ``unless``: alternative phrases that cancel a rule (used sparingly, and only whole idioms such as
  "my dad keep* .. passport" - never laughter, "joking" or a bare family word; a test checks this).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml

from bot.risk.fold import fold, is_cyrillic, is_latin, is_no_space_script, skeleton, squeeze, tokens

LEVELS = ("none", "concern", "urgent")
GAP = 3  # words a ".." may skip
MAX_CRY_CHARS = 80
NOT_LEXICONS = (
    "categories",
    "decision",
)  # the other files in data/risk/  # a lone cry is short; longer messages are judged by the other rules


@dataclass(frozen=True)
class RiskResult:
    """What the screener found in one message."""

    level: str = "none"
    category: str | None = None
    triggers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def urgent(self) -> bool:
        return self.level == "urgent"


@dataclass(frozen=True)
class Phrase:
    """One compiled phrase; ``words`` is empty for a no-space-script substring."""

    source: str
    words: tuple[tuple[str, bool] | None, ...] = ()  # (text, is_prefix) or None for a gap
    substring: str = ""
    on_skeleton: bool = False


@dataclass
class Rule:
    category: str
    language: str
    groups: list[list[int]]
    unless: list[int] = field(default_factory=list)


class Screener:
    """Screens a message against every loaded lexicon."""

    def __init__(self, categories: dict[str, str], lexicons: dict[str, dict[str, Any]]) -> None:
        self.levels = categories
        self.phrases: list[Phrase] = []
        self._ids: dict[tuple[str, bool], int] = {}
        self.rules: list[Rule] = []
        self._rules_of_phrase: defaultdict[int, list[int]] = defaultdict(list)
        self._first_exact: defaultdict[tuple[bool, str], list[int]] = defaultdict(list)
        self._first_prefix: defaultdict[tuple[bool, str], list[int]] = defaultdict(list)
        self._substrings: list[int] = []
        # First two characters -> substring phrases: only phrases whose opening bigram occurs are tested.
        self._substring_index: defaultdict[str, list[int]] = defaultdict(list)
        cries: set[str] = set()
        fillers: set[str] = set()
        for language, lexicon in lexicons.items():
            for word in lexicon.get("fillers") or []:
                fillers.update(self._variants(str(word)))
            for category, rules in (lexicon.get("categories") or {}).items():
                if category not in categories:
                    raise ValueError(f"data/risk/{language}.yml: unknown category {category!r}")
                for rule in rules or []:
                    self._add_rule(language, category, rule, cries)
        self._prefix_lengths = sorted({len(word) for _, word in self._first_prefix})
        self._cry_words = cries
        self._no_space_cries = tuple(c for c in cries if is_no_space_script(c))
        self._cry_vocabulary = frozenset(
            w for phrase in cries | fillers if not is_no_space_script(phrase) for w in phrase.split()
        )
        self._fillers = fillers
        alternatives = sorted(cries | fillers, key=len, reverse=True)
        # Spaced words must stand alone ("help" not inside "helpful"); Thai/Burmese/... need no spaces.
        pattern = "|".join(
            regex.escape(a) if is_no_space_script(a) else rf"(?<!\w){regex.escape(a)}(?!\w)" for a in alternatives
        )
        self._lone_cry_re = regex.compile(f"({pattern})") if alternatives else None

    # -- compiling ---------------------------------------------------------------------
    @staticmethod
    def _variants(text: str) -> set[str]:
        folded = fold(text).strip()
        out = {squeeze(folded)} if is_no_space_script(folded) else {folded}
        if is_cyrillic(folded):
            out.add(" ".join(skeleton(w) for w in tokens(folded)))
        return {v for v in out if v}

    @staticmethod
    def _fold_phrase(source: str) -> str:
        """fold() word by word, keeping the ".." gap (fold would squeeze it to one dot)."""
        return " ".join(".." if part == ".." else fold(part).strip() for part in source.split()).strip()

    def _phrase_ids(self, source: str) -> list[int]:
        folded = self._fold_phrase(source)
        if not folded:
            raise ValueError(f"empty risk phrase {source!r}")
        compiled: list[Phrase] = []
        gap = ".." in folded.split()
        if not gap and is_no_space_script(folded) and not any(is_latin(w) or is_cyrillic(w) for w in tokens(folded)):
            compiled.append(Phrase(source, substring=squeeze(folded)))
        else:
            words = self._words(folded, on_skeleton=False)
            compiled.append(Phrase(source, words=words))
            if is_cyrillic(folded):
                compiled.append(Phrase(source, words=self._words(folded, on_skeleton=True), on_skeleton=True))
        ids = []
        for phrase in compiled:
            key = (phrase.substring or repr(phrase.words), phrase.on_skeleton)
            if key not in self._ids:
                self._ids[key] = len(self.phrases)
                self.phrases.append(phrase)
                self._index(self._ids[key], phrase)
            ids.append(self._ids[key])
        return ids

    @staticmethod
    def _words(folded: str, on_skeleton: bool) -> tuple[tuple[str, bool] | None, ...]:
        out: list[tuple[str, bool] | None] = []
        for part in folded.split():
            if part == "..":
                out.append(None)
                continue
            prefix = part.endswith("*")
            pieces = tokens(part.rstrip("*"))  # the same split as the message ("i'm" -> i, m)
            for index, piece in enumerate(pieces):
                word = skeleton(piece) if on_skeleton else piece
                if word:
                    out.append((word, prefix and index == len(pieces) - 1))
        if not out or out[0] is None or out[-1] is None:
            raise ValueError(f"risk phrase {folded!r}: '..' must sit between words")
        return tuple(out)

    def _index(self, pid: int, phrase: Phrase) -> None:
        if phrase.substring:
            self._substrings.append(pid)
            self._substring_index[phrase.substring[:2]].append(pid)
            return
        first = phrase.words[0]
        assert first is not None
        word, prefix = first
        (self._first_prefix if prefix else self._first_exact)[(phrase.on_skeleton, word)].append(pid)

    def _add_rule(self, language: str, category: str, rule: Any, cries: set[str]) -> None:
        if isinstance(rule, str):
            groups, unless = [[rule]], []
        elif isinstance(rule, dict) and "only" in rule:
            for cry in rule["only"]:
                cries.update(self._variants(str(cry)))
            return
        elif isinstance(rule, dict) and "all" in rule:
            groups = [[g] if isinstance(g, str) else list(g) for g in rule["all"]]
            unless = list(rule.get("unless") or [])
        else:
            raise ValueError(f"data/risk/{language}.yml {category}: cannot read rule {rule!r}")
        compiled = Rule(
            category,
            language,
            [[pid for source in group for pid in self._phrase_ids(str(source))] for group in groups],
            [pid for source in unless for pid in self._phrase_ids(str(source))],
        )
        index = len(self.rules)
        self.rules.append(compiled)
        for group in compiled.groups:
            for pid in group:
                self._rules_of_phrase[pid].append(index)

    # -- screening ---------------------------------------------------------------------
    def _matches_at(self, phrase: Phrase, seq: list[str], start: int) -> bool:
        position, gap = start, 0
        for part in phrase.words:
            if part is None:
                gap = GAP
                continue
            word, prefix = part
            limit = min(len(seq), position + gap + 1)
            while position < limit:
                token = seq[position]
                position += 1
                if token == word or (prefix and token.startswith(word)):
                    break
            else:
                return False
            gap = 0
        return True

    def _matched_phrases(self, folded: str) -> set[int]:
        found: set[int] = set()
        words = tokens(folded)
        skeletons = [skeleton(w) if is_latin(w) else w for w in words]
        for on_skeleton, seq in ((False, words), (True, skeletons)):
            for start, token in enumerate(seq):
                candidates = list(self._first_exact.get((on_skeleton, token), ()))
                for end in self._prefix_lengths:
                    if end > len(token):
                        break
                    candidates.extend(self._first_prefix.get((on_skeleton, token[:end]), ()))
                for pid in candidates:
                    if pid in found:
                        continue
                    phrase = self.phrases[pid]
                    # One-word phrases matched already through the index (exact word or prefix).
                    if len(phrase.words) == 1 or self._matches_at(phrase, seq, start):
                        found.add(pid)
        if self._substrings and is_no_space_script(folded):
            flat = squeeze(folded)
            for bigram in {flat[i : i + 2] for i in range(len(flat))} | set(flat):
                for pid in self._substring_index.get(bigram, ()):
                    if pid not in found and self.phrases[pid].substring in flat:
                        found.add(pid)
        return found

    def _lone_cry(self, folded: str) -> bool:
        """True when the message is nothing but cry words ("save me", "ช่วยด้วย") and fillers."""
        if self._lone_cry_re is None or len(folded) > MAX_CRY_CHARS:
            return False
        for token in tokens(folded):  # cheap pre-check before the big regex
            if is_no_space_script(token):
                if not any(cry in token for cry in self._no_space_cries):
                    return False
            elif token not in self._cry_vocabulary and skeleton(token) not in self._cry_vocabulary:
                return False
        latin_skeleton = " ".join(skeleton(w) if is_latin(w) else w for w in tokens(folded))
        for text in {" ".join(tokens(folded)), latin_skeleton}:
            cried = False

            def strip(match: regex.Match[str]) -> str:
                nonlocal cried
                cried = cried or match.group(1) in self._cry_words
                return " "

            residue = self._lone_cry_re.sub(strip, text)
            if cried and not residue.strip():
                return True
        return False

    def screen(self, text: str) -> RiskResult:
        """Risk level, main category and trigger phrases of one (normalised) message."""
        folded = fold(text)
        matched = self._matched_phrases(folded)
        hits: list[tuple[str, tuple[str, ...]]] = []
        seen_rules: set[int] = set()
        # In lexicon order: the set's order follows str hashes (no-space scripts index bigrams), which
        # differ per process, and the counsellor's card must show the same triggers every time.
        for pid in sorted(matched):
            for index in self._rules_of_phrase.get(pid, ()):
                if index in seen_rules:
                    continue
                seen_rules.add(index)
                rule = self.rules[index]
                if any(u in matched for u in rule.unless):
                    continue
                chosen = []
                for group in rule.groups:
                    hit = next((p for p in group if p in matched), None)
                    if hit is None:
                        break
                    chosen.append(self.phrases[hit].source)
                else:
                    hits.append((rule.category, tuple(chosen)))
        if self._lone_cry(folded) or "\U0001f198" in text:  # 🆘
            hits.append(("cry_for_help", (folded.strip()[:40],)))
        if not hits:
            return RiskResult()
        rank = {level: i for i, level in enumerate(LEVELS)}
        hits.sort(key=lambda h: (-rank[self.levels[h[0]]], h[0]))
        category, triggers = hits[0]
        all_triggers = tuple(dict.fromkeys(t for _, ts in hits for t in ts))
        return RiskResult(
            level=self.levels[category],
            category=category,
            triggers=all_triggers[:6],
            categories=tuple(dict.fromkeys(c for c, _ in hits)),
        )


def load_screener(data_dir: Path) -> Screener:
    """Loads every data/risk/<lang>.yml (cached per directory)."""
    return _load(str(data_dir))


@functools.lru_cache(maxsize=4)
def _load(data_dir: str) -> Screener:
    folder = Path(data_dir) / "risk"
    categories_file = yaml.safe_load((folder / "categories.yml").read_text(encoding="utf-8"))
    levels = {name: str(info["level"]) for name, info in categories_file["categories"].items()}
    lexicons = {}
    for path in sorted(folder.glob("*.yml")):
        if path.stem in NOT_LEXICONS:
            continue
        lexicons[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Screener(levels, lexicons)
