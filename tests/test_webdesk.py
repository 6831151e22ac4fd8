"""The web desk's layers without a browser: permission rules, accounts and sessions, the
service through the handoff core, canned replies and taxonomy, erasure and retention of the new
tables, the HTTP layer's refusals and headers (aiohttp's test server), and the account commands.
The browser tests are in tests/test_webdesk_browser.py."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from bot.config import ROOT
from bot.content import Catalog
from bot.db import open_engine
from bot.desk import CounsellorDesk
from bot.handoff import AlreadyClaimed, Handoff, address_cipher
from bot.ratelimit import Buckets, Rate
from bot.webdesk.auth import Accounts, AuthPolicy, LoginRefused
from bot.webdesk.canned import (
    DIGITS,
    REFERRAL_PLACEHOLDERS,
    STATUSES,
    CannedReplies,
    load_canned,
    load_referral_texts,
    load_taxonomy,
    placeholders,
)
from bot.webdesk.data import (
    SUPERVISOR,
    DeskStore,
    NameTaken,
    Transfer,
    case_notes,
    case_records,
    case_referrals,
    desk_sessions,
    transfers,
)
from bot.webdesk.permissions import (
    Actor,
    Forbidden,
    may_act,
    may_answer_transfer,
    may_claim,
    may_open,
    may_supervise,
    may_transfer,
)
from bot.webdesk.routes import WebOptions, make_app
from bot.webdesk.service import DeskService
from tests.conftest import Clock

PEPPER = "p" * 40
PASSWORD = "correct horse battery"  # noqa: S105 - a test account
FAST_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # argon2id still; cheap for tests


@pytest.fixture
def clock() -> Clock:
    return Clock()


class World:
    """A desk on a fresh SQLite database, as `python -m bot desk` wires it (no Rasa)."""

    def __init__(self, url: str, catalog: Catalog, clock: Clock) -> None:
        self.engine = open_engine(url)
        self.clock = clock
        self.handoff = Handoff(self.engine, PEPPER, ["console"], clock=clock)
        self.cipher = address_cipher(PEPPER)
        self.store = DeskStore(self.engine, clock=clock)
        policy = AuthPolicy(max_failures=3, lockout_seconds=600, idle_seconds=1800, login_rate=Rate(100, 60))
        self.accounts = Accounts(
            self.store, self.cipher, policy, Buckets(self.engine, clock=clock), clock=clock, hasher=FAST_ARGON2
        )
        self.service = DeskService(
            self.handoff,
            CounsellorDesk(self.handoff, catalog, None),
            self.store,
            self.cipher,
            CannedReplies(catalog, load_canned(ROOT / "data"), 90, load_referral_texts(ROOT / "data")),
            load_taxonomy(ROOT / "data"),
            catalog,
            claim_timeout_seconds=300,
            clock=clock,
        )
        for name, role in (("alice", "counsellor"), ("bob", "counsellor"), ("sara", "supervisor")):
            self.accounts.add_user(name, role, PASSWORD)

    def actor(self, name: str) -> Actor:
        user = self.store.user(name)
        assert user is not None
        return Actor(user.id, user.name, user.role)

    def escalate(self, user: str = "u1", text: str = "they took my passport", channel: str = "sms") -> int:
        case, _ = self.handoff.escalate(
            user_key=f"key-{user}", channel=channel, address="+66800000000", language="th", country="TH",
            risk_level="urgent", risk_category="documents_taken", triggers=["semantic:documents_taken", "passport"],
            message=text,
        )  # fmt: skip
        return case.id


@pytest.fixture
def world(tmp_path: Path, catalog: Catalog, clock: Clock) -> World:
    return World(f"sqlite:///{tmp_path / 'gateway.db'}", catalog, clock)


def _case(status: str = "open", counsellor: str | None = None) -> Any:
    from bot.handoff import Escalation

    return Escalation(
        1, "k", "sms", "+1", "th", "TH", "urgent", "x", (), status, counsellor, 0.0, None, None, None, False
    )  # fmt: skip


# -- permissions (pure) ----------------------------------------------------------------------
def test_permission_rules() -> None:
    alice, bob, sara = Actor(1, "alice", "counsellor"), Actor(2, "bob", "counsellor"), Actor(3, "sara", SUPERVISOR)
    waiting, alices = _case(), _case("claimed", "desk:alice")
    assert may_open(alice, waiting) and may_claim(bob, waiting) and not may_act(alice, waiting)
    assert may_open(alice, alices) and may_act(alice, alices)
    assert not may_open(bob, alices) and not may_act(bob, alices)  # another's case: not even to read
    assert may_open(bob, alices, offered_to_her=True) and not may_act(bob, alices)
    assert may_open(sara, alices) and not may_act(sara, alices)  # a supervisor reads, does not write
    assert not may_claim(bob, alices)
    assert may_open(alice, _case("closed", "desk:alice")) and not may_open(bob, _case("closed", "desk:alice"))
    assert may_open(bob, _case("claimed", "tg:42")) is False  # held in Telegram: still another's
    active = {"desk:alice", "desk:bob"}
    assert may_transfer(alice, alices, "desk:bob", active)
    assert not may_transfer(alice, alices, "desk:alice", active) and not may_transfer(alice, alices, "desk:eve", active)
    assert not may_transfer(bob, alices, "desk:alice", active)
    offer = Transfer(1, 1, "desk:alice", "desk:bob", 0.0, "pending")
    assert may_answer_transfer(bob, offer) and not may_answer_transfer(alice, offer)
    assert not may_answer_transfer(bob, Transfer(1, 1, "desk:alice", "desk:bob", 0.0, "withdrawn"))
    assert may_supervise(sara) and not may_supervise(alice)


# -- accounts and sessions --------------------------------------------------------------------
def test_passwords_are_argon2_and_wrong_ones_lock_the_account(world: World, clock: Clock) -> None:
    user = world.store.user("alice")
    assert user is not None and user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    with pytest.raises(LoginRefused):
        world.accounts.login("alice", "wrong password!", "", "1.2.3.4")
    session = world.accounts.login("alice", PASSWORD, "", "1.2.3.4")  # a success resets the count
    assert session.actor.name == "alice"
    for _ in range(3):
        with pytest.raises(LoginRefused):
            world.accounts.login("alice", "wrong password!", "", "1.2.3.4")
    with pytest.raises(LoginRefused):  # locked: even the right password is refused
        world.accounts.login("alice", PASSWORD, "", "1.2.3.4")
    clock.now += 601
    assert world.accounts.login("alice", PASSWORD, "", "1.2.3.4").actor.name == "alice"
    actions = [a for who, a, _ in world.store.audit_rows("desk:alice")]
    assert actions.count("desk_login_failed") == 4 and "desk_login_locked" in actions and actions.count("desk_login") == 2


def test_unknown_and_disabled_accounts_get_the_same_refusal(world: World) -> None:
    with pytest.raises(LoginRefused):
        world.accounts.login("nobody", PASSWORD, "", "ip")
    assert world.store.set_disabled("bob", True)
    with pytest.raises(LoginRefused):
        world.accounts.login("bob", PASSWORD, "", "ip")
    with pytest.raises(NameTaken):
        world.accounts.add_user("alice", "counsellor", PASSWORD)
    with pytest.raises(ValueError):
        world.accounts.add_user("carol", "counsellor", "short")
    with pytest.raises(ValueError):
        world.accounts.add_user("Carol <b>", "counsellor", PASSWORD)


def test_sign_ins_from_one_address_are_rate_limited(world: World) -> None:
    world.accounts.policy = AuthPolicy(max_failures=100, login_rate=Rate(3, 600))
    for _ in range(3):
        with pytest.raises(LoginRefused):
            world.accounts.login("alice", "wrong password!", "", "9.9.9.9")
    with pytest.raises(LoginRefused):
        world.accounts.login("alice", PASSWORD, "", "9.9.9.9")
    assert world.accounts.login("alice", PASSWORD, "", "8.8.8.8")  # another address is not blocked


def test_totp_second_factor_is_required_and_used_once(world: World, clock: Clock) -> None:
    secret = world.accounts.add_user("tina", "counsellor", PASSWORD, with_totp=True)
    assert secret is not None
    stored = world.store.user("tina")
    assert stored is not None and stored.totp_secret is not None and secret not in stored.totp_secret  # sealed
    code = pyotp.TOTP(secret).at(clock.now)
    with pytest.raises(LoginRefused):
        world.accounts.login("tina", PASSWORD, "", "ip")
    with pytest.raises(LoginRefused):
        world.accounts.login("tina", PASSWORD, "000000" if code != "000000" else "111111", "ip")
    assert world.accounts.login("tina", PASSWORD, code, "ip")
    with pytest.raises(LoginRefused):  # the same code again: a replay
        world.accounts.login("tina", PASSWORD, code, "ip")
    clock.now += 30
    assert world.accounts.login("tina", PASSWORD, pyotp.TOTP(secret).at(clock.now), "ip")


def test_sessions_end_when_idle_when_disabled_and_at_sign_out(world: World, clock: Clock) -> None:
    session = world.accounts.login("alice", PASSWORD, "", "ip")
    with world.engine.connect() as conn:  # only the token's hash is stored
        stored = conn.execute(sa.select(desk_sessions.c.token_hash)).scalar_one()
    assert stored != session.token and len(stored) == 64
    assert world.accounts.session(session.token) is not None
    clock.now += 1801
    assert world.accounts.session(session.token) is None  # idle
    session = world.accounts.login("alice", PASSWORD, "", "ip")
    clock.now += 1000
    world.accounts.mark_live(session.token)  # the live view is not activity
    clock.now += 900
    assert not world.accounts.still_valid(session.token)
    session = world.accounts.login("alice", PASSWORD, "", "ip")
    world.store.set_disabled("alice", True)
    assert world.accounts.session(session.token) is None and not world.accounts.still_valid(session.token)
    world.store.set_disabled("alice", False)
    session = world.accounts.login("alice", PASSWORD, "", "ip")
    world.accounts.logout(session)
    assert world.accounts.session(session.token) is None
    assert world.accounts.session("forged") is None and world.accounts.session("") is None


# -- the service, through the handoff core ---------------------------------------------------
def test_queue_claim_reply_release_and_close_go_through_the_handoff(world: World, clock: Clock) -> None:
    alice, bob = world.actor("alice"), world.actor("bob")
    number = world.escalate()
    clock.now += 301
    (item,) = world.service.queue(alice)
    assert item.overdue and item.case.status == "open" and item.waiting_seconds == 301 and not item.mine
    assert item.model_why == ["semantic:documents_taken"]
    world.service.claim(alice, number)
    with pytest.raises(AlreadyClaimed):
        world.service.claim(bob, number)
    (item,) = world.service.queue(alice)
    assert item.mine and not item.overdue
    with pytest.raises(Forbidden):
        world.service.open_case(bob, number)  # another's case: refused, and the refusal audited
    assert ("desk:bob", "refused_open", number) in world.store.audit_rows()
    with pytest.raises(Forbidden):
        world.service.send(bob, number, "hi")
    delivery = world.service.send(alice, number, "I am here with you.")
    (queued,) = [d for d in world.handoff.pending_deliveries("sms") if d.id == delivery]
    assert (queued.text, queued.address) == ("I am here with you.", "+66800000000")
    view = world.service.open_case(alice, number)
    assert [line.sender for line in view.lines] == ["user", "bot", "counsellor"]  # the bot told her a person is here
    assert view.can_act and view.canned and view.canned[0].status == "machine_translated"  # Thai: not reviewed
    asyncio.run(world.service.release(alice, number))
    case = world.handoff.get(number)
    assert case is not None and case.status == "released"
    number = world.escalate("u2")
    world.service.claim(alice, number)
    with pytest.raises(ValueError):
        asyncio.run(world.service.close(alice, number, "made_up"))
    asyncio.run(world.service.close(alice, number, "referred_ngo"))
    case = world.handoff.get(number)
    assert case is not None and (case.status, case.outcome) == ("closed", "referred_ngo")
    assert world.service.open_case(alice, number).case.status == "closed"  # she may read what she held
    with pytest.raises(Forbidden):
        world.service.open_case(bob, number)


def test_a_case_claimed_in_telegram_is_claimed_on_the_desk(world: World) -> None:
    number = world.escalate()
    world.handoff.counsellors = world.handoff.counsellors | {"tg:42"}
    world.handoff.claim("tg:42", number)  # what the Telegram group's Claim button does
    (item,) = world.service.queue(world.actor("alice"))
    assert (item.case.status, item.case.counsellor) == ("claimed", "tg:42")
    with pytest.raises(AlreadyClaimed):
        world.service.claim(world.actor("alice"), number)
    assert world.service.open_case(world.actor("sara"), number).can_act is False


def test_a_disabled_account_cannot_act_even_through_an_old_actor(world: World) -> None:
    alice = world.actor("alice")
    number = world.escalate()
    world.service.claim(alice, number)
    world.store.set_disabled("alice", True)
    from bot.handoff import NotAllowed

    with pytest.raises(NotAllowed):  # the allow-list is read again on every action
        world.service.send(alice, number, "hello")


def test_notes_category_referrals_history_and_audit(world: World) -> None:
    alice, bob, sara = world.actor("alice"), world.actor("bob"), world.actor("sara")
    first = world.escalate()
    world.service.claim(alice, first)
    world.service.set_category(alice, first, "ilo_retention_of_documents")
    asyncio.run(world.service.close(alice, first, "safe"))
    second = world.escalate()  # the same person again
    world.service.claim(alice, second)
    world.service.add_note(alice, second, "She is in a <b>dormitory</b> near the factory.")
    with pytest.raises(Forbidden):
        world.service.add_note(bob, second, "not mine")
    with pytest.raises(ValueError):
        world.service.set_category(alice, second, "not_a_category")
    world.service.set_category(alice, second, "forced_labour")
    catalog = world.service.catalog
    thai = [o.name for o in catalog.countries["TH"].organisations]
    world.service.set_referrals(alice, second, [thai[0], "An organisation nobody sourced"])
    view = world.service.open_case(alice, second)
    assert [n.text for n in view.notes] == ["She is in a <b>dormitory</b> near the factory."]
    assert view.record.category == "forced_labour" and [r.organisation for r in view.referrals] == [thai[0]]
    assert [(p.id, p.category, p.outcome) for p in view.history] == [(first, "ilo_retention_of_documents", "safe")]
    with world.engine.connect() as conn:  # notes are sealed at rest
        stored = conn.execute(sa.select(case_notes.c.text)).scalar_one()
    assert "dormitory" not in stored
    actions = {(a, e) for who, a, e in world.store.audit_rows("desk:alice")}
    assert {("note", second), ("category", second), ("referrals", second), ("read_transcript", second)} <= actions
    assert ("read_history", second) in actions and ("read_notes", second) in actions
    world.service.supervision(sara)
    assert ("desk:sara", "view_supervision", None) in world.store.audit_rows()


def _referrable(catalog: Catalog, code: str) -> tuple[list[str], list[str]]:
    """Her country's organisations with a contact in the facts, and those without one."""
    country = catalog.countries[code]
    with_contact = [o.name for o in country.organisations if country.contact_of(o)]
    return with_contact, [o.name for o in country.organisations if not country.contact_of(o)]


