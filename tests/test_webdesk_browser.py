"""The counsellors' web desk in a real browser: Debian's chromium driven by Playwright (no
browser download), against `python -m bot desk` serving a real SQLite gateway database. Cases
arrive and messages leave through the handoff core, as the channel gateways do it.

Screenshots of the queue and of a conversation on a phone-size screen are taken every run;
with SP_DESK_SCREENSHOTS=1 they are written to docs/desk/ (the README and docs/channels.md show them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.config import ROOT
from bot.db import open_engine
from bot.handoff import Handoff, address_cipher, audit
from bot.sms.segments import count
from bot.webdesk.auth import Accounts
from bot.webdesk.data import DeskStore
from tests.kannel import free_port, wait_port
from tests.services import require_services

CHROMIUM = os.environ.get("SP_CHROMIUM", "/usr/bin/chromium")
PEPPER = "b" * 40
PASSWORD = "a long enough password"  # noqa: S105 - a test account
PHONE = {"width": 390, "height": 844}
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> help me'

if not Path(CHROMIUM).exists():
    if require_services():
        raise RuntimeError(f"chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


class Server:
    """`python -m bot desk` on a free loopback port, and the gateway side on the same database."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SP_VAR_DIR": str(workdir / "var"),
            "SP_PEPPER": PEPPER,
            "SP_DESK_LISTEN": f"127.0.0.1:{self.port}",
            "SP_DESK_SECURE_COOKIES": "false",  # plain http on loopback, for the test only
            "SP_DESK_MAX_FAILURES": "3",
            "SP_DESK_LOGIN_RATE": "500/60",
            "SP_RASA_URL": f"http://127.0.0.1:{free_port()}",  # nothing there: release/close resume later
            "SP_COUNSELLORS": "console",
            "SP_CLAIM_TIMEOUT_MINUTES": "5",
        }
        self.engine = open_engine(f"sqlite:///{workdir / 'var' / 'gateway.db'}")
        self.handoff = Handoff(self.engine, PEPPER, ["console", "tg:42"])
        self.store = DeskStore(self.engine)
        accounts = Accounts(self.store, address_cipher(PEPPER))
        for name, role in (("alice", "counsellor"), ("bob", "counsellor"), ("sara", "supervisor")):
            accounts.add_user(name, role, PASSWORD)
        for name in ("lena", "dora"):
            accounts.add_user(name, "counsellor", PASSWORD)
        self.users = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "desk"], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        wait_port(self.port, timeout=60)

    def escalate(
        self, text: str = "they took my passport", channel: str = "sms", language: str = "th", country: str = "TH",
        level: str = "urgent", triggers: tuple[str, ...] = ("semantic:documents_taken", "passport*"),
    ) -> int:  # fmt: skip
        self.users += 1
        case, _ = self.handoff.escalate(
            user_key=f"key-{self.users}", channel=channel, address=f"+6680000{self.users:04d}", language=language,
            country=country, risk_level=level, risk_category="documents_taken", triggers=triggers, message=text,
        )  # fmt: skip
        return case.id

    def outbox(self, channel: str = "sms") -> list[tuple[int | None, str, str]]:
        return [(d.escalation_id, d.address, d.text) for d in self.handoff.pending_deliveries(channel, limit=500)]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("desk"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def sign_in(browser: Any, server: Server, name: str, viewport: dict[str, int] | None = None) -> Any:
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, base_url=server.url)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())
    page.goto("/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#queue-rows")
    return page


def post(page: Any, selector: str) -> None:
    """Click a form's button and wait for the page the server answers with."""
    with page.expect_navigation():
        page.click(selector)


def flash(page: Any) -> str:
    return str(page.inner_text(".flash"))


# -- sign-in -----------------------------------------------------------------------------------
def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(browser: Any, server: Server) -> None:
    page = browser.new_context(base_url=server.url).new_page()
    for _ in range(3):
        page.goto("/login")
        page.fill("#name", "lena")
        page.fill("#password", "not her password")
        page.click("#sign-in")
        assert "Sign-in refused" in page.inner_text("#login-error")
    page.goto("/login")
    page.fill("#name", "lena")
    page.fill("#password", PASSWORD)  # the right one, but the account is locked now
    page.click("#sign-in")
    assert "Sign-in refused" in page.inner_text("#login-error")
    assert page.url.endswith("/login")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "sp_desk" not in cookies
    with server.engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.select(audit.c.action).where(audit.c.counsellor == "desk:lena"))]
    assert actions.count("desk_login_failed") == 3 and "desk_login_locked" in actions


