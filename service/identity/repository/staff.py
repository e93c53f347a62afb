"""Staff accounts (collection ``staff``) with their password hashes and lockout state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import is_id, new_id
from service.common.models import Page
from service.common.paging import (
    decode_newest_cursor,
    encode_newest_cursor,
    newest_by_new_id,
    served_with_id_range,
)
from service.identity.accounts import StaffCredentials, StaffMember
from service.storage.indexes import declare

COLLECTION = "staff"
declare(
    COLLECTION,
    IndexModel("username", name="username_unique", unique=True),
    IndexModel([("role", 1), ("_id", 1)], name="role"),
    IndexModel([("station_id", 1), ("_id", 1)], name="station"),
)


def _staff(doc: dict[str, Any]) -> StaffMember:
    return StaffMember(
        id=str(doc["_id"]),
        username=doc["username"],
        name=doc.get("name") or doc["username"],
        role=doc["role"],
        station_id=doc.get("station_id"),
        division_prefix=doc.get("division_prefix"),
        active=bool(doc.get("active", True)),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at", doc["created_at"]),
        locked_until=doc.get("locked_until"),
        phone=doc.get("phone"),
    )


def _oid(staff_id: str) -> str:
    if not is_id(staff_id):
        raise NotFoundError("staff_not_found", "No staff account with this id.")
    return staff_id


class StaffRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def insert(
        self,
        *,
        username: str,
        name: str,
        role: str,
        station_id: str | None,
        division_prefix: str | None,
        password_hash: str,
        now: datetime,
        phone: str | None = None,
    ) -> StaffMember:
        """Create an account; ConflictError when the username is taken."""
        doc = {
            "_id": new_id(now),
            "username": username,
            "name": name,
            "role": role,
            "station_id": station_id,
            "division_prefix": division_prefix,
            "phone": phone,
            "active": True,
            "password_hash": password_hash,
            "failed_logins": 0,
            "locked_until": None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError("username_taken", f"The username {username!r} is already taken.") from None
        return _staff(doc)

    async def get(self, staff_id: str) -> StaffMember:
        """One account by id, or NotFoundError."""
        doc = await self.col.find_one({"_id": _oid(staff_id)})
        if doc is None:
            raise NotFoundError("staff_not_found", "No staff account with this id.")
        return _staff(doc)

    async def credentials(self, username: str) -> StaffCredentials | None:
        """The account, password hash and lockout state for a username, if it exists."""
        doc = await self.col.find_one({"username": username})
        if doc is None:
            return None
        return StaffCredentials(
            staff=_staff(doc),
            password_hash=doc["password_hash"],
            failed_logins=int(doc.get("failed_logins", 0)),
            locked_until=doc.get("locked_until"),
        )

    async def active_at_station(self, station_id: str, roles: tuple[str, ...]) -> list[StaffMember]:
        """Active accounts of a station with one of the roles."""
        cursor = self.col.find({"station_id": station_id, "role": {"$in": list(roles)}, "active": {"$ne": False}})
        return [_staff(d) async for d in cursor]

    async def active_with_role(self, role: str) -> list[StaffMember]:
        """Every active account with this role."""
        return [_staff(d) async for d in self.col.find({"role": role, "active": {"$ne": False}})]

    async def any_with_role(self, role: str) -> bool:
        """True when at least one account has this role."""
        return await self.col.count_documents({"role": role}, limit=1) > 0

    async def list(
        self, *, role: str | None, station_id: str | None, limit: int, cursor: str | None, now: datetime
    ) -> Page[StaffMember]:
        """A page of accounts, newest first, optionally filtered; read in windows of time on the id
        (``newest_by_new_id``) when an index serves the filter with that range."""
        query: dict[str, Any] = {}
        if role is not None:
            query["role"] = role
        if station_id is not None:
            query["station_id"] = station_id

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", -1).limit(n).to_list()

        windows = served_with_id_range(query, ("role",), ("station_id",))
        docs = await newest_by_new_id(
            find, want=limit + 1, now=now, before=decode_newest_cursor(cursor), windows=windows
        )
        more = len(docs) > limit
        docs = docs[:limit]
        return Page([_staff(d) for d in docs], encode_newest_cursor(docs[-1]["_id"]) if more else None)

    async def count_by_station(self, station_ids: Sequence[str], roles: tuple[str, ...]) -> dict[str, int]:
        """Active accounts of these roles per station id (stations without any are left out)."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"station_id": {"$in": [*station_ids]}, "role": {"$in": list(roles)}, "active": True}},
            {"$group": {"_id": "$station_id", "n": {"$sum": 1}}},
        ]
        return {str(d["_id"]): int(d["n"]) async for d in await self.col.aggregate(pipeline)}

    async def update(self, staff_id: str, changes: dict[str, Any], now: datetime) -> StaffMember:
        """Apply field changes; NotFoundError when the account does not exist."""
        result = await self.col.update_one({"_id": _oid(staff_id)}, {"$set": {**changes, "updated_at": now}})
        if result.matched_count == 0:
            raise NotFoundError("staff_not_found", "No staff account with this id.")
        return await self.get(staff_id)

    async def record_failure(self, staff_id: str, *, now: datetime, max_failures: int, lockout_seconds: int) -> bool:
        """Count a failed login; locks the account at the limit. True when this call locked it."""
        oid = _oid(staff_id)
        await self.col.update_one({"_id": oid}, {"$inc": {"failed_logins": 1}})
        # Only one concurrent caller matches once the counter is reset, so the lock is set once.
        locked = await self.col.update_one(
            {"_id": oid, "failed_logins": {"$gte": max_failures}},
            {"$set": {"failed_logins": 0, "locked_until": now + timedelta(seconds=lockout_seconds)}},
        )
        return locked.modified_count == 1

    async def record_success(self, staff_id: str, *, now: datetime, new_hash: str | None = None) -> None:
        """Clear the failure counter after a good login (and store a rehashed password)."""
        changes: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if new_hash:
            changes["password_hash"] = new_hash
        await self.col.update_one({"_id": _oid(staff_id)}, {"$set": changes})