def test_referrals_are_recorded_audited_sent_through_the_outbox_and_shown_in_history(world: World) -> None:
    alice, bob = world.actor("alice"), world.actor("bob")
    catalog = world.service.catalog
    thai, _ = _referrable(catalog, "TH")
    assert len(thai) >= 2
    first = world.escalate()
    world.service.claim(alice, first)
    with pytest.raises(Forbidden):
        world.service.set_referrals(bob, first, thai[:1])
    world.service.set_referrals(alice, first, [thai[0], thai[1], "An organisation nobody sourced", thai[0]])
    view = world.service.open_case(alice, first)
    assert [(r.organisation, r.country, r.referred_by, r.sent_at) for r in view.referrals] == [
        (thai[0], "TH", "desk:alice", None),
        (thai[1], "TH", "desk:alice", None),
    ]
    assert view.referral_text is not None and view.referral_text.status == "machine_translated"  # Thai
    orgs = {o.name: o for o in catalog.countries["TH"].organisations}
    for name in thai[:2]:  # name and contact exactly as the sourced facts give them
        contact = catalog.countries["TH"].contact_of(orgs[name])
        assert f"{name}{'*' if orgs[name].confidence == 'low' else ''} - {contact}" in view.referral_text.text
    assert "{" not in view.referral_text.text and catalog.countries["TH"].name("th") in view.referral_text.text
    with pytest.raises(Forbidden):
        world.service.send_referrals(bob, first)
    delivery = world.service.send_referrals(alice, first)
    (queued,) = [d for d in world.handoff.pending_deliveries("sms") if d.id == delivery]
    assert queued.text == view.referral_text.text and queued.address == "+66800000000"
    view = world.service.open_case(alice, first)
    assert all(r.sent_at is not None for r in view.referrals) and view.referral_text is None
    assert view.lines[-1].sender == "counsellor"
    with pytest.raises(ValueError):  # nothing left to send
        world.service.send_referrals(alice, first)
    world.service.set_referrals(alice, first, [thai[1]])  # a referral already sent to her stays
    assert [r.organisation for r in world.service.open_case(alice, first).referrals] == [thai[0], thai[1]]
    actions = [(a, e) for _, a, e in world.store.audit_rows("desk:alice")]
    assert actions.count(("referrals", first)) == 2 and ("referrals_sent", first) in actions
    asyncio.run(world.service.close(alice, first, "referred_ngo"))
    second = world.escalate()  # she comes back: her earlier case shows whom she was referred to
    world.service.claim(alice, second)
    (past,) = world.service.open_case(alice, second).history
    assert past.id == first and past.referrals == (thai[0], thai[1])
    world.service.set_referrals(alice, second, [thai[0]])
    world.service.set_referrals(alice, second, [])  # not sent yet: removed
    assert world.service.open_case(alice, second).referrals == []


