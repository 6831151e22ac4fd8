"""SMS providers behind one small interface: a new one (Africa's Talking, Infobip, a RapidPro
external channel) is one module with ``parse`` (inbound webhook) and ``send`` (outbound)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web


@dataclass(frozen=True)
class InboundSms:
    provider_id: str  # the provider's message id: a retried delivery is processed once
    sender: str  # her phone number (personal data: never logged)
    text: str
    has_media: bool = False  # MMS pictures or audio: we can only read text


class Rejected(Exception):
    """The webhook request is refused (unsigned, wrongly signed, malformed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SendFailed(Exception):
    """The provider did not take the message; ``retry`` says whether trying again can help."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class SmsProvider(Protocol):
    name: str  # "kannel", "twilio"
    path: str  # where its inbound webhook is mounted, e.g. "/sms/kannel"

    async def parse(self, request: web.Request) -> InboundSms:
        """The inbound SMS in this request, or raise Rejected."""

    def acknowledge(self) -> web.Response:
        """The reply that tells the provider the message was taken (replies go out separately)."""

    async def send(self, to: str, text: str) -> str:
        """Send one (possibly concatenated) SMS; the provider's id, or raise SendFailed."""

    async def close(self) -> None:
        """Release HTTP connections."""
