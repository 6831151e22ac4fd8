"""Reading a screenshot of an offer: image bytes -> text, with Tesseract (Debian `tesseract-ocr-*`). No Rasa.

The image stays in memory: it is checked (byte limit, then the pixel count read from the header before any
decoding - decompression bombs), decoded once with Pillow, and piped to the `tesseract` binary on stdin.
Nothing is written to disk and the text it reads is never logged.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess  # noqa: S404 - the tesseract binary, with a fixed argument list
import warnings
from dataclasses import dataclass
from typing import Any

import regex

from bot.text import UNSPACED_LETTERS, normalize

log = logging.getLogger(__name__)

MAX_BYTES = 8 * 1024 * 1024  # a phone screenshot is well under this; checked before decoding
MAX_PIXELS = 24_000_000  # width x height read from the header, before decoding (decompression bombs)
MAX_SIDE = 3000  # larger images are scaled down before OCR (time, memory)
# Small letters are scaled up before OCR, to about GLYPH_TARGET_PX (the 75th percentile of the heights of the ink
# blobs on the page), at most MAX_UPSCALE times; letters SMALL_GLYPH_PX or taller are read as they are. This replaced
# "scale any image under 600 px up to 1200 px", which blew the letters of a short, wide screenshot up to 70 px:
# Tesseract then misread clean Chinese (development screenshots: characters 0.93 -> 0.97, flags equal to the text's
# 14 -> 21 of 24). Scaling 17-27 px letters up to 30 or 40 px cost Khmer and Burmese flags; screenshots shrunk to
# 0.7 and 0.5 still need the scaling (docs/offer-check.md, "How big the letters are").
SMALL_GLYPH_PX = 14.0
GLYPH_TARGET_PX = 30.0
MAX_UPSCALE = 3.0
_MAX_BLOBS = 20_000  # a dense screenshot has a few thousand
TIMEOUT_SECONDS = 60.0

# Her profile language -> Tesseract traineddata (Debian tesseract-ocr-<code>; Tagalog uses fil).
TESSERACT_LANGUAGE: dict[str, str] = {
    "en": "eng", "th": "tha", "my": "mya", "km": "khm", "vi": "vie", "id": "ind",
    "tl": "fil", "zh": "chi_sim", "ru": "rus", "uk": "ukr", "ro": "ron",
}  # fmt: skip
# A script seen in the first pass -> the language that reads it (when her profile language does not).
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("tha", r"\p{Thai}"),
    ("mya", r"\p{Myanmar}"),
    ("khm", r"\p{Khmer}"),
    ("chi_sim", r"\p{Han}"),
    ("rus", r"\p{Cyrillic}"),
)
_SCRIPT_RE = {code: regex.compile(pattern) for code, pattern in _SCRIPTS}
# Russian and Ukrainian are often typed in Latin letters. Read with rus+eng / ukr+eng, such a screenshot comes back
# with Cyrillic look-alikes inside Latin words ("ті" for "mi", "2пауи" for "znayu"); read again with English first
# when the first pass is mostly Latin (development screenshots: character accuracy 0.91 -> 0.99, 0.96 -> 0.99).
_LATIN_FIRST_WHEN_LATIN = frozenset({"rus", "ukr"})
_LATIN_LETTER = regex.compile(r"\p{Latin}")
# OCR puts spaces between Thai / Chinese / Burmese / Khmer characters; these scripts do not separate words.
_NO_SPACE = UNSPACED_LETTERS + r"\u3000-\u303F\uFF00-\uFFEF"
_INNER_SPACE = regex.compile(rf"(?<=[{_NO_SPACE}])\s+(?=[{_NO_SPACE}])")
# Tesseract's script detection (--psm 0, osd.traineddata) -> the language that reads that script. It does not
# know Burmese or Khmer: those are read when her profile language is Burmese or Khmer, or seen in the first pass.
_OSD_SCRIPT = {"Thai": "tha", "Han": "chi_sim", "Cyrillic": "rus"}
_OSD_LINE = regex.compile(r"Script: (\w+)\s+Script confidence: ([0-9.]+)")
# Scripts with marks stacked above and below the letters: Tesseract's page layout analysis (--psm 3) cuts those
# marks off into lines of their own and reads the letters without them (Burmese screenshots of the development
# sets: character accuracy 0.59 -> 0.94). Sparse text (--psm 11) keeps each line whole. Latin, Cyrillic and Han
# read a little better with the layout analysis (benchmarks/offer_eval.py; docs/offer-check.md, "Screenshots").
_SPARSE_TEXT = frozenset({"tha", "mya", "khm"})


class ImageRejected(Exception):
    """Not an image we read: ``reason`` is too_large | not_image | no_ocr."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OcrResult:
    text: str  # cleaned (spaces, Zawgyi, NFC)
    languages: str  # the Tesseract languages used, e.g. "tha+eng"

    @property
    def empty(self) -> bool:
        return not any(c.isalnum() for c in self.text)


def available() -> bool:
    return shutil.which("tesseract") is not None


def shorten(text: str, limit: int = 300) -> str:
    """Her OCR text, shortened to show back to her (cut at a space when there is one near the end)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.7 else cut) + "…"


def clean(text: str) -> str:
    """OCR output -> text for the analyser: lines joined, spaces inside unspaced scripts removed, Zawgyi -> Unicode."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    joined = "\n".join(line for line in lines if line)
    joined = _INNER_SPACE.sub("", joined)
    return normalize(joined, limit=4000).text


