"""Numbers in the forms girls type them: 20000, 20,000, 20.000, 20 000, 1,5, 20k, 2 หมื่น, 2万, สองหมื่น,
两万, 20 тысяч, 5 juta, 8 triệu, native digits (๒๐, ၂၀, ២០), with a currency before or after and a period
("a month", "เดือนละ", "每月") nearby; and her age ("I am 16", "อายุ 16", "我16岁").

All words come from data/offer/<lang>.yml (``numbers``, ``currencies``, ``periods``, ``age``); this module
only compiles them (once) and applies them. Nothing here knows a language.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import regex

from bot.offer.model import Amount

_NATIVE_DIGIT = regex.compile(r"[^\P{Nd}0-9]")
_LATIN_MARKS = regex.compile(r"(?<=[a-z])\p{Mn}+")
_SPACES = regex.compile(r"[\s\u00a0\u202f]+")
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Thai}\p{Myanmar}\p{Khmer}\p{Han}\p{Lao}]")
_TWO_DIGITS = regex.compile(r"(?<![\d.,])\d{2}(?![\d]|[.,]\d)")
_GROUP_SEPARATOR = regex.compile(r"[.,' ](?=\d{3}(?!\d))")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})

# A number: grouped thousands (20,000 / 20.000 / 20 000 / 1,500.50) or plain digits with decimals (1.5 / 1,5).
_NUMBER = (
    r"(?<![\d.,])(?:\d{1,3}(?:(?P<sep>[.,' ])\d{3})(?:(?P=sep)\d{3})*(?:(?!(?P=sep))[.,]\d{1,2})?|\d+(?:[.,]\d+)?)(?!\d)"
)
YEARS = range(1950, 2101)
AGES = range(10, 71)
PERIOD_AFTER = 24  # characters after an amount searched for "a month"
PERIOD_BEFORE = 14  # characters before it, for "เดือนละ 20000", "月薪2万", "per month: 500"
AGE_WINDOW = 24  # characters around a number searched for "I am", "years old"
# Night work, from the hours an offer states: 22:00-04:59 on a 24-hour clock ("22:00", "02:30", "23h"; a
# one-digit hour is left alone: "2:00" may be afternoon, "1.50" a price), an early-morning
# hour 12/0-4 ("3am", "3 pagi", "2h sáng", "4 утра") or a late-evening word with 10-12 or 1-4 ("10pm", "2 ночи").
EARLY_NIGHT = frozenset({12, 0, 1, 2, 3, 4})
LATE_NIGHT = frozenset({10, 11, 12, 1, 2, 3, 4})
_CLOCK_24 = regex.compile(r"(?<![\d.,:])(?:2[2-4]|0[0-4])(?:[:.](?:00|30)|:[0-5]\d|h(?:[0-5]\d)?)(?![\d\p{L}])")
MAX_AMOUNTS = 20  # a report needs the offer's sums, not every number of a long paste
BARE_MINIMUM = 1000  # a number with no currency, multiplier or period counts from here
PERIOD_MINIMUM = 100  # a number with only a period ("500 a day") counts from here


def light(text: str) -> str:
    """Case-folded NFKC text with native digits as 0-9 and Latin diacritics dropped (keeps 20000 intact,
    unlike the risk fold, which squeezes repeated characters)."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    if not text.isascii():
        text = _NATIVE_DIGIT.sub(lambda m: str(unicodedata.digit(m.group(), 0)), text)
        text = unicodedata.normalize("NFC", _LATIN_MARKS.sub("", unicodedata.normalize("NFD", text)))
        text = text.replace("đ", "d").replace("ı", "i")
    return _SPACES.sub(" ", text)


