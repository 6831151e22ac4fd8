"""The fallback ("say it another way") doubts topics, not intents of one topic (bot/nlu/fallback.py)."""

from __future__ import annotations

import pytest

from bot.topics import topic_ambiguity


@pytest.mark.parametrize(
    ("ranking", "expected"),
    [
        # two recruitment intents neck and neck: no doubt about the topic; the next topic is far
        ([("job_offer", 0.40), ("recruitment_tactics", 0.38), ("legal_rights", 0.10)], 0.30),
        # a recruitment intent and a legal one neck and neck: a real doubt
        ([("job_offer", 0.40), ("legal_rights", 0.38), ("recruitment_tactics", 0.10)], 0.02),
        # legal_rights and legal_aid are one topic
        ([("legal_aid", 0.5), ("legal_rights", 0.45), ("get_help", 0.02)], 0.48),
        # inform_country keeps the current topic, so it is never "the same topic" as smalltalk
        ([("greet", 0.50), ("inform_country", 0.49)], 0.01),
        # nothing of another topic in the ranking
        ([("greet", 0.6), ("thanks", 0.3)], None),
        ([], None),
    ],
)
def test_topic_ambiguity(ranking: list[tuple[str, float]], expected: float | None) -> None:
    got = topic_ambiguity(ranking)
    assert got == pytest.approx(expected) if expected is not None else got is None


def _classify(ranking: list[tuple[str, float]], threshold: float = 0.15, ambiguity: float = 0.05) -> str:
    from rasa.shared.nlu.training_data.message import Message

    from bot.nlu.fallback import TopicFallbackClassifier

    config = {**TopicFallbackClassifier.get_default_config(), "threshold": threshold, "ambiguity_threshold": ambiguity}
    classifier = TopicFallbackClassifier(config)
    message = Message(
        data={
            "text": "x",
            "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
        }
    )
    classifier.process([message])
    return str(message.data["intent"]["name"])


def test_component_keeps_a_near_tie_within_one_topic() -> None:
    assert _classify([("job_offer", 0.40), ("recruitment_tactics", 0.38), ("legal_rights", 0.10)]) == "job_offer"


def test_component_falls_back_on_a_tie_between_topics() -> None:
    assert _classify([("job_offer", 0.40), ("legal_rights", 0.38), ("greet", 0.10)]) == "nlu_fallback"


def test_component_still_falls_back_on_low_confidence() -> None:
    assert _classify([("job_offer", 0.12), ("recruitment_tactics", 0.02), ("greet", 0.01)]) == "nlu_fallback"


def test_the_shipped_config_uses_it() -> None:
    import yaml

    from bot.config import ROOT

    names = [c["name"] for c in yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"]]
    assert "bot.nlu.fallback.TopicFallbackClassifier" in names
    assert "FallbackClassifier" not in names
