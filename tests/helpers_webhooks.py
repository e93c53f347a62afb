"""Helpers for webhook tests: a registered integrator, subscribing, the receiver-side
signature check, a settable clock. Clients come from ``tests.factories.make_client`` and
events from real case actions (``make_case``, ``act_on``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings
from handlers.keys import CTX
from service.identity.accounts import ApiClient
from tests.factories import bearer_for, make_client

WEBHOOK_SCOPES = ("webhooks:manage", "cases:read", "cases:write")


async def integrator(
    app_client: Any, settings: Settings, scopes: tuple[str, ...] = WEBHOOK_SCOPES
) -> tuple[ApiClient, dict[str, str]]:
    """A registered integrator client (``make_client``) and the bearer headers of its token."""
    made = await make_client(app_client.app[CTX], scopes=scopes)
    return made.client, bearer_for(settings, made)


class Clock:
    """A clock tests move by hand (ctx.clock)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


async def subscribe(
    client: Any, headers: dict[str, str], url: str, event_types: list[str] | None = None
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": event_types or ["*"]}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """The receiver-side check exactly as docs/webhooks.md shows it."""
    fields = dict(item.split("=", 1) for item in header.split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(now - t) <= tolerance and hmac.compare_digest(expected, fields["v1"])
