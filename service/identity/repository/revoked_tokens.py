"""Revoked access-token ids (collection ``revoked_tokens``, expired by a TTL index)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.storage.indexes import declare

COLLECTION = "revoked_tokens"
declare(COLLECTION, IndexModel("expires_at", expireAfterSeconds=0))


class RevokedTokensRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        """Record a revoked token id (idempotent)."""
        with contextlib.suppress(DuplicateKeyError):
            await self.col.insert_one({"_id": jti, "expires_at": expires_at})

    async def revoke_until(self, key: str, revoked_at: datetime, expires_at: datetime) -> None:
        """Record that every token of ``key`` (a subject marker) issued up to ``revoked_at`` is revoked."""
        await self.col.update_one(
            {"_id": key}, {"$set": {"revoked_at": revoked_at, "expires_at": expires_at}}, upsert=True
        )

    async def is_revoked(self, jti: str) -> bool:
        """True if the token id was revoked."""
        return await self.col.count_documents({"_id": jti}, limit=1) > 0

    async def find(self, keys: list[str]) -> dict[str, datetime | None]:
        """Of these token ids and subject markers, those recorded: key -> ``revoked_at`` (None for a token id)."""
        return {str(d["_id"]): d.get("revoked_at") async for d in self.col.find({"_id": {"$in": keys}})}

    async def unexpired(self, now: datetime, *, limit: int = 100_000) -> list[tuple[str, datetime, datetime | None]]:
        """Records still in force at ``now``: (key, expiry, ``revoked_at`` of a subject marker or None)."""
        cursor = self.col.find({"expires_at": {"$gt": now}}).limit(limit)
        return [(str(d["_id"]), d["expires_at"], d.get("revoked_at")) async for d in cursor]