def _decode(data: bytes):  # type: ignore[no-untyped-def]
    """Bytes -> a grayscale Pillow image, refusing what is too large before decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_BYTES:
        raise ImageRejected("too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            width, height = image.size
            if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                raise ImageRejected("too_large")
            image.seek(0)  # an animated GIF/WebP: its first frame
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected("not_image") from None
    gray = image.convert("L")
    if max(gray.size) > MAX_SIDE:
        gray.thumbnail((MAX_SIDE, MAX_SIDE))
    letters = glyph_height(gray)
    if letters is not None and letters < SMALL_GLYPH_PX:
        factor = min(MAX_UPSCALE, GLYPH_TARGET_PX / letters)
        gray = gray.resize((int(gray.width * factor), int(gray.height * factor)), Image.Resampling.LANCZOS)
    return gray


def glyph_height(gray: Any) -> float | None:
    """How tall the letters of a grayscale image are, in pixels (None: too little text to tell).

    The letters are the page's blobs of ink: connected pixels well darker than the image's mean (or, for a dark-mode
    screenshot, well lighter - the polarity with more letter-sized blobs wins). Frames, bars and bubbles are too big
    to count, specks too small; the 75th percentile of the blobs' heights is about a letter with its marks (dots,
    accents, the lower Thai/Burmese marks and the strokes of a Chinese character are smaller blobs below it)."""
    import numpy as np
    from scipy import ndimage

    pixels = np.asarray(gray, dtype=np.int16)
    mean = float(pixels.mean())
    best: Any = None
    for ink in (pixels < mean - 40, pixels > mean + 40):
        labels, count = ndimage.label(ink)
        if count > _MAX_BLOBS:  # a photo or noise, not a page of letters (and measuring it would take seconds)
            continue
        boxes = ndimage.find_objects(labels)
        heights = np.array([rows.stop - rows.start for rows, _ in boxes], dtype=np.int32)
        widths = np.array([columns.stop - columns.start for _, columns in boxes], dtype=np.int32)
        letters = heights[(heights >= 4) & (heights < pixels.shape[0] / 4) & (widths < pixels.shape[1] / 3)]
        if best is None or len(letters) > len(best):
            best = letters
    if best is None or len(best) < 5:
        return None
    return float(np.percentile(best, 75))


def _page_mode(languages: str) -> str:
    return "11" if languages.split("+")[0] in _SPARSE_TEXT else "3"


def _tesseract(png: bytes, languages: str, psm: str | None = None) -> str:
    binary = shutil.which("tesseract")
    if binary is None:
        raise ImageRejected("no_ocr")
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, the image on stdin
            [binary, "stdin", "stdout", "-l", languages, "--psm", psm or _page_mode(languages)],
            input=png,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.error("OCR failed (%s)", type(error).__name__)
        raise ImageRejected("no_ocr") from None
    if done.returncode != 0:
        # never its output: it may hold her text. Script detection (--psm 0) fails on too little text: expected.
        log.log(logging.DEBUG if psm == "0" else logging.WARNING, "OCR failed (tesseract exit %s)", done.returncode)
        raise ImageRejected("no_ocr")
    return done.stdout.decode("utf-8", "replace")


def _osd_script(png: bytes) -> list[str]:
    """The script Tesseract's orientation-and-script detection sees, as a language code ([] when unsure)."""
    try:
        found = _OSD_LINE.search(_tesseract(png, "osd", psm="0"))
    except ImageRejected:  # too little text for OSD: not an error
        return []
    if found is None or float(found.group(2)) < 0.5 or found.group(1) not in _OSD_SCRIPT:
        return []
    return [_OSD_SCRIPT[found.group(1)]]


def _languages(primary: str) -> str:
    # chi_sim reads the Latin words inside Chinese text itself; with +eng, clean CJK glyphs were misread as Latin
    # (character accuracy on clean zh screenshots 0.74 -> 0.9, benchmarks/offer_eval.py)
    return primary if primary in ("eng", "chi_sim") else f"{primary}+eng"


def read_image(data: bytes, language: str | None) -> OcrResult:
    """OCR of one image in memory; ``language`` is her profile language (a second pass follows the script seen)."""
    if not available():
        raise ImageRejected("no_ocr")
    image = _decode(data)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    primary = TESSERACT_LANGUAGE.get(language or "en", "eng")
    languages = _languages(primary)
    raw = _tesseract(png, languages)
    # The script seen: a script her profile language does not read -> read it again in that script.
    seen = [code for code, pattern in _SCRIPT_RE.items() if len(pattern.findall(raw)) >= 5]
    if not seen:
        seen = _osd_script(png)
    if seen and primary not in seen and not (primary == "ukr" and seen == ["rus"]):
        languages = _languages(seen[0])
        raw = _tesseract(png, languages)
    elif primary in _LATIN_FIRST_WHEN_LATIN and _mostly_latin(raw):
        languages = f"eng+{primary}"
        raw = _tesseract(png, languages)
    return OcrResult(clean(raw), languages)


def _mostly_latin(text: str) -> bool:
    latin = len(_LATIN_LETTER.findall(text))
    return latin >= 20 and latin > 3 * len(_SCRIPT_RE["rus"].findall(text))
