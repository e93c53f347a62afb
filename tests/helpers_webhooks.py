"""Helpers for webhook tests: subscribing, the receiver-side signature check, a settable clock.

``client_headers``, ``admin_headers``, ``insert_case`` and ``insert_event`` make tokens for
clients that do not exist and write case and event documents by hand. Only
tests/handlers/test_webhooks.py still uses them; new tests register clients with
``tests.factories.make_client`` and get events from real case actions (``make_case``,
``act_on``). Remove them once that file has moved over.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings
from service.common.models import Principal
from service.identity.tokens import issue_access_token

CLIENT_SCOPES = frozenset({"webhooks:manage", "cases:read"})


def client_headers(settings: Settings, client_id: str, scopes: frozenset[str] = CLIENT_SCOPES) -> dict[str, str]:
    """Bearer headers of an API client token."""
    token, _ = issue_access_token(
        settings=settings,
        principal=Principal(subject=client_id, role="client", scopes=scopes),
        now=datetime.now(UTC),
    )
    return {"Authorization": f"Bearer {token}"}


def admin_headers(settings: Settings) -> dict[str, str]:
    token, _ = issue_access_token(
        settings=settings, principal=Principal(subject="admin-1", role="admin"), now=datetime.now(UTC)
    )
    return {"Authorization": f"Bearer {token}"}


class Clock:
    """A clock tests move by hand (ctx.clock)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


async def insert_case(db: Any, case_id: str, *, created_by: str, role: str = "client") -> None:
    await db["cases"].insert_one(
        {
            "_id": case_id,
            "number": f"AH-{case_id}",
            "status": "dispatched",
            "created_by": {"subject": created_by, "role": role},
        }
    )


async def insert_event(
    db: Any,
    case_id: str,
    seq: int,
    event_type: str,
    *,
    created_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> str:
    """An event document of the agreed shape, as the cases code writes it."""
    at = created_at or datetime.now(UTC)
    event_id = f"evt_{uuid.uuid4().hex}"
    await db["events"].insert_one(
        {
            "_id": event_id,
            "seq": seq,
            "type": event_type,
            "case_id": case_id,
            "case_number": f"AH-{case_id}",
            "station_id": "st-1",
            "division": "341002001",
            "actor": {"subject": "w-1", "role": "worker"},
            "from_state": None,
            "to_state": event_type.split(".")[1],
            "time": at,
            "data": data or {"note": "已签收 accepted"},
            "created_at": at,
        }
    )
    return event_id


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
