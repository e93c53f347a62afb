"""Cases (collection ``cases``): insert, read, conditional transitions, listing, sweeps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.storage.indexes import declare

COLLECTION = "cases"

declare(
    COLLECTION,
    IndexModel("number", unique=True),
    IndexModel([("owner", ASCENDING), ("created_at", DESCENDING)]),
    IndexModel([("created_by.subject", ASCENDING), ("created_at", DESCENDING)]),
    # A station's queue in some states, by due time: one equality prefix per state (see
    # service.cases.queries.soonest_due_first), read in index order on every server.
    IndexModel([("station_id", ASCENDING), ("status", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    # A station's list in either order (newest, due) is read in index order, never sorted in memory.
    IndexModel([("station_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("station_id", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("division", ASCENDING), ("created_at", DESCENDING)]),
    IndexModel([("status", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    # Every scope's cases with a due time, by due time (admin, and a supervisor's windows).
    IndexModel([("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("status", ASCENDING), ("resolved_at", ASCENDING)]),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
    IndexModel("photos", sparse=True),
    IndexModel("result_photos", sparse=True),
    IndexModel(
        [("source.visit_id", ASCENDING)], unique=True, partialFilterExpression={"source.visit_id": {"$exists": True}}
    ),
    # One case per (caller, Idempotency-Key), even when a process died between writing the
    # case and recording the key's answer and a retry took the key over.
    IndexModel(
        [("idempotency_id", ASCENDING)], unique=True, partialFilterExpression={"idempotency_id": {"$exists": True}}
    ),
)


class CasesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def insert(self, doc: dict[str, Any], *, session: AsyncClientSession | None = None) -> None:
        """Insert a new case document."""
        try:
            await self.col.insert_one(doc, session=session)
        except DuplicateKeyError as exc:
            raise ConflictError("case_exists", "A case with this number or source already exists.") from exc

    async def get(self, case_id: str, *, session: AsyncClientSession | None = None) -> dict[str, Any]:
        """The case document, or NotFoundError."""
        doc = await self.col.find_one({"_id": case_id}, session=session) if isinstance(case_id, str) else None
        if doc is None:
            raise NotFoundError("case_not_found", f"No case with id {case_id!r}.")
        return doc

    async def projected(self, case_id: str, fields: Iterable[str]) -> dict[str, Any] | None:
        """Some fields of one case (None when there is no such case)."""
        return await self.col.find_one({"_id": case_id}, dict.fromkeys(fields, 1))

    async def creators(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``created_by`` ({subject, role}) of each of these cases that has one."""
        wanted = {c for c in case_ids if c}
        if not wanted:
            return {}
        cursor = self.col.find({"_id": {"$in": list(wanted)}}, {"created_by": 1})
        return {d["_id"]: d["created_by"] async for d in cursor if isinstance(d.get("created_by"), dict)}

    async def find_by_idempotency(self, idempotency_id: str) -> dict[str, Any] | None:
        """The case created under this (caller, Idempotency-Key) id, if one exists."""
        return await self.col.find_one({"idempotency_id": idempotency_id})

    async def find_by_source(self, key: str, value: str) -> dict[str, Any] | None:
        """A case created from another record (e.g. a visit), if one exists."""
        return await self.col.find_one({f"source.{key}": value})

    async def apply(
        self,
        case_id: str,
        *,
        expected_version: int,
        expected_status: str,
        update: dict[str, Any],
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Apply ``update`` only if the case is still at that version and status (optimistic lock)."""
        update = dict(update)
        update.setdefault("$inc", {})["version"] = 1
        result = await self.col.update_one(
            {"_id": case_id, "version": expected_version, "status": expected_status}, update, session=session
        )
        return result.modified_count == 1

    async def flag(
        self,
        case_id: str,
        *,
        condition: dict[str, Any],
        update: dict[str, Any],
        session: AsyncClientSession | None = None,
    ) -> bool:
        """A conditional update used by sweeps (flag once); True if this call made the change."""
        update = dict(update)
        update.setdefault("$inc", {})["version"] = 1
        result = await self.col.update_one({"_id": case_id, **condition}, update, session=session)
        return result.modified_count == 1

    async def page(self, query: dict[str, Any], *, sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` documents in ``sort`` order."""
        cursor = self.col.find(query, {"history": 0}).sort(sort).limit(limit)
        return [doc async for doc in cursor]

    async def find(self, query: dict[str, Any], *, sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` whole documents (history included) in ``sort`` order."""
        return [doc async for doc in self.col.find(query).sort(sort).limit(limit)]

    async def due_for(self, query: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
        """Cases matching a sweep condition (ids, status, version and deadlines only)."""
        projection = {
            "_id": 1,
            "status": 1,
            "version": 1,
            "sign_due_at": 1,
            "resolve_due_at": 1,
            "number": 1,
            "station_id": 1,
            "division": 1,
            "resolved_at": 1,
            "overdue": 1,
        }
        return [doc async for doc in self.col.find(query, projection).limit(limit)]

    async def with_photo(self, upload_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Cases with an upload among their photos or their resolution's (who may see them is the caller's call)."""
        projection = {"owner": 1, "created_by": 1, "station_id": 1, "assignee_id": 1, "division": 1}
        query = {"$or": [{"photos": upload_id}, {"result_photos": upload_id}]}
        return [doc async for doc in self.col.find(query, projection).limit(limit)]

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run an aggregation over cases."""
        cursor = await self.col.aggregate(pipeline)
        return [doc async for doc in cursor]
