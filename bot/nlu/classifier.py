"""Rasa 3.6 intent classifier component around ``LinearIntentModel``."""

from __future__ import annotations

import pickle  # noqa: S403 - we load only model files this component wrote itself
from typing import Any, Dict, List, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.linear import LinearIntentModel

RANKING_LENGTH = 10
MODEL_FILE = "linear_intent_model.pkl"


def _tokens(message: Message) -> list[str]:
    return [t.text for t in message.get(TOKENS_NAMES[TEXT]) or []]


def _dense(messages: List[Message]) -> np.ndarray | None:
    """The dense sentence vectors a featurizer (bot.nlu.dense) added, or None if there are none."""
    rows = []
    for message in messages:
        _, sentence = message.get_dense_features(TEXT)
        if sentence is None:
            return None
        rows.append(np.asarray(sentence.features).reshape(-1))
    return np.vstack(rows) if rows else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(IntentClassifier, GraphComponent):
    """TF-IDF word + character n-grams (+ the sentence vector of bot.nlu.dense when configured)
    and a calibrated linear SVM (see bot/nlu/linear.py)."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """Needs tokens from a tokenizer."""
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[str]:
        """Runtime packages."""
        return ["sklearn"]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """C of the SVM and the character n-gram range."""
        return {"C": 1.0, "min_char_ngram": 1, "max_char_ngram": 5, "random_seed": 2026, "dense_weight": 1.0}

    def __init__(
        self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, model: LinearIntentModel | None = None
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage, self._resource = model_storage, resource
        self.model = model

    @classmethod
    def create(
        cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> LinearIntentClassifier:
        """New untrained component."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on every example that has an intent and a text."""
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        model = LinearIntentModel(
            c=float(self.config["C"]),
            char_ngrams=(int(self.config["min_char_ngram"]), int(self.config["max_char_ngram"])),
            random_state=int(self.config["random_seed"]),
            dense_weight=float(self.config["dense_weight"]),
        )
        self.model = model.fit(
            [e.get(TEXT) for e in examples],
            [_tokens(e) for e in examples],
            [e.get(INTENT) for e in examples],
            _dense(examples),
        )
        with self._storage.write_to(self._resource) as directory:
            (directory / MODEL_FILE).write_bytes(pickle.dumps(self.model))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        """Load the trained model (an untrained component if there is none)."""
        try:
            with model_storage.read_from(resource) as directory:
                model = pickle.loads((directory / MODEL_FILE).read_bytes())  # noqa: S301
        except (ValueError, FileNotFoundError):
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent` and `intent_ranking` on each message."""
        if self.model is None or not messages:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        probabilities = self.model.predict_proba(texts, [_tokens(m) for m in messages], _dense(messages))
        for message, row in zip(messages, probabilities, strict=True):
            scored = sorted(zip(self.model.classes_, map(float, row), strict=True), key=lambda item: -item[1])
            ranking = [{"name": name, "confidence": confidence} for name, confidence in scored]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking[:RANKING_LENGTH], add_to_output=True)
        return messages
