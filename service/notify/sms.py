"""Sending text messages: to the log in development, to an SMS gateway over HTTP otherwise."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from service.common.context import Context
from service.common.errors import UnavailableError, UpstreamError

log = logging.getLogger("huimin.sms")


class SmsSender(Protocol):
    async def send(self, *, phone: str, template: str, params: dict[str, Any]) -> None:
        """Deliver one templated message or raise a DomainError."""


class ConsoleSmsSender:
    """Writes the message to the log instead of sending it (development only)."""

    async def send(self, *, phone: str, template: str, params: dict[str, Any]) -> None:
        """Log the message, codes included, so a developer can read them."""
        log.warning("SMS (console sender, not delivered)", extra={"phone": phone, "template": template, **params})


class HttpSmsSender:
    """Posts ``{phone, template, params}`` as JSON to ``{base}/send``; expects ``{"ok": true}``."""

    def __init__(self, http: Any, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/send"

    async def send(self, *, phone: str, template: str, params: dict[str, Any]) -> None:
        """Send one message through the gateway."""
        try:
            resp = await self.http.post(self.url, json={"phone": phone, "template": template, "params": params})
        except httpx.HTTPError:
            raise UnavailableError("sms_unavailable", "The SMS gateway cannot be reached; try again shortly.") from None
        try:
            ok = resp.status_code == 200 and resp.json().get("ok") is True
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise UpstreamError("sms_send_failed", "The SMS gateway did not accept the message.")


def sms_sender(ctx: Context) -> SmsSender:
    """The sender these settings ask for."""
    if ctx.settings.sms_sender == "http":
        return HttpSmsSender(ctx.http, ctx.settings.sms_api_base)
    return ConsoleSmsSender()
