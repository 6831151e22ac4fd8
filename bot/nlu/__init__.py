"""NLU helpers: script-aware segmentation and the Rasa tokenizer component built on it."""
