"""The production description stays consistent with the code: compose topology, Kannel config."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import ROOT
from bot.sms.kannel_conf import render


def test_compose_describes_the_scaled_out_topology() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    assert sum("bot rasa" in c for c in commands.values()) >= 2
    assert sum("bot actions" in c for c in commands.values()) >= 2
    assert sum("bot telegram" in c or "bot sms" in c for c in commands.values()) >= 2
    for name, command in commands.items():
        if "bot " in command:
            env = services[name]["environment"]
            assert env["SP_TRACKER_URL"].startswith("postgresql://") and env["SP_REDIS_URL"].startswith("redis://")
            assert env["SP_DB_URL"].startswith("postgresql://")
    assert "python:3.10" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_kannel_template_renders_with_the_safety_settings(tmp_path: Path) -> None:
    conf = render("http://127.0.0.1:8090", "key", "user", "pw", "admin", tmp_path, tmp_path)
    assert "mo-recode = true" in conf and "log-level = 2" in conf and "kannel:key@" in conf
    assert "{" not in conf.replace("%", "")  # every placeholder filled


def test_makefile_targets_are_unique_and_each_documented_command_exists() -> None:
    targets = re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(targets) == len(set(targets)), "a repeated target silently overrides the first recipe"
    documented = set(re.findall(r"`make ([a-z-]+)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert documented and documented <= set(targets), documented - set(targets)
