"""Helpers for the notification tests: settings for the fakes, tokens, events made by real case
actions, and a reader for the live feed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from config import Settings
from service.common.context import Context
from service.identity.accounts import StaffMember
from tests.factories import Who, act_on, bearer_for, make_staff, make_station
from tests.fakes.wechat_api import FakeWeChatAPI


def notify_settings(settings: Settings, wechat: FakeWeChatAPI, **changes: Any) -> Settings:
    """Test settings pointing at the fake WeChat, with fast loops."""
    values: dict[str, Any] = {
        "wechat_api_base": wechat.base_url,
        "wechat_appid": wechat.appid,
        "wechat_secret": wechat.secret,
        "notify_poll_seconds": 0.05,
        "notify_retry_base_seconds": 0.01,
        "stream_heartbeat_seconds": 0.3,
    }
    values.update(changes)
    return settings.replace(**values)


def token_of(settings: Settings, who: Who) -> str:
    """The bare access token of an account (for ``?access_token=`` on the live feed)."""
    return bearer_for(settings, who)["Authorization"].removeprefix("Bearer ")


async def happen(ctx: Context, who: Who, case_id: str, action: str, **data: Any) -> str:
    """Take one lifecycle action through the service; returns the id of the event it wrote."""
    case = await act_on(ctx, who, case_id, action, **data)
    return str(case["history"][-1]["event_id"])


async def station_worker(ctx: Context) -> StaffMember:
    """A worker of a new station serving the factories' township (where :func:`make_case` files)."""
    station = await make_station(ctx)
    return await make_staff(ctx, station_id=station.id)


def created_event(case: dict[str, Any]) -> str:
    """The id of the ``case.created`` event of a case as filed."""
    return str(case["history"][0]["event_id"])


async def read_sse(resp: Any, *, count: int, timeout: float = 2.0) -> list[dict[str, Any]]:
    """Read ``count`` data messages (id + parsed data) from an SSE response, skipping heartbeats."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    async def pump() -> None:
        while len(out) < count:
            raw = await resp.content.readline()
            if not raw:
                raise AssertionError(f"stream ended after {len(out)} messages")
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "data" in current:
                out.append(dict(current))
                current.clear()

    await asyncio.wait_for(pump(), timeout)
    return out
