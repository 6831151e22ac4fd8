"""The web desk's HTTP layer (aiohttp): pages, forms, the live stream, security headers.

Server-rendered HTML (Jinja2 with autoescape: her text is always escaped), one small script
and one stylesheet served from this package (no static directory route), live updates over
Server-Sent Events. Every page but the sign-in needs a session; every POST needs the session's
CSRF token (the sign-in form a token bound to a pre-session cookie) and, when the browser sends
one, an Origin of this site. Cookies are HttpOnly, SameSite=Strict and Secure (``__Host-``
prefix) unless the desk serves plain http on loopback for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from bot.handoff import AlreadyClaimed, NotAllowed
from bot.sms.segments import GSM7_BASIC, GSM7_EXTENSION
from bot.webdesk.auth import Accounts, LoginRefused, Session
from bot.webdesk.permissions import Forbidden
from bot.webdesk.service import DeskService, NotFound

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
STATIC = {"desk.js": "text/javascript", "desk.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MESSAGES = {  # fixed texts chosen by code: nothing from the request is reflected
    "claimed": ("ok", "You hold this case. What you write goes to her channel."),
    "taken": ("error", "Another counsellor claimed this case first."),
    "sent": ("ok", "Sent. It is on its way to her channel."),
    "empty": ("error", "Nothing to send."),
    "released": ("ok", "Handed back to the bot. She was told."),
    "closed": ("ok", "Case closed. She was told."),
    "noted": ("ok", "Note saved (only counsellors see it)."),
    "categorised": ("ok", "Category saved."),
    "referred": ("ok", "Referrals saved."),
    "offered": ("ok", "Offered to your colleague; you hold the case until they accept."),
    "accepted": ("ok", "You hold this case now."),
    "declined": ("ok", "Offer declined."),
    "forbidden": ("error", "Not allowed: this case is held by another counsellor, or the action is not yours."),
    "invalid": ("error", "Choose a value from the list."),
    "gone": ("error", "That case no longer exists (erased by the user, or by retention)."),
}


@dataclass(frozen=True)
class WebOptions:
    secure_cookies: bool = True
    trust_forwarded: bool = False  # behind a TLS proxy: the client address from X-Forwarded-For
    live_interval: float = 0.25  # seconds between checks for changes (the live view's latency)
    heartbeat_seconds: float = 15.0
    session_check_seconds: float = 2.0  # a signed-out or disabled account's live view ends this soon
    login_key: bytes = b""  # signs the sign-in form's CSRF token

    @property
    def cookie(self) -> str:
        return "__Host-sp_desk" if self.secure_cookies else "sp_desk"

    @property
    def pre_cookie(self) -> str:
        return "__Host-sp_desk_pre" if self.secure_cookies else "sp_desk_pre"


SERVICE = web.AppKey("service", DeskService)
ACCOUNTS = web.AppKey("accounts", Accounts)
OPTIONS = web.AppKey("options", WebOptions)
TEMPLATES = web.AppKey("templates", jinja2.Environment)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every value, her words first, is escaped
        undefined=jinja2.StrictUndefined,
    )
    env.filters["clock"] = lambda at: time.strftime("%H:%M", time.localtime(at))
    env.filters["day"] = lambda at: time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
    env.filters["duration"] = _duration
    env.filters["who"] = _who
    return env


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _who(handle: str | None) -> str:
    """A counsellor id as people read it: desk accounts by name, Telegram ids as such."""
    if not handle:
        return ""
    if handle.startswith("desk:"):
        return handle[5:]
    if handle.startswith("tg:"):
        return f"Telegram {handle[3:]}"
    return handle


class LiveHub:
    """One poller per process: it notices any change (a new case, a claim anywhere, a new line,
    a transfer) and wakes every open live view, which then redraws what it shows."""

    def __init__(self, service: DeskService, interval: float) -> None:
        self.service, self.interval = service, interval
        self.version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._signature: tuple[object, ...] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                signature = self.service.live_signature()
                if signature != self._signature:
                    self._signature = signature
                    async with self._changed:
                        self.version += 1
                        self._changed.notify_all()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep watching; the database may be back soon
                log.error("desk live view: %s", type(error).__name__)
            await asyncio.sleep(self.interval)

    async def wait(self, seen: int, timeout: float) -> int:
        async with self._changed:
            if self.version == seen:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
            return self.version


HUB = web.AppKey("hub", LiveHub)


# -- middlewares ---------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = ("/login", "/static/", "/healthz")


def _secure_headers(response: web.StreamResponse, secure: bool) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # "no-referrer" makes browsers send Origin: null
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cache-Control", "no-store")  # her words never stay in a browser cache
    if secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    secure = request.app[OPTIONS].secure_cookies
    try:
        response = await handler(request)
    except web.HTTPException as error:
        _secure_headers(error, secure)
        raise
    if not response.prepared:
        _secure_headers(response, secure)
    return response


@web.middleware
async def require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PUBLIC):
        return await handler(request)
    options = request.app[OPTIONS]
    session = request.app[ACCOUNTS].session(request.cookies.get(options.cookie, ""))
    if session is None:
        if request.method == "GET" and request.path != "/events":
            raise web.HTTPSeeOther("/login")
        raise web.HTTPForbidden(text="Signed out: sign in again.")
    request["session"] = session
    if request.method == "POST":
        form = await request.post()
        given = str(form.get("csrf", ""))
        if not (given and hmac.compare_digest(given, session.csrf)) or not _same_origin(request):
            request.app[ACCOUNTS].store.audit(session.actor.handle, "csrf_refused")
            raise web.HTTPForbidden(text="Refused: the form is stale or did not come from the desk. Reload the page.")
        request["form"] = form
    return await handler(request)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None  # same-origin form posts send it; a "null" origin is refused
    return urlsplit(origin).netloc == request.host


def _client(request: web.Request) -> str:
    if request.app[OPTIONS].trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()  # the address our own proxy saw
    return request.remote or ""


def _render(request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    session: Session | None = request.get("session")
    code = request.query.get("m", "")
    values.setdefault("message", MESSAGES.get(code))
    values.setdefault("events_url", "")
    values.setdefault("title", "Sign in")
    html = (
        request.app[TEMPLATES]
        .get_template(name)
        .render(actor=session.actor if session else None, csrf=session.csrf if session else "", **values)
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def _set_cookie(response: web.StreamResponse, options: WebOptions, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=options.secure_cookies, httponly=True, samesite="Strict"
    )


# -- sign-in ------------------------------------------------------------------------------
def _login_token(options: WebOptions, pre: str) -> str:
    return hmac.new(options.login_key, b"desk-login:" + pre.encode(), hashlib.sha256).hexdigest()


async def login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    options = request.app[OPTIONS]
    pre = request.cookies.get(options.pre_cookie) or secrets.token_urlsafe(24)
    response = _render(request, "login.html", status=status, login_csrf=_login_token(options, pre), error=error)
    _set_cookie(response, options, options.pre_cookie, pre, None)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    options = request.app[OPTIONS]
    form = await request.post()
    pre = request.cookies.get(options.pre_cookie, "")
    given = str(form.get("csrf", ""))
    if not (pre and given and hmac.compare_digest(given, _login_token(options, pre))) or not _same_origin(request):
        raise web.HTTPForbidden(text="Refused: reload the sign-in page and try again.")
    try:
        session = request.app[ACCOUNTS].login(
            str(form.get("name", "")), str(form.get("password", "")), str(form.get("code", "")), _client(request)
        )
    except LoginRefused:
        return await login_page(
            request, "Sign-in refused: wrong name, password or code, or too many attempts (wait and try again).", 401
        )
    response = web.HTTPSeeOther("/")
    _set_cookie(response, options, options.cookie, session.token, None)
    response.del_cookie(options.pre_cookie, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    options = request.app[OPTIONS]
    request.app[ACCOUNTS].logout(request["session"])
    response = web.HTTPSeeOther("/login")
    response.del_cookie(options.cookie, path="/")
    raise response


# -- pages --------------------------------------------------------------------------------
def _actor(request: web.Request) -> Any:
    return request["session"].actor


def _number(request: web.Request, key: str = "id") -> int:
    return int(request.match_info[key])


async def queue_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    items = service.queue(_actor(request))
    return _render(
        request, "queue.html", title="Queue", items=items, events_url="/events", taxonomy=service.taxonomy,
        timeout=service.claim_timeout_seconds,
    )  # fmt: skip


async def case_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    number = _number(request)
    try:
        view = service.open_case(_actor(request), number)
    except NotFound:
        raise web.HTTPNotFound(text="No such case (it may have been erased).") from None
    except Forbidden:
        return _render(request, "forbidden.html", status=403, title="Not allowed")
    state = _state(view.case.status, view.case.counsellor, view.offer_in, view.offer_out)
    events = f"/events?case={view.case.id}&after={view.last_line_id}&state={state}"
    return _render(
        request, "case.html", title=f"Case #{view.case.id}", view=view, events_url=events, taxonomy=service.taxonomy,
        gsm7=''.join(sorted(GSM7_BASIC)), gsm7ext=''.join(sorted(GSM7_EXTENSION)),
    )  # fmt: skip


def _state(status: str, counsellor: str | None, *offers: Any) -> str:
    ids = ".".join(str(o.id) for o in offers if o is not None)
    return hashlib.sha256(f"{status}|{counsellor}|{ids}".encode()).hexdigest()[:16]


async def supervisor_page(request: web.Request) -> web.Response:
    try:
        view = request.app[SERVICE].supervision(_actor(request))
    except Forbidden:
        return _render(request, "forbidden.html", status=403, title="Not allowed")
    return _render(request, "supervisor.html", title="Supervision", view=view)


async def stats_png(request: web.Request) -> web.Response:
    try:
        png = request.app[SERVICE].stats_png(_actor(request))
    except Forbidden:
        raise web.HTTPForbidden() from None
    return web.Response(body=png, content_type="image/png")


# -- actions (POST, then back to a page: nothing from the request is echoed) ---------------
def _back(number: int, code: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/case/{number}?m={code}")


async def case_action(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    actor = _actor(request)
    number = _number(request)
    action = request.match_info["action"]
    form = request["form"]
    try:
        if action == "claim":
            service.claim(actor, number)
            raise _back(number, "claimed")
        if action == "send":
            service.send(actor, number, str(form.get("text", ""))[:4000])
            raise _back(number, "sent")
        if action == "release":
            await service.release(actor, number)
            raise web.HTTPSeeOther("/?m=released")
        if action == "close":
            await service.close(actor, number, str(form.get("outcome", "")))
            raise web.HTTPSeeOther("/?m=closed")
        if action == "note":
            service.add_note(actor, number, str(form.get("text", "")))
            raise _back(number, "noted")
        if action == "category":
            service.set_category(actor, number, str(form.get("category", "")))
            raise _back(number, "categorised")
        if action == "referrals":
            service.set_referrals(actor, number, [str(v) for v in form.getall("referral", [])])
            raise _back(number, "referred")
        if action == "sendreferrals":
            service.send_referrals(actor, number)
            raise _back(number, "sent")
        if action == "transfer":
            service.offer_transfer(actor, number, str(form.get("to", "")))
            raise _back(number, "offered")
    except AlreadyClaimed:
        raise _back(number, "taken") from None
    except (Forbidden, NotAllowed):
        raise _back(number, "forbidden") from None
    except NotFound:
        raise web.HTTPSeeOther("/?m=gone") from None
    except ValueError as error:
        raise _back(number, "empty" if "empty" in str(error) else "invalid") from None
    raise web.HTTPNotFound()


async def transfer_answer(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    accept = request.match_info["answer"] == "accept"
    try:
        case = service.answer_transfer(_actor(request), _number(request, "tid"), accept)
    except (Forbidden, NotAllowed, AlreadyClaimed):
        raise web.HTTPSeeOther("/?m=forbidden") from None
    except NotFound:
        raise web.HTTPSeeOther("/?m=gone") from None
    if accept:
        raise _back(case.id, "accepted")
    raise web.HTTPSeeOther("/?m=declined")


# -- live updates (Server-Sent Events; redraws are not reads and are not audited) -----------
async def _send_event(response: web.StreamResponse, event: str, html: str = "") -> None:
    data = "".join(f"data: {line}\n" for line in (html.splitlines() or [""]))
    await response.write(f"event: {event}\n{data}\n".encode())


async def events(request: web.Request) -> web.StreamResponse:
    app = request.app
    service, accounts, options, hub = app[SERVICE], app[ACCOUNTS], app[OPTIONS], app[HUB]
    session: Session = request["session"]
    actor = session.actor
    try:
        case_id = int(request.query.get("case", "0") or 0)
        after = int(request.query.get("after", "0") or 0)
    except ValueError:
        raise web.HTTPBadRequest() from None
    state = request.query.get("state", "")
    templates = app[TEMPLATES]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    _secure_headers(response, options.secure_cookies)
    await response.prepare(request)
    seen, shown, last_beat, last_live = -1, "", time.monotonic(), 0.0
    try:
        while True:
            version = await hub.wait(seen, options.session_check_seconds)
            if not accounts.still_valid(session.token):
                await _send_event(response, "logout")
                break
            if time.monotonic() - last_live > 10:
                accounts.mark_live(session.token)
                last_live = time.monotonic()
            if version != seen or not case_id:
                seen = version
                if case_id:
                    try:
                        case, lines = service.new_lines(actor, case_id, after)
                    except (NotFound, Forbidden):
                        await _send_event(response, "state")
                        break
                    if lines:
                        after = lines[-1].id
                        html = templates.get_template("lines.html").render(lines=lines, case=case)
                        await _send_event(response, "lines", html)
                    offers = service.store.pending_transfers(escalation_id=case.id)
                    offer_in = next((t for t in offers if t.to_counsellor == actor.handle), None)
                    offer_out = next((t for t in offers if t.from_counsellor == case.counsellor), None)
                    if _state(case.status, case.counsellor, offer_in, offer_out) != state:
                        await _send_event(response, "state")
                        break
                else:
                    items = service.queue(actor, audited=False)
                    html = templates.get_template("queue_rows.html").render(
                        items=items, taxonomy=service.taxonomy, csrf=session.csrf, timeout=service.claim_timeout_seconds
                    )
                    if html != shown:
                        shown = html
                        await _send_event(response, "queue", html)
            if time.monotonic() - last_beat > options.heartbeat_seconds:
                await response.write(b": keep-alive\n\n")
                last_beat = time.monotonic()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


# -- static files, health --------------------------------------------------------------------
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:  # a fixed list: no path from the request reaches the file system
        raise web.HTTPNotFound()
    body = (HERE / "static" / name).read_bytes()
    response = web.Response(body=body, content_type=STATIC[name])
    response.headers["Cache-Control"] = "no-cache"
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(service: DeskService, accounts: Accounts, options: WebOptions) -> web.Application:
    if not options.login_key:
        raise ValueError("the desk needs a login key (derived from the pepper)")
    app = web.Application(middlewares=[security_headers, require_session], client_max_size=64 * 1024)
    app[SERVICE], app[ACCOUNTS], app[OPTIONS] = service, accounts, options
    app[TEMPLATES] = _templates()
    hub = LiveHub(service, options.live_interval)
    app[HUB] = hub

    async def start(_: web.Application) -> None:
        hub.start()

    async def stop(_: web.Application) -> None:
        await hub.stop()

    app.on_startup.append(start)  # type: ignore[arg-type]  # aiohttp 3.9 types its signals oddly
    app.on_cleanup.append(stop)  # type: ignore[arg-type]
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", queue_page)
    app.router.add_get("/events", events)
    app.router.add_get(r"/case/{id:\d+}", case_page)
    app.router.add_post(r"/case/{id:\d+}/{action:[a-z]+}", case_action)
    app.router.add_post(r"/transfer/{tid:\d+}/{answer:accept|decline}", transfer_answer)
    app.router.add_get("/supervisor", supervisor_page)
    app.router.add_get("/supervisor/stats.png", stats_png)
    app.router.add_get(r"/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    return app
