"""Cases (collection ``cases``): insert, read, conditional transitions, listing, sweeps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.cases.models import HistoryEntry
from service.common.errors import ConflictError, NotFoundError
from service.storage.indexes import declare

COLLECTION = "cases"
# What the sweeps read of a case: ids, status, version and deadlines.
SWEEP_FIELDS = (
    "_id", "status", "version", "sign_due_at", "resolve_due_at", "number", "station_id", "division",
    "resolved_at", "overdue",
)  # fmt: skip

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
)


def history_doc(entry: HistoryEntry) -> dict[str, Any]:
    """A history line as stored in ``cases.history``."""
    return {
        "event_id": entry.event_id,
        "action": entry.action,
        "actor": {"subject": entry.actor_subject, "role": entry.actor_role},
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "at": entry.at,
        "note": entry.note,
        "data": entry.data,
    }


def _update(fields: dict[str, Any], increments: dict[str, int] | None, history: HistoryEntry | None) -> dict[str, Any]:
    update: dict[str, Any] = {"$set": dict(fields), "$inc": {**(increments or {}), "version": 1}}
    if history is not None:
        update["$push"] = {"history": history_doc(history)}
    return update


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

    async def get_if_any(self, case_id: str) -> dict[str, Any] | None:
        """The case document, or None when there is no such case."""
        return await self.col.find_one({"_id": case_id})

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

    async def find_by_source(self, key: str, value: str) -> dict[str, Any] | None:
        """A case created from another record (e.g. a visit), if one exists."""
        return await self.col.find_one({f"source.{key}": value})

    async def apply(
        self,
        case_id: str,
        *,
        expected_version: int,
        expected_status: str,
        fields: dict[str, Any],
        increments: dict[str, int] | None = None,
        history: HistoryEntry | None = None,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Set ``fields``, raise ``increments`` and append ``history``, only if the case is still at
        that version and status (optimistic lock); the version goes up by one."""
        result = await self.col.update_one(
            {"_id": case_id, "version": expected_version, "status": expected_status},
            _update(fields, increments, history),
            session=session,
        )
        return result.modified_count == 1

    async def flag_overdue(
        self,
        case_id: str,
        *,
        kind: str,
        status: str,
        now: datetime,
        history: HistoryEntry,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Flag a case overdue (``kind``: sign or resolve) once, while it is in ``status``; True if this call did."""
        result = await self.col.update_one(
            {"_id": case_id, "status": status, f"overdue.{kind}": False},
            _update({f"overdue.{kind}": True, "overdue_flagged_at": now}, None, history),
            session=session,
        )
        return result.modified_count == 1

    async def page(self, query: dict[str, Any], *, sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` documents in ``sort`` order."""
        cursor = self.col.find(query, {"history": 0}).sort(sort).limit(limit)
        return [doc async for doc in cursor]

    async def find(self, query: dict[str, Any], *, sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` whole documents (history included) in ``sort`` order."""
        return [doc async for doc in self.col.find(query).sort(sort).limit(limit)]

    async def _sweep_candidates(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        projection = dict.fromkeys(SWEEP_FIELDS, 1)
        return [doc async for doc in self.col.find(query, projection).limit(limit)]

    async def overdue_unflagged(self, kind: str, now: datetime, *, limit: int) -> list[dict[str, Any]]:
        """Open cases past their sign-for (``kind`` sign) or resolve deadline, not yet flagged (sweep fields)."""
        if kind == "sign":
            query = {"status": "dispatched", "overdue.sign": False, "sign_due_at": {"$lt": now}}
        else:
            query = {
                "status": {"$in": ["accepted", "in_progress"]},
                "overdue.resolve": False,
                "resolve_due_at": {"$lt": now},
            }
        return await self._sweep_candidates(query, limit)

    async def resolved_before(self, cutoff: datetime, *, limit: int) -> list[dict[str, Any]]:
        """Cases still resolved (not rated, so not closed) that were resolved before ``cutoff`` (sweep fields only)."""
        return await self._sweep_candidates({"status": "resolved", "resolved_at": {"$lt": cutoff}}, limit)

    async def with_photo(self, upload_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Cases with an upload among their photos or their resolution's (who may see them is the caller's call)."""
        projection = {"owner": 1, "created_by": 1, "station_id": 1, "assignee_id": 1, "division": 1}
        query = {"$or": [{"photos": upload_id}, {"result_photos": upload_id}]}
        return [doc async for doc in self.col.find(query, projection).limit(limit)]

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run an aggregation over cases."""
        cursor = await self.col.aggregate(pipeline)
        return [doc async for doc in cursor]