def test_an_organisation_without_a_contact_is_recorded_but_never_sent(world: World) -> None:
    alice = world.actor("alice")
    case, _ = world.handoff.escalate(
        user_key="key-kh", channel="telegram", address="42", language="km", country="KH", risk_level="urgent",
        risk_category="documents_taken", triggers=[], message="help",
    )  # fmt: skip
    reachable, unreachable = _referrable(world.service.catalog, "KH")
    assert reachable and unreachable
    world.service.claim(alice, case.id)
    world.service.set_referrals(alice, case.id, [unreachable[0]])
    view = world.service.open_case(alice, case.id)
    assert [r.organisation for r in view.referrals] == [unreachable[0]] and view.referral_text is None
    with pytest.raises(ValueError):
        world.service.send_referrals(alice, case.id)
    world.service.set_referrals(alice, case.id, [unreachable[0], reachable[0]])
    text = world.service.open_case(alice, case.id).referral_text
    assert text is not None and reachable[0] in text.text and unreachable[0] not in text.text


def test_referral_texts_every_language_no_numbers_and_only_their_placeholders(catalog: Catalog) -> None:
    texts = load_referral_texts(ROOT / "data")
    assert set(texts) == set(catalog.languages) and texts["en"].status == "source"
    for language, text in texts.items():
        assert placeholders(text.text) == REFERRAL_PLACEHOLDERS and not DIGITS.search(text.text), language
        assert language == "en" or text.status in ("machine_translated", "reviewed")


