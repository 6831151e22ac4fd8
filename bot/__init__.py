"""Safe Passage: a multilingual anti-trafficking awareness chatbot (gateway package)."""

__version__ = "0.1.0"