def test_sign_in_sets_a_strict_http_only_cookie_and_a_strict_policy(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "dora")
    cookie = next(c for c in page.context.cookies() if c["name"] == "sp_desk")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    response = page.goto("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert page.evaluate("document.cookie") == ""  # the session cookie is out of the page's reach
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(browser: Any, server: Server) -> None:
    number = server.escalate()
    page = sign_in(browser, server, "dora")
    page.wait_for_selector(f"#case-{number} button.claim")
    with page.expect_navigation():  # the token removed from the form, then the form sent, in one step
        page.evaluate(
            f"document.querySelector('#case-{number} input[name=csrf]').value = '';"
            f"document.querySelector('#case-{number} button.claim').click()"
        )
    assert "Refused" in page.inner_text("body")
    case = server.handoff.get(number)
    assert case is not None and case.status == "open"  # nothing was claimed
    api = page.context.request.post(f"/case/{number}/claim", form={"csrf": "forged"}, max_redirects=0)
    assert api.status == 403
    page.context.close()


# -- the queue ------------------------------------------------------------------------------------
def test_a_new_escalation_appears_live_in_the_queue_within_a_second(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "alice")
    time.sleep(0.5)  # the live stream is open
    started = time.monotonic()
    number = server.escalate(level="urgent")
    page.wait_for_selector(f"#case-{number}", timeout=5000)
    latency = time.monotonic() - started
    row = page.inner_text(f"#case-{number}")
    assert "urgent" in row.lower() and "sms" in row and "th" in row and "TH" in row
    assert "semantic:documents_taken" in row  # the why
    assert latency < 1.0, f"the new case took {latency:.2f} s to appear"
    page.context.close()


def test_her_danger_message_through_the_gateway_pipeline_is_in_the_queue_within_a_second(
    browser: Any, server: Server
) -> None:
    """Her words through the pipeline the channel gateways run (normalise, language, screener,
    handoff core), not a row written by the test: no Rasa is needed for a danger message."""
    import asyncio

    from bot.content import load_catalog
    from bot.hours import DutyHours
    from bot.langid import LanguageIdentifier
    from bot.pipeline import Pipeline
    from bot.profiles import ProfileStore
    from bot.rasa_client import RasaClient
    from bot.risk.decision import RiskAssessor
    from bot.risk.screener import load_screener

    screener = load_screener(ROOT / "data")
    identifier = LanguageIdentifier.from_data(ROOT / "data")
    identifier.warm_up()

    async def she_writes(text: str) -> tuple[int, float]:
        rasa = RasaClient(server.env["SP_RASA_URL"], "token", 1.0)  # nothing listens there
        pipeline = Pipeline(
            load_catalog(ROOT / "data"), identifier, ProfileStore(server.engine), rasa, PEPPER, screener=screener,
            handoff=server.handoff, hours=DutyHours("", "UTC"), assessor=RiskAssessor(screener),
        )  # fmt: skip
        try:
            started = time.monotonic()
            turn = await pipeline.handle("telegram", "9900", text)
            assert turn.escalate and turn.risk_level == "urgent"
            case = server.handoff.active_for(pipeline.key_for("telegram", "9900"))
            assert case is not None
            return case.id, started
        finally:
            await rasa.close()

    page = sign_in(browser, server, "alice")
    time.sleep(0.5)  # the live stream is open
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        text = "Help me, they locked me in a room and took my passport"
        number, started = thread.submit(asyncio.run, she_writes(text)).result()
    page.wait_for_selector(f"#case-{number}", timeout=5000)
    latency = time.monotonic() - started
    assert "telegram" in page.inner_text(f"#case-{number}")
    assert latency < 1.0, f"her message took {latency:.2f} s to reach the queue"
    page.context.close()


def test_two_counsellors_race_to_claim_and_exactly_one_wins(browser: Any, server: Server) -> None:
    alice, bob = sign_in(browser, server, "alice"), sign_in(browser, server, "bob")
    number = server.escalate()
    for page in (alice, bob):
        page.wait_for_selector(f"#case-{number} button.claim")
    script = f"document.querySelector('#case-{number} button.claim').click()"
    alice.evaluate(script)
    bob.evaluate(script)  # both forms are on their way before either answer arrives
    for page in (alice, bob):
        page.wait_for_selector(".flash")
    messages = sorted([flash(alice), flash(bob)])
    assert "Another counsellor claimed this case first." in messages[0]
    assert "You hold this case" in messages[1]
    case = server.handoff.get(number)
    assert case is not None and case.status == "claimed" and case.counsellor in ("desk:alice", "desk:bob")
    loser = bob if case.counsellor == "desk:alice" else alice
    loser.goto(f"/case/{number}")  # the winner's case is closed to the other counsellor
    assert loser.locator("#forbidden").is_visible()
    for page in (alice, bob):
        page.context.close()


def test_a_case_claimed_in_telegram_shows_as_claimed(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "alice")
    number = server.escalate()
    page.wait_for_selector(f"#case-{number} button.claim")
    server.handoff.claim("tg:42", number)  # the Claim button in the counsellors' Telegram group
    page.wait_for_selector(f"#case-{number} button.claim", state="detached", timeout=5000)
    assert "held by Telegram 42" in page.inner_text(f"#case-{number} .status")
    page.goto(f"/case/{number}")
    assert page.locator("#forbidden").is_visible()
    page.context.close()


# -- a conversation -------------------------------------------------------------------------------
def test_her_hostile_html_is_shown_as_text(browser: Any, server: Server) -> None:
    number = server.escalate(text=HOSTILE, triggers=("<b>bold</b>",))
    page = sign_in(browser, server, "alice")
    page.goto(f"/case/{number}")
    assert HOSTILE in page.inner_text("#transcript")
    assert page.locator("#transcript img").count() == 0 and page.locator("#transcript b").count() == 0
    server.handoff.user_said(number, '<img src=y onerror="window.__pwned = 3">again')  # arrives live
    page.wait_for_selector("#transcript .line.user >> nth=1")
    assert '<img src=y onerror="window.__pwned = 3">again' in page.inner_text("#transcript")
    page.goto("/")
    assert "<b>bold</b>" in page.inner_text(f"#case-{number}")
    assert page.evaluate("window.__pwned") is None
    page.context.close()


def test_chat_both_ways_with_the_sms_segment_count(browser: Any, server: Server) -> None:
    number = server.escalate(text="I am locked in the house")
    page = sign_in(browser, server, "alice")
    post(page, f"#case-{number} button.claim")
    assert "You hold this case" in flash(page)
    reply = "I am here with you. Are you safe to write now?"
    page.fill("#reply", reply)
    assert page.inner_text("#segments").startswith("1 SMS (GSM-7")
    page.fill("#reply", "x" * 161)
    assert page.inner_text("#segments").startswith("2 SMS (GSM-7, 161/306)")
    page.fill("#reply", reply)
    post(page, "#send")
    assert "Sent" in flash(page)
    sent = [(a, t) for e, a, t in server.outbox("sms") if e == number]
    case = server.handoff.get(number)
    assert case is not None and (case.address, reply) in sent  # on its way to her phone
    server.handoff.user_said(number, "yes, for a few minutes")
    page.wait_for_selector("#transcript >> text=yes, for a few minutes", timeout=5000)
    page.context.close()


def test_a_canned_reply_in_burmese_with_its_review_status(browser: Any, server: Server) -> None:
    number = server.escalate(text="ကူညီပါ", language="my", country="MM")
    page = sign_in(browser, server, "alice")
    post(page, f"#case-{number} button.claim")
    button = page.locator('.canned-reply[data-id="safe_to_write"]')
    assert "machine translated" in page.inner_text("details.canned")
    button.click()
    text = page.input_value("#reply")
    assert text.startswith("အခု စာရေးဖို့")
    expected = count(text)
    assert page.inner_text("#segments").startswith(f"{expected.segments} SMS (UCS-2, {expected.units}/")
    post(page, "#send")
    assert any(e == number and t == text for e, _, t in server.outbox("sms"))
    danger = page.locator('.canned-reply[data-id="danger_now"]').get_attribute("data-text")
    assert danger is not None and "{" not in danger  # filled from data/facts for Myanmar
    page.context.close()


def test_notes_category_transfer_and_release(browser: Any, server: Server) -> None:
    number = server.escalate(channel="telegram", language="en", country="PH")
    alice = sign_in(browser, server, "alice")
    bob = sign_in(browser, server, "bob")
    post(alice, f"#case-{number} button.claim")
    alice.fill("#note", "Works at a <karaoke> bar; phone checked at night.")
    post(alice, "#save-note")
    assert "Works at a <karaoke> bar" in alice.inner_text("#notes")
    alice.select_option("#category-select", "sextortion")
    post(alice, "#save-category")
    assert alice.inner_text("#category") == "Sextortion"
    alice.select_option("#transfer-to", "desk:bob")
    post(alice, "#transfer")
    assert "Offered to bob" in alice.inner_text("#offer-out")
    bob.wait_for_selector(f"#case-{number} >> text=offered to you", timeout=5000)  # live in her colleague's queue
    with bob.expect_navigation():
        bob.click(f"#case-{number} >> text=Answer offer")
    post(bob, "#accept-transfer")
    assert "You hold this case now" in flash(bob)
    alice.wait_for_selector("#forbidden", timeout=5000)  # her page redraws: the case is bob's now
    assert "Works at a <karaoke> bar" in bob.inner_text("#notes")
    post(bob, "#release")
    assert "Handed back to the bot" in flash(bob)
    case = server.handoff.get(number)
    assert case is not None and case.status == "released"
    assert any(e == number for e, _, _ in server.outbox("telegram"))  # she was told, in her chat
    for page in (alice, bob):
        page.context.close()


def test_referrals_from_her_countrys_facts_recorded_sent_and_in_her_history(browser: Any, server: Server) -> None:
    from bot.content import load_catalog

    thailand = load_catalog(ROOT / "data").countries["TH"]
    orgs = list(thailand.organisations)
    chosen = [i for i, o in enumerate(orgs) if thailand.contact_of(o)][:2]
    assert len(chosen) == 2
    user = {
        "user_key": "key-referred", "channel": "telegram", "address": "7001", "language": "en", "country": "TH",
        "risk_level": "urgent", "risk_category": "documents_taken", "triggers": ("passport",),
    }  # fmt: skip
    first, _ = server.handoff.escalate(message="they keep my passport", **user)  # type: ignore[arg-type]
    page = sign_in(browser, server, "alice")
    post(page, f"#case-{first.id} button.claim")
    boxes = page.locator("#referrals-form input[name=referral]")
    assert boxes.count() == len(orgs)  # exactly her country's sourced organisations
    for i in chosen:
        boxes.nth(i).check()
    post(page, "#save-referrals")
    listed = page.inner_text("#referrals")
    assert all(orgs[i].name in listed for i in chosen) and "contact sent" not in listed
    preview = page.inner_text("#referral-text")
    for i in chosen:
        assert f"{orgs[i].name}{'*' if orgs[i].confidence == 'low' else ''} - {thailand.contact_of(orgs[i])}" in preview
    post(page, "#send-referrals")
    assert "Sent" in flash(page)
    assert page.inner_text("#referrals").count("contact sent to her") == 2
    assert page.locator("#send-referrals").count() == 0  # nothing left to send
    sent = [t for e, _, t in server.outbox("telegram") if e == first.id]
    assert preview in sent  # the text shown is the text on its way to her chat
    page.wait_for_selector(f"#transcript >> text={orgs[chosen[0]].name}", timeout=5000)
    with server.engine.connect() as conn:
        actions = {r.action for r in conn.execute(sa.select(audit.c.action).where(audit.c.escalation_id == first.id))}
    assert {"referrals", "referrals_sent"} <= actions
    page.select_option("#outcome", "referred_ngo")
    post(page, "#close")
    second, _ = server.handoff.escalate(message="they came back", **user)  # type: ignore[arg-type]
    page.goto(f"/case/{second.id}")
    history = page.inner_text("#history")
    assert f"#{first.id}" in history and all(orgs[i].name in history for i in chosen)
    page.context.close()


def test_close_with_an_outcome(browser: Any, server: Server) -> None:
    number = server.escalate()
    page = sign_in(browser, server, "alice")
    post(page, f"#case-{number} button.claim")
    page.select_option("#outcome", "referred_ngo")
    post(page, "#close")
    assert "Case closed" in flash(page)
    case = server.handoff.get(number)
    assert case is not None and (case.status, case.outcome) == ("closed", "referred_ngo")
    assert page.locator(f"#case-{number}").count() == 0  # gone from the queue
    page.context.close()


def test_supervisor_view(browser: Any, server: Server) -> None:
    held, waiting = server.escalate(), server.escalate(level="concern")
    alice = sign_in(browser, server, "alice")
    post(alice, f"#case-{held} button.claim")
    alice.goto("/supervisor")
    assert alice.locator("#forbidden").is_visible()  # counsellors do not supervise
    alice.goto("/")
    time.sleep(0.3)
    sara = sign_in(browser, server, "sara")
    sara.goto("/supervisor")
    assert "alice" in sara.inner_text("#online")
    assert f"#{held}" in sara.inner_text("#holders") and "alice" in sara.inner_text("#holders")
    assert f"#{waiting}" in sara.inner_text("#waiting")
    assert "claims" in sara.inner_text("#claim-times")
    sara.wait_for_function("document.querySelector('img.chart').naturalWidth > 0")
    sara.goto(f"/case/{held}")  # a supervisor reads any case, and cannot write in another's
    assert sara.locator("#transcript").is_visible() and sara.locator("#reply").count() == 0
    for page in (alice, sara):
        page.context.close()


def test_a_disabled_accounts_session_dies(browser: Any, server: Server) -> None:
    page = sign_in(browser, server, "dora")
    time.sleep(0.5)
    server.store.set_disabled("dora", True)  # `python -m bot desk disable-user dora`
    page.wait_for_url("**/login", timeout=8000)  # the live view signs her out
    page.goto("/")
    assert page.url.endswith("/login")
    server.store.set_disabled("dora", False)
    page.context.close()


def test_screenshots_on_a_phone(browser: Any, server: Server, tmp_path: Path) -> None:
    folder = ROOT / "docs" / "desk" if os.environ.get("SP_DESK_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    server.handoff.counsellors |= {"desk:alice", "desk:bob", "desk:dora", "desk:sara"}
    for case in server.handoff.queue("console"):  # a fresh queue for the picture
        if case.status == "open":
            server.handoff.claim("console", case.id)
        server.handoff.close(case.counsellor or "console", case.id, "other")
    server.escalate(text="They took my passport and lock the door at night", level="urgent")
    number = server.escalate(
        text="ကျွန်မကို အလုပ်ရှင်က အပြင်မထွက်ခွင့်မပြုဘူး", channel="sms", language="my", country="MM",
        level="urgent", triggers=("semantic:locked_in", "person:asks_for_human"),
    )  # fmt: skip
    server.escalate(text="is this job offer real?", channel="telegram", language="en", country="PH", level="concern",
                    triggers=("nlu:danger",))  # fmt: skip
    page = sign_in(browser, server, "alice", viewport=PHONE)
    page.wait_for_selector(f"#case-{number}")
    page.screenshot(path=str(folder / "queue.png"), full_page=False)
    post(page, f"#case-{number} button.claim")
    page.locator('.canned-reply[data-id="introduce"]').click()
    post(page, "#send")
    server.handoff.user_said(number, "ဟုတ်ကဲ့၊ ကျေးဇူးတင်ပါတယ်")
    page.wait_for_selector("#transcript .line.user >> nth=1", timeout=5000)
    page.locator('.canned-reply[data-id="safe_to_write"]').click()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(folder / "conversation.png"), full_page=True)
    assert (folder / "queue.png").stat().st_size > 10_000 and (folder / "conversation.png").stat().st_size > 10_000
    page.context.close()
