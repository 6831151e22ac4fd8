"""Kannel (the open-source gateway many NGOs run): MO from smsbox's sms-service get-url,
MT through smsbox's sendsms interface. Sample configuration: deploy/kannel/kannel.conf."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx
from aiohttp import web

from bot.sms import segments
from bot.sms.providers import InboundSms, Rejected, SendFailed

# Kannel's charset names for MO text (with mo-recode = true it is UTF-8 already).
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
        self._http = httpx.AsyncClient(timeout=timeout)

    async def parse(self, request: web.Request) -> InboundSms:
        raw = request.rel_url.raw_query_string
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            raw = (await request.read()).decode("latin-1") + "&" + raw
        # latin-1 keeps every byte, so the text can be decoded with the charset Kannel names
        params = {k: v for k, v in parse_qsl(raw, keep_blank_values=True, encoding="latin-1")}
        if not hmac.compare_digest(params.get("key", "").encode("latin-1"), self.config.mo_key.encode()):
            raise Rejected(403, "wrong or missing key")
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
