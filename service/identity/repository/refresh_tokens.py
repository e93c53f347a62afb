"""Refresh tokens (collection ``refresh_tokens``): stored by hash, grouped in rotation families."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from service.identity.accounts import RefreshTokenRecord
from service.storage.indexes import declare

COLLECTION = "refresh_tokens"
# Records stay a day past expiry so that a late reuse is still recognised as reuse.
EXPIRED_GRACE_SECONDS = 86400
declare(
    COLLECTION,
    IndexModel([("family_id", 1), ("created_at", DESCENDING)], name="family"),
    IndexModel("access_jti", name="access_jti"),
    IndexModel("subject", name="subject"),
    IndexModel("expires_at", name="expiry", expireAfterSeconds=EXPIRED_GRACE_SECONDS),
)


def _record(doc: dict[str, Any]) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_hash=doc["_id"],
        family_id=doc["family_id"],
        subject=doc["subject"],
        role=doc["role"],
        access_jti=doc["access_jti"],
        access_expires_at=doc["access_expires_at"],
        expires_at=doc["expires_at"],
        used=bool(doc.get("used")),
        revoked=bool(doc.get("revoked")),
        created_at=doc["created_at"],
    )


class RefreshTokensRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def add(self, record: RefreshTokenRecord) -> None:
        """Store a newly issued refresh token."""
        await self.col.insert_one(
            {
                "_id": record.token_hash,
                "family_id": record.family_id,
                "subject": record.subject,
                "role": record.role,
                "access_jti": record.access_jti,
                "access_expires_at": record.access_expires_at,
                "expires_at": record.expires_at,
                "used": record.used,
                "revoked": record.revoked,
                "created_at": record.created_at,
            }
        )

    async def find(self, token_hash: str) -> RefreshTokenRecord | None:
        """The record for a token hash, if any."""
        doc = await self.col.find_one({"_id": token_hash})
        return _record(doc) if doc else None

    async def find_by_access_jti(self, jti: str) -> RefreshTokenRecord | None:
        """The refresh token issued together with an access token."""
        doc = await self.col.find_one({"access_jti": jti})
        return _record(doc) if doc else None

    async def mark_used(self, token_hash: str, now: datetime) -> bool:
        """Spend a token; True only for the one caller that found it unused and unrevoked."""
        result = await self.col.update_one(
            {"_id": token_hash, "used": False, "revoked": False}, {"$set": {"used": True, "used_at": now}}
        )
        return result.modified_count == 1

    async def revoke_family(self, family_id: str, now: datetime) -> list[RefreshTokenRecord]:
        """Revoke every token of a family; returns the family's records, newest first."""
        await self.col.update_many({"family_id": family_id}, {"$set": {"revoked": True, "revoked_at": now}})
        cursor = self.col.find({"family_id": family_id}).sort("created_at", DESCENDING)
        return [_record(doc) async for doc in cursor]

    async def revoke_subject(self, subject: str, now: datetime) -> list[RefreshTokenRecord]:
        """Revoke every refresh token of one account; returns the records that were live."""
        cursor = self.col.find({"subject": subject, "revoked": False, "expires_at": {"$gt": now}})
        live = [_record(doc) async for doc in cursor]
        await self.col.update_many({"subject": subject}, {"$set": {"revoked": True, "revoked_at": now}})
        return live