def test_transfer_is_offered_then_accepted_or_declined(world: World) -> None:
    alice, bob, sara = world.actor("alice"), world.actor("bob"), world.actor("sara")
    number = world.escalate()
    world.service.claim(alice, number)
    with pytest.raises(Forbidden):
        world.service.offer_transfer(bob, number, "desk:sara")
    offer = world.service.offer_transfer(alice, number, "desk:bob")
    assert world.service.open_case(bob, number).offer_in is not None  # offered: she may read before deciding
    with pytest.raises(Forbidden):
        world.service.answer_transfer(sara, offer, accept=True)
    world.service.answer_transfer(bob, offer, accept=False)
    case = world.handoff.get(number)
    assert case is not None and case.counsellor == "desk:alice"  # declined: still hers
    offer = world.service.offer_transfer(alice, number, "desk:bob")
    assert world.service.queue(bob)[0].offer_id == offer
    world.service.answer_transfer(bob, offer, accept=True)
    case = world.handoff.get(number)
    assert case is not None and (case.status, case.counsellor) == ("claimed", "desk:bob")
    with pytest.raises(Forbidden):
        world.service.send(alice, number, "no longer mine")
    world.service.send(bob, number, "Hello, I am taking over from my colleague.")
    with pytest.raises(Forbidden):  # answered already
        world.service.answer_transfer(bob, offer, accept=True)
    rows = world.store.audit_rows()
    assert ("desk:alice", "transfer_out", number) in rows and ("desk:bob", "transfer_in", number) in rows
    late = world.service.offer_transfer(bob, number, "desk:alice")
    asyncio.run(world.service.release(bob, number))  # released before the answer: the offer is void
    with pytest.raises(Forbidden):
        world.service.answer_transfer(alice, late, accept=True)
    case = world.handoff.get(number)
    assert case is not None and case.status == "released" and case.counsellor == "desk:bob"


