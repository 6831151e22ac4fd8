"""SMS segment arithmetic (GSM 03.38 / 3GPP TS 23.038), pure.

GSM-7: 160 septets in one SMS, 153 per part when concatenated; characters of the extension
table (^ { } \\ [ ~ ] | € and form feed) take two septets (escape + character).
UCS-2 (anything outside GSM-7, e.g. Thai, Burmese, Khmer, Chinese, Cyrillic, emoji): 70 UTF-16
code units in one SMS, 67 per part; characters outside the BMP (most emoji) take two.
A part never ends inside a word if it can be helped, and never inside a character, an
escape pair, a surrogate pair or a grapheme cluster.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7, UCS2 = "GSM-7", "UCS-2"
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}
_GRAPHEME = regex.compile(r"\X")


def encoding(text: str) -> str:
    """GSM-7 if every character is in the GSM 03.38 tables, else UCS-2."""
    return GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else UCS2


def fold_to_gsm(text: str) -> str:
    """Latin letters without their accents where GSM-7 lacks them (Romanian ș ț ă â î -> s t a a i),
    keeping the ones GSM-7 has (é, ü, ñ...). Romanian SMS are commonly sent this way: 160
    characters per SMS instead of 70. Other characters are left as they are."""
    out = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENSION or not ("\u00c0" <= char <= "\u024f"):
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)[0]
        out.append(base if base in GSM7_BASIC else char)
    return "".join(out)


def units(text: str, coding: str | None = None) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text takes."""
    coding = coding or encoding(text)
    if coding == GSM7:
        return sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


@dataclass(frozen=True)
class SegmentCount:
    encoding: str
    units: int
    segments: int


def count(text: str) -> SegmentCount:
    """How many SMS a text costs."""
    coding = encoding(text)
    size = units(text, coding)
    single, part = LIMITS[coding]
    return SegmentCount(coding, size, 0 if size == 0 else 1 if size <= single else -(-size // part))


def split(text: str) -> list[str]:
    """Concatenation parts, each within the per-part limit, cut at spaces when possible."""
    coding = encoding(text)
    single, part = LIMITS[coding]
    if units(text, coding) <= single:
        return [text] if text else []
    parts: list[str] = []
    current: list[str] = []
    size = 0
    last_space = -1  # index in ``current`` after which we may cut
    for grapheme in _GRAPHEME.findall(text):
        g_size = units(grapheme, coding)
        if size + g_size > part:
            if last_space > 0:
                head, tail = current[:last_space], current[last_space:]
            else:
                head, tail = current, []
            parts.append("".join(head))
            current, size = tail, sum(units(g, coding) for g in tail)
            last_space = -1
        current.append(grapheme)
        size += g_size
        if grapheme.isspace():
            last_space = len(current)
    if current:
        parts.append("".join(current))
    return parts


def fit(text: str, max_segments: int) -> str:
    """The text itself if it fits in ``max_segments`` SMS, else cut at a word boundary + "..."."""
    if count(text).segments <= max_segments:
        return text
    coding = encoding(text)
    single, part = LIMITS[coding]
    budget = (single if max_segments == 1 else part * max_segments) - units("...", coding)
    out: list[str] = []
    size = 0
    cut_at = 0
    for grapheme in _GRAPHEME.findall(text):
        g_size = units(grapheme, coding)
        if size + g_size > budget:
            break
        out.append(grapheme)
        size += g_size
        if grapheme.isspace():
            cut_at = len(out)
    kept = "".join(out[:cut_at] if cut_at > len(out) // 2 else out).rstrip()
    return kept + "..."
