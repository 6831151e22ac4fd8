"""Text folding for the risk screener: one canonical form for the message and the lexicon.

Both sides go through the same folding, so a lexicon entry written once matches the
variants girls actually type: any case, NFKC compatibility forms, leetspeak digits in
words ("h3lp"), Cyrillic/Latin/Greek look-alike letters mixed into one word, Latin
letters with or without diacritics (Vietnamese, Romanian), and repeated letters
("heeelp", "ช่วยด้วยยยย"). Russian/Ukrainian typed in Latin letters ("pomogite")
matches Cyrillic entries through a transliteration skeleton.
"""

from __future__ import annotations

import functools
import unicodedata

import regex

TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}@$]+")
_REPEATS = regex.compile(r"(.)\1+")
_HAS_LETTER = regex.compile(r"\p{L}")
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Thai}\p{Myanmar}\p{Khmer}\p{Han}\p{Lao}]")
_LATIN = regex.compile(r"[a-z]")
_CYRILLIC = regex.compile(r"\p{Cyrillic}")
_NOT_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}]+")
# "เขายึดpassportไป": a Latin/Cyrillic word glued to Thai/Burmese/Khmer/Chinese text is its own word.
_SCRIPT_SEAM = regex.compile(
    r"(?<=[\p{Latin}\p{Cyrillic}])(?=[\p{Thai}\p{Myanmar}\p{Khmer}\p{Han}\p{Lao}])"
    r"|(?<=[\p{Thai}\p{Myanmar}\p{Khmer}\p{Han}\p{Lao}])(?=[\p{Latin}\p{Cyrillic}])"
)
# Thai typed without tone marks is common on phones; both sides drop them (tone-insensitive match).
_THAI_TONES = regex.compile(r"[\u0E48-\u0E4B]")

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# Look-alike letters (lower case). A word mixing scripts is folded to its majority script.
_CYR_TO_LAT = str.maketrans("аеорсухіјѕԁһӏ", "aeopcyxijsdhl")
_GREEK_TO_LAT = str.maketrans("οαεικνρτυ", "oaeikvpty")
_LAT_TO_CYR = str.maketrans("aeopcyxi", "аеорсухі")
_CYR_SKELETON = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "ё": "o", "є": "e", "ж": "j",
        "з": "z", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
        "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "c", "ш": "s",
        "щ": "s", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "u", "я": "a", "'": "", "’": "",
    }
)  # fmt: skip
_LATIN_DIGRAPHS = (
    ("shch", "s"), ("sch", "s"), ("sh", "s"), ("ch", "c"), ("zh", "\u017e"), ("kh", "h"), ("ts", "c"), ("tz", "c"),
    ("yu", "u"), ("ju", "u"), ("iu", "u"), ("ya", "a"), ("ja", "a"), ("ia", "a"), ("yo", "o"), ("jo", "o"),
    ("ye", "e"), ("je", "e"), ("y", "i"), ("w", "v"), ("x", "h"), ("q", "k"),
)  # fmt: skip


_LATIN_MARKS = regex.compile(r"(?<=[a-z])\p{Mn}+")
_NEEDS_WORD_FOLD = regex.compile(r"[0134578@$]|[\p{Cyrillic}\p{Greek}]")


def _strip_latin_marks(text: str) -> str:
    """Drop combining marks that sit on a Latin letter (ă, ș, ệ ...) but keep Thai/Burmese/Khmer marks."""
    if text.isascii():
        return text
    stripped = _LATIN_MARKS.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", stripped).replace("đ", "d").replace("ı", "i")


@functools.lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    if _HAS_LETTER.search(word):
        word = word.translate(_LEET)
    latin, cyrillic = len(_LATIN.findall(word)), len(_CYRILLIC.findall(word))
    if latin and cyrillic:
        word = word.translate(_LAT_TO_CYR) if cyrillic > latin else word.translate(_CYR_TO_LAT)
    elif latin:
        word = word.translate(_GREEK_TO_LAT)
    return word


def fold(text: str) -> str:
    """Canonical form: NFKC, case-folded, look-alikes and marks folded, repeats collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _strip_latin_marks(text)
    if _NO_SPACE_SCRIPT.search(text):
        text = _THAI_TONES.sub("", text)
        if _LATIN.search(text) or _CYRILLIC.search(text):
            text = _SCRIPT_SEAM.sub(" ", text)
    if _NEEDS_WORD_FOLD.search(text) and _LATIN.search(text):  # leetspeak or mixed-script words only
        text = TOKEN.sub(lambda m: _fold_word(m.group()), text)
    return _REPEATS.sub(r"\1", text)


@functools.lru_cache(maxsize=65536)
def skeleton(word: str) -> str:
    """Reduced Latin spelling shared by Cyrillic words and their phone transliterations."""
    if _CYRILLIC.search(word):
        word = word.translate(_CYR_SKELETON)
    else:
        for digraph, single in _LATIN_DIGRAPHS:
            word = word.replace(digraph, single)
        word = word.replace("\u017e", "j")  # zh -> ж, kept apart until "ja"/"je"... are reduced
    return _REPEATS.sub(r"\1", word)


def is_no_space_script(text: str) -> bool:
    """Thai, Burmese, Khmer, Lao, Chinese: written without spaces between words."""
    return bool(_NO_SPACE_SCRIPT.search(text))


def is_cyrillic(text: str) -> bool:
    return bool(_CYRILLIC.search(text))


def is_latin(word: str) -> bool:
    return bool(_LATIN.search(word)) and not _CYRILLIC.search(word)


def squeeze(text: str) -> str:
    """Folded text without spaces or punctuation (for scripts written without spaces)."""
    return _NOT_WORD.sub("", text)


def tokens(folded: str) -> list[str]:
    return TOKEN.findall(folded)
