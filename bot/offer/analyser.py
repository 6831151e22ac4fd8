"""The offer analyser: reads a job offer she describes (any of the 11 languages, or several mixed) and returns
its facts and its red flags, each tied to an ILO forced-labour indicator, with a severity and the rule.

Data, not code, knows the languages:
- ``data/offer/<lang>.yml``: the words and phrases of one language (facts, flags, numbers, currencies, periods,
  age), with a review status. Phrase syntax is the risk screener's (data/risk/README.md);
- ``data/offer/flags.yml``: the flag catalogue (indicator, severity, rule, advice) and the ILO indicators;
- ``data/offer/wages.yml``: typical wages per country and job, each with its source (the pay check).

Every language file is applied to every message (a girl mixes languages and scripts; an English brand name sits
in Thai text). Everything is compiled once per data directory; ``analyse`` does no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.offer.model import FLAG_IDS, SEVERITIES, Amount, Finding, OfferFacts, OfferReport
from bot.offer.numbers import NumberReader
from bot.risk.fold import fold
from bot.risk.screener import Phrase, Screener
from bot.text import normalize

if TYPE_CHECKING:
    from bot.offer.semantic import FlagScorer

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2] / "data"
NOT_LANGUAGES = ("flags", "wages", "semantic")
MAX_CHARS = 10_000  # an offer, a chat excerpt or a screenshot's text; longer input is cut (and the report says so)
FACT_GROUPS = ("channel", "job", "place", "visa", "document", "travel")
FACT_LISTS = ("offer", "contact", "away", "night", "pay_promise", "alternative")
NIGHT_JOBS = ("bar_karaoke",)
# Flags whose phrases are everyday words too ("don't tell", "tell you later", "a stranger"): alone, without any sign
# of a job, pay or another flag, they do not make a message an offer (the findings are reported, not shown to her)
OFFERS_WITHOUT_A_JOB = {"online_partner_ticket", "marriage_broker"}  # the semantic context gate lets these pass alone
WEAK_ALONE = ("pressure_secrecy", "vague_job", "stranger_recruiter")  # a karaoke bar or nightclub job is night work
PERSONAL_CHANNELS = ("online", "dating_app")  # met there: the contact is an individual by definition
VISAS = ("tourist", "visit", "on_arrival", "none", "work", "student")
WRONG_VISAS = ("tourist", "visit", "on_arrival", "none", "student")  # for a job, none of these is a work visa
TRAVEL = ("recruiter", "self")
DERIVED_ONLY = ("too_good_pay", "minor_recruited")  # computed from facts, never from a phrase
ADULT = 18
MIN_SKELETON = 5  # letters a Cyrillic phrase needs before its Latin transliteration may match
_PLACE_KEY = re.compile(r"^[A-Z]{2}(/.+)?$")


@dataclass(frozen=True)
class Flag:
    id: str
    indicator: str
    also: tuple[str, ...]
    severity: str
    rule: str
    advice: str


class _Matcher(Screener):
    """The risk screener's phrase engine, reporting every category hit with its triggers and rule severity."""

    def __init__(self, categories: dict[str, str], lexicons: dict[str, dict[str, Any]]) -> None:
        self.rule_severity: dict[int, str] = {}
        super().__init__(categories, lexicons)

    def _add_rule(self, language: str, category: str, rule: Any, cries: set[str]) -> None:
        if isinstance(rule, dict) and "only" in rule:
            raise ValueError(f"data/offer/{language}.yml {category}: 'only' rules are for the risk screener")
        super()._add_rule(language, category, rule, cries)
        severity = rule.get("severity") if isinstance(rule, dict) else None
        if severity is not None:
            if severity not in SEVERITIES:
                raise ValueError(f"data/offer/{language}.yml {category}: unknown severity {severity!r}")
            self.rule_severity[len(self.rules) - 1] = str(severity)

    def _index(self, pid: int, phrase: Phrase) -> None:
        # A short Cyrillic word's Latin skeleton is another language's word ("бар" = Indonesian "bayar",
        # "сша" = Tagalog "sa", "кита*" = "kita"): only phrases with a long enough skeleton match transliterated.
        if phrase.on_skeleton and sum(len(w[0]) for w in phrase.words if w) < MIN_SKELETON:
            return
        super()._index(pid, phrase)

    def hits(self, text: str) -> list[tuple[str, str | None, tuple[str, ...]]]:
        """(category, rule severity or None, trigger phrases) for every rule that matches."""
        matched = self._matched_phrases(fold(text))
        out: list[tuple[str, str | None, tuple[str, ...]]] = []
        seen: set[int] = set()
        for pid in matched:
            for index in self._rules_of_phrase.get(pid, ()):
                if index in seen:
                    continue
                seen.add(index)
                rule = self.rules[index]
                if any(u in matched for u in rule.unless):
                    continue
                chosen = []
                for group in rule.groups:
                    hit = next((p for p in group if p in matched), None)
                    if hit is None:
                        break
                    chosen.append(self.phrases[hit].source)
                else:
                    out.append((rule.category, self.rule_severity.get(index), tuple(chosen)))
        return out


