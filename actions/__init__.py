"""Custom Rasa actions (rasa_sdk): render localized content from data/."""
