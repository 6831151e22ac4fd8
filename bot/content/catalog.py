"""Loads data/languages.yml, data/content/<lang>.yml and data/facts/<CC>.yml."""

from __future__ import annotations

import functools
import logging
import string
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml

log = logging.getLogger(__name__)

FALLBACK_LANGUAGE = "en"
REVIEW_STATUSES = ("source", "machine_translated", "native_reviewed")
CONFIDENCE_LEVELS = ("high", "medium", "low", "unverified")
SHOWN_CONFIDENCE = ("high", "medium", "low")  # unverified facts are never shown to users
HOTLINE_KINDS = ("emergency", "police", "fire", "anti_trafficking", "child", "migrant_workers", "women", "social")
RIGHT_CODES = (
    "shelter_support",
    "compensation",
    "legal_aid",
    "stay_and_work",
    "reflection_period",
    "child_no_means",
    "identity_documents",
    "non_punishment",
    "reintegration",
)
FEE_RULES = ("prohibited", "capped", "allowed", "unknown")
# Whom the facts advise to be careful with the police (a country's `police_caution.applies_to`):
# everyone (Myanmar), or foreigners - girls whose language is not the country's own (Thailand put
# foreign victims in immigration detention). The bot never asks about her papers.
POLICE_CAUTIONS = ("everyone", "foreigners")


@dataclass(frozen=True)
class Hotline:
    """A phone line from the country facts."""

    number: str
    kinds: tuple[str, ...]
    name: str
    source: str
    confidence: str
    name_local: str | None = None
    hours: str | None = None
    free: bool = False
    note: str | None = None
    show: bool = True
    languages: tuple[str, ...] = ()  # the bot languages the line answers in; empty: not restricted

    @property
    def emergency(self) -> bool:
        return bool({"emergency", "police"} & set(self.kinds))

    def serves(self, language: str | None) -> bool:
        return not self.languages or language is None or language in self.languages


@dataclass(frozen=True)
class Organisation:
    """An NGO or agency a user can contact."""

    name: str
    services: tuple[str, ...]
    source: str
    confidence: str
    contact: str | None = None  # address, phone, e-mail or website, as the reference gives it
    hotline: str | None = None  # a number of the country's hotlines that the organisation runs
    website: str | None = None  # its own site, where the reference's source is that site


@dataclass(frozen=True)
class Verification:
    """Where she can check an agency or a job offer in a country (the facts' ``recruitment.verification``)."""

    content_key: str  # the translated text (data/content); the facts file holds the sourced English
    source: str
    confidence: str
    hotline: str | None = None  # the number of one of the country's hotlines that does it


@dataclass(frozen=True)
class Country:
    """Facts for one country, every one with its source."""

    code: str
    names: dict[str, str]
    aliases: tuple[str, ...]
    hotlines: tuple[Hotline, ...]
    law_title: str | None
    rights: tuple[str, ...]
    unconfirmed: tuple[str, ...]
    caution: str | None
    regulator: str | None
    fee_rule: str
    organisations: tuple[Organisation, ...]
    context_note: str | None = None
    # a translated caution shown with her urgent reply (e.g. where the authorities have punished
    # victims); the content key names the text, the facts file holds its source
    caution_key: str | None = None
    police_caution: str | None = None  # one of POLICE_CAUTIONS, where the facts advise it
    verification: Verification | None = None  # who verifies agencies or offers (None: no sourced entry)

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names[FALLBACK_LANGUAGE]

    def shown_hotlines(self, language: str | None = None) -> list[Hotline]:
        """Hotlines to show users, unverified never: confirmed before low-confidence, emergency and
        police first, and among those the lines that answer in her language first (Thailand's 191
        speaks Thai; 1155 comes first for everyone else)."""
        shown = [h for h in self.hotlines if h.show and h.confidence in SHOWN_CONFIDENCE]
        return sorted(
            shown,
            key=lambda h: (h.confidence == "low", not h.emergency, not h.serves(language), self.hotlines.index(h)),
        )

    def emergency_hotlines(self, language: str | None = None) -> list[Hotline]:
        """The shown emergency and police lines, in display order."""
        return [h for h in self.shown_hotlines(language) if h.emergency]

    def cautions_against_police(self, home_country: str | None) -> bool:
        """Whether advice for her must not send her to the police: the facts say so for everyone
        here, or for foreigners and her language's country (``home_country``) is another one."""
        if self.police_caution == "everyone":
            return True
        return self.police_caution == "foreigners" and home_country != self.code

    def contact_of(self, organisation: Organisation) -> str | None:
        """How she can reach ``organisation``: its contact, a hotline it runs that is shown, or its
        website; None if the facts hold none (such an organisation is not shown)."""
        if organisation.contact:
            return organisation.contact
        if organisation.hotline and any(h.number == organisation.hotline for h in self.shown_hotlines()):
            return organisation.hotline
        return organisation.website

    def reachable_organisations(self, services: frozenset[str]) -> list[Organisation]:
        """The organisations offering any of ``services`` that she can contact, confirmed first."""
        orgs = [o for o in self.organisations if services & set(o.services) and self.contact_of(o)]
        return sorted(orgs, key=lambda o: o.confidence == "low")


@dataclass(frozen=True)
class LanguageInfo:
    code: str
    name: str
    native_name: str
    script: str
    default_country: str | None


