"""Integrator clients (collection ``api_clients``); secrets are stored only as hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.models import Page
from service.common.paging import decode_cursor, encode_cursor, newest_by_time, paged
from service.identity.accounts import ApiClient
from service.storage.indexes import declare

COLLECTION = "api_clients"
declare(COLLECTION, IndexModel([("created_at", 1), ("_id", 1)], name="created"))


def _client(doc: dict[str, Any]) -> ApiClient:
    return ApiClient(
        client_id=doc["_id"],
        name=doc["name"],
        scopes=tuple(doc.get("scopes", ())),
        rate_limit_per_minute=int(doc.get("rate_limit_per_minute", 0)),
        active=bool(doc.get("active", True)),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at", doc["created_at"]),
        division_prefix=doc.get("division_prefix"),
    )


class ApiClientsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def insert(
        self,
        *,
        client_id: str,
        name: str,
        scopes: tuple[str, ...],
        rate_limit_per_minute: int,
        secret_hash: str,
        created_by: str,
        now: datetime,
        division_prefix: str | None = None,
    ) -> ApiClient:
        """Create a client; ConflictError if the id exists already."""
        doc = {
            "_id": client_id,
            "name": name,
            "scopes": list(scopes),
            "rate_limit_per_minute": rate_limit_per_minute,
            "division_prefix": division_prefix,
            "secret_hash": secret_hash,
            "active": True,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError("client_exists", "A client with this id exists already.") from None
        return _client(doc)

    async def get(self, client_id: str) -> ApiClient:
        """One client by id, or NotFoundError."""
        doc = await self.col.find_one({"_id": str(client_id)})
        if doc is None:
            raise NotFoundError("client_not_found", "No API client with this id.")
        return _client(doc)

    async def secret_hash(self, client_id: str) -> tuple[ApiClient, str] | None:
        """The client and its secret hash, if it exists."""
        doc = await self.col.find_one({"_id": str(client_id)})
        return (_client(doc), doc["secret_hash"]) if doc else None

    async def list(self, *, limit: int, cursor: str | None, now: datetime) -> Page[ApiClient]:
        """A page of clients, newest first (``created_at``, then id), read in windows of creation time
        (``newest_by_time``; client ids are random, so the windows are on ``created_at``)."""

        async def find(condition: dict[str, Any], n: int) -> list[dict[str, Any]]:
            return await self.col.find(condition).sort([("created_at", -1), ("_id", -1)]).limit(n).to_list()

        after = decode_cursor(cursor, datetime, str) if cursor else None
        docs = await newest_by_time(
            find, field="created_at", want=limit + 1, now=now, after=(after[0], after[1]) if after else None
        )
        page, next_cursor = paged(docs, limit, lambda d: encode_cursor(d["created_at"], d["_id"]))
        return Page([_client(d) for d in page], next_cursor)

    async def update(self, client_id: str, changes: dict[str, Any], now: datetime) -> ApiClient:
        """Apply field changes; NotFoundError when the client does not exist."""
        result = await self.col.update_one({"_id": str(client_id)}, {"$set": {**changes, "updated_at": now}})
        if result.matched_count == 0:
            raise NotFoundError("client_not_found", "No API client with this id.")
        return await self.get(client_id)
