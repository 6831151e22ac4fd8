"""A local fake of the Telegram Bot API (only what our bot calls), for tests.

The real python-telegram-bot client talks to it over HTTP exactly as it would to
api.telegram.org: getUpdates long polling, sendMessage, deleteMessages, ... Every call is
recorded so tests can assert on what the bot did.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

# Telegram's update ids only grow, for the bot's whole life; the gateways keep the ids they handled
# (telegram_updates), so every fake of one test run goes on from where an earlier one stopped.
_UPDATE_IDS = itertools.count(int(time.time() * 1000) % 10**11)

BOT_USER = {"id": 999, "is_bot": True, "first_name": "SafePassage", "username": "safe_passage_test_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class FakeTelegram:
    token: str = "123:TEST"  # noqa: S105 - a fake token for the fake API
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: _UPDATE_IDS)
    # Telegram message ids only grow; start each fake where an earlier one cannot have been.
    _message_ids: Any = field(default_factory=lambda: itertools.count(int(time.time() * 1000) % 10**9))
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    message_ids: dict[str, int] = field(default_factory=dict)  # text of a sent message -> its id
    _runner: web.AppRunner | None = None
    url: str = ""
    # method -> HTTP status to answer with instead (a Telegram outage for that method)
    failing: dict[str, int] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)  # chats whose user blocked the bot (403 on send)
    # group chat id -> user ids of its human members (the bot is always a member too)
    members: dict[int, set[int]] = field(default_factory=dict)
    admins: dict[int, set[int]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # file id -> the bytes getFile + download serve
    # method -> seconds its next calls are answered late (taken at once, answered after the wait)
    slow: dict[str, list[float]] = field(default_factory=dict)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what users do ---------------------------------------------------------------------
    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": "Counsellors"}
        return {"id": chat_id, "type": "private", "first_name": "Girl"}

    def message_update(self, chat_id: int, text: str | None = None, from_id: int | None = None, **extra: Any) -> dict:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": {"id": from_id or chat_id, "is_bot": False, "first_name": "Dana" if chat_id < 0 else "Girl"},
            **extra,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": next(self._ids), "message": message}

    def photo(self, chat_id: int, data: bytes, width: int = 720, height: int = 1280) -> dict[str, Any]:
        """She sends a photo (Telegram sends several sizes; here one, holding ``data``)."""
        file_id = f"photo{len(self.files) + 1}"
        self.files[file_id] = data
        size = {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": width, "height": height,
                "file_size": len(data)}  # fmt: skip
        return self.push(self.message_update(chat_id, photo=[size]))

    def document(self, chat_id: int, data: bytes, name: str, mime_type: str) -> dict[str, Any]:
        file_id = f"doc{len(self.files) + 1}"
        self.files[file_id] = data
        document = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": name, "mime_type": mime_type,
                    "file_size": len(data)}  # fmt: skip
        return self.push(self.message_update(chat_id, document=document))

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        self.calls.append(Call("download", {"file_id": file_id}))
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def new_update_id(self) -> int:
        return int(next(self._ids))

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        self.updates.append(update)
        self._new.set()
        return update

    def say(self, chat_id: int, text: str | None = None, **extra: Any) -> dict[str, Any]:
        return self.push(self.message_update(chat_id, text, **extra))

    def press(self, chat_id: int, data: str, from_id: int | None = None, message_id: int = 1) -> dict[str, Any]:
        query = {
            "id": str(next(self._ids)),
            "from": {"id": from_id or chat_id, "is_bot": False, "first_name": "Dana"},
            "chat_instance": "x",
            "data": data,
            "message": {"message_id": message_id, "date": int(time.time()), "chat": self._chat(chat_id), "text": "..."},
        }
        return self.push({"update_id": next(self._ids), "callback_query": query})

    # -- what the bot did ------------------------------------------------------------------------
    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls
            if c.method == "sendMessage" and (chat_id is None or int(c.params["chat_id"]) == chat_id)
        ]

    def texts(self, chat_id: int) -> list[str]:
        return [p["text"] for p in self.sent(chat_id)]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting; last calls: {[c.method for c in self.calls[-10:]]}")

    # -- the HTTP API ------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            for key, value in (await request.post()).items():
                try:
                    params[key] = json.loads(str(value))
                except ValueError:
                    params[key] = str(value)
        if method != "getUpdates":
            self.calls.append(Call(method, params))
        if method == "sendMessage" and int(params.get("chat_id", 0)) in self.blocked:
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, status=403
            )
        if method in self.failing:
            status = self.failing[method]
            return web.json_response(
                {"ok": False, "error_code": status, "description": "Internal Server Error"}, status=status
            )
        result = await self._result(method, params)
        if self.slow.get(method):  # Telegram took it, the answer is slow to come back
            await asyncio.sleep(self.slow[method].pop(0))
        return web.json_response({"ok": True, "result": result})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if not pending:
                self._new.clear()
                try:
                    await asyncio.wait_for(self._new.wait(), timeout=min(float(params.get("timeout") or 0), 1.0))
                except asyncio.TimeoutError:
                    pass
                pending = [u for u in self.updates if u["update_id"] >= offset]
            return pending
        if method in ("sendMessage",):
            chat_id = int(params["chat_id"])
            message_id = next(self._message_ids)
            self.message_ids[str(params.get("text", ""))] = message_id
            return {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
        if method == "getFile":
            file_id = str(params["file_id"])
            data = self.files.get(file_id, b"")
            return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data),
                    "file_path": f"files/{file_id}"}  # fmt: skip
        if method == "getChatMember":
            user = int(params["user_id"])
            inside = user in self.members.get(int(params["chat_id"]), set())
            return {"status": "member" if inside else "left", "user": {"id": user, "is_bot": False, "first_name": "u"}}
        if method == "getChatMemberCount":
            return 1 + len(self.members.get(int(params["chat_id"]), set()))
        if method == "getChatAdministrators":
            chat = int(params["chat_id"])
            people = [
                {"status": "administrator", "user": {"id": u, "is_bot": False, "first_name": f"user{u}"},
                 "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": True,
                 "can_manage_video_chats": True, "can_restrict_members": True, "can_promote_members": False,
                 "can_change_info": True, "can_invite_users": True, "can_post_stories": False,
                 "can_edit_stories": False, "can_delete_stories": False}
                for u in sorted(self.admins.get(chat, set()))
            ]  # fmt: skip
            bot = {"status": "administrator", "user": BOT_USER, "can_be_edited": False, "is_anonymous": False,
                   "can_manage_chat": True, "can_delete_messages": True, "can_manage_video_chats": False,
                   "can_restrict_members": False, "can_promote_members": False, "can_change_info": False,
                   "can_invite_users": False, "can_post_stories": False, "can_edit_stories": False,
                   "can_delete_stories": False}  # fmt: skip
            return [bot, *people]
        return True
