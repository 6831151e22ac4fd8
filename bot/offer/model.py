"""What the offer analyser returns: facts, findings (red flags) and notes. Plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The flag ids, in the order of issue 16 (used in data, code and the `ask` contract).
FLAG_IDS: tuple[str, ...] = (
    "upfront_fee_or_debt",
    "documents_kept",
    "no_contract",
    "wrong_visa",
    "too_good_pay",
    "vague_job",
    "stranger_recruiter",
    "travel_paid",
    "pressure_secrecy",
    "photo_request",
    "marriage_broker",
    "online_partner_ticket",
    "night_border",
    "minor_recruited",
)
SEVERITIES: tuple[str, ...] = ("info", "concerning", "urgent")


@dataclass(frozen=True)
class Amount:
    """A sum of money she quoted: ``value`` in units of ``currency`` (None when she named none)."""

    value: float
    currency: str | None = None
    period: str | None = None  # hour | day | week | month | year, when she said so
    text: str = ""  # the words it was read from


@dataclass(frozen=True)
class OfferFacts:
    """What the message says about the offer (empty fields when it says nothing)."""

    age: int | None = None
    age_source: str | None = None  # "text" (she said it here) | "profile" (passed in)
    under_18: bool | None = None  # from her age here, else from her profile (an age band); None: not known
    amounts: tuple[Amount, ...] = ()
    places: tuple[str, ...] = ()  # cities and regions, in English
    countries: tuple[str, ...] = ()  # ISO 3166 codes of the countries named (directly or through a city)
    jobs: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # where the offer came from: facebook, line, telegram ...
    travel_paid_by: str | None = None  # "recruiter" | "self"
    visa: tuple[str, ...] = ()  # tourist | visit | on_arrival | none | work | student
    documents: tuple[str, ...] = ()  # documents the offer mentions: passport, id_card ...
    night_work: bool = False
    away_from_home: bool = False
    pay_promise: bool = False  # "high salary", "easy money": a claim, not a figure


@dataclass(frozen=True)
class Finding:
    """One red flag: which ILO indicator it belongs to, how serious, why, and what to do."""

    flag: str
    severity: str
    indicator: str  # the main ILO forced-labour indicator
    indicators: tuple[str, ...]  # the main one first, then the related ones
    rule: str  # the rule explained (English, for editors and counsellors)
    advice: str  # what to do (English; the conversation renders her language from content)
    evidence: tuple[str, ...] = ()  # the pattern(s) or facts that made it fire


@dataclass(frozen=True)
class OfferReport:
    language: str | None
    country: str | None
    facts: OfferFacts = field(default_factory=OfferFacts)
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # the analyser's limits for this message (no wage data, text cut ...)
    is_offer: bool = False  # the message talks about a job, pay or recruitment
    truncated: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(f.flag for f in self.findings)

    @property
    def severity(self) -> str:
        """The highest severity found, or "none"."""
        if not self.findings:
            return "none"
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    def finding(self, flag: str) -> Finding | None:
        return next((f for f in self.findings if f.flag == flag), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts, str, numbers) for JSON/YAML and the `ask` contract."""
        data = asdict(self)
        data["flags"] = list(self.flags)
        data["severity"] = self.severity
        return _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
