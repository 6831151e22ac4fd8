"""Every branch of the pipeline without a model: a fake Rasa server at the HTTP boundary
(httpx.MockTransport behind the real RasaClient), a fake semantic model, the real screener,
catalog, language identifier, handoff and stats on a temporary SQLite database."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from bot.content import Catalog
from bot.db import open_engine
from bot.handoff import Handoff
from bot.langid import LanguageIdentifier
from bot.pipeline import Pipeline
from bot.profiles import ProfileStore
from bot.rasa_client import RasaClient
from bot.risk.decision import RiskAssessor, Thresholds
from bot.risk.screener import Screener
from bot.semantic.risk_model import SemanticRisk
from bot.stats import daily

NONE = SemanticRisk(0.04, 0.03, 0.03, 0.9, "locked_in", 0.5)


class FakeRasa:
    """Answers /webhooks/gateway/* like bot/rasa_channel.py; records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.metadata: list[dict[str, Any]] = []
        self.intent: tuple[str, float] = ("job_offer", 0.9)
        self.messages: list[dict[str, Any]] = [{"text": "an answer"}]
        self.down = False
        self.erase_down = False  # only /erase fails (Rasa away for that call)
        self.erased: list[str] = []
        self.paused: dict[str, bool] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("down", request=request)
        body = json.loads(request.content or b"{}")
        path = request.url.path
        if path.endswith("/pause") or path.endswith("/resume"):
            self.paused[body["sender"]] = path.endswith("/pause")
            return httpx.Response(200, json={"paused": self.paused[body["sender"]]})
        if path.endswith("/erase"):
            if self.erase_down:
                raise httpx.ConnectError("down", request=request)
            self.erased.append(body["sender"])
            return httpx.Response(200, json={"erased": 1})
        self.sent.append(body["message"])
        self.metadata.append(body.get("metadata") or {})
        intent, confidence = self.intent
        return httpx.Response(200, json={"messages": self.messages, "intent": intent, "confidence": confidence})


class FakeEncoder:
    name, dim = "fake", 2

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 2), np.float32)


class FakeModel:
    """Returns the SemanticRisk the test set for a text (NONE otherwise)."""

    def __init__(self) -> None:
        self.by_text: dict[str, SemanticRisk] = {}
        self.last: str | None = None
        self.fail = False
        self.encoder_name = "fake"

    def predict(self, vectors: np.ndarray) -> list[SemanticRisk]:
        if self.fail:
            raise RuntimeError("broken model")
        return [self.by_text.get(self.last or "", NONE) for _ in range(len(vectors))]


class SpyAssessor(RiskAssessor):
    def semantic(self, text: str) -> SemanticRisk | None:
        assert isinstance(self.model, FakeModel)
        self.model.last = text
        return super().semantic(text)


@pytest.fixture
def world(tmp_path: Path, catalog: Catalog, identifier: LanguageIdentifier, screener: Screener) -> Any:
    engine = open_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    rasa_fake, model = FakeRasa(), FakeModel()
    rasa = RasaClient("http://rasa.test", "token", transport=httpx.MockTransport(rasa_fake))
    assessor = SpyAssessor(screener, model, FakeEncoder(), Thresholds())  # type: ignore[arg-type]
    pipeline = Pipeline(
        catalog, identifier, ProfileStore(engine), rasa, "pepper", screener, Handoff(engine, "pepper", ["c"]),
        assessor=assessor,
    )  # fmt: skip

    class World:
        pass

    w = World()
    w.pipeline, w.rasa, w.model, w.engine = pipeline, rasa_fake, model, engine  # type: ignore[attr-defined]
    return w


def run(world: Any, text: str, user: str = "girl") -> Any:
    return asyncio.run(world.pipeline.handle("local", user, text))


def escalations(world: Any) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from escalations")).scalar_one())


def test_nlu_danger_below_the_bar_offers_a_counsellor_and_opens_nothing(world: Any) -> None:
    world.rasa.intent = ("danger", 0.6)
    turn = run(world, "something about my job worries me a lot")
    assert turn.escalate is False and turn.handoff is None and escalations(world) == 0
    assert turn.risk_level == "concern" and turn.risk_category == "nlu_danger"
    assert any("/counsellor" in p for m in turn.replies for _, p in m.buttons)
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(daily.c.escalations))).scalar_one() == 0


def test_rasa_is_told_when_a_danger_reading_would_not_escalate(world: Any) -> None:
    """So that its danger action answers her question instead (tests/test_danger_reroute.py)."""
    from dataclasses import replace

    world.pipeline.assessor.thresholds = replace(world.pipeline.assessor.thresholds, lexicon_veto=0.9, veto_report=0.1)
    world.model.by_text["what does the law say about homework on slavery"] = SemanticRisk(
        0.01, 0.0, 0.0, 0.99, "locked_in", 0.5, report=0.01
    )
    run(world, "what does the law say about homework on slavery")
    run(world, "something about my job worries me a lot", user="other")
    assert [m["danger_vetoed"] for m in world.rasa.metadata] == [True, False]
    assert {m["danger_urgent_at"] for m in world.rasa.metadata} == {0.85}


def test_nlu_danger_above_the_bar_escalates(world: Any) -> None:
    world.rasa.intent = ("danger", 0.95)
    turn = run(world, "something about my job worries me a lot")
    assert turn.escalate is True and turn.handoff == "waiting" and escalations(world) == 1
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(daily.c.escalations))).scalar_one() == 1


def test_nlu_danger_still_escalates_when_the_action_server_is_down(world: Any) -> None:
    world.rasa.intent, world.rasa.messages = ("danger", 0.95), []  # Rasa classified, actions said nothing
    turn = run(world, "something about my job worries me a lot")
    assert turn.escalate is True and turn.handoff == "waiting"


def test_rasa_down_gives_helplines_and_opens_nothing(world: Any) -> None:
    world.rasa.down = True
    turn = run(world, "is this job in Dubai safe?")
    assert turn.escalate is False and "rasa_unavailable" in turn.notes and len(turn.replies) == 2


@pytest.mark.parametrize("command", ["/danger", "/sos"])
def test_typed_danger_command_is_a_cry_for_help_not_a_rasa_command(world: Any, command: str) -> None:
    turn = run(world, command)
    assert turn.escalate is True and turn.risk_level == "urgent" and turn.risk_category == "cry_for_help"
    assert world.rasa.sent == []


def test_semantic_urgent_escalates_before_rasa_even_with_rasa_down(world: Any) -> None:
    text = "the manager says tonight i have to be nice to the men upstairs"
    world.model.by_text[text] = SemanticRisk(0.93, 0.03, 0.01, 0.03, "forced_sex", 0.8)
    world.rasa.down = True
    turn = run(world, text)
    assert turn.escalate is True and turn.risk_category == "forced_sex" and turn.handoff == "waiting"
    escalation = world.pipeline.handoff.active_for(world.pipeline.profiles.get(turn_key(world)).user_key)
    assert escalation is not None and any(t.startswith("semantic:forced_sex 0.93") for t in escalation.triggers)


def turn_key(world: Any) -> str:
    from bot.profiles import user_key

    return user_key("pepper", "local", "girl")


def test_semantic_person_request_opens_a_counsellor_request(world: Any) -> None:
    text = "can i talk to someone real please"
    world.model.by_text[text] = SemanticRisk(0.02, 0.03, 0.9, 0.05, "locked_in", 0.3)
    turn = run(world, text)
    assert turn.escalate is True and turn.risk_category == "requested" and turn.handoff == "waiting"
    assert world.rasa.sent == []


def test_semantic_concern_answers_and_offers_without_pausing(world: Any) -> None:
    text = "a man on tiktok says he will pay my bus to visit him"
    world.model.by_text[text] = SemanticRisk(0.1, 0.8, 0.02, 0.08, "child_sold_or_married", 0.4)
    turn = run(world, text)
    assert turn.escalate is False and turn.handoff is None and turn.risk_level == "concern"
    assert turn.replies[0].text == "an answer" and world.rasa.sent == [text]


def test_without_a_veto_the_model_never_overrules_a_lexicon_match(world: Any) -> None:
    text = "my employer took my passport and won't let me go anywhere"
    assert world.pipeline.screener.screen(text).urgent
    world.model.by_text[text] = SemanticRisk(0.0, 0.0, 0.0, 1.0, "documents_taken", 0.9)  # "sure" it is harmless
    turn = run(world, text)
    assert turn.escalate is True and turn.risk_level == "urgent" and world.rasa.sent == []


def test_a_vetoed_lexicon_match_is_answered_and_offered_a_counsellor_never_dropped(world: Any) -> None:
    from dataclasses import replace

    world.pipeline.assessor.thresholds = replace(world.pipeline.assessor.thresholds, lexicon_veto=0.9, veto_report=0.5)
    text = "what does the law say if my boss took my passport"
    assert world.pipeline.screener.screen(text).urgent
    world.model.by_text[text] = SemanticRisk(0.01, 0.02, 0.0, 0.97, "documents_taken", 0.9, report=0.1)
    turn = run(world, text)
    assert turn.escalate is False and turn.handoff is None and turn.risk_level == "concern"
    assert world.rasa.sent == [text] and "an answer" in [r.text for r in turn.replies]  # her question is answered
    assert turn.replies[0].text.startswith("Warning signs")  # (after the offer check's findings: issue 16)
    assert any(b[1] == "/counsellor" for r in turn.replies for b in (r.buttons or ()))  # and a person offered


def test_an_offer_the_model_is_sure_is_a_concern_is_answered_not_paused(world: Any) -> None:
    """The lexicon reads "hold my passport" as documents taken; the model is sure it is a plan
    with a red flag (a concern): answered, a counsellor offered, nothing paused or dropped."""
    from dataclasses import replace

    world.pipeline.assessor.thresholds = replace(
        world.pipeline.assessor.thresholds, concern_veto=0.8, concern_veto_urgent_below=0.3
    )
    text = "a woman from church says she will hold my passport while she finds me a nanny job"
    assert world.pipeline.screener.screen(text).urgent
    world.model.by_text[text] = SemanticRisk(0.12, 0.88, 0.0, 0.0, "documents_taken", 0.9, report=0.4)
    turn = run(world, text)
    assert turn.escalate is False and turn.handoff is None and turn.risk_level == "concern"
    assert "an answer" in [r.text for r in turn.replies] and world.rasa.sent == [text]  # (after the offer's findings)
    assert any(b[1] == "/counsellor" for r in turn.replies for b in (r.buttons or ()))
    assert world.rasa.metadata[-1]["danger_vetoed"] is True  # the NLU's danger answers too


@pytest.mark.parametrize(("urgent", "concern"), [(0.35, 0.88), (0.12, 0.7)])
def test_the_concern_veto_needs_both_a_sure_concern_and_a_low_urgent(world: Any, urgent: float, concern: float) -> None:
    from dataclasses import replace

    world.pipeline.assessor.thresholds = replace(
        world.pipeline.assessor.thresholds, concern_veto=0.8, concern_veto_urgent_below=0.3
    )
    text = "a woman from church says she will hold my passport while she finds me a nanny job"
    world.model.by_text[text] = SemanticRisk(urgent, concern, 0.0, 1 - urgent - concern, "documents_taken", 0.9)
    turn = run(world, text)
    assert turn.escalate is True and turn.risk_level == "urgent" and world.rasa.sent == []


def test_a_report_is_never_vetoed_even_among_questions(world: Any) -> None:
    """Its neighbours are questions (P(none) = 1.0) but it reads as a report: it stays urgent."""
    from dataclasses import replace

    world.pipeline.assessor.thresholds = replace(world.pipeline.assessor.thresholds, lexicon_veto=0.9, veto_report=0.5)
    text = "my employer took my passport and won't let me go anywhere"
    world.model.by_text[text] = SemanticRisk(0.0, 0.0, 0.0, 1.0, "documents_taken", 0.9, report=0.7)
    turn = run(world, text)
    assert turn.escalate is True and turn.risk_level == "urgent" and world.rasa.sent == []


def test_a_lone_cry_is_never_overruled(world: Any) -> None:
    world.model.by_text["help"] = SemanticRisk(0.0, 0.0, 0.0, 1.0, "locked_in", 0.9)
    turn = run(world, "help")
    assert turn.escalate is True and turn.risk_category == "cry_for_help"


def test_a_broken_model_leaves_the_lexicon_in_charge(world: Any) -> None:
    world.model.fail = True
    assert run(world, "they took my passport and locked me in the room").escalate is True
    assert run(world, "is this job in Dubai safe?", user="other").escalate is False


def test_while_handed_over_nothing_reaches_rasa_and_escalate_is_only_a_raise(world: Any) -> None:
    world.model.by_text["can i talk to a person"] = SemanticRisk(0.0, 0.0, 0.95, 0.05, "locked_in", 0.1)
    first = run(world, "can i talk to a person")
    assert first.escalate is True and first.risk_level == "concern"
    again = run(world, "hello? are you there")
    assert again.escalate is False and again.handoff == "waiting" and world.rasa.sent == []
    raised = run(world, "they locked me in the room and took my passport")
    assert raised.escalate is True and raised.risk_level == "urgent"


def test_channels_ask_the_same_decision(world: Any) -> None:
    text = "he says i have to stay on the boat until the debt is paid"
    world.model.by_text[text] = SemanticRisk(0.9, 0.05, 0.0, 0.05, "debt_bondage", 0.9)
    assert world.pipeline.is_urgent(text) is True
    assert world.pipeline.is_urgent("what is the weather") is False


def test_per_user_locks_are_freed_once_her_turn_is_done(world: Any) -> None:
    """Issue 14 item 9: one lock per user ever seen was kept for the life of the process."""

    async def many() -> None:
        await asyncio.gather(*(world.pipeline.handle("local", f"girl-{n}", "hello") for n in range(50)))

    asyncio.run(many())
    assert len(world.pipeline._locks) == 0  # noqa: SLF001


def test_the_confidentiality_policy_is_shown_before_and_as_the_handoff_begins(world: Any, catalog: Catalog) -> None:
    """Content issue item 2: what stays private and its limits, with the offer and with the handoff."""
    policy = catalog.text("confidentiality", "en")
    urgent = run(world, "help")
    assert policy in [r.text for r in urgent.replies]
    offer = world.pipeline._counsellor_offer("en")  # noqa: SLF001
    assert policy in offer.text and offer.buttons
    for language in catalog.languages:  # never a promise of secrecy in English, the source
        assert "secret" not in catalog.text("confidentiality", "en").lower()
        assert "{" not in catalog.text("confidentiality", language)


def test_erase_with_rasa_away_says_so_and_finishes_later(world: Any, catalog: Catalog) -> None:
    """Security issue item 10: '/erase' said 'deleted' while the Rasa tracker stayed."""
    run(world, "hello")
    world.rasa.erase_down = True
    turn = run(world, "/erase")
    assert [r.text for r in turn.replies] == [catalog.text("erased_pending", "en")]
    assert "rasa_not_erased" in turn.notes and len(world.pipeline.pending_erasures.keys()) == 1
    assert asyncio.run(world.pipeline.retry_erasures()) == 0  # still away: kept, backed off
    world.rasa.erase_down = False
    world.pipeline.pending_erasures.clock = lambda: 10**12  # past the backoff
    assert asyncio.run(world.pipeline.retry_erasures()) == 1
    assert world.pipeline.pending_erasures.keys() == [] and world.rasa.erased


def test_an_offer_s_flags_go_to_rasa_as_ids_for_the_job_check(world: Any) -> None:
    """The job check in the action server reads them (patterns + semantic layer found them here; ids, never words)."""
    run(world, "a woman on facebook offers me a job in a restaurant in Bangkok, she will pay the bus")
    sent = world.rasa.metadata[-1]["offer_flags"]
    assert sent == ["stranger_recruiter", "travel_paid"]
    run(world, "what is the weather like today")
    assert "offer_flags" not in world.rasa.metadata[-1]


class ThreadNotingEncoder:
    """Records the thread of every call that really encodes (behind a CachingEncoder: cache misses only)."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim
        self.threads: list[int] = []
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.threads.append(threading.get_ident())
        self.texts.extend(texts)
        return np.full((len(texts), self.dim), 1.0 / np.sqrt(self.dim), np.float32)


def test_the_sentence_vectors_are_encoded_off_the_event_loop(world: Any) -> None:
    """The risk decision's and the offer check's vectors (the whole text and its sentences) are encoded in a worker
    thread before they are asked for, so the event loop serves other girls meanwhile; the synchronous calls that
    follow find them in the cache. A different encoder per layer is encoded ahead too."""
    from bot.offer.semantic import FlagModel, FlagScorer
    from bot.semantic.encoder import CachingEncoder

    risk_inner, offer_inner = ThreadNotingEncoder("fake", 2), ThreadNotingEncoder("fake-offer", 3)
    world.pipeline.assessor.encoder = CachingEncoder(risk_inner)
    flag_model = FlagModel(
        "fake-offer", ("pressure_secrecy",), np.zeros((1, 3), np.float32), np.zeros(1, np.float32),
        np.asarray([[1.0, 0.0, 0.0]], np.float32), np.zeros((1, 3), np.float16), np.zeros((1, 1), bool),
        np.asarray([0.99]),
    )  # fmt: skip
    world.pipeline.offer_scorer = FlagScorer(flag_model, CachingEncoder(offer_inner))
    text = "A woman on facebook offers me a job in Bangkok. She says I must not tell my parents about it."

    async def turn() -> tuple[Any, int]:
        return await world.pipeline.handle("local", "girl", text), threading.get_ident()

    result, loop_thread = asyncio.run(turn())
    assert result.replies and not result.escalate
    assert risk_inner.texts == [text]
    assert offer_inner.texts[0] == text and len(offer_inner.texts) == 3  # the text and its two sentences
    assert risk_inner.threads and offer_inner.threads
    assert loop_thread not in risk_inner.threads + offer_inner.threads


def test_a_failure_encoding_ahead_changes_nothing(world: Any) -> None:
    """Encoding ahead is only a speed-up: when it fails, the risk decision encodes (and decides) as before."""
    calls: list[int] = []

    class FailsOnce(FakeEncoder):
        def encode(self, texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            if len(calls) == 1:
                raise RuntimeError("engine busy")
            return super().encode(texts)

    world.pipeline.assessor.encoder = FailsOnce()
    text = "the manager says tonight i have to be nice to the men upstairs"  # no lexicon match: the model decides
    world.model.by_text[text] = SemanticRisk(0.93, 0.03, 0.01, 0.03, "forced_sex", 0.8)
    result = run(world, text)
    assert result.escalate and result.risk_category == "forced_sex" and calls == [1, 1]
