"""One SMS reply from a turn's messages: buttons become a numbered menu, and the whole reply
is kept within the segment budget without cutting a word or a character (pure).

When a reply is too long, prose is shortened first (longest message first); messages that
carry phone numbers are shortened last, and the numbered menu is kept whole when it can be.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from bot.content.render import Message
from bot.sms import segments

_PHONE = regex.compile(r"\d[\d\s-]{1,}\d")  # 112, 191, 1300, 02-123 4567
_GRAPHEME = regex.compile(r"\X")
ELLIPSIS = "..."


@dataclass(frozen=True)
class SmsReply:
    text: str
    menu: tuple[str, ...] = ()  # payload of reply "1", "2", ...

    @property
    def segments(self) -> int:
        return segments.count(self.text).segments


def capacity(coding: str, max_segments: int) -> int:
    single, part = segments.LIMITS[coding]
    return single if max_segments <= 1 else part * max_segments


def shorten(text: str, max_units: int, coding: str) -> str:
    """``text`` cut at a word boundary (or a grapheme, for scripts without spaces) + "..."."""
    if segments.units(text, coding) <= max_units:
        return text
    budget = max_units - segments.units(ELLIPSIS, coding)
    if budget <= 0:
        return ""
    kept: list[str] = []
    size, cut_at = 0, 0
    for grapheme in _GRAPHEME.findall(text):
        g_size = segments.units(grapheme, coding)
        if size + g_size > budget:
            break
        kept.append(grapheme)
        size += g_size
        if grapheme.isspace():
            cut_at = len(kept)
    head = kept[:cut_at] if cut_at > len(kept) // 2 else kept
    return "".join(head).rstrip(" ,;:-") + ELLIPSIS


def compose(
    messages: list[Message], menu_intro: str, max_segments: int, footer: str = "", gsm_fold: bool = False
) -> SmsReply:
    """The turn as one SMS text within ``max_segments``; buttons numbered across messages.

    ``gsm_fold`` drops accents GSM-7 lacks (for languages whose readers expect that, e.g. Romanian)."""
    if gsm_fold:
        fold = segments.fold_to_gsm
        messages = [Message(fold(m.text), tuple((fold(t), p) for t, p in m.buttons)) for m in messages]
        menu_intro, footer = fold(menu_intro), fold(footer)
    bodies = [m.text.strip() for m in messages if m.text.strip()]
    payloads: list[str] = []
    menu_lines: list[str] = []
    for message in messages:
        for title, payload in message.buttons:
            payloads.append(payload)
            menu_lines.append(f"{len(payloads)} {title}")
    tail = [menu_intro, *menu_lines] if menu_lines else []
    if footer:
        tail.append(footer)
    tail_text = "\n".join(tail)
    text = "\n".join([*bodies, tail_text] if tail_text else bodies)
    coding = segments.encoding(text)
    limit = capacity(coding, max_segments)
    if segments.units(text, coding) <= limit:
        return SmsReply(text, tuple(payloads))
    # Shorten prose (no phone numbers) in proportion to its length, so every message keeps its
    # opening; then, if still needed, the lines with numbers; the menu is kept whole when it can be.
    for has_numbers in (False, True):
        for _ in range(4):
            excess = segments.units(_join(bodies, tail_text), coding) - limit
            chosen = [i for i, b in enumerate(bodies) if bool(_PHONE.search(b)) == has_numbers and b]
            if excess <= 0 or not chosen:
                break
            sizes = {i: segments.units(bodies[i], coding) for i in chosen}
            total = sum(sizes.values())
            for i in chosen:
                share = -(-excess * sizes[i] // total) + segments.units(ELLIPSIS, coding)
                bodies[i] = shorten(bodies[i], max(sizes[i] - share, 0), coding)
    bodies = [b for b in bodies if b]
    text = _join(bodies, tail_text)
    if segments.units(text, coding) > limit:  # even the menu alone is too long: cut the whole
        text = shorten(text, limit, coding)
    return SmsReply(text, tuple(payloads))


def _join(bodies: list[str], tail_text: str) -> str:
    return "\n".join([*bodies, tail_text] if tail_text else bodies)
