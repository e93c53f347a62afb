"""Helpers for the notification tests: the fakes as fixtures, tokens, and documents written
the way the case, visit and account areas write them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from config import Settings
from service.models import Principal
from service.tokens import issue_access_token
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


def bearer(settings: Settings, principal: Principal) -> dict[str, str]:
    token, _ = issue_access_token(settings=settings, principal=principal, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def token_of(settings: Settings, principal: Principal) -> str:
    token, _ = issue_access_token(settings=settings, principal=principal, now=datetime.now(UTC))
    return token


def resident(rid: str = "r-1") -> Principal:
    return Principal(subject=rid, role="resident")


def worker(sid: str = "w-1", station: str = "st-1") -> Principal:
    return Principal(subject=sid, role="worker", station_id=station)


def supervisor(sid: str = "sup-1", prefix: str = "3410") -> Principal:
    return Principal(subject=sid, role="supervisor", division_prefix=prefix)


async def add_resident(
    db: Any, rid: str = "r-1", *, openid: str | None = "openid-r-1", phone: str | None = None
) -> None:
    doc: dict[str, Any] = {"_id": rid, "created_at": datetime.now(UTC)}
    if openid:
        doc["openid"] = openid
    if phone:
        doc["phone"] = phone
    await db["residents"].insert_one(doc)


async def add_staff(db: Any, sid: str, role: str = "worker", station: str | None = "st-1", **extra: Any) -> None:
    doc = {"_id": sid, "username": sid, "name": f"员工{sid}", "role": role, "active": True, **extra}
    if station:
        doc["station_id"] = station
    await db["staff"].insert_one(doc)


async def add_case(
    db: Any, cid: str = "c-1", *, owner: str | None = "r-1", station: str = "st-1", **extra: Any
) -> None:
    await db["cases"].insert_one(
        {
            "_id": cid,
            "number": f"HM20261128{cid[-4:].zfill(4)}",
            "status": "dispatched",
            "owner": owner,
            "created_by": {"subject": owner or "system", "role": "resident" if owner else "system"},
            "station_id": station,
            "station_name": "屯溪区昱东街道社工站",
            "assignee_id": None,
            "service": {"code": "home_visit", "name_zh": "上门探访", "name_en": "Home visit", "scenario": "elderly"},
            "scheduled_at": None,
            "resolve_due_at": None,
            "result": None,
            **extra,
        }
    )


_SEQ: dict[str, int] = {}


async def add_event(
    db: Any,
    type_: str,
    *,
    case_id: str | None = "c-1",
    station: str | None = "st-1",
    division: str = "341002001",
    actor: tuple[str, str] = ("w-9", "worker"),
    data: dict[str, Any] | None = None,
) -> str:
    """Append one outbox event as the case area does (ObjectId-hex ``_id``)."""
    key = case_id or "visit"
    _SEQ[key] = _SEQ.get(key, 0) + 1
    now = datetime.now(UTC)
    eid = str(ObjectId())
    await db["events"].insert_one(
        {
            "_id": eid,
            "seq": _SEQ[key],
            "type": type_,
            "case_id": case_id,
            "case_number": f"HM20261128{case_id[-4:].zfill(4)}" if case_id else None,
            "station_id": station,
            "division": division,
            "scenario": "elderly",
            "actor": {"subject": actor[0], "role": actor[1]},
            "from_state": None,
            "to_state": None,
            "time": now,
            "data": data or {},
            "created_at": now,
        }
    )
    return eid


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
