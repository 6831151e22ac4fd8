"""Script-aware word segmentation for all supported languages (no Rasa imports).

Space-delimited scripts go through spaCy's multi-language tokenizer. Scripts written
without spaces get their own rules: Thai via pythainlp's dictionary segmenter, Burmese
and Khmer by syllable rules, Chinese character by character (the featurizer then builds
character n-grams and token bigrams, which is what an intent classifier needs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterator

import regex

# A run of characters of one script; everything that is not one of the four
# "no-space" scripts falls into the generic run.
_RUN = regex.compile(
    r"(?P<thai>[\p{Thai}]+)|(?P<mymr>[\p{Myanmar}]+)|(?P<khmr>[\p{Khmer}]+)"
    r"|(?P<han>[\p{Han}\u3005\u3007]+)|(?P<other>[^\p{Thai}\p{Myanmar}\p{Khmer}\p{Han}]+)"
)
# Burmese syllable start: a consonant, independent vowel or digit that is not stacked
# (preceded by U+1039) and not killed (followed by asat U+103A or the stacker U+1039).
_MYANMAR_SYLLABLE_START = regex.compile(r"(?<!\u1039)[\u1000-\u102A\u103F\u1040-\u1049\u104C-\u104F](?![\u103A\u1039])")
# Khmer syllable start: a consonant that carries a vowel, subscript or sign, or a bare
# consonant that does not follow a vowel (a bare consonant after a vowel is the coda of
# the previous syllable, as in ការ = កា+រ); never a subscript (after COENG U+17D2).
_KHMER_CLUSTER_START = regex.compile(
    r"(?<!\u17D2)[\u1780-\u17A2](?=[\u17B6-\u17D1\u17D2\u17DD])"
    r"|(?<![\u17B6-\u17D2\u17DD])[\u1780-\u17A2]"
    r"|[\u17A3-\u17B3\u17E0-\u17E9]"
)
_PUNCT_OR_SPACE = regex.compile(r"^[\p{P}\p{S}\p{Z}\p{Cf}\s]*$")


@dataclass(frozen=True)
class Piece:
    """One token: its text and character offset in the input."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _split_at(text: str, pattern: regex.Pattern[str]) -> list[tuple[str, int]]:
    """Split ``text`` before every match of ``pattern`` (keeping offsets)."""
    starts = [m.start() for m in pattern.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = starts + [len(text)]
    return [(text[a:b], a) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def myanmar_syllables(text: str) -> list[tuple[str, int]]:
    """Burmese syllables with offsets (rule-based, Unicode encoding)."""
    return _split_at(text, _MYANMAR_SYLLABLE_START)


def khmer_clusters(text: str) -> list[tuple[str, int]]:
    """Khmer syllables (rule-based clusters) with offsets."""
    return _split_at(text, _KHMER_CLUSTER_START)


def han_characters(text: str) -> list[tuple[str, int]]:
    """One token per Han character."""
    return [(ch, i) for i, ch in enumerate(text)]


@functools.lru_cache(maxsize=1)
def _thai_segmenter() -> Callable[[str], list[str]]:
    from pythainlp.tokenize import word_tokenize

    return functools.partial(word_tokenize, engine="newmm", keep_whitespace=False)


def thai_words(text: str) -> list[tuple[str, int]]:
    """Thai words (pythainlp newmm, dictionary maximal matching) with offsets."""
    return _with_offsets(text, _thai_segmenter()(text))


@functools.lru_cache(maxsize=1)
def _spacy_tokenizer() -> Callable[[str], list[str]]:
    import spacy

    nlp = spacy.blank("xx")  # rule-based multi-language tokenizer, no model download
    return lambda text: [t.text for t in nlp.tokenizer(text)]


def generic_words(text: str) -> list[tuple[str, int]]:
    """Words of space-delimited scripts (Latin, Cyrillic, ...) via spaCy's xx tokenizer."""
    return _with_offsets(text, _spacy_tokenizer()(text))


def _with_offsets(text: str, words: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    cursor = 0
    for word in words:
        pos = text.find(word, cursor)
        if pos < 0:  # segmenter normalised the word; keep order, approximate offset
            pos = cursor
        out.append((word, pos))
        cursor = pos + len(word)
    return out


_SEGMENTERS: dict[str, Callable[[str], list[tuple[str, int]]]] = {
    "thai": thai_words,
    "mymr": myanmar_syllables,
    "khmr": khmer_clusters,
    "han": han_characters,
    "other": generic_words,
}


def _runs(text: str) -> Iterator[tuple[str, str, int]]:
    for match in _RUN.finditer(text):
        kind = match.lastgroup or "other"
        yield kind, match.group(), match.start()


_SIMPLE_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def count_words(text: str) -> int:
    """Word count without loading spaCy: space-delimited runs by a regex, other scripts by
    their own segmenters (used by the gateway's language stickiness)."""
    total = 0
    for kind, run, _ in _runs(text):
        if kind == "other":
            total += len(_SIMPLE_WORD.findall(run))
        else:
            total += sum(1 for word, _ in _SEGMENTERS[kind](run) if not _PUNCT_OR_SPACE.match(word))
    return total


def warm_up() -> None:
    """Load the Thai dictionary and spaCy now, not on a user's first message."""
    segment("ทดสอบ test")


def segment(text: str) -> list[Piece]:
    """Split ``text`` into tokens across scripts; punctuation-only pieces are dropped."""
    pieces: list[Piece] = []
    for kind, run, offset in _runs(text):
        for word, start in _SEGMENTERS[kind](run):
            word = word.strip()
            if not word or _PUNCT_OR_SPACE.match(word):
                continue
            pieces.append(Piece(word, offset + run.find(word, start)))
    return pieces