def test_supervision_shows_who_holds_what_and_waiting_times(world: World, clock: Clock) -> None:
    alice, sara = world.actor("alice"), world.actor("sara")
    held, waiting = world.escalate("u1"), world.escalate("u2")
    clock.now += 60
    world.service.claim(alice, held)
    clock.now += 400
    session = world.accounts.login("alice", PASSWORD, "", "ip")
    world.accounts.mark_live(session.token)
    view = world.service.supervision(sara)
    assert list(view.online) == ["alice"]
    assert [c.id for c in view.holders["desk:alice"]] == [held]
    assert [(i.case.id, i.overdue) for i in view.waiting] == [(waiting, True)]
    assert view.claims == 1 and view.median_claim_seconds == 60
    with pytest.raises(Forbidden):
        world.service.supervision(alice)
    assert world.service.stats_png(sara).startswith(b"\x89PNG")


# -- erasure and retention of the desk's tables -----------------------------------------------
def test_erase_removes_notes_records_and_transfers(db_url: str, catalog: Catalog, clock: Clock) -> None:
    world = World(db_url, catalog, clock)  # SQLite and PostgreSQL: the cascade holds on both
    alice = world.actor("alice")
    number = world.escalate()
    world.service.claim(alice, number)
    world.service.add_note(alice, number, "private")
    world.service.set_category(alice, number, "sextortion")
    world.service.set_referrals(alice, number, _referrable(catalog, "TH")[0][:1])
    world.service.offer_transfer(alice, number, "desk:bob")
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_referrals)).scalar_one() == 1
    world.handoff.erase_user("key-u1")  # what /erase and ERASE do
    with world.engine.connect() as conn:
        for table in (case_notes, case_records, case_referrals, transfers):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_retention_deletes_notes_of_old_cases(world: World, clock: Clock) -> None:
    from bot import retention

    alice = world.actor("alice")
    number = world.escalate()
    world.service.claim(alice, number)
    world.service.add_note(alice, number, "private")
    world.service.set_category(alice, number, "sextortion")
    world.service.set_referrals(alice, number, _referrable(world.service.catalog, "TH")[0][:2])
    asyncio.run(world.service.close(alice, number, "safe"))
    recent = world.escalate("u2")  # a recent case keeps its referrals
    world.service.claim(alice, recent)
    world.service.set_referrals(alice, recent, _referrable(world.service.catalog, "TH")[0][:1])
    clock.now += 91 * 86400
    report = retention.run(world.engine, None, days=90, now=clock.now)
    assert report.deleted["desk notes, referrals and transfers"] == 3
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_notes)).scalar_one() == 0
        kept = conn.execute(sa.select(case_referrals.c.escalation_id)).scalars().all()
        assert kept == [recent]
        row = conn.execute(sa.select(case_records)).one()
    assert row.category == "sextortion" and row.updated_by is None


