"""Input normalisation that runs before anything else (no Rasa imports).

Order matters: decode -> strip invisible/control characters -> Zawgyi to Unicode (so
language identification and NLU see standard Burmese) -> NFC -> collapse whitespace ->
bound the length at a character boundary.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import regex

MAX_CHARS = 1000  # NLU input bound; longer messages are cut at a word boundary
# Zero-width and bidi controls, soft hyphen, BOM, variation selectors: invisible, used to
# evade filters or pasted by accident.
_INVISIBLE = regex.compile(r"[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\uFEFF\uFE00-\uFE0F]")
_CONTROL = regex.compile(r"[\p{Cc}\p{Cs}\p{Co}\p{Cn}]")
_SPACES = regex.compile(r"\s+")
# Scripts written without spaces between words (a space there is a pause, or OCR's gap between letters).
UNSPACED_LETTERS = r"\p{Thai}\p{Myanmar}\p{Khmer}\p{Han}"
_LETTER = regex.compile(r"\p{L}")
_MYANMAR = regex.compile(r"[\u1000-\u109F]")
ZAWGYI_THRESHOLD = 0.95


@dataclass(frozen=True)
class CleanText:
    """The normalised message plus what normalisation noticed."""

    text: str
    truncated: bool = False
    was_zawgyi: bool = False
    has_letters: bool = False

    @property
    def empty(self) -> bool:
        return not self.text


@functools.lru_cache(maxsize=1)
def _zawgyi_detector():  # type: ignore[no-untyped-def]
    from myanmartools import ZawgyiDetector

    return ZawgyiDetector()


def zawgyi_probability(text: str) -> float:
    """Probability that Burmese ``text`` is Zawgyi-encoded (0.0 if it has no Burmese)."""
    if not _MYANMAR.search(text):
        return 0.0
    return float(_zawgyi_detector().get_zawgyi_probability(text))


def zawgyi_to_unicode(text: str) -> str:
    """Convert Zawgyi-encoded Burmese to standard Unicode."""
    from myanmar import converter

    return str(converter.convert(text, "zawgyi", "unicode"))


def decode(raw: bytes | str | None) -> str:
    """Bytes from a gateway become text; undecodable bytes become U+FFFD, never a crash."""
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return raw


def _cut(text: str, limit: int) -> str:
    """Cut at the last space before ``limit`` (or at a grapheme boundary)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    if space > limit * 0.8:
        return head[:space]
    graphemes = regex.findall(r"\X", text[: limit + 8])
    out, size = [], 0
    for g in graphemes:
        if size + len(g) > limit:
            break
        out.append(g)
        size += len(g)
    return "".join(out)


def normalize(raw: bytes | str | None, limit: int = MAX_CHARS) -> CleanText:
    """Normalise one inbound message (see module docstring)."""
    text = decode(raw)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text).replace("\ufffd", " ")
    was_zawgyi = zawgyi_probability(text) >= ZAWGYI_THRESHOLD
    if was_zawgyi:
        text = zawgyi_to_unicode(text)
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text).strip()
    cut = _cut(text, limit)
    return CleanText(
        text=cut,
        truncated=len(cut) < len(text),
        was_zawgyi=was_zawgyi,
        has_letters=bool(_LETTER.search(cut)),
    )
