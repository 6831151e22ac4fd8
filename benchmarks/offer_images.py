"""Screenshots of offer texts, rendered with Debian `fonts-noto-*` fonts and degraded like a phone photo.

Used by `benchmarks/offer_eval.py` and tests/test_offer_ocr.py. Deterministic (seeded): the same text and
seed give the same image.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import regex
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/opentype/noto"))
# language -> (font file, index in a collection)
FONTS: dict[str, tuple[str, int]] = {
    "th": ("NotoSansThai-Regular.ttf", 0),
    "my": ("NotoSansMyanmar-Regular.ttf", 0),
    "km": ("NotoSansKhmer-Regular.ttf", 0),
    "zh": ("NotoSansCJK-Regular.ttc", 2),  # index 2: Simplified Chinese
}
LATIN = ("NotoSans-Regular.ttf", 0)  # Latin, Vietnamese, Cyrillic, and the emoji-free rest
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\uFE0F\u200D]")
# The script each non-Latin font draws; everything else (digits, Latin names, punctuation) falls back to LATIN,
# as a phone's font fallback does.
_SCRIPT = {
    "th": regex.compile(r"[\p{Thai}]"),
    "my": regex.compile(r"[\p{Myanmar}]"),
    "km": regex.compile(r"[\p{Khmer}]"),
}


def font_path(name: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{name}: install the Debian fonts-noto-core / fonts-noto-cjk packages")


def _font(language: str, size: int) -> ImageFont.FreeTypeFont:
    name, index = FONTS.get(language, LATIN)
    return ImageFont.truetype(str(font_path(name)), size, index=index, layout_engine=ImageFont.Layout.RAQM)


def drawable(text: str) -> str:
    """The text as it can appear on the image: emoji dropped (no colour-emoji font), spaces collapsed."""
    return " ".join(_EMOJI.sub("", text).split())


class _Fonts:
    """Her script's font plus the Latin fallback: text is drawn in runs of one font each."""

    def __init__(self, language: str, size: int) -> None:
        self.main = _font(language, size)
        self.latin = _font("en", size)
        self.script = _SCRIPT.get(language)

    def runs(self, text: str) -> list[tuple[str, ImageFont.FreeTypeFont]]:
        if self.script is None:
            return [(text, self.main)] if text else []
        out: list[tuple[str, ImageFont.FreeTypeFont]] = []
        for cluster in regex.findall(r"\X", text):
            ours = self.script.match(cluster) or (cluster == " " and out and out[-1][1] is self.main)
            font = self.main if ours else self.latin
            if out and out[-1][1] is font:
                out[-1] = (out[-1][0] + cluster, font)
            else:
                out.append((cluster, font))
        return out

    def getlength(self, text: str) -> float:
        return sum(font.getlength(run) for run, font in self.runs(text))

    def draw(self, draw: ImageDraw.ImageDraw, x: float, y: float, text: str) -> None:
        for run, font in self.runs(text):
            draw.text((x, y), run, font=font, fill=(20, 20, 20))
            x += font.getlength(run)


def _wrap(text: str, font: _Fonts, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
            line = ""
        for cluster in regex.findall(r"\X", word):  # a word wider than the line: by grapheme clusters
            if font.getlength(line + cluster) > width and line:
                lines.append(line)
                line = ""
            line += cluster
    if line:
        lines.append(line)
    return lines


def render(text: str, language: str, *, degrade: bool = True, seed: int = 0) -> bytes:
    """A chat-bubble screenshot of ``text`` (JPEG bytes); ``degrade``: phone frame, rotation, blur, JPEG 55."""
    rng = random.Random(seed)
    size = 30
    font = _Fonts(language, size)
    width = 720
    lines = _wrap(drawable(text), font, width - 120)
    line_height = int(size * (2.0 if language in ("my", "km", "th") else 1.5))
    bubble_h = line_height * len(lines) + 40
    height = bubble_h + 260
    image = Image.new("RGB", (width, height), (236, 229, 221))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 90), fill=(0, 136, 204))  # the app's title bar
    draw.text((30, 25), "Chat", font=_font("en", 32), fill=(255, 255, 255))
    draw.rounded_rectangle((30, 130, width - 40, 130 + bubble_h), radius=22, fill=(255, 255, 255))
    y = 150
    for line in lines:
        font.draw(draw, 55, y, line)
        y += line_height
    if degrade:
        framed = Image.new("RGB", (width + 80, height + 200), (25, 25, 25))  # a phone-like frame around it
        framed.paste(image, (40, 100))
        image = framed.rotate(rng.uniform(-2.0, 2.0), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(25, 25, 25))
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=55 if degrade else 92)
    return buffer.getvalue()
