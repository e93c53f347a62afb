"""Service-type versions (collection ``service_types``): one immutable document per version.

Documents become ``ServiceType`` dataclasses here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.catalog.models import Choice, FormField, ServiceType
from service.common.errors import ConflictError, NotFoundError
from service.common.ids import new_id
from service.storage.indexes import declare

COLLECTION = "service_types"
# One document counting the catalogue's changes: every write here bumps it, so a process that
# keeps service types in memory knows when its copy is stale (``service.current_service``).
VERSIONS = "catalog_versions"
declare(
    COLLECTION,
    IndexModel([("code", ASCENDING), ("version", ASCENDING)], unique=True, name="code_version"),
    IndexModel([("current", ASCENDING), ("scenario", ASCENDING), ("code", ASCENDING)], name="current_scenario"),
)


_SERVICE_KEYS = frozenset(f.name for f in dataclasses.fields(ServiceType))


def _field_from(doc: Mapping[str, Any]) -> FormField:
    choices = tuple(Choice(**c) for c in doc.get("choices") or ())
    return FormField(**{**doc, "choices": choices})


def service_from_doc(doc: Mapping[str, Any]) -> ServiceType:
    """A ServiceType from a stored document (unknown keys, ``_id`` and ``current`` among them, ignored)."""
    values = {k: v for k, v in doc.items() if k in _SERVICE_KEYS}
    values["fields"] = tuple(_field_from(f) for f in doc.get("fields") or ())
    for key in ("materials_zh", "materials_en"):
        values[key] = tuple(doc.get(key) or ())
    return ServiceType(**values)


def service_to_doc(service: ServiceType) -> dict[str, Any]:
    """The document stored for one version (without ``_id`` and ``current``)."""
    return dataclasses.asdict(service)


class ServiceTypesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]
        self.versions = db[VERSIONS]

    async def read_version(self) -> int:
        """How many changes the catalogue has had (0 before the first)."""
        doc = await self.versions.find_one({"_id": "catalog"})
        return int(doc["version"]) if doc else 0

    async def _bump_version(self) -> None:
        for attempt in range(3):
            try:
                await self.versions.update_one({"_id": "catalog"}, {"$inc": {"version": 1}}, upsert=True)
                return
            except DuplicateKeyError:
                # Two first-ever upserts raced; the document exists now, so the retry increments it.
                if attempt == 2:
                    raise

    async def insert_version(self, service: ServiceType) -> None:
        """Store a new version and mark it current; a version that exists already is a conflict."""
        doc = service_to_doc(service)
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
        await self._bump_version()

    async def insert_missing(self, services: list[ServiceType]) -> int:
        """Insert the version-1 service types whose code does not exist yet; returns how many."""
        docs = [service_to_doc(s) for s in services]
        codes = [d["code"] for d in docs]
        existing = {d["code"] async for d in self.col.find({"code": {"$in": codes}}, {"code": 1})}
        todo = [{**d, "_id": new_id(), "current": True} for d in docs if d["code"] not in existing]
        if not todo:
            return 0
        try:
            await self.col.insert_many(todo, ordered=False)
        except BulkWriteError as exc:
            await self._bump_version()
            return int(exc.details.get("nInserted", 0))
        await self._bump_version()
        return len(todo)

    async def _get_doc(self, code: str, version: int | None) -> dict[str, Any]:
        query: dict[str, Any] = {"code": code}
        if version is not None:
            query["version"] = version
        docs = await self.col.find(query).sort("version", DESCENDING).limit(1).to_list()
        if not docs:
            raise NotFoundError("service_not_found", f"There is no service with code {code!r}.")
        return docs[0]

    async def get(self, code: str, version: int | None = None) -> ServiceType:
        """One version of a service type (the current one when ``version`` is None)."""
        return service_from_doc(await self._get_doc(code, version))

    async def get_with_absent_keys(self, code: str) -> tuple[ServiceType, frozenset[str]]:
        """The current version of a service type, and which of its fields its stored document lacks
        (a version stored by an older release reads them as their defaults)."""
        doc = await self._get_doc(code, None)
        return service_from_doc(doc), _SERVICE_KEYS - doc.keys()

    async def list_current(self, scenario: str | None = None) -> list[ServiceType]:
        """Current versions of every service type (optionally of one scenario), by code."""
        query: dict[str, Any] = {"current": True}
        if scenario is not None:
            query["scenario"] = scenario
        latest: dict[str, dict[str, Any]] = {}
        async for doc in self.col.find(query):
            prev = latest.get(doc["code"])
            if prev is None or doc["version"] > prev["version"]:
                latest[doc["code"]] = doc
        return [service_from_doc(latest[k]) for k in sorted(latest)]

    async def set_retired(self, code: str, version: int, retired_at: datetime) -> bool:
        """Mark the given (current) version retired; False if it is no longer current."""
        result = await self.col.update_one(
            {"code": code, "version": version, "current": True}, {"$set": {"retired": True, "retired_at": retired_at}}
        )
        if result.matched_count == 1:
            await self._bump_version()
        return result.matched_count == 1