def _alternation(words: Iterable[str]) -> str:
    """One regex alternative per word; ``word*`` takes the rest of the word (рубл* = рублей, рубля);
    words of spaced scripts must stand alone, Thai/Chinese/... may touch other letters."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        stem = word[:-1] if word.endswith("*") and len(word) > 1 else word
        body = regex.escape(stem).replace(r"\ ", r"\s?")
        if word.endswith("*") and len(word) > 1:
            body += r"\p{L}*"
        if _NO_SPACE_SCRIPT.search(stem):
            parts.append(body)
            continue
        if stem[:1].isalnum():
            body = r"(?<!\p{L})" + body  # a digit may touch it: 20000baht, rp5000
        if stem[-1:].isalnum():
            body += r"(?![\p{L}])"
        parts.append(body)
    return "|".join(parts) if parts else r"(?!x)x"


def _key(word: str) -> str:
    return light(word.rstrip("*") if len(word) > 1 else word).strip()


@dataclass
class NumberWords:
    """Spelled numbers of scripts without spaces (สองหมื่นห้าพัน, 两万五千) -> digits."""

    digits: dict[str, int]
    units: dict[str, int]

    def __post_init__(self) -> None:
        words = list(self.digits) + list(self.units)
        self.pattern = regex.compile(f"(?:{'|'.join(regex.escape(w) for w in sorted(words, key=len, reverse=True))})+")
        self.token = regex.compile("|".join(regex.escape(w) for w in sorted(words, key=len, reverse=True)))
        self.starts = set(self.digits) | {w for w, v in self.units.items() if v == 10}

    def value(self, run: str) -> int | None:
        tokens = self.token.findall(run)
        if len(tokens) < 2 or tokens[0] not in self.starts:
            return None  # "一个月", "千万别", "แสนดี": not a number
        total = section = 0
        digit: int | None = None
        last_unit = 0  # the unit just before a trailing digit: 一万五 = 15000, สองหมื่นห้า = 25000
        for token in tokens:
            if token in self.digits:
                value = self.digits[token]
                digit = value if digit is None else (digit + value if digit >= 10 else digit * 10 + value)
                continue
            unit = last_unit = self.units[token]
            if unit >= 10_000:
                total += ((section + (digit or 0)) or 1) * unit
                section = 0
            else:
                section += (1 if digit is None else digit) * unit
            digit = None
        if digit is not None and digit < 10 and last_unit >= 100 and tokens[-1] in self.digits:
            return total + section + digit * last_unit // 10
        return total + section + (digit or 0)

    def replace(self, text: str) -> str:
        if not self.digits:
            return text

        def sub(match: regex.Match[str]) -> str:
            value = self.value(match.group())
            return match.group() if value is None else f" {value} "

        return self.pattern.sub(sub, text)


class NumberReader:
    """Compiled number, currency, period and age patterns of every language file."""

    def __init__(self, languages: Mapping[str, Mapping[str, Any]]) -> None:
        self.multipliers: dict[str, float] = {}
        self.currencies: dict[str, str] = {}
        self.periods: dict[str, str] = {}
        self.before: dict[str, str] = {}  # currency words written before the number (rp 5000, ကျပ် ၃၀၀၀)
        connectors: set[str] = set()
        digits: dict[str, int] = {}
        units: dict[str, int] = {}
        ages: list[str] = []
        clock: dict[str, list[str]] = {"early": [], "late": []}
        for code, data in languages.items():
            numbers = dict(data.get("numbers") or {})
            for word, value in dict(numbers.get("multipliers") or {}).items():
                self._put(self.multipliers, str(word), float(value), code, "multiplier")
            spelled = dict(numbers.get("spelled") or {})
            for word, value in dict(spelled.get("digits") or {}).items():
                digits[light(str(word))] = int(value)
            for word, value in dict(spelled.get("units") or {}).items():
                units[light(str(word))] = int(value)
            connectors.update(light(str(c)).strip() for c in numbers.get("connectors") or [])
            for currency, words in dict(data.get("currencies") or {}).items():
                for word in words:
                    self._put(self.currencies, str(word), str(currency), code, "currency")
            for currency, words in dict(data.get("currencies_before") or {}).items():
                for word in words:
                    self._put(self.before, str(word), str(currency), code, "currency")
            for period, words in dict(data.get("periods") or {}).items():
                for word in words:
                    self._put(self.periods, str(word), str(period), code, "period")
            ages.extend(str(t) for t in data.get("age") or [])
            for part, templates in dict(data.get("clock") or {}).items():
                if part not in clock:
                    raise ValueError(f"data/offer/{code}.yml clock: {part!r} is not early or late")
                clock[part].extend(str(t) for t in templates)
        self.spelled = NumberWords(digits, units)
        self._multiplier_keys = {_key(w): w for w in self.multipliers}
        self._currency_keys = {_key(w): w for w in self.currencies}
        self._before_keys = {_key(w): w for w in self.before}
        currency = _alternation(self.currencies)
        # Before a number: symbols ($, ฿, €) and the words a language writes there (currencies_before).
        symbols = [w for w in self.currencies if not regex.search(r"\p{L}", w)]
        before = _alternation([*symbols, *self.before])
        # One-letter multipliers touch the number (20k, 20к, 2w); words may follow a space (20 тысяч, 2 หมื่น).
        short = _alternation(w for w in self.multipliers if len(w.rstrip("*")) == 1)
        long = _alternation(w for w in self.multipliers if len(w.rstrip("*")) > 1)
        connector = "|".join(regex.escape(c) for c in sorted(connectors, key=len, reverse=True)) or r"(?!x)x"
        self.amount_re = regex.compile(
            rf"(?:(?P<pre>{before}) ?)?(?P<num>{_NUMBER})"
            rf"(?P<mult>{short}|(?: ?(?:{long})\.?))?"
            rf"(?: ?(?:(?:{connector}) )?(?P<post>{currency}))?"
        )
        self.period_re = regex.compile(_alternation(self.periods))
        # Before the number the period must lead straight to it: "เดือนละ 20000", "月薪2万", "per month: $500".
        self.period_before_re = regex.compile(rf"(?:{_alternation(self.periods)})[\s:,-]*(?:{currency})?\s*$")
        self.age_re = regex.compile("|".join(self._age_pattern(t) for t in ages) or r"(?!x)x")
        self._period_keys = {_key(w): w for w in self.periods}
        self.clock_re = {
            part: regex.compile("|".join(self._hour_pattern(t) for t in templates) or r"(?!x)x")
            for part, templates in clock.items()
        }

    @staticmethod
    def _put(table: dict[str, Any], word: str, value: object, code: str, kind: str) -> None:
        star = word.endswith("*") and len(word) > 1
        word = light(word[:-1] if star else word).strip() + ("*" if star else "")
        if word in table and table[word] != value:
            raise ValueError(f"data/offer/{code}.yml: {kind} {word!r} means {value!r} here but {table[word]!r} elsewhere")
        table[word] = value

    @staticmethod
    def _age_pattern(template: str) -> str:
        if "{n}" not in template:
            raise ValueError(f"data/offer: age template {template!r} needs {{n}}")
        before, after = light(template).strip().split("{n}", 1)
        head = regex.escape(before.strip()).replace(r"\ ", r"\s*") if before.strip() else ""
        tail = regex.escape(after.strip()).replace(r"\ ", r"\s*") if after.strip() else ""
        if head and head[0].isalpha() and not _NO_SPACE_SCRIPT.search(head[0]):
            head = r"(?<!\p{L})" + head
        if tail and tail[-1].isalpha() and not _NO_SPACE_SCRIPT.search(tail[-1]):
            tail += r"(?!\p{L})"
        return rf"(?:{head}\s*(?<![\d.,])(\d{{1,2}})(?![\d]|[.,]\d)\s*{tail})"

    @staticmethod
    def _hour_pattern(template: str) -> str:
        """An hour template ("{n}pm", "{n} malam", "ตี{n}"): a 1-2 digit hour where {n} stands."""
        if "{n}" not in template:
            raise ValueError(f"data/offer: clock template {template!r} needs {{n}}")
        before, after = light(template).split("{n}", 1)
        head = regex.escape(before.strip()).replace(r"\ ", r"\s*") if before.strip() else ""
        tail = regex.escape(after.strip()).replace(r"\ ", r"\s*") if after.strip() else ""
        if head and head[0].isalpha() and not _NO_SPACE_SCRIPT.search(head[0]):
            head = r"(?<!\p{L})" + head
        if tail and tail[-1].isalpha() and not _NO_SPACE_SCRIPT.search(tail[-1]):
            tail += r"(?!\p{L})"
        return rf"(?:{head}\s*(?<![\d.,:])(\d{{1,2}})(?:[:.]00)?(?!\d)\s*{tail})"

    # -- reading ---------------------------------------------------------------------------------
    def night_hours(self, prepared: str) -> str | None:
        """The first stated working hour that falls in the night (22:00-04:59), or None."""
        for match in _CLOCK_24.finditer(prepared):
            return match.group()
        for part, hours in (("early", EARLY_NIGHT), ("late", LATE_NIGHT)):
            for match in self.clock_re[part].finditer(prepared):
                hour = int(next(g for g in match.groups() if g))
                if hour in hours:
                    return match.group().strip()
        return None

    def prepare(self, text: str) -> str:
        """light() plus spelled numbers turned into digits."""
        return self.spelled.replace(light(text))

    def age(self, prepared: str) -> tuple[int | None, tuple[int, int] | None]:
        """Her age and where it was said (the first plausible one). Only the words around a 2-digit number are
        tried, so a long text costs one scan for numbers."""
        for candidate in _TWO_DIGITS.finditer(prepared):
            if int(candidate.group()) not in AGES:
                continue
            start, end = candidate.span()
            window = (max(0, start - AGE_WINDOW), min(len(prepared), end + AGE_WINDOW))
            for match in self.age_re.finditer(prepared, *window):
                index = next((i for i, g in enumerate(match.groups(), 1) if g), None)
                if index is not None and match.span(index) == (start, end):
                    return int(candidate.group()), (start, end)
        return None, None

    def _lookup(self, table: Mapping[str, Any], keys: Mapping[str, str], found: str) -> Any:
        key = light(found).strip()
        if key in table:
            return table[key]
        for stem, word in keys.items():
            if word.endswith("*") and key.startswith(stem):
                return table[word]
        return table.get(key)

    def _period(self, prepared: str, start: int, end: int) -> str | None:
        after = prepared[end : end + PERIOD_AFTER]
        after = after[: next((i for i, c in enumerate(after) if c.isdigit()), len(after))]
        match = self.period_re.search(after)
        if match is None:
            before = prepared[max(0, start - PERIOD_BEFORE) : start]
            match = self.period_before_re.search(before)
            if match is not None:
                match = self.period_re.match(match.group())
        if match is None:
            return None
        value = self._lookup(self.periods, self._period_keys, match.group())
        return str(value) if value else None

    @staticmethod
    def _parse(number: str, grouped: bool) -> float:
        if grouped:
            digits = _GROUP_SEPARATOR.sub("", number)
            return float(digits.replace(",", "."))
        return float(number.replace(",", "."))

    def amounts(self, prepared: str, skip: tuple[int, int] | None = None) -> tuple[Amount, ...]:
        out: list[Amount] = []
        for match in self.amount_re.finditer(prepared):
            number = match.group("num")
            start, end = match.span("num")
            if skip and start < skip[1] and skip[0] < end:
                continue
            mult, pre, post = match.group("mult"), match.group("pre"), match.group("post")
            value = self._parse(number, bool(match.group("sep")))
            if mult:
                value *= float(self._lookup(self.multipliers, self._multiplier_keys, mult.strip().rstrip(".")) or 1)
            currency = None
            if post:
                currency = str(self._lookup(self.currencies, self._currency_keys, post) or "") or None
            if pre and not currency:
                found = self._lookup(self.before, self._before_keys, pre)
                found = found or self._lookup(self.currencies, self._currency_keys, pre)
                currency = str(found) if found else None
            period = self._period(prepared, match.start(), match.end())
            plain = number.isdigit()
            if not (currency or mult) and value < PERIOD_MINIMUM:
                continue  # "3 months", "12 hours a day": a duration, not pay
            if not (currency or mult or period):
                if value < BARE_MINIMUM or not plain and not match.group("sep"):
                    continue
                if plain and (int(number) in YEARS or len(number) >= 9 or (number.startswith("0") and len(number) > 4)):
                    continue  # a year or a phone number
            if value <= 0:
                continue
            value = int(value) if float(value).is_integer() else round(value, 2)
            out.append(Amount(value=value, currency=currency, period=period, text=match.group().strip()))
            if len(out) >= MAX_AMOUNTS:
                break
        return tuple(out)