def _lexicon(code: str, data: Mapping[str, Any]) -> dict[str, list[Any]]:
    """One language file as screener categories: "flag:<id>", "channel:<name>", "place:TH/Bangkok", "offer"..."""
    categories: dict[str, list[Any]] = {}
    facts = data.get("facts") or {}
    for group, entries in facts.items():
        if group in FACT_LISTS:
            categories[group] = list(entries or [])
            continue
        if group not in FACT_GROUPS:
            raise ValueError(f"data/offer/{code}.yml: unknown fact group {group!r}")
        for key, rules in (entries or {}).items():
            key = str(key)
            if group == "visa" and key not in VISAS or group == "travel" and key not in TRAVEL:
                raise ValueError(f"data/offer/{code}.yml: unknown {group} {key!r}")
            if group == "place" and not _PLACE_KEY.match(key):
                raise ValueError(f"data/offer/{code}.yml: place {key!r} must be CC or CC/Name")
            categories[f"{group}:{key}"] = list(rules or [])
    for flag, rules in (data.get("flags") or {}).items():
        if flag not in FLAG_IDS or flag in DERIVED_ONLY:
            raise ValueError(f"data/offer/{code}.yml: {flag!r} is not a flag that phrases can raise")
        categories[f"flag:{flag}"] = list(rules or [])
    return categories


