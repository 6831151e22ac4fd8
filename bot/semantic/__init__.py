"""Semantic layer: one multilingual sentence encoder per process (bot.semantic.encoder), the
semantic risk model trained on it (bot.semantic.risk_model) and its training data loader
(bot.semantic.data). No Rasa imports; the Rasa featurizer (bot.nlu.dense) wraps the encoder."""
