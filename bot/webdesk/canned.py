"""Canned replies per language and the case taxonomy, from data/desk/ (pure: YAML in, texts out).

``data/desk/canned/<lang>.yml``: replies with an id, a title, a review ``status`` (source |
reviewed | machine_translated) and a text whose placeholders are filled from the sourced facts
of her country (data/facts): ``{hotlines}`` and ``{country}``. A canned text never holds a phone
number of its own. Each file also has a ``referral`` text: what the desk sends her with the
contacts of the organisations she was referred to (``{organisations}``, from data/facts).
``data/desk/taxonomy.yml``: case categories (ILO indicators and helpline categories) and close
outcomes.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.content import Catalog, Country, Organisation
from bot.content.render import Renderer

STATUSES = ("source", "reviewed", "machine_translated")
PLACEHOLDERS = frozenset({"hotlines", "country"})
REFERRAL_PLACEHOLDERS = frozenset({"organisations", "country"})
DIGITS = re.compile(r"\d{3,}")  # a number in a canned text would be an invented hotline


@dataclass(frozen=True)
class CannedReply:
    id: str
    title: str
    status: str
    text: str

    @property
    def reviewed(self) -> bool:
        return self.status in ("source", "reviewed")


@dataclass(frozen=True)
class Choice:
    code: str
    label: str


@dataclass(frozen=True)
class Taxonomy:
    groups: tuple[tuple[str, tuple[Choice, ...]], ...]
    outcomes: tuple[Choice, ...]

    def category_codes(self) -> frozenset[str]:
        return frozenset(c.code for _, items in self.groups for c in items)

    def outcome_codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.outcomes)

    def label(self, code: str | None) -> str:
        for _, items in self.groups:
            for choice in items:
                if choice.code == code:
                    return choice.label
        return code or ""


def load_taxonomy(data_dir: Path) -> Taxonomy:
    raw = yaml.safe_load((data_dir / "desk" / "taxonomy.yml").read_text(encoding="utf-8"))
    groups = tuple(
        (str(group["group"]), tuple(Choice(str(i["code"]), str(i["label"])) for i in group["items"]))
        for group in raw["categories"]
    )
    outcomes = tuple(Choice(str(i["code"]), str(i["label"])) for i in raw["outcomes"])
    return Taxonomy(groups, outcomes)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def load_canned(data_dir: Path) -> dict[str, tuple[CannedReply, ...]]:
    """Every language's canned replies; a malformed file is an error at start, not at send."""
    found: dict[str, tuple[CannedReply, ...]] = {}
    for path in sorted((data_dir / "desk" / "canned").glob("*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        language = str(raw["language"])
        if language != path.stem:
            raise ValueError(f"{path}: language {language!r} does not match the file name")
        replies = []
        for item in raw["replies"]:
            reply = CannedReply(str(item["id"]), str(item["title"]), str(item["status"]), str(item["text"]))
            if reply.status not in STATUSES:
                raise ValueError(f"{path}: {reply.id}: status must be one of {', '.join(STATUSES)}")
            unknown = placeholders(reply.text) - PLACEHOLDERS
            if unknown:
                raise ValueError(f"{path}: {reply.id}: unknown placeholder(s) {sorted(unknown)}")
            if DIGITS.search(reply.text):
                raise ValueError(f"{path}: {reply.id}: numbers come from data/facts only ({{hotlines}})")
            replies.append(reply)
        found[language] = tuple(replies)
    return found


def load_referral_texts(data_dir: Path) -> dict[str, CannedReply]:
    """Every language's referral text (the ``referral`` entry of its canned file)."""
    found: dict[str, CannedReply] = {}
    for path in sorted((data_dir / "desk" / "canned").glob("*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        item = raw.get("referral")
        if item is None:
            continue
        reply = CannedReply("referral", "Referral", str(item["status"]), str(item["text"]))
        if reply.status not in STATUSES:
            raise ValueError(f"{path}: referral: status must be one of {', '.join(STATUSES)}")
        if placeholders(reply.text) != REFERRAL_PLACEHOLDERS:
            raise ValueError(f"{path}: referral: placeholders must be {sorted(REFERRAL_PLACEHOLDERS)}")
        if DIGITS.search(reply.text):
            raise ValueError(f"{path}: referral: numbers come from data/facts only")
        found[str(raw["language"])] = reply
    return found


class CannedReplies:
    """Canned replies rendered for one case: her language, her country's facts, her channel."""

    def __init__(
        self,
        catalog: Catalog,
        replies: dict[str, tuple[CannedReply, ...]],
        retention_days: float,
        referral_texts: dict[str, CannedReply] | None = None,
    ) -> None:
        self.catalog, self.replies = catalog, replies
        self.referral_texts = referral_texts or {}
        self.render = Renderer(catalog, retention_days=retention_days)
        self.render_sms = Renderer(catalog, variant="sms", retention_days=retention_days)

    def for_case(self, language: str, country_code: str | None, channel: str) -> list[CannedReply]:
        """Her language's replies (English as well, when hers has none), placeholders filled."""
        language = self.catalog.language(language)
        chosen = self.replies.get(language) or self.replies.get("en", ())
        render = self.render_sms if channel == "sms" else self.render
        code = country_code or self.catalog.default_country(language)
        country = self.catalog.countries.get(code or "")
        if country is not None:
            values = {"hotlines": render.urgent_contacts(country, language), "country": country.name(language)}
        else:
            values = {"hotlines": render.emergency_numbers_everywhere(language), "country": ""}
        return [CannedReply(r.id, r.title, r.status, r.text.format(**values)) for r in chosen]

    def referral(self, language: str, country: Country, organisations: list[Organisation]) -> CannedReply | None:
        """The text that gives her the contacts of ``organisations`` (her language's referral text,
        English when hers has none): one line each, name and contact as her country's facts give
        them, low confidence marked * with the bot's vetted note. None if none has a contact."""
        language = self.catalog.language(language)
        template = self.referral_texts.get(language) or self.referral_texts.get("en")
        reachable = [o for o in organisations if country.contact_of(o)]
        if template is None or not reachable:
            return None
        lines = [f"• {o.name}{'*' if o.confidence == 'low' else ''} - {country.contact_of(o)}" for o in reachable]
        if any(o.confidence == "low" for o in reachable):
            lines.append(self.render.t("note_unconfirmed", language))
        text = template.text.format(country=country.name(language), organisations="\n".join(lines))
        return CannedReply(template.id, template.title, template.status, text)
