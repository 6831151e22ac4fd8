"""The semantic risk model: multinomial logistic regression on sentence vectors.

Two heads, both plain linear models kept as numpy arrays (saved as ``.npz``, never pickled):
- the *level* head: urgent / concern / person / none, with probabilities calibrated by
  temperature scaling on out-of-fold predictions (5-fold), so that 0.9 means about 9 in 10;
- the *category* head: which urgent category (locked_in, forced_sex, ...) a message is
  closest to, trained on the sentences that name one.
No Rasa imports; trained by ``python -m bot train`` (bot/semantic/train.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bot.semantic.data import LEVEL_LABELS


@dataclass(frozen=True)
class SemanticRisk:
    """Calibrated probabilities of one message."""

    urgent: float
    concern: float
    person: float
    none: float
    category: str | None  # the closest urgent category
    category_score: float

    @property
    def level(self) -> str:
        best = max(LEVEL_LABELS, key=lambda label: float(getattr(self, label)))
        return best


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


@dataclass
class LinearHead:
    classes: list[str]
    coef: np.ndarray  # (classes, dim)
    intercept: np.ndarray  # (classes,)
    temperature: float = 1.0

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors @ self.coef.T + self.intercept)

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        return _softmax(self.logits(vectors) / self.temperature)


def _fit_head(vectors: np.ndarray, labels: Sequence[str], c: float, seed: int) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    # No class re-weighting: the priors of the data stay in the probabilities (re-weighting to
    # balance tripled the false escalations on the development sets at the same recall).
    model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    model.fit(vectors, np.asarray(labels))
    coef, intercept = np.asarray(model.coef_), np.asarray(model.intercept_)
    if len(model.classes_) == 2:  # sklearn keeps one row for two classes: make it a softmax pair
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    return LinearHead([str(x) for x in model.classes_], coef, intercept)


def _fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of out-of-fold logits."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 81)):
        p = _softmax(logits / t)
        nll = -float(np.mean(np.log(p[np.arange(len(targets)), targets] + 1e-12)))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


@dataclass
class SemanticRiskModel:
    encoder_name: str
    level: LinearHead
    category: LinearHead

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        labels: Sequence[str],
        categories: Sequence[str | None],
        encoder_name: str,
        c: float = 16.0,
        folds: int = 5,
        seed: int = 2026,
    ) -> SemanticRiskModel:
        labels_arr = np.asarray(labels)
        level = _fit_head(vectors, labels, c, seed)
        # out-of-fold logits for the temperature (stratified by label, deterministic)
        rng = np.random.default_rng(seed)
        fold_of = np.zeros(len(labels_arr), dtype=int)
        for label in set(labels_arr.tolist()):
            idx = np.flatnonzero(labels_arr == label)
            rng.shuffle(idx)
            fold_of[idx] = np.arange(len(idx)) % folds
        oof = np.zeros((len(labels_arr), len(level.classes)))
        for k in range(folds):
            train, test = fold_of != k, fold_of == k
            head = _fit_head(vectors[train], labels_arr[train].tolist(), c, seed)
            aligned = np.full((int(test.sum()), len(level.classes)), -1e9)
            raw = head.logits(vectors[test])
            for j, name in enumerate(head.classes):
                aligned[:, level.classes.index(name)] = raw[:, j]
            oof[test] = aligned
        targets = np.asarray([level.classes.index(x) for x in labels_arr])
        level.temperature = _fit_temperature(oof, targets)
        named = [i for i, cat in enumerate(categories) if cat]
        if len({categories[i] for i in named}) >= 2:
            category = _fit_head(vectors[named], [str(categories[i]) for i in named], c, seed)
        else:  # no categorised sentences: every urgent message is "unspecified"
            category = LinearHead(["unspecified"], np.zeros((1, vectors.shape[1])), np.zeros(1))
        return cls(encoder_name, level, category)

    def predict(self, vectors: np.ndarray) -> list[SemanticRisk]:
        levels = self.level.proba(vectors)
        cats = self.category.proba(vectors)
        out = []
        for row, cat_row in zip(levels, cats, strict=True):
            scores = dict(zip(self.level.classes, map(float, row), strict=True))
            best = int(cat_row.argmax())
            out.append(
                SemanticRisk(
                    urgent=scores.get("urgent", 0.0),
                    concern=scores.get("concern", 0.0),
                    person=scores.get("person", 0.0),
                    none=scores.get("none", 0.0),
                    category=self.category.classes[best],
                    category_score=float(cat_row[best]),
                )
            )
        return out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            encoder=np.asarray(self.encoder_name),
            level_classes=np.asarray(self.level.classes),
            level_coef=self.level.coef,
            level_intercept=self.level.intercept,
            level_temperature=np.asarray(self.level.temperature),
            category_classes=np.asarray(self.category.classes),
            category_coef=self.category.coef,
            category_intercept=self.category.intercept,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SemanticRiskModel:
        with np.load(path, allow_pickle=False) as a:
            level = LinearHead(
                a["level_classes"].tolist(), a["level_coef"], a["level_intercept"], float(a["level_temperature"])
            )
            category = LinearHead(a["category_classes"].tolist(), a["category_coef"], a["category_intercept"])
            return cls(str(a["encoder"]), level, category)
