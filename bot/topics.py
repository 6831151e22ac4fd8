"""Which topic each intent belongs to (reported by `python -m bot ask`)."""

TOPICS = ("recruitment", "warning_signs", "legal_rights", "life_skills", "get_help", "smalltalk", "out_of_scope", "danger")

TOPIC_OF_INTENT = {
    "greet": "smalltalk",
    "goodbye": "smalltalk",
    "thanks": "smalltalk",
    "bot_identity": "smalltalk",
    "privacy": "smalltalk",
    "affirm": "smalltalk",
    "deny": "smalltalk",
    "stop": "smalltalk",
    "job_offer": "recruitment",
    "recruitment_tactics": "recruitment",
    "online_relationship": "recruitment",
    "marriage_offer": "recruitment",
    "modelling_offer": "recruitment",
    "warning_signs": "warning_signs",
    "legal_rights": "legal_rights",
    "legal_aid": "legal_rights",
    "life_skills": "life_skills",
    "safe_migration": "life_skills",
    "get_help": "get_help",
    "danger": "danger",
    "out_of_scope": "out_of_scope",
    "nlu_fallback": "out_of_scope",
    "inform_country": "smalltalk",
}

# Intents whose answer is information on a topic (not smalltalk, not a command).
CONTENT_INTENTS = frozenset(
    intent for intent, topic in TOPIC_OF_INTENT.items()
    if topic in ("recruitment", "warning_signs", "legal_rights", "life_skills", "get_help") and intent != "nlu_fallback"
)  # fmt: skip
# An alternative answer must have at least this NLU confidence to replace the danger answer.
MIN_ALTERNATIVE_CONFIDENCE = 0.05


def answer_instead_of_danger(
    ranking: list[dict[str, object]], urgent_at: float | None, vetoed: bool, in_form: bool = False
) -> str | None:
    """The NLU read "danger", but the gateway will not escalate (its confidence is below the
    gateway's urgent level, or the semantic model is sure this is a question): the gateway then
    answers *and* offers a counsellor, so the answer should be to her question - the best
    content intent after danger - not the emergency text. None: keep the danger answer (the
    gateway escalates; no gateway metadata; inside the job check; nothing else is likely)."""
    if urgent_at is None or in_form or not ranking:
        return None
    top = ranking[0]
    if top.get("name") != "danger":
        return None
    confidence = float(top.get("confidence") or 0.0)  # type: ignore[arg-type]
    if confidence >= urgent_at and not vetoed:
        return None
    for item in ranking[1:]:
        name = str(item.get("name"))
        if name in CONTENT_INTENTS and float(item.get("confidence") or 0.0) >= MIN_ALTERNATIVE_CONFIDENCE:  # type: ignore[arg-type]
            return name
    return None


def topic_ambiguity(ranking: list[tuple[str, float]]) -> float | None:
    """How far the best intent is ahead of the best intent of a *different* topic (None: no
    other topic in the ranking). ``inform_country`` keeps the current topic, so it counts as its
    own; an intent without a topic is its own topic."""
    if not ranking:
        return None

    def topic_of(name: str) -> str:
        return name if name == "inform_country" else TOPIC_OF_INTENT.get(name, name)

    best, confidence = ranking[0]
    others = [c for name, c in ranking[1:] if topic_of(name) != topic_of(best)]
    return confidence - max(others) if others else None
