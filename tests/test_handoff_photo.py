# ruff: noqa: F811 - `world` (tests/test_pipeline_unit.py) is a fixture, imported for the tests to request
"""Issue 16: a picture while a counsellor is talking to her. Counsellors cannot see pictures: she is told so kindly,
the words read from it (OCR, in memory) are shown to her, and only with her consent does the shortened text go to
the counsellor. The image is never stored; the words wait in memory only until she answers."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import sqlalchemy as sa

from benchmarks.offer_images import render
from bot.content import Catalog
from bot.pipeline import PHOTO_DISCARD, PHOTO_NOTE_ASKED, PHOTO_SEND, PHOTO_WAIT_SECONDS
from tests.test_pipeline_unit import run, world  # noqa: F401 - `world` is a fixture

OFFER = "A woman on Facebook offers me a job in a massage shop in Dubai, 2000 dollars a month, she pays the ticket"


def _photo(world: Any, user: str, data: bytes) -> Any:
    return asyncio.run(world.pipeline.handle_image("local", user, data))


def _case(world: Any, user: str) -> Any:
    return world.pipeline.handoff.active_for(world.pipeline.key_for("local", user))


def _lines(world: Any, case_id: int) -> list[Any]:
    """The case's transcript after the /counsellor that opened it."""
    lines = world.pipeline.handoff.read_transcript("c", case_id, audit="never")
    return [line for line in lines if not (line.sender == "user" and line.text.startswith("/"))]


def _blank() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), (230, 230, 230)).save(out, format="JPEG")
    return out.getvalue()


def _all_text(world: Any) -> str:
    """Every text column of every table (sealed or not): what the database holds."""
    out = []
    with world.engine.connect() as conn:
        meta = sa.MetaData()
        meta.reflect(bind=conn)
        for table in meta.tables.values():
            for row in conn.execute(sa.select(table)):
                out.extend(str(v) for v in row if isinstance(v, (str, bytes)))
    return "\n".join(out)


def test_a_picture_in_a_handoff_is_read_shown_to_her_and_sent_only_with_her_consent(world: Any, catalog: Catalog) -> None:
    run(world, "/counsellor", user="photo")
    case = _case(world, "photo")
    turn = _photo(world, "photo", render(OFFER, "en", seed=3))
    assert world.rasa.sent == []  # a handoff: never Rasa
    ask = turn.replies[0]
    prefix = catalog.text("handoff_photo_read", "en", text="@@").split("@@")[0]
    assert ask.text.startswith(prefix) and "Dubai" in ask.text
    assert [p for _, p in ask.buttons] == [PHOTO_SEND, PHOTO_DISCARD]
    assert turn.handoff == "waiting" and turn.escalation_id == case.id
    assert not [line for line in _lines(world, case.id) if line.sender == "user"]  # nothing of hers sent yet
    assert "Dubai" not in _all_text(world)  # her words are not stored before she agrees (only in memory)
    (note,) = [line for line in _lines(world, case.id) if line.sender == "bot"][-1:]
    assert note.text == PHOTO_NOTE_ASKED  # the counsellor knows a picture came, not what it says

    sent = run(world, PHOTO_SEND, user="photo")
    assert sent.replies[0].text == catalog.text("handoff_photo_sent", "en")
    (line,) = [line for line in _lines(world, case.id) if line.sender == "user"]
    assert line.text.startswith("[words read from her picture by OCR") and "Dubai" in line.text
    assert "offer check:" in line.text and "stranger_recruiter" in line.text  # a hint for the counsellor
    again = run(world, PHOTO_SEND, user="photo")  # a second tap: nothing left, nothing sent twice
    assert again.replies[0].text == catalog.text("handoff_photo_expired", "en")
    assert len([line for line in _lines(world, case.id) if line.sender == "user"]) == 1


def test_she_can_say_no_and_nothing_is_sent(world: Any, catalog: Catalog) -> None:
    run(world, "/counsellor", user="no-photo")
    case = _case(world, "no-photo")
    _photo(world, "no-photo", render(OFFER, "en", seed=4))
    turn = run(world, PHOTO_DISCARD, user="no-photo")
    assert turn.replies[0].text == catalog.text("handoff_photo_not_sent", "en")
    assert not [line for line in _lines(world, case.id) if line.sender == "user"]
    assert world.pipeline._photo_words == {}


def test_a_picture_without_words_gets_a_kind_reply_and_nothing_waits(world: Any, catalog: Catalog) -> None:
    run(world, "/counsellor", user="blank-photo")
    turn = _photo(world, "blank-photo", _blank())
    assert [r.text for r in turn.replies][0] == catalog.text("handoff_photo_unreadable", "en")
    assert world.pipeline._photo_words == {}
    not_an_image = _photo(world, "blank-photo", b"%PDF-1.4 not a picture")
    assert not_an_image.replies[0].text == catalog.text("handoff_photo_unreadable", "en")


def test_the_words_wait_only_a_while_and_go_with_erase_or_when_the_handoff_ends(world: Any, catalog: Catalog) -> None:
    clock = world.pipeline.handoff.clock
    now = [clock()]
    world.pipeline.handoff.clock = lambda: now[0]
    run(world, "/counsellor", user="late")
    _photo(world, "late", render(OFFER, "en", seed=5))
    now[0] += PHOTO_WAIT_SECONDS + 1
    late = run(world, PHOTO_SEND, user="late")
    assert late.replies[0].text == catalog.text("handoff_photo_expired", "en")
    case = _case(world, "late")
    assert not [line for line in _lines(world, case.id) if line.sender == "user"]

    run(world, "/counsellor", user="ends")
    _photo(world, "ends", render(OFFER, "en", seed=6))
    run(world, "/stop", user="ends")  # she ends the handoff: the words are dropped
    assert world.pipeline.key_for("local", "ends") not in world.pipeline._photo_words
    after = run(world, PHOTO_SEND, user="ends")  # an old button, outside a handoff: nothing sent, not to Rasa
    assert after.replies[0].text == catalog.text("handoff_photo_expired", "en") and PHOTO_SEND not in world.rasa.sent

    run(world, "/counsellor", user="erased")
    _photo(world, "erased", render(OFFER, "en", seed=7))
    run(world, "/erase", user="erased")
    assert world.pipeline.key_for("local", "erased") not in world.pipeline._photo_words


def test_urgent_words_in_the_picture_raise_the_case_once_she_sends_them(world: Any) -> None:
    run(world, "/counsellor", user="urgent-photo")
    case = _case(world, "urgent-photo")
    assert case.risk_level == "concern"
    _photo(world, "urgent-photo", render("They took my passport and lock me in the room. Help me", "en", seed=8))
    turn = run(world, PHOTO_SEND, user="urgent-photo")
    assert turn.escalate and turn.risk_level == "urgent"
    assert _case(world, "urgent-photo").risk_level == "urgent"
