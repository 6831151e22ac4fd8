"""The offer check's semantic flag layer without the real encoder: a fake encoder at the vector boundary, so each
branch (sentences, thresholds, short texts, a failing encoder, the combination with the patterns, training and
saving) is tested in milliseconds. The trained model on the shipped data: tests/test_offer_semantic_model.py."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bot.offer import analyse
from bot.offer.semantic import (
    Example,
    FlagModel,
    FlagScorer,
    FlagSettings,
    fingerprint,
    load_examples,
    plain,
    scorable,
    sentences,
)

WORDS = ("shh", "ticket", "passport", "visa")  # one dimension each; a fifth for everything else


class FakeEncoder:
    """Bag of the WORDS above, L2-normalised; counts its calls."""

    name = "fake"
    dim = len(WORDS) + 1

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            low = text.lower()
            row = np.array([low.count(w) for w in WORDS] + [0.5], dtype=np.float32)
            rows.append(row / np.linalg.norm(row))
        return np.vstack(rows)


def model(thresholds: tuple[float, ...] = (0.8, 0.8)) -> FlagModel:
    """pressure_secrecy on "shh", online_partner_ticket on "ticket": steep logistic regressions."""
    coef = np.zeros((2, FakeEncoder.dim), np.float32)
    coef[0, 0] = coef[1, 1] = 20.0
    intercept = np.asarray([-10.0, -10.0], np.float32)
    stack = np.asarray([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32)  # the linear model alone
    vectors, labels = np.zeros((1, FakeEncoder.dim), np.float16), np.zeros((1, 2), bool)
    flags = ("pressure_secrecy", "online_partner_ticket")
    return FlagModel("fake", flags, coef, intercept, stack, vectors, labels, np.asarray(thresholds))


def test_a_flag_in_one_sentence_of_a_long_message_is_found() -> None:
    """The whole text's vector dilutes the one sentence that carries the flag; the sentence's own vector does not."""
    encoder = FakeEncoder()
    scorer = FlagScorer(model(), encoder)
    text = "My cousin told me about the visa office. She said shh to your family please. Passport visa passport."
    whole_only = scorer.model.proba(encoder.encode([text]))[0, 0]
    assert whole_only < 0.8  # diluted
    assert set(scorer.found(text)) == {"pressure_secrecy"}
    assert len(encoder.calls[-1]) == 4  # whole text + 3 sentences, one batched call


def test_a_one_sentence_message_is_encoded_once() -> None:
    encoder = FakeEncoder()
    FlagScorer(model(), encoder).found("he wants to send me a ticket so we finally meet")
    assert encoder.calls == [["he wants to send me a ticket so we finally meet"]]


def test_below_its_threshold_a_flag_is_not_found() -> None:
    scorer = FlagScorer(model(thresholds=(0.9999999, 0.8)), FakeEncoder())
    assert scorer.found("she said shh, ok") == {}
    assert scorer.probabilities("she said shh, ok")["pressure_secrecy"] > 0.8


def test_short_texts_are_not_scored() -> None:
    encoder = FakeEncoder()
    scorer = FlagScorer(model(), encoder)
    assert not scorable("ok 👍") and not scorable("   ")
    assert scorer.found("shh") == {} and encoder.calls == []


@pytest.mark.parametrize(
    ("typed", "photographed"),
    [
        ("hey 😘 a job for you 🇬🇧, don't tell anyone 🤫👍🏽", "hey a job for you , don't tell anyone"),
        ("สวัสดีจ้าน้อง 💕 เห็นโปรไฟล์แล้ว อย่าเพิ่งบอกใคร", "สวัสดีจ้าน้องเห็นโปรไฟล์แล้วอย่าเพิ่งบอกใคร"),
        ("不要 告诉 家人 🤫 先交 押金 1️⃣", "不要告诉家人先交押金 1"),
    ],
)
def test_emoji_and_spaces_between_unspaced_letters_do_not_change_what_the_model_reads(typed: str, photographed: str) -> None:
    """OCR never reads emoji and cannot tell a Thai pause from its own gaps: the offer she types and its screenshot
    must be one text for the model (currency signs stay: "3000$" is pay)."""
    assert plain(typed) == plain(photographed)
    assert "$" in plain("先交 3000$ 押金")
    assert FlagScorer.texts(typed) == FlagScorer.texts(photographed)


def test_training_texts_are_read_as_messages_are(tmp_path: Path) -> None:
    folder = tmp_path / "offer" / "semantic"
    folder.mkdir(parents=True)
    (folder / "th.yml").write_text(
        "language: th\nitems:\n  - {text: 'อย่าบอก ใคร 🤫 นะ', flags: [pressure_secrecy]}\n", encoding="utf-8"
    )
    assert [e.text for e in load_examples(tmp_path)] == ["อย่าบอกใครนะ"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("First sentence here. Second sentence here! Third one?", 3),
        ("ประโยคแรกยาวพอสมควร\nประโยคที่สองยาวพอสมควร", 2),
        ("第一句话是关于工作的事情。第二句话是关于签证的事情。", 2),
        ("ok. fine. This sentence is long enough.", 1),  # too short to score alone
        ("no punctuation at all just one long line of words", 1),
    ],
)
def test_sentences(text: str, expected: int) -> None:
    assert len(sentences(text)) == expected


def test_a_model_trained_for_another_encoder_is_refused() -> None:
    class Other(FakeEncoder):
        name = "other"

    with pytest.raises(RuntimeError, match="retrain"):
        FlagScorer(model(), Other())


GIRL = "a woman on facebook offers me a job in a restaurant in Bangkok, 20000 baht a month, she will pay the bus. I am 16"


def test_the_model_adds_flags_the_patterns_missed_and_says_so() -> None:
    text = GIRL + ". She said shh to my mum."
    patterns = analyse(text, "en", "TH")
    assert "pressure_secrecy" not in patterns.flags  # the patterns do not read "shh" as secrecy
    both = analyse(text, "en", "TH", scorer=FlagScorer(model(), FakeEncoder()))
    assert set(both.flags) == set(patterns.flags) | {"pressure_secrecy"}
    finding = both.finding("pressure_secrecy")
    assert finding is not None and finding.evidence[0].startswith("semantic ")
    assert finding.severity == "concerning"


def test_an_online_partner_found_by_the_model_is_not_a_recruiter_paying_travel() -> None:
    """The same rule as for the patterns: his ticket and his contact are online_partner_ticket only."""
    text = "I met him on facebook, we chat every night. He will pay the bus ticket to Bangkok to meet him"
    patterns = analyse(text, "en", None)
    both = analyse(text, "en", None, scorer=FlagScorer(model(), FakeEncoder()))
    assert "online_partner_ticket" in both.flags
    assert "travel_paid" not in both.flags and "stranger_recruiter" not in both.flags
    assert set(both.flags) - {"online_partner_ticket"} <= set(patterns.flags)


def test_one_model_flag_alone_in_ordinary_chat_is_not_a_finding() -> None:
    """The context gate: no job, pay, offer words or pattern flag, and only one flag from the model."""
    report = analyse("she always says shh when my sister comes", "en", None, scorer=FlagScorer(model(), FakeEncoder()))
    assert report.flags == () and not report.is_offer


def test_one_model_flag_with_an_offer_around_it_is_a_finding() -> None:
    report = analyse("a job in a restaurant in Bangkok, she says shh", "en", None, scorer=FlagScorer(model(), FakeEncoder()))
    assert "pressure_secrecy" in report.flags and report.is_offer


def test_an_online_partner_s_ticket_needs_no_job_words() -> None:
    report = analyse("he will send a ticket so we meet", "en", None, scorer=FlagScorer(model(), FakeEncoder()))
    assert report.flags == ("online_partner_ticket",) and report.is_offer


def test_two_model_flags_make_an_offer_without_other_words() -> None:
    report = analyse("he says shh and he will send a ticket", "en", None, scorer=FlagScorer(model(), FakeEncoder()))
    assert set(report.flags) == {"pressure_secrecy", "online_partner_ticket"} and report.is_offer


def test_a_failing_encoder_leaves_the_patterns_report(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeEncoder):
        def encode(self, texts: list[str]) -> np.ndarray:
            raise OSError("engine gone: " + texts[0])

    caplog.set_level(logging.ERROR)
    report = analyse(GIRL, "en", "TH", scorer=FlagScorer(model(), Broken()))
    assert report.flags == analyse(GIRL, "en", "TH").flags
    assert "OSError" in caplog.text and "restaurant" not in caplog.text  # never her words in the log


# -- training --------------------------------------------------------------------------------------------------
def test_fit_learns_each_flag_and_picks_a_threshold_that_reaches_the_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    texts = [" ".join(rng.choice(["shh", "ticket", "passport", "visa", "hello", "job"], size=4)) for _ in range(300)]
    labels = [frozenset({"pressure_secrecy"} if "shh" in t else set()) for t in texts]
    encoder = FakeEncoder()
    settings = FlagSettings(flags=("pressure_secrecy", "marriage_broker"), precision=0.9)
    fitted = FlagModel.fit(encoder.encode(texts), labels, settings, "fake")
    assert fitted.flags == ("pressure_secrecy",)  # no example of marriage_broker: not in the model
    assert 0.5 <= fitted.thresholds[0] <= 1.0 and fitted.oof_precision[0] >= 0.9 and fitted.oof_recall[0] > 0.9
    assert fitted.vectors.shape == (300, FakeEncoder.dim) and fitted.labels.shape == (300, 1)
    path = tmp_path / "m.npz"
    fitted.save(path)
    loaded = FlagModel.load(path)
    assert loaded.flags == fitted.flags and np.allclose(loaded.coef, fitted.coef)
    assert np.allclose(loaded.thresholds, fitted.thresholds) and np.allclose(loaded.stack, fitted.stack)
    probe = encoder.encode(["shh shh hello", "visa job hello"])
    assert np.allclose(loaded.proba(probe), fitted.proba(probe), atol=1e-3)
    scorer = FlagScorer(loaded, encoder)
    assert "pressure_secrecy" in scorer.found("this is a shh shh job")
    assert scorer.found("hello job ticket visa hello") == {}


def test_the_neighbour_score_is_closer_to_the_flag_s_texts_than_to_the_others() -> None:
    from bot.offer.semantic import _neighbour_scores

    similarities = np.asarray([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.9, 0.8]], np.float32)
    labels = np.asarray([[True], [True], [False], [False]])
    scores = _neighbour_scores(similarities, labels)
    assert scores[0, 0] > 0 > scores[1, 0]


def test_a_flag_that_never_reaches_the_precision_never_fires() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 5)).astype(np.float32)
    labels = [frozenset({"vague_job"}) if rng.random() < 0.5 else frozenset() for _ in range(200)]  # noise
    fitted = FlagModel.fit(vectors, labels, FlagSettings(flags=("vague_job",), precision=0.99), "fake")
    assert fitted.thresholds[0] > 1.0


def _write(folder: Path, language: str, items: str) -> None:
    (folder / "offer" / "semantic").mkdir(parents=True, exist_ok=True)
    (folder / "offer" / "semantic" / f"{language}.yml").write_text(
        f"language: {language}\nreview: machine_drafted\nitems:\n{items}", encoding="utf-8"
    )


def test_training_data_with_an_unknown_flag_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "en", '  - text: "x y z"\n    flags: [fee]\n')
    with pytest.raises(ValueError, match="unknown flag"):
        load_examples(tmp_path)


def test_the_fingerprint_follows_the_data(tmp_path: Path) -> None:
    _write(tmp_path, "en", '  - text: "keep it secret"\n    flags: [pressure_secrecy]\n')
    assert load_examples(tmp_path) == [Example("keep it secret", frozenset({"pressure_secrecy"}), "en")]
    before = fingerprint(tmp_path, "fake")
    _write(tmp_path, "en", '  - text: "keep it a secret"\n    flags: [pressure_secrecy]\n')
    assert fingerprint(tmp_path, "fake") != before != fingerprint(tmp_path, "other")


def test_settings_refuse_unknown_flags_and_default_off_without_a_file(tmp_path: Path) -> None:
    assert not FlagSettings.from_data(tmp_path).enabled
    (tmp_path / "offer").mkdir()
    (tmp_path / "offer" / "semantic.yml").write_text("flags: [fee]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown flag"):
        FlagSettings.from_data(tmp_path)
