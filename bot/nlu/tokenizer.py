"""Rasa 3.6 tokenizer component for every supported script (see ``segment``)."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.segment import segment, warm_up


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class MultilingualTokenizer(Tokenizer):
    """Tokenizes Latin/Cyrillic (spaCy), Thai (pythainlp), Burmese, Khmer and Chinese."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Returns the component's default config (Rasa's tokenizer options)."""
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @staticmethod
    def required_packages() -> List[str]:
        """Packages needed at runtime."""
        return ["spacy", "pythainlp", "regex"]

    @staticmethod
    def not_supported_languages() -> List[str] | None:
        """Every language is supported."""
        return None

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> MultilingualTokenizer:
        """Creates the component (segmenters loaded now, not on the first message)."""
        warm_up()
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        """Tokenizes the text of ``attribute``; never returns an empty list."""
        text = message.get(attribute) or ""
        tokens = [Token(p.text, p.start) for p in segment(text)]
        if not tokens:  # emoji-only or punctuation-only text still needs one token
            stripped = text.strip()
            tokens = [Token(stripped or "_", max(0, text.find(stripped)))]
        return self._apply_token_pattern(tokens)
