"""Service-type versions (collection ``service_types``): one immutable document per version."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import new_id
from service.storage.indexes import declare

COLLECTION = "service_types"
declare(
    COLLECTION,
    IndexModel([("code", ASCENDING), ("version", ASCENDING)], unique=True, name="code_version"),
    IndexModel([("current", ASCENDING), ("scenario", ASCENDING), ("code", ASCENDING)], name="current_scenario"),
)


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc.pop("_id", None)
    return doc


class ServiceTypesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def insert_version(self, doc: dict[str, Any]) -> None:
        """Store a new version and mark it current; a version that exists already is a conflict."""
        try:
            await self.col.insert_one({**doc, "_id": new_id(), "current": True})
        except DuplicateKeyError:
            raise ConflictError(
                "service_version_conflict",
                f"Version {doc['version']} of service {doc['code']!r} exists already; reload and retry.",
            ) from None
        # Older versions stop being current only after the new one is stored, so a reader
        # always finds at least one current version (and takes the highest).
        await self.col.update_many(
            {"code": doc["code"], "version": {"$lt": doc["version"]}, "current": True}, {"$set": {"current": False}}
        )

    async def insert_missing(self, docs: list[dict[str, Any]]) -> int:
        """Insert version-1 documents whose code does not exist yet; returns how many."""
        codes = [d["code"] for d in docs]
        existing = {d["code"] async for d in self.col.find({"code": {"$in": codes}}, {"code": 1})}
        todo = [{**d, "_id": new_id(), "current": True} for d in docs if d["code"] not in existing]
        if not todo:
            return 0
        try:
            await self.col.insert_many(todo, ordered=False)
        except BulkWriteError as exc:
            return int(exc.details.get("nInserted", 0))
        return len(todo)

    async def get(self, code: str, version: int | None = None) -> dict[str, Any]:
        """One version of a service type (the current one when ``version`` is None)."""
        query: dict[str, Any] = {"code": code}
        if version is not None:
            query["version"] = version
        docs = await self.col.find(query).sort("version", DESCENDING).limit(1).to_list()
        if not docs:
            raise NotFoundError("service_not_found", f"There is no service with code {code!r}.")
        return _strip(docs[0])

    async def list_current(self, scenario: str | None = None) -> list[dict[str, Any]]:
        """Current versions of every service type (optionally of one scenario), by code."""
        query: dict[str, Any] = {"current": True}
        if scenario is not None:
            query["scenario"] = scenario
        latest: dict[str, dict[str, Any]] = {}
        async for doc in self.col.find(query):
            prev = latest.get(doc["code"])
            if prev is None or doc["version"] > prev["version"]:
                latest[doc["code"]] = _strip(doc)
        return [latest[k] for k in sorted(latest)]

    async def set_retired(self, code: str, version: int, retired_at: Any) -> bool:
        """Mark the given (current) version retired; False if it is no longer current."""
        result = await self.col.update_one(
            {"code": code, "version": version, "current": True}, {"$set": {"retired": True, "retired_at": retired_at}}
        )
        return result.matched_count == 1