class Analyser:
    """Compiled data of one data directory (see ``load_analyser``)."""

    def __init__(self, folder: Path) -> None:
        catalogue = _read(folder / "flags.yml")
        self.indicators: dict[str, dict[str, Any]] = dict(catalogue["indicators"])
        self.flags: dict[str, Flag] = {}
        for flag in FLAG_IDS:
            info = catalogue["flags"][flag]
            flag_obj = Flag(
                flag,
                str(info["indicator"]),
                tuple(info.get("also") or ()),
                str(info["severity"]),
                " ".join(str(info["rule"]).split()),
                " ".join(str(info["advice"]).split()),
            )
            for name in (flag_obj.indicator, *flag_obj.also):
                if name not in self.indicators:
                    raise ValueError(f"data/offer/flags.yml {flag}: {name!r} is not a listed indicator")
            if flag_obj.severity not in SEVERITIES:
                raise ValueError(f"data/offer/flags.yml {flag}: unknown severity {flag_obj.severity!r}")
            self.flags[flag] = flag_obj
        wages = _read(folder / "wages.yml")
        self.wage_factor = float(wages.get("factor") or 2.0)
        self.wages: dict[str, dict[str, Any]] = dict(wages.get("countries") or {})
        for code, table in self.wages.items():
            for job, figures in (table.get("jobs") or {}).items():
                if not table.get("currency") or not str(figures.get("source") or "").startswith("http"):
                    raise ValueError(f"data/offer/wages.yml {code} {job}: every figure needs a currency and a source URL")
        self.languages: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.yml")):
            if path.stem not in NOT_LANGUAGES:
                self.languages[path.stem] = _read(path)
        lexicons: dict[str, dict[str, Any]] = {}
        names: set[str] = set()
        for code, data in self.languages.items():
            categories = _lexicon(code, data)
            names.update(categories)
            lexicons[code] = {"categories": categories}
        self.matcher = _Matcher(dict.fromkeys(names, "none"), lexicons)
        self.numbers = NumberReader(self.languages)

    # -- analysing -------------------------------------------------------------------------------
    def analyse(
        self,
        text: str,
        language: str | None,
        country: str | None,
        age: int | None = None,
        under_18: bool | None = None,
        scorer: FlagScorer | None = None,
    ) -> OfferReport:
        """``age`` / ``under_18``: from her profile, used when the text states no age (an age band is all the
        profile keeps). ``scorer``: the semantic flag layer (bot/offer/semantic.py), or the patterns alone."""
        clean = normalize(text or "", limit=MAX_CHARS)
        notes: list[str] = []
        if clean.truncated:
            notes.append(f"only the first {MAX_CHARS} characters were read")
        home = country.upper() if country else None
        if not clean.has_letters and not any(c.isdigit() for c in clean.text):
            facts = OfferFacts(
                age=age, age_source="profile" if age is not None else None, under_18=_minor(None, age, under_18)
            )
            return OfferReport(language, home, facts, notes=tuple(notes), truncated=clean.truncated)

        found: dict[str, list[tuple[str | None, tuple[str, ...]]]] = {}
        for category, rule_severity, triggers in self.matcher.hits(clean.text):
            found.setdefault(category, []).append((rule_severity, triggers))
        facts = self._facts(clean.text, found, home, age, under_18)
        flag_hits = {k.split(":", 1)[1]: v for k, v in found.items() if k.startswith("flag:")}
        offer_words = bool(
            facts.jobs or "offer" in found or any(a.currency or a.period for a in facts.amounts) or facts.pay_promise
        )
        semantic = self._semantic(clean.text, scorer, flag_hits)
        if len(semantic) < 2 and not (offer_words or flag_hits) and not set(semantic) & OFFERS_WITHOUT_A_JOB:
            # the context gate: one flag from the model alone, in a message with no job, pay, offer words or
            # pattern flag, was mostly ordinary chat on held-out NLU messages ("stop asking", "how to grow my
            # hair", "can they take my passport by law?"); an online boyfriend's ticket or a marriage offer has no
            # job words by nature, so those two pass alone
            semantic = {}
        for flag_id in semantic:
            flag_hits.setdefault(flag_id, [])
        # someone paying her travel to a named place is an offer even in words the job lists lack ("the plant pays the
        # flight to Kamchatka"); a ticket to "visit him" with no place is not
        places = bool(facts.places or facts.countries or facts.away_from_home)
        offer_words = offer_words or (facts.travel_paid_by == "recruiter" and places)
        is_offer = offer_words or bool(any(f not in WEAK_ALONE for f in flag_hits) or len(flag_hits) >= 2)
        evidence: dict[str, list[str]] = {}
        severity: dict[str, str] = {}
        for flag_id, probability in semantic.items():
            evidence.setdefault(flag_id, []).append(f"semantic {probability:.2f}")
        for flag_id, rules in flag_hits.items():
            for rule_severity, triggers in rules:
                evidence.setdefault(flag_id, []).append(" + ".join(triggers))
                severity[flag_id] = _max_severity(severity.get(flag_id), rule_severity or self.flags[flag_id].severity)
        if is_offer:
            personal = "contact" in found or any(c in PERSONAL_CHANNELS for c in facts.channels)
            # a job is offered (not only a marriage or a trip): job or offer words or a wage (and, in _derive, a
            # recruiter paying her travel: "she will take her to Lagos to help her sister, she pays the bus")
            work = bool(facts.jobs or "offer" in found or any(a.currency or a.period for a in facts.amounts))
            either = "alternative" in found and len(set(facts.jobs)) >= 2  # "a restaurant or a hotel"
            self._derive(facts, home, personal, evidence, notes, work=work, either=either)
        findings = tuple(self._finding(f, severity.get(f), evidence[f]) for f in FLAG_IDS if f in evidence)
        return OfferReport(
            language=language,
            country=home,
            facts=facts,
            findings=findings,
            notes=tuple(dict.fromkeys(notes)),
            is_offer=is_offer,
            truncated=clean.truncated,
        )

    @staticmethod
    def _semantic(text: str, scorer: FlagScorer | None, flag_hits: Mapping[str, object]) -> dict[str, float]:
        """Flags the semantic layer finds that the patterns did not (never allowed to cost her the reply: the
        patterns' report stands when the encoder fails)."""
        if scorer is None:
            return {}
        try:
            return {f: p for f, p in scorer.found(text).items() if f not in flag_hits}
        except Exception as error:  # noqa: BLE001
            log.error("offer flag model failed (%s); patterns only", type(error).__name__)
            return {}

    def _facts(
        self,
        text: str,
        found: Mapping[str, object],
        home: str | None,
        profile_age: int | None,
        profile_minor: bool | None = None,
    ) -> OfferFacts:
        keys = sorted(found)

        def group(name: str) -> list[str]:
            return [k.split(":", 1)[1] for k in keys if k.startswith(name + ":")]

        prepared = self.numbers.prepare(text)
        said_age, age_span = self.numbers.age(prepared)
        places = group("place")
        countries = list(dict.fromkeys(p.split("/", 1)[0] for p in places))
        travel = group("travel")
        return OfferFacts(
            age=said_age if said_age is not None else profile_age,
            age_source="text" if said_age is not None else ("profile" if profile_age is not None else None),
            under_18=_minor(said_age, profile_age, profile_minor),
            amounts=self.numbers.amounts(prepared, age_span),
            places=tuple(p.split("/", 1)[1] for p in places if "/" in p),
            countries=tuple(countries),
            jobs=tuple(group("job")),
            channels=tuple(group("channel")),
            travel_paid_by="recruiter" if "recruiter" in travel else ("self" if "self" in travel else None),
            visa=tuple(v for v in VISAS if v in group("visa")),
            documents=tuple(group("document")),
            night_work="night" in found or self.numbers.night_hours(prepared) is not None,
            away_from_home="away" in found or bool(home and any(c != home for c in countries)),
            pay_promise="pay_promise" in found,
        )

    def _finding(self, flag_id: str, severity: str | None, evidence: list[str]) -> Finding:
        flag = self.flags[flag_id]
        return Finding(
            flag=flag_id,
            severity=severity or flag.severity,
            indicator=flag.indicator,
            indicators=(flag.indicator, *flag.also),
            rule=flag.rule,
            advice=flag.advice,
            evidence=tuple(dict.fromkeys(evidence))[:6],
        )

    def _derive(
        self,
        facts: OfferFacts,
        home: str | None,
        personal: bool,
        evidence: dict[str, list[str]],
        notes: list[str],
        work: bool = True,
        either: bool = False,
    ) -> None:
        """Flags that follow from the facts rather than from one phrase. ``personal``: the message shows an
        individual (a woman, someone, an agent), not only a company's ad; ``work``: a job is offered; ``either``:
        two kinds of job, one or the other ("a restaurant or a hotel")."""
        partner = "online_partner_ticket" in evidence  # an online boyfriend: his ticket and his contact are that flag
        if facts.travel_paid_by == "recruiter" and not partner:
            evidence.setdefault("travel_paid", []).append("travel paid by the recruiter")
        if partner:
            evidence.pop("stranger_recruiter", None)
            evidence.pop("travel_paid", None)
        wrong = [v for v in facts.visa if v in WRONG_VISAS]
        if wrong:
            evidence.setdefault("wrong_visa", []).append("visa: " + ", ".join(wrong))
        marriage_only = "marriage_broker" in evidence and not facts.jobs  # a broker's marriage ad, not a recruiter
        if (
            facts.channels and personal and not partner and not marriage_only
        ):  # a person on a social/chat app; an ad seen online is not
            evidence.setdefault("stranger_recruiter", []).append("a contact on " + ", ".join(facts.channels))
        if either:
            evidence.setdefault("vague_job", []).append("one job or another: " + ", ".join(facts.jobs))
        too_good = self._pay_check(facts, home, notes)
        if not too_good and facts.pay_promise and any(a.currency or a.period for a in facts.amounts):
            # no sourced wage table: the offer's own claim - a pay figure sold as easy money or needing no
            # experience ("very high pay for easy work", the reference's indicator, US EEOC)
            too_good = ["a pay figure with a 'no experience / easy money' claim: " + facts.amounts[0].text]
        if too_good:
            evidence.setdefault("too_good_pay", []).extend(too_good)
        work = work or (facts.travel_paid_by == "recruiter" and not partner)
        if facts.under_18 and work and not marriage_only:
            reasons = []
            if facts.places or facts.countries:
                reasons.append("work in " + ", ".join(facts.places or facts.countries))
            if facts.away_from_home:
                reasons.append("away from home")
            if facts.night_work or any(j in NIGHT_JOBS for j in facts.jobs):
                reasons.append("night work")
            if facts.travel_paid_by or "night_border" in evidence:
                reasons.append("travel arranged")
            if reasons:
                said = f"age {facts.age}" if facts.age is not None else "under 18 (profile)"
                evidence.setdefault("minor_recruited", []).append(f"{said}: " + "; ".join(reasons))

    def _pay_check(self, facts: OfferFacts, home: str | None, notes: list[str]) -> list[str]:
        """Pay far above the sourced typical wage for the job and place. Never guesses a figure or a rate."""
        amounts = [a for a in facts.amounts if a.currency]
        if not amounts:
            return []
        places = list(facts.countries) or ([home] if home else [])
        if not places:
            notes.append("pay check skipped: the country of the job is not known")
            return []
        out = []
        for place in places:
            table = self.wages.get(place)
            if not table:
                notes.append(f"pay check skipped: no sourced wage figure for {place}")
                continue
            row = next(((job, table["jobs"][job]) for job in (*facts.jobs, "any") if job in table.get("jobs", {})), None)
            if row is None:
                notes.append(f"pay check skipped: no sourced wage figure for this job in {place}")
                continue
            job, figures = row
            for amount in amounts:
                typical = _typical(figures, amount)
                if amount.currency != table.get("currency"):
                    notes.append(
                        f"pay check skipped: {amount.currency} pay, wage figures for {place} are in "
                        f"{table.get('currency')} (no exchange rate is used)"
                    )
                elif amount.period is None:
                    notes.append(f"pay check skipped for {amount.text}: the pay period is not said")
                elif typical is None:
                    notes.append(f"pay check skipped: no sourced wage per {amount.period} for {job} in {place}")
                elif amount.value > self.wage_factor * typical:
                    out.append(
                        f"{amount.text}: more than {self.wage_factor:g} x the typical {typical:g} {amount.currency} "
                        f"for {job} in {place} ({figures.get('source', 'no source')})"
                    )
        return out


