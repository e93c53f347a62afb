"""Stations (``stations``), county polygons (``counties``) and the routing-index version.

Every station write bumps the version document ``index_versions/_id="stations"``; each web
process compares it with the version of its in-process routing index and rebuilds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from pymongo import ASCENDING, DeleteOne, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import is_id, new_id
from service.common.models import Page
from service.common.paging import decode_cursor, encode_cursor
from service.stations.models import CountyArea, IndexedStation, Station
from service.storage.indexes import declare

COLLECTION = "stations"
COUNTIES = "counties"
VERSIONS = "index_versions"
declare(
    COLLECTION,
    IndexModel("code", unique=True, name="code_unique"),
    IndexModel([("county_code", ASCENDING), ("code", ASCENDING)], name="county_code"),
    IndexModel([("city_code", ASCENDING), ("code", ASCENDING)], name="city_code"),
)
# No 2dsphere index: routing and nearby searches use the in-process index, never a database geo
# query (and SecantusDB refuses to re-declare an existing 2dsphere index at the next start).
declare(COUNTIES, IndexModel("city_code", name="city"))

# Fields a station document carries besides _id.
FIELDS = (
    "code",
    "name",
    "kind",
    "county_code",
    "county_name",
    "city_code",
    "city_name",
    "location",
    "precision",
    "jurisdiction",
    "capabilities",
    "capacity",
    "open_cases",
    "opening_hours",
    "contact_phone",
    "active",
    "created_at",
    "updated_at",
)


def station_from_doc(doc: dict[str, Any]) -> Station:
    """A Station from its document."""
    values: dict[str, Any] = {k: doc.get(k) for k in FIELDS}
    values["capabilities"] = list(values["capabilities"] or [])
    values["open_cases"] = int(values["open_cases"] or 0)
    values["active"] = bool(values["active"])
    return Station(id=str(doc["_id"]), **values)


def station_to_doc(station: Station) -> dict[str, Any]:
    """The stored fields of a station, with a new ``_id`` when the station has none yet."""
    return {"_id": station.id or new_id(), **{k: getattr(station, k) for k in FIELDS}}


def _oid(station_id: str) -> str:
    if not is_id(station_id):
        raise NotFoundError("station_not_found", f"There is no station {station_id!r}.")
    return station_id


async def read_stations_version(db: AsyncDatabase[dict[str, Any]]) -> int:
    """The current stations version (0 before the first write)."""
    doc = await db[VERSIONS].find_one({"_id": "stations"})
    return int(doc["version"]) if doc else 0


async def bump_stations_version(db: AsyncDatabase[dict[str, Any]], session: Any = None) -> None:
    """Tell every process its routing index is stale."""
    for attempt in range(3):
        try:
            await db[VERSIONS].update_one({"_id": "stations"}, {"$inc": {"version": 1}}, upsert=True, session=session)
            return
        except DuplicateKeyError:
            # Two first-ever upserts raced; the document exists now, so the retry increments it.
            if attempt == 2:
                raise


class StationsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.col = db[COLLECTION]

    async def insert(self, station: Station) -> Station:
        """Store a new station; a taken code is a conflict."""
        doc = station_to_doc(station)
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError("station_code_taken", f"A station with code {station.code} exists already.") from None
        await bump_stations_version(self.db)
        return station_from_doc(doc)

    async def get(self, station_id: str) -> Station:
        """One station by id."""
        doc = await self.col.find_one({"_id": _oid(station_id)})
        if doc is None:
            raise NotFoundError("station_not_found", f"There is no station {station_id!r}.")
        return station_from_doc(doc)

    async def codes(self, codes: Iterable[str]) -> dict[str, str]:
        """Map of code -> id for the stations among ``codes`` that exist."""
        return {d["code"]: str(d["_id"]) async for d in self.col.find({"code": {"$in": list(codes)}}, {"code": 1})}

    async def update(self, station_id: str, changes: dict[str, Any]) -> Station:
        """Apply field changes to a station."""
        try:
            result = await self.col.update_one({"_id": _oid(station_id)}, {"$set": changes})
        except DuplicateKeyError:
            raise ConflictError("station_code_taken", "Another station has that code.") from None
        if result.matched_count == 0:
            raise NotFoundError("station_not_found", f"There is no station {station_id!r}.")
        await bump_stations_version(self.db)
        return await self.get(station_id)

    async def adjust_open_cases(self, station_id: str, delta: int) -> None:
        """Add ``delta`` to a station's open-case counter (never below zero)."""
        query: dict[str, Any] = {"_id": _oid(station_id)}
        if delta < 0:
            query["open_cases"] = {"$gte": -delta}
        await self.col.update_one(query, {"$inc": {"open_cases": delta}})

    async def loads(self) -> dict[str, int]:
        """Open-case counts of the active stations that have a capacity (the only ones that can be full)."""
        cursor = self.col.find({"active": True, "capacity": {"$ne": None}}, {"open_cases": 1})
        return {str(d["_id"]): int(d.get("open_cases") or 0) async for d in cursor}

    async def list_page(
        self,
        *,
        county_code: str | None,
        city_code: str | None,
        active: bool | None,
        limit: int,
        cursor: str | None,
        capability: str | None = None,
    ) -> Page[Station]:
        """Stations by code, filtered, one page."""
        query: dict[str, Any] = {}
        if county_code:
            query["county_code"] = county_code
        if city_code:
            query["city_code"] = city_code
        if active is not None:
            query["active"] = active
        if capability is not None:
            query["capabilities"] = capability
        if cursor:
            query["code"] = {"$gt": decode_cursor(cursor, str, check=lambda v: v[0].isdigit())[0]}
        docs = await self.col.find(query).sort("code", ASCENDING).limit(limit + 1).to_list()
        items = [station_from_doc(d) for d in docs[:limit]]
        next_cursor = encode_cursor(items[-1].code) if len(docs) > limit and items else None
        return Page(items=items, next_cursor=next_cursor)

    async def get_many(self, ids: Iterable[str]) -> list[Station]:
        """Stations by id, in the order asked (missing ones left out)."""
        wanted = [i for i in ids if is_id(i)]
        found = {d["_id"]: station_from_doc(d) async for d in self.col.find({"_id": {"$in": wanted}})}
        return [found[i] for i in ids if i in found]

    async def list_for_index(self) -> list[IndexedStation]:
        """Every active station, reduced to what routing needs."""
        projection = {
            "code": 1,
            "name": 1,
            "county_code": 1,
            "county_name": 1,
            "location": 1,
            "capabilities": 1,
            "capacity": 1,
            "open_cases": 1,
            "jurisdiction": 1,
            "precision": 1,
        }
        out = []
        async for d in self.col.find({"active": True}, projection):
            lon, lat = d["location"]["coordinates"]
            out.append(
                IndexedStation(
                    id=str(d["_id"]),
                    code=d["code"],
                    name=d["name"],
                    county_code=d.get("county_code") or "",
                    county_name=d.get("county_name") or "",
                    lon=float(lon),
                    lat=float(lat),
                    capabilities=frozenset(d.get("capabilities") or ()),
                    capacity=d.get("capacity"),
                    open_cases=int(d.get("open_cases") or 0),
                    jurisdiction=d.get("jurisdiction"),
                    precision=d.get("precision") or "approx",
                )
            )
        return out

    async def insert_missing(self, docs: list[dict[str, Any]]) -> int:
        """Insert the station documents whose code is not stored yet (seeding); returns how many."""
        existing = {d["code"] async for d in self.col.find({}, {"code": 1})}
        todo = [{"_id": new_id(), **d} for d in docs if d["code"] not in existing]
        inserted = 0
        for start in range(0, len(todo), 500):
            try:
                result = await self.col.insert_many(todo[start : start + 500], ordered=False)
                inserted += len(result.inserted_ids)
            except BulkWriteError as exc:
                inserted += int(exc.details.get("nInserted", 0))
        if inserted:
            await bump_stations_version(self.db)
        return inserted

    async def apply_import(
        self,
        inserts: list[dict[str, Any]],
        updates: list[tuple[str, dict[str, Any]]],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write an import all-or-nothing: in a transaction when the server has them, else staged with undo."""
        client = self.db.client
        try:
            async with client.start_session() as session:

                async def write(s: Any) -> None:
                    await self._write_import(inserts, updates, progress, session=s)
                    await bump_stations_version(self.db, session=s)

                await session.with_transaction(write)
                return
        except OperationFailure as exc:
            # Standalone servers refuse transactions (code 20 IllegalOperation); stage instead.
            if exc.code not in (20, 263) and "Transaction" not in str(exc):
                raise
        await self._staged_import(inserts, updates, progress)

    async def _write_import(
        self,
        inserts: list[dict[str, Any]],
        updates: list[tuple[str, dict[str, Any]]],
        progress: Callable[[int], None] | None,
        session: Any = None,
    ) -> None:
        ops: list[Any] = [InsertOne({"_id": new_id(), **d}) for d in inserts] + [
            UpdateOne({"code": code}, {"$set": changes}) for code, changes in updates
        ]
        for start in range(0, len(ops), 200):
            chunk = ops[start : start + 200]
            try:
                await self.col.bulk_write(chunk, ordered=True, session=session)
            except BulkWriteError as exc:
                raise ConflictError(
                    "import_conflict", "A station in the import was changed meanwhile; nothing was written."
                ) from exc
            if progress:
                progress(len(chunk))

    async def _staged_import(
        self,
        inserts: list[dict[str, Any]],
        updates: list[tuple[str, dict[str, Any]]],
        progress: Callable[[int], None] | None,
    ) -> None:
        """Write, remembering the before-images; on failure put everything back."""
        codes = [code for code, _ in updates]
        before = {d["code"]: d async for d in self.col.find({"code": {"$in": codes}})}
        inserted_codes = [d["code"] for d in inserts]
        try:
            await self._write_import(inserts, updates, progress)
        except BaseException:
            undo: list[Any] = [DeleteOne({"code": c}) for c in inserted_codes]
            undo += [
                UpdateOne({"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}})
                for d in before.values()
            ]
            with contextlib.suppress(Exception):
                await self.col.bulk_write(undo, ordered=False)
            raise
        finally:
            await bump_stations_version(self.db)


def _differs(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """True when a county document is missing or any of ``wanted``'s fields holds another value."""
    return stored is None or any(k not in stored or stored[k] != v for k, v in wanted.items())


class CountiesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COUNTIES]

    async def upsert_many(self, counties: list[dict[str, Any]]) -> int:
        """Store county polygons keyed by code, skipping unchanged ones; returns how many changed."""
        stored = {d["_id"]: d async for d in self.col.find({"_id": {"$in": [c["code"] for c in counties]}})}
        ops = [
            UpdateOne({"_id": c["code"]}, {"$set": c}, upsert=True)
            for c in counties
            if _differs(stored.get(c["code"]), c)
        ]
        if ops:
            await self.col.bulk_write(ops, ordered=False)
        return len(ops)

    async def list_all(self) -> list[CountyArea]:
        """Every county polygon."""
        return [CountyArea(d["_id"], d["name"], d["geometry"]) async for d in self.col.find({})]

    async def names(self) -> dict[str, str]:
        """County code -> name."""
        return {d["_id"]: d["name"] async for d in self.col.find({}, {"name": 1})}
