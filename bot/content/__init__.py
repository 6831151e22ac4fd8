"""Localized content and per-country facts, loaded from YAML in data/ (no Rasa imports)."""

from bot.content.catalog import Catalog, Country, Hotline, Organisation, load_catalog
from bot.content.render import Message

__all__ = ["Catalog", "Country", "Hotline", "Message", "Organisation", "load_catalog"]
