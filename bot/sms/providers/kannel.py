"""Kannel (the open-source gateway many NGOs run): MO from smsbox's sms-service post-url (the
older get-url still accepted, with a warning), MT through smsbox's sendsms interface.
Configuration: deploy/kannel/kannel.conf.template (python -m bot.sms.kannel_conf)."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx
from aiohttp import BasicAuth, web

from bot.sms import segments
from bot.sms.providers import InboundSms, Rejected, SendFailed

# Kannel's charset names for MO text (with mo-recode = true it is UTF-8 already).
log = logging.getLogger(__name__)

_CODECS = {
    "UTF-8": "utf-8",
    "UTF-16BE": "utf-16-be",
    "UCS-2": "utf-16-be",
    "ISO-8859-1": "latin-1",
    "WINDOWS-1252": "cp1252",
}


@dataclass(frozen=True)
class KannelConfig:
    sendsms_url: str  # e.g. http://127.0.0.1:13013/cgi-bin/sendsms
    username: str
    password: str
    mo_key: str  # shared secret in the get-url: Kannel cannot sign requests
    sender: str  # our short code or number (the "from" of replies; sendsms refuses without it)
    smsc: str = ""  # route MT through this smsc-id, if set


class KannelProvider:
    name = "kannel"
    path = "/sms/kannel"

    def __init__(self, config: KannelConfig, timeout: float = 10.0) -> None:
        if not config.mo_key:
            raise ValueError("Kannel needs SP_KANNEL_MO_KEY (the key= in the sms-service get-url)")
        if not config.sender:
            raise ValueError("Kannel needs SP_KANNEL_SENDER (the short code or number replies come from)")
        self.config = config
        self._warned_get_url = False
        self._http = httpx.AsyncClient(timeout=timeout)

    async def parse(self, request: web.Request) -> InboundSms:
        if request.method == "POST" and request.content_type in ("text/plain", "application/octet-stream"):
            return await self._parse_post_url(request)
        return await self._parse_get_url(request)

    async def _parse_post_url(self, request: web.Request) -> InboundSms:
        """The sms-service `post-url` form (deploy/kannel/kannel.conf.template): the key is basic
        auth, her number the X-Kannel-From header, her text the body; only the id is in the URL."""
        try:
            key = BasicAuth.decode(request.headers.get("Authorization", "")).password
        except ValueError:  # no or malformed Authorization header
            key = ""
        if not hmac.compare_digest(key.encode("latin-1", "replace"), self.config.mo_key.encode()):
            raise Rejected(403, "wrong or missing key")
        sender = request.headers.get("X-Kannel-From", "").strip()
        message_id = request.rel_url.query.get("id", "").strip()
        if not sender or not message_id:
            raise Rejected(400, "X-Kannel-From (send-sender = true) and id are required")
        charset = (request.charset or "").upper() or (
            "UTF-16BE" if request.headers.get("X-Kannel-Coding") == "2" else "UTF-8"
        )
        text = (await request.read()).decode(_CODECS.get(charset, "utf-8"), errors="replace")
        return InboundSms(message_id, sender, text)

    async def _parse_get_url(self, request: web.Request) -> InboundSms:
        """The older `get-url` form: key, number and text in the query string, where access and
        proxy logs keep them. Still accepted for one release, with a warning."""
        raw = request.rel_url.raw_query_string
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            raw = (await request.read()).decode("latin-1") + "&" + raw
        # latin-1 keeps every byte, so the text can be decoded with the charset Kannel names
        params = {k: v for k, v in parse_qsl(raw, keep_blank_values=True, encoding="latin-1")}
        if not hmac.compare_digest(params.get("key", "").encode("latin-1"), self.config.mo_key.encode()):
            raise Rejected(403, "wrong or missing key")
        if not self._warned_get_url:
            self._warned_get_url = True
            log.warning(
                "Kannel MO arrives by get-url: the key, her number and her text are in the query string, "
                "where access logs keep them. Switch the sms-service to post-url "
                "(deploy/kannel/kannel.conf.template); get-url will be refused in the next release."
            )
        sender, message_id = params.get("from", "").strip(), params.get("id", "").strip()
        if not sender or not message_id:
            raise Rejected(400, "from and id are required")
        charset = params.get("charset", "").upper() or ("UTF-16BE" if params.get("coding") == "2" else "UTF-8")
        codec = _CODECS.get(charset, "utf-8")
        text = params.get("text", "").encode("latin-1").decode(codec, errors="replace")
        return InboundSms(message_id, sender.encode("latin-1").decode("utf-8", "replace"), text)

    def acknowledge(self) -> web.Response:
        return web.Response(status=200, text="")  # empty body: with omit-empty Kannel sends nothing

    async def send(self, to: str, text: str) -> str:
        ucs2 = segments.encoding(text) == segments.UCS2
        params = {
            "username": self.config.username,
            "password": self.config.password,
            "to": to,
            "text": text,
            "from": self.config.sender,
            "charset": "UTF-8",
            "coding": "2" if ucs2 else "0",  # UCS-2 for Thai, Burmese, Cyrillic...: else "?????"
        }
        if self.config.smsc:
            params["smsc"] = self.config.smsc
        try:
            reply = await self._http.get(self.config.sendsms_url, params=params)
        except httpx.HTTPError as error:
            raise SendFailed(type(error).__name__) from error
        if reply.status_code in (200, 202):
            return ""
        # 4xx: our request is wrong (credentials, number) and will stay wrong; 5xx: try again
        retry = reply.status_code >= 500 or reply.status_code == 429
        raise SendFailed(f"sendsms {reply.status_code}", retry=retry)

    async def close(self) -> None:
        await self._http.aclose()