def test_a_pepper_rotation_reseals_notes_and_totp_secrets(world: World) -> None:
    from bot.rekey import reseal

    secret = world.accounts.add_user("tina", "counsellor", PASSWORD, with_totp=True)
    number = world.escalate()
    world.service.claim(world.actor("alice"), number)
    world.service.add_note(world.actor("alice"), number, "private")
    new = "n" * 40
    result = reseal(world.engine, address_cipher(new, [PEPPER]))
    assert result.unreadable == 0
    fresh = address_cipher(new)  # the new pepper alone opens them now
    with world.engine.connect() as conn:
        note = conn.execute(sa.select(case_notes.c.text)).scalar_one()
        sealed = conn.execute(sa.text("select totp_secret from desk_users where name = 'tina'")).scalar_one()
    assert fresh.decrypt(note.encode()) == b"private" and fresh.decrypt(sealed.encode()).decode() == secret


# -- canned replies and taxonomy ---------------------------------------------------------------
def test_canned_replies_every_language_same_ids_statuses_and_no_invented_numbers(catalog: Catalog) -> None:
    canned = load_canned(ROOT / "data")
    assert set(canned) == set(catalog.languages)
    english = [r.id for r in canned["en"]]
    assert all(r.status == "source" for r in canned["en"])
    for language, replies in canned.items():
        assert [r.id for r in replies] == english, language
        for reply in replies:
            assert reply.status in STATUSES and not DIGITS.search(reply.text)
            assert placeholders(reply.text) == placeholders(next(r for r in canned["en"] if r.id == reply.id).text)
        if language != "en":
            assert all(r.status in ("machine_translated", "reviewed") for r in replies)