@dataclass
class Catalog:
    """All content: texts per language, facts per country, the language list."""

    languages: dict[str, LanguageInfo]
    texts: dict[str, dict[str, dict[str, Any]]]
    countries: dict[str, Country]
    _country_index: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        index = []
        for code, country in self.countries.items():
            for name in [*country.names.values(), *country.aliases]:
                index.append((fold(name), code))
        # longest names first so "Viet Nam" wins over a shorter alias inside it
        self._country_index = sorted(set(index), key=lambda item: -len(item[0]))

    def text(self, key: str, language: str, variant: str | None = None, **values: Any) -> str:
        """The text ``key`` in ``language`` (English if missing), placeholders filled.

        ``variant`` (e.g. "sms") picks a channel rendering such as ``sms:`` when the entry has one."""
        entry = self.texts.get(language, {}).get(key)
        if entry is None:
            log.warning("content key %s missing for %s; using English", key, language)
            entry = self.texts[FALLBACK_LANGUAGE][key]
        template: str = entry.get(variant, entry["text"]) if variant else entry["text"]
        return template.format(**values) if values else template

    def language(self, code: str | None) -> str:
        """A supported language code (English for anything else)."""
        return code if code in self.languages else FALLBACK_LANGUAGE

    def default_country(self, language: str) -> str | None:
        info = self.languages.get(language)
        return info.default_country if info else None

    def find_country(self, text: str) -> str | None:
        """The supported country named in ``text`` (any language, any alias), if any."""
        folded = fold(text)
        if folded.upper() in self.countries:
            return folded.upper()
        for name, code in self._country_index:
            if _contains_name(folded, name):
                return code
        return None


def fold(text: str) -> str:
    """Case- and diacritics-insensitive form for name matching."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    latin_marks = regex.compile(r"(?<=\p{Latin})\p{Mn}+")
    return unicodedata.normalize("NFC", latin_marks.sub("", decomposed)).strip()


def _contains_name(text: str, name: str) -> bool:
    if not name:
        return False
    if regex.search(r"[\p{Latin}\p{Cyrillic}]", name):
        return regex.search(rf"(?<![\p{{L}}]){regex.escape(name)}(?![\p{{L}}])", text) is not None
    return name in text  # scripts without spaces: substring match


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _country(raw: dict[str, Any]) -> Country:
    law = raw.get("law") or {}
    recruitment = raw.get("recruitment") or {}
    shown = SHOWN_CONFIDENCE
    rights = tuple(r["code"] for r in law.get("rights") or [] if r.get("confidence") in shown)
    regulator = recruitment.get("regulator") or {}
    fees = recruitment.get("fees") or {}
    main_law = law.get("main_law") or {}
    note = raw.get("context_note") or {}
    police = raw.get("police_caution") or {}
    check = recruitment.get("verification") or {}
    verification = (
        Verification(
            content_key=check["content_key"],
            source=check["source"],
            confidence=check["confidence"],
            hotline=str(check["hotline"]) if check.get("hotline") else None,
        )
        if check.get("confidence") in shown
        else None
    )
    return Country(
        code=raw["country"],
        names=dict(raw["names"]),
        aliases=tuple(raw.get("aliases") or ()),
        hotlines=tuple(
            Hotline(
                number=str(h["number"]),
                kinds=tuple(h["kinds"]),
                name=h["name"],
                source=h["source"],
                confidence=h["confidence"],
                name_local=h.get("name_local"),
                hours=h.get("hours"),
                free=h.get("free") is True,
                note=h.get("note"),
                show=h.get("show", True),
                languages=tuple(h.get("languages") or ()),
            )
            for h in raw.get("hotlines") or []
        ),
        law_title=main_law.get("title") if main_law.get("confidence") in shown else None,
        rights=rights,
        unconfirmed=tuple(law.get("unconfirmed") or ()),
        caution=law.get("caution"),
        regulator=regulator.get("name") if regulator.get("confidence") in shown else None,
        fee_rule=fees.get("rule", "unknown") if fees.get("confidence", "high") in shown else "unknown",
        organisations=tuple(
            Organisation(
                name=o["name"],
                services=tuple(o.get("services") or ()),
                source=o["source"],
                confidence=o["confidence"],
                contact=o.get("contact"),
                hotline=str(o["hotline"]) if o.get("hotline") else None,
                website=o.get("website"),
            )
            for o in raw.get("ngos") or []
            if o.get("confidence") in shown
        ),
        context_note=note.get("text"),
        caution_key=note.get("content_key"),
        police_caution=police.get("applies_to"),
        verification=verification,
    )


@functools.lru_cache(maxsize=4)
def load_catalog(data_dir: Path) -> Catalog:
    """Load and cross-check all content under ``data_dir`` (cached per directory)."""
    languages_raw = _load_yaml(data_dir / "languages.yml")["languages"]
    languages = {
        code: LanguageInfo(code, v["name"], v["native_name"], v["script"], v.get("default_country"))
        for code, v in languages_raw.items()
        if v.get("enabled", True)
    }
    texts = {}
    for code in languages:
        path = data_dir / "content" / f"{code}.yml"
        texts[code] = _load_yaml(path)["texts"] if path.exists() else {}
    countries = {}
    for path in sorted((data_dir / "facts").glob("*.yml")):
        raw = _load_yaml(path)
        countries[raw["country"]] = _country(raw)
    return Catalog(languages=languages, texts=texts, countries=countries)


def placeholder_problems(catalog: Catalog) -> list[str]:
    """Keys whose placeholders differ from English (used by the content tests)."""
    problems = []
    for language, entries in catalog.texts.items():
        for key, source in catalog.texts[FALLBACK_LANGUAGE].items():
            entry = entries.get(key)
            if entry and _placeholders(entry["text"]) != _placeholders(source["text"]):
                problems.append(f"{language}:{key}")
    return problems
