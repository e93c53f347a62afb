"""Helpers shared by tests that log in."""

from __future__ import annotations

from typing import Any

from handlers.keys import CTX
from service.common.models import SYSTEM
from service.identity.accounts import StaffMember
from service.identity.staff import create_staff

STAFF_PASSWORD = "correct-horse-battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_staff(client: Any, username: str, role: str = "worker", **kwargs: Any) -> StaffMember:
    """Create a staff account through the service, as the CLI does."""
    if role in ("worker", "station_head"):
        kwargs.setdefault("station_id", "st-340102001")
    if role == "supervisor":
        kwargs.setdefault("division_prefix", "3401")
    return await create_staff(
        ctx=client.app[CTX],
        principal=SYSTEM,
        username=username,
        password=kwargs.pop("password", STAFF_PASSWORD),
        role=role,
        **kwargs,
    )


async def login(client: Any, username: str, password: str = STAFF_PASSWORD) -> dict[str, Any]:
    """Log staff in through the API; returns the token response."""
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def admin_token(client: Any) -> str:
    await make_staff(client, "root", role="admin")
    return str((await login(client, "root"))["access_token"])