def test_canned_hotlines_come_from_the_sourced_facts(catalog: Catalog) -> None:
    replies = CannedReplies(catalog, load_canned(ROOT / "data"), 90)
    thai = {r.id: r.text for r in replies.for_case("th", "TH", "telegram")}
    numbers = {h.number for h in catalog.countries["TH"].hotlines}
    assert any(n in thai["danger_now"] for n in numbers) and "{" not in thai["danger_now"]
    burmese = {r.id: r.text for r in replies.for_case("my", "MM", "sms")}
    assert "{" not in burmese["danger_now"]
    for text in burmese.values():  # Myanmar: only numbers the facts hold (no police line is confirmed)
        for number in re.findall(r"\d{3,}", text):
            assert number in {h.number for h in catalog.countries["MM"].hotlines}


def test_taxonomy_has_ilo_indicators_helpline_categories_and_outcomes() -> None:
    taxonomy = load_taxonomy(ROOT / "data")
    codes = taxonomy.category_codes()
    assert {"online_grooming", "sextortion", "forced_labour", "forced_marriage", "missing_person"} <= codes
    assert len([c for c in codes if c.startswith("ilo_")]) == 11
    assert {"safe", "referred_police", "no_response"} <= taxonomy.outcome_codes()


# -- the HTTP layer -----------------------------------------------------------------------------
async def _with_client(world: World, run: Any) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    options = WebOptions(secure_cookies=False, login_key=b"k" * 32, live_interval=0.05)
    client = TestClient(TestServer(make_app(world.service, world.accounts, options)))
    await client.start_server()
    try:
        await run(client)
    finally:
        await client.close()


async def _sign_in(client: Any, name: str = "alice") -> str:
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    done = await client.post(
        "/login", data={"csrf": token.group(1), "name": name, "password": PASSWORD}, allow_redirects=False
    )
    assert done.status == 303, await done.text()
    queue = await client.get("/")
    found = re.search(r'name="csrf" value="([^"]+)"', await queue.text())
    assert found is not None
    return found.group(1)


