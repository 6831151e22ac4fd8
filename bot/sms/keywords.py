"""SMS keywords (STOP, START, HELP, MENU, ERASE, LANG <code>) in every language, pure.

A keyword is the whole message: "stop" is a keyword, "stop calling me" is a sentence for the bot.
Case, Latin accents ("DUNG" = "DỪNG") and trailing punctuation are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import regex
import yaml

from bot.content.catalog import fold

NAMES = ("stop", "start", "help", "menu", "erase", "lang")
_EDGE_PUNCTUATION = regex.compile(r"^[\p{P}\p{S}\s]+|[\p{P}\p{S}\s]+$")


@dataclass(frozen=True)
class Keyword:
    name: str  # one of NAMES
    argument: str = ""  # LANG's language, e.g. "th"


def _key(text: str) -> str:
    return " ".join(_EDGE_PUNCTUATION.sub("", fold(text)).split())


class Keywords:
    """Matches whole-message keywords; built from data/sms/keywords.yml."""

    def __init__(self, words: dict[str, dict[str, list[str]]]) -> None:
        unknown = set(words) - set(NAMES)
        if unknown:
            raise ValueError(f"unknown SMS keywords: {sorted(unknown)}")
        self.words = words
        self._exact: dict[str, str] = {}
        self._prefix: list[str] = []  # LANG words, longest first
        for name, per_language in words.items():
            for variants in per_language.values():
                for word in variants:
                    key = _key(str(word))
                    if name == "lang":
                        self._prefix.append(key)
                    elif self._exact.setdefault(key, name) != name:
                        raise ValueError(f"SMS keyword {word!r} means two things")
        self._prefix.sort(key=len, reverse=True)

    @classmethod
    def from_data(cls, data_dir: Path) -> Keywords:
        raw = yaml.safe_load((data_dir / "sms" / "keywords.yml").read_text(encoding="utf-8"))
        return cls(raw["keywords"])

    def match(self, text: str) -> Keyword | None:
        key = _key(text)
        if not key or len(key) > 40:
            return None
        if key in self._exact:
            return Keyword(self._exact[key])
        for word in self._prefix:
            if key == word:
                return Keyword("lang")
            if key.startswith(word + " ") and len(key) - len(word) <= 20:
                return Keyword("lang", key[len(word) + 1 :])
        return None

    def all_words(self, name: str) -> list[str]:
        return [str(w) for variants in self.words.get(name, {}).values() for w in variants]


@dataclass(frozen=True)
class CallingCodes:
    """E.164 prefix -> supported country (a first guess at her country)."""

    codes: dict[str, str | None]

    @classmethod
    def from_data(cls, data_dir: Path) -> CallingCodes:
        raw = yaml.safe_load((data_dir / "sms" / "calling_codes.yml").read_text(encoding="utf-8"))
        return cls({str(k): v for k, v in raw["codes"].items()})

    def country(self, phone: str) -> str | None:
        digits = "".join(c for c in phone if c.isdigit())
        if not phone.strip().startswith(("+", "00")):
            return None  # a national or short number says nothing about the country
        digits = digits.removeprefix("00") if phone.strip().startswith("00") else digits
        for size in (3, 2, 1):
            if digits[:size] in self.codes:
                return self.codes[digits[:size]]
        return None
