"""Integrator clients (collection ``api_clients``); secrets are stored only as hashes."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.accounts import ApiClient
from service.errors import BadRequestError, ConflictError, NotFoundError
from service.models import Page
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
    )


def _encode_cursor(client_id: str) -> str:
    return base64.urlsafe_b64encode(client_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise BadRequestError("invalid_cursor", "The cursor is not valid; start again without it.") from None


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
    ) -> ApiClient:
        """Create a client; ConflictError if the id exists already."""
        doc = {
            "_id": client_id,
            "name": name,
            "scopes": list(scopes),
            "rate_limit_per_minute": rate_limit_per_minute,
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

    async def list(self, *, limit: int, cursor: str | None) -> Page[ApiClient]:
        """A page of clients ordered by id."""
        query: dict[str, Any] = {"_id": {"$gt": _decode_cursor(cursor)}} if cursor else {}
        docs = [d async for d in self.col.find(query).sort("_id", 1).limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        return Page([_client(d) for d in docs], _encode_cursor(docs[-1]["_id"]) if more else None)

    async def update(self, client_id: str, changes: dict[str, Any], now: datetime) -> ApiClient:
        """Apply field changes; NotFoundError when the client does not exist."""
        result = await self.col.update_one({"_id": str(client_id)}, {"$set": {**changes, "updated_at": now}})
        if result.matched_count == 0:
            raise NotFoundError("client_not_found", "No API client with this id.")
        return await self.get(client_id)
