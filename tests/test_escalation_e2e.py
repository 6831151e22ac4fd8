"""Escalation through the real stack (gateway -> screener -> SQLite -> Rasa pause) and the
real counsellor console process: escalate -> notify -> claim -> relay both ways ->
release/close; a second counsellor cannot claim; Rasa down still escalates."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import sqlalchemy as sa

from bot.config import ROOT, Settings
from bot.content import Catalog
from bot.db import open_engine
from bot.handoff import Handoff
from bot.profiles import user_key
from tests.conftest import Conversation

COUNSELLORS = "counsellor,bob"


def console(settings: Settings, *args: str, name: str = "counsellor") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SP_VAR_DIR": str(settings.var_dir), "SP_COUNSELLORS": COUNSELLORS}
    env["SP_RASA_PORT"] = str(settings.rasa_port)
    return subprocess.run(
        [sys.executable, "-m", "bot", "counsellor", "--as", name, *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip


def handoff_for(settings: Settings) -> Handoff:
    return Handoff(open_engine(settings.database_url()), settings.secret("pepper", settings.pepper), COUNSELLORS.split(","))


def rasa_events(settings: Settings, user: str) -> list[str]:
    """Event types in her Rasa tracker (the real SQL tracker store)."""
    sender = user_key(settings.secret("pepper", settings.pepper), "test", user)
    engine = sa.create_engine(f"sqlite:///{settings.tracker_db_path()}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select type_name from events where sender_id = :s order by id"), {"s": sender})
        return [r[0] for r in rows]


def deliveries(settings: Settings, user: str) -> list[str]:
    handoff = handoff_for(settings)
    out = []
    for item in handoff.pending_deliveries("test"):
        if item.address == user:
            out.append(item.text)
            handoff.mark_sent(item.id)
    return out


def test_danger_is_handed_to_a_counsellor_and_back(live_settings: Settings, catalog: Catalog) -> None:
    user = "girl-in-danger"
    chat = Conversation(live_settings, user)
    (danger,) = chat.say("the boss keeps our passports and they lock us in at night")
    assert danger["escalate"] is True and danger["risk_level"] == "urgent" and danger["handoff"] == "waiting"
    assert danger["risk_category"] in {"documents_taken", "locked_in"}
    assert catalog.text("escalation_alerted", "en") in danger["replies"]
    assert "pause" in rasa_events(live_settings, user)

    mine = handoff_for(live_settings).active_for(user_key(live_settings.secret("pepper", ""), "test", user))
    assert mine is not None
    queue = json.loads(console(live_settings, "--json", "queue").stdout)
    (card,) = [c for c in queue if c["id"] == mine.id]
    assert card["risk_level"] == "urgent" and card["language"] == "en" and card["channel"] == "test"
    number = str(card["id"])
    assert console(live_settings, "claim", number).returncode == 0
    second = console(live_settings, "claim", number, name="bob")
    assert second.returncode == 1 and "not open" in second.stdout
    intruder = console(live_settings, "queue", name="mallory")
    assert intruder.returncode == 2

    (relayed,) = chat.say("are you a real person?")
    assert relayed["handoff"] == "counsellor" and relayed["replies"] == [] and relayed["intent"] is None
    transcript = console(live_settings, "show", number).stdout
    assert "are you a real person?" in transcript
    assert console(live_settings, "say", number, "Yes, I'm Dana, a counsellor. Are you safe right now?").returncode == 0
    assert deliveries(live_settings, user) == [
        catalog.text("handoff_started", "en"),
        "Yes, I'm Dana, a counsellor. Are you safe right now?",
    ]
    assert "user_uttered" not in rasa_events(live_settings, user)[-3:]  # her relayed words never reached Rasa

    assert console(live_settings, "release", number).returncode == 0
    assert deliveries(live_settings, user) == [catalog.text("handoff_released", "en")]
    assert rasa_events(live_settings, user).count("resume") == 1
    (back,) = chat.say("who can I call for help?")
    assert back["handoff"] is None and back["intent"] == "get_help"


def test_counsellor_closes_with_an_outcome(live_settings: Settings, catalog: Catalog) -> None:
    user = "closing-case"
    chat = Conversation(live_settings, user)
    chat.say("I want to die")
    mine = handoff_for(live_settings).active_for(user_key(live_settings.secret("pepper", ""), "test", user))
    assert mine is not None
    queue = json.loads(console(live_settings, "--json", "queue").stdout)
    (card,) = [c for c in queue if c["id"] == mine.id]
    assert card["risk_category"] == "suicidal"
    assert console(live_settings, "claim", str(card["id"])).returncode == 0
    assert console(live_settings, "close", str(card["id"]), "safe_with_family").returncode == 0
    closed = handoff_for(live_settings).get(card["id"])
    assert closed is not None and (closed.status, closed.outcome) == ("closed", "safe_with_family")
    assert deliveries(live_settings, user)[-1] == catalog.text("handoff_closed", "en")


def test_concern_offers_a_counsellor_without_forcing_one(live_settings: Settings) -> None:
    offer, accepted = Conversation(live_settings, "worried-sister").say(
        "my sister went to work in Dubai and stopped answering her phone", "/counsellor"
    )
    assert offer["risk_level"] == "concern" and offer["escalate"] is False and offer["handoff"] is None
    assert [b["payload"] for b in offer["buttons"][-1]] == ["/counsellor", "/no_counsellor"]
    assert accepted["escalate"] is True and accepted["handoff"] == "waiting"


def test_she_can_leave_the_handoff_herself(live_settings: Settings, catalog: Catalog) -> None:
    _, waiting, left, normal = Conversation(live_settings, "changed-mind").say("hi", "sos", "/stop", "hello")
    assert waiting["risk_category"] == "cry_for_help"
    assert left["replies"] == [catalog.text("handoff_ended_by_user", "en")]
    assert normal["intent"] == "greet"


def test_escalation_works_with_rasa_down(live_settings: Settings) -> None:
    down = Settings(rasa_port=5999, var_dir=live_settings.var_dir)
    (turn,) = Conversation(down, "no-rasa").say("please help me they locked me in")
    assert turn["escalate"] is True and turn["risk_level"] == "urgent"
    assert any("191" in r or "911" in r or "112" in r for r in turn["replies"])  # emergency numbers
    assert handoff_for(live_settings).active_for(user_key(down.secret("pepper", ""), "test", "no-rasa")) is not None


def test_erase_forgets_her_everywhere(live_settings: Settings, catalog: Catalog) -> None:
    user = "erase-me"
    chat = Conversation(live_settings, user)
    chat.say("/country Thailand", "they took my passport")
    assert rasa_events(live_settings, user)
    (erased,) = chat.say("/erase")
    assert erased["replies"] == [catalog.text("erased", "en")]
    key = user_key(live_settings.secret("pepper", ""), "test", user)
    assert rasa_events(live_settings, user) == []
    engine = sa.create_engine(live_settings.database_url())
    with engine.connect() as conn:
        for table in ("profiles", "escalations", "outbox"):
            count = conn.execute(sa.text(f"select count(*) from {table} where user_key = :k"), {"k": key}).scalar_one()  # noqa: S608
            assert count == 0, table
