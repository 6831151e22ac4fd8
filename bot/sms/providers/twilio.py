"""Twilio: inbound webhook with X-Twilio-Signature checked by twilio's own RequestValidator,
replies through the REST API (the webhook answers with empty TwiML at once)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator

from bot.sms.providers import InboundSms, Rejected, SendFailed

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    sender: str  # our Twilio number, or a Messaging Service SID (MG...)
    webhook_url: str = ""  # the public URL Twilio signs; needed behind a proxy
    api_url: str = "https://api.twilio.com"


class TwilioProvider:
    name = "twilio"
    path = "/sms/twilio"

    def __init__(self, config: TwilioConfig, timeout: float = 10.0) -> None:
        if not (config.account_sid and config.auth_token):
            raise ValueError("Twilio needs SP_TWILIO_ACCOUNT_SID and SP_TWILIO_AUTH_TOKEN")
        self.config = config
        self._validator = RequestValidator(config.auth_token)
        self._http = httpx.AsyncClient(timeout=timeout, auth=(config.account_sid, config.auth_token))

    async def parse(self, request: web.Request) -> InboundSms:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise Rejected(403, "unsigned request")
        try:
            form = await request.post()
        except ValueError as error:
            raise Rejected(400, "malformed body") from error
        params = {k: str(v) for k, v in form.items()}
        url = self.config.webhook_url or str(request.url)
        if not self._validator.validate(url, params, signature):
            raise Rejected(403, "bad signature")
        sid, sender = params.get("MessageSid") or params.get("SmsSid", ""), params.get("From", "")
        if not sid or not sender:
            raise Rejected(400, "MessageSid and From are required")
        media = params.get("NumMedia", "0").strip()
        return InboundSms(sid, sender, params.get("Body", ""), has_media=media.isdigit() and int(media) > 0)

    def acknowledge(self) -> web.Response:
        return web.Response(status=200, text=EMPTY_TWIML, content_type="text/xml")

    async def send(self, to: str, text: str) -> str:
        url = f"{self.config.api_url}/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        sender_field = "MessagingServiceSid" if self.config.sender.startswith("MG") else "From"
        try:
            reply = await self._http.post(url, data={"To": to, sender_field: self.config.sender, "Body": text})
        except httpx.HTTPError as error:
            raise SendFailed(type(error).__name__) from error
        if reply.status_code in (200, 201):
            return str(reply.json().get("sid", ""))
        code = ""
        try:
            code = str(reply.json().get("code", ""))
        except ValueError:
            pass
        # 21610: the number replied STOP to Twilio itself; 4xx will not get better by retrying
        retry = reply.status_code >= 500 or reply.status_code == 429
        raise SendFailed(f"twilio {reply.status_code} {code}".strip(), retry=retry)

    async def close(self) -> None:
        await self._http.aclose()