def _minor(said: int | None, profile_age: int | None, profile_minor: bool | None) -> bool | None:
    """Under 18? Her age in this text first, then the profile's age, then the profile's age band."""
    age = said if said is not None else profile_age
    return age < ADULT if age is not None else profile_minor


def _typical(figures: Mapping[str, Any], amount: Amount) -> float | None:
    field = {"month": "monthly", "day": "daily", "hour": "hourly", "week": "weekly", "year": "yearly"}.get(
        amount.period or ""
    )
    value = figures.get(field) if field else None  # no period said: not compared (no guess at monthly)
    return float(value) if value else None


def _max_severity(a: str | None, b: str) -> str:
    return b if a is None else max(a, b, key=SEVERITIES.index)


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_analyser(data_dir: Path | None = None) -> Analyser:
    """The analyser of ``data_dir`` (default: the repo's data/), compiled once and cached."""
    return _load(str(Path(data_dir or DATA).resolve()))


@functools.lru_cache(maxsize=4)
def _load(data_dir: str) -> Analyser:
    return Analyser(Path(data_dir) / "offer")


def merge_flags(report: OfferReport, flags: Iterable[str], data_dir: Path | None = None) -> OfferReport:
    """``report`` with findings added for ``flags`` it lacks (flag ids another analyser run found, e.g. the
    gateway's patterns + semantic layer sent to the action server as metadata); unknown ids are ignored."""
    analyser = load_analyser(data_dir)
    have = set(report.flags)
    extra = {f for f in flags if f in analyser.flags and f not in have}
    if not extra:
        return report
    added = [analyser._finding(f, None, ["found by the gateway"]) for f in extra]
    findings = tuple(sorted((*report.findings, *added), key=lambda f: FLAG_IDS.index(f.flag)))
    return dataclasses.replace(report, findings=findings, is_offer=True)


def texts_to_encode(text: str, scorer: FlagScorer) -> list[str]:
    """The texts ``analyse`` will give the semantic flag layer's encoder for ``text`` (so that a caller can encode
    them ahead, off its event loop; the analysis then finds them in the encoder's cache)."""
    return scorer.texts(normalize(text or "", limit=MAX_CHARS).text)


def analyse(
    text: str,
    language: str | None,
    country: str | None,
    age: int | None = None,
    *,
    under_18: bool | None = None,
    data_dir: Path | None = None,
    scorer: FlagScorer | None = None,
) -> OfferReport:
    """Facts and red flags of the offer in ``text``; ``age`` or ``under_18`` (from her profile) is used when the text
    gives no age."""
    return load_analyser(data_dir).analyse(text, language, country, age, under_18, scorer)
