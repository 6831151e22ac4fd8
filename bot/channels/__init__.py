"""Channels: how users and counsellors reach the one pipeline (bot/pipeline.py)."""