def test_http_refuses_posts_without_csrf_and_sets_strict_headers(world: World) -> None:
    number = world.escalate(text="<script>alert('x')</script><img src=x onerror=alert(1)>")

    async def run(client: Any) -> None:
        login = await client.get("/login")
        assert "script-src 'self'" in login.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in login.headers["Content-Security-Policy"]
        assert login.headers["X-Frame-Options"] == "DENY" and login.headers["Cache-Control"] == "no-store"
        refused = await client.post("/login", data={"name": "alice", "password": PASSWORD}, allow_redirects=False)
        assert refused.status == 403  # no sign-in CSRF token
        assert (await client.get("/", allow_redirects=False)).status == 303  # not signed in
        csrf = await _sign_in(client)
        cookie = next(c for c in client.session.cookie_jar if c.key == "sp_desk")
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        without = await client.post(f"/case/{number}/claim", data={}, allow_redirects=False)
        wrong = await client.post(f"/case/{number}/claim", data={"csrf": "0" * 64}, allow_redirects=False)
        foreign = await client.post(
            f"/case/{number}/claim", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}, allow_redirects=False
        )
        assert (without.status, wrong.status, foreign.status) == (403, 403, 403)
        case = world.handoff.get(number)
        assert case is not None and case.status == "open"  # nothing happened
        done = await client.post(f"/case/{number}/claim", data={"csrf": csrf}, allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == f"/case/{number}?m=claimed"
        page = await (await client.get(f"/case/{number}")).text()
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "<script" not in page.replace('<script src="/static/desk.js" defer></script>', "")
        assert (await client.get("/static/../app.py")).status == 404
        assert (await client.get("/static/desk.js")).headers["Content-Type"].startswith("text/javascript")

    asyncio.run(_with_client(world, run))
    assert ("desk:alice", "csrf_refused", None) in world.store.audit_rows()


def test_http_live_stream_sends_the_queue_and_ends_for_a_disabled_account(world: World) -> None:
    async def run(client: Any) -> None:
        await _sign_in(client)
        stream = await client.get("/events")
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = await stream.content.readuntil(b"\n\n")
        assert first.startswith(b"event: queue") and b"No open cases" in first
        number = world.escalate()
        update = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
        assert f"case-{number}".encode() in update
        world.store.set_disabled("alice", True)
        end = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
        assert end.startswith(b"event: logout")
        assert (await client.get("/", allow_redirects=False)).status == 303

    asyncio.run(_with_client(world, run))
    reads = [a for who, a, _ in world.store.audit_rows("desk:alice") if a == "view_queue"]
    assert len(reads) == 1  # the page, not the live redraws


# -- the command line --------------------------------------------------------------------------
def _desk(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SP_VAR_DIR": str(tmp_path / "var"), "SP_PEPPER": PEPPER, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "desk", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True
    )


def test_account_commands(tmp_path: Path) -> None:
    made = _desk(tmp_path, "add-user", "amina", "--role", "supervisor", stdin=PASSWORD + "\n")
    assert made.returncode == 0 and "created" in made.stdout and PASSWORD not in made.stdout + made.stderr
    assert _desk(tmp_path, "add-user", "amina", "--role", "counsellor", stdin=PASSWORD + "\n").returncode == 1
    assert _desk(tmp_path, "add-user", "short", "--role", "counsellor", stdin="abc\n").returncode == 2
    totp = _desk(tmp_path, "add-user", "tin", "--role", "counsellor", "--totp", stdin=PASSWORD + "\n")
    assert totp.returncode == 0 and "otpauth://totp/" in totp.stdout
    assert _desk(tmp_path, "disable-user", "amina").returncode == 0
    assert _desk(tmp_path, "disable-user", "nobody").returncode == 1
    listing = _desk(tmp_path, "list-users").stdout
    assert re.search(r"amina\s+supervisor\s+disabled", listing) and re.search(r"tin\s+counsellor\s+enabled\s+totp", listing)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'gateway.db'}")
    with engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(sa.text("select password_hash from desk_users"))]
    assert all(h.startswith("$argon2id$") for h in hashes)
