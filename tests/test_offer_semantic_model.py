"""The offer check's semantic flag layer as shipped: the model `bot train` fits on data/offer/semantic (trained here
if missing, ~1 minute). The sentences below were written for this test from the label definitions; they are in
neither the training data nor the evaluation sets. Branch-by-branch tests with a fake encoder:
tests/test_offer_semantic.py."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.offer import analyse
from bot.offer.semantic import FlagScorer, FlagSettings, load_examples, load_scorer

LANGUAGES = ("en", "th", "my", "km", "vi", "id", "tl", "zh", "ru", "uk", "ro")


@pytest.fixture(scope="module")
def scorer() -> FlagScorer:
    settings = Settings()
    built = load_scorer(settings.models_dir, settings.data_dir)
    assert built is not None, "the semantic flag layer is off or has no training data"
    return built


def test_every_language_has_training_data_for_every_model_flag() -> None:
    settings = Settings()
    examples = load_examples(settings.data_dir)
    for language in LANGUAGES:
        mine = [e for e in examples if e.language == language]
        assert len(mine) >= 150, language
        assert sum(not e.flags for e in mine) >= 40, language  # negatives: fair offers, questions, negations
        for flag in FlagSettings.from_data(settings.data_dir).flags:
            assert sum(flag in e.flags for e in mine) >= 8, (language, flag)


def test_the_thresholds_were_proven_out_of_fold(scorer: FlagScorer) -> None:
    """Each flag fires only where its out-of-fold precision on the training data reached the setting."""
    settings = FlagSettings.from_data(Settings().data_dir)
    model = scorer.model
    assert set(model.flags) == set(settings.flags)
    for flag, threshold, precision in zip(model.flags, model.thresholds, model.oof_precision, strict=True):
        assert threshold > 1.0 or precision >= settings.for_flag(flag), flag


@pytest.mark.parametrize(
    ("language", "text", "flag"),
    [
        (
            "en",
            "the driver says we walk across by the river after dark so the guards don't see us, the factory job waits",
            "night_border",
        ),
        (
            "en",
            "the guy from the game chat wants to book me a flight so we can finally be together",
            "online_partner_ticket",
        ),
        ("en", "an auntie says a man in Korea is looking for a wife and will give my family money", "marriage_broker"),
        ("en", "they want pictures of me in a swimsuit before the interview", "photo_request"),
        ("ru", "он сказал никому не говорить, даже маме, пока я не уеду", "pressure_secrecy"),
        ("id", "cowok yang kenal di facebook mau beliin tiket pesawat biar kita bisa ketemu", "online_partner_ticket"),
    ],
)
def test_the_model_reads_a_flag_in_other_words(scorer: FlagScorer, language: str, text: str, flag: str) -> None:
    assert flag in scorer.found(text), scorer.probabilities(text)
    assert flag in analyse(text, language, None, scorer=scorer).flags


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "what is a work visa and how long does it take to get one?"),
        ("en", "my dad bought my bus ticket so I can visit grandma at the weekend"),
        ("en", "we learnt about the history of the border in class today"),
        ("en", "thank you, that was really helpful, see you tomorrow"),
    ],
)
def test_ordinary_messages_get_no_findings(scorer: FlagScorer, language: str, text: str) -> None:
    report = analyse(text, language, None, scorer=scorer)
    assert not (report.is_offer and report.flags), (report.flags, scorer.probabilities(text))


def test_offer_evaluation_sets_have_the_agreed_shape_and_are_never_training_data() -> None:
    """Every offer set in tests/data (blind or development) covers the 11 languages with known flag ids, and no
    offer of it is a training item of the semantic layer (a leak would make its figures a memory test)."""
    from benchmarks.offer_eval import SETS, load
    from bot.offer import FLAG_IDS

    trained = {e.text.casefold() for e in load_examples(Settings().data_dir)}
    assert {"blind", "blind2", "blind3", "blind4", "blind5", "dev"} <= set(SETS)
    for folder in SETS:  # the sets the benchmark reports on
        for language in LANGUAGES:
            items = load(language, folder)
            assert len(items) >= 20, (folder, language)
            for item in items:
                assert set(item.get("flags") or ()) <= set(FLAG_IDS), (folder, item["text"][:40])
                assert " ".join(item["text"].split()).casefold() not in trained, (folder, item["text"][:60])
