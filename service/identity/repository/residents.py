"""Residents (collection ``residents``), found by WeChat openid or by phone number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import new_id
from service.identity.accounts import Resident
from service.storage.indexes import declare

COLLECTION = "residents"
declare(
    COLLECTION,
    IndexModel("openid", name="openid_unique", unique=True, partialFilterExpression={"openid": {"$type": "string"}}),
    IndexModel("phone", name="phone_unique", unique=True, partialFilterExpression={"phone": {"$type": "string"}}),
    IndexModel("unionid", name="unionid", partialFilterExpression={"unionid": {"$type": "string"}}),
)


def _resident(doc: dict[str, Any]) -> Resident:
    return Resident(
        id=str(doc["_id"]),
        openid=doc.get("openid"),
        unionid=doc.get("unionid"),
        phone=doc.get("phone"),
        created_at=doc["created_at"],
    )


class ResidentsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def upsert_wechat(self, *, openid: str, unionid: str | None, session_key: str, now: datetime) -> Resident:
        """The resident with this openid, created on first login; stores the latest session key."""
        changes: dict[str, Any] = {"session_key": session_key, "last_login_at": now}
        if unionid:
            changes["unionid"] = unionid
        try:
            await self.col.insert_one({"_id": new_id(), "openid": openid, "created_at": now, **changes})
        except DuplicateKeyError:
            await self.col.update_one({"openid": openid}, {"$set": changes})
        return await self._find({"openid": openid})

    async def upsert_phone(self, *, phone: str, now: datetime) -> Resident:
        """The resident with this phone number, created on first verified login."""
        try:
            await self.col.insert_one({"_id": new_id(), "phone": phone, "created_at": now, "last_login_at": now})
        except DuplicateKeyError:
            await self.col.update_one({"phone": phone}, {"$set": {"last_login_at": now}})
        return await self._find({"phone": phone})

    async def set_phone(self, resident_id: str, phone: str) -> Resident:
        """Give a resident a verified phone number; a number another resident holds is a conflict."""
        try:
            await self.col.update_one({"_id": resident_id}, {"$set": {"phone": phone}})
        except DuplicateKeyError:
            raise ConflictError(
                "phone_in_use", "Another account logs in with this number; log in with it by phone instead."
            ) from None
        return await self._find({"_id": resident_id})

    async def get(self, resident_id: str) -> Resident:
        """One resident by id, or NotFoundError."""
        if not isinstance(resident_id, str):
            raise NotFoundError("resident_not_found", "No such resident.")
        return await self._find({"_id": resident_id})

    async def find_by_phone(self, phone: str) -> Resident | None:
        """The resident who logged in with this phone number, if any."""
        try:
            return await self._find({"phone": phone})
        except NotFoundError:
            return None

    async def _find(self, query: dict[str, Any]) -> Resident:
        doc = await self.col.find_one(query, {"session_key": 0})
        if doc is None:
            raise NotFoundError("resident_not_found", "No such resident.")
        return _resident(doc)
