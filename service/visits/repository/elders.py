"""The visit register (collection ``elders``).

The ID number is stored only encrypted (``id_card_enc``) with a keyed hash for lookup
(``id_card_hash``, unique among active people) and a masked copy for display.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import is_id, new_id
from service.common.models import Page
from service.common.paging import (
    decode_newest_cursor,
    encode_newest_cursor,
    newest_by_new_id,
    served_with_id_range,
)
from service.storage.indexes import declare
from service.storage.transactions import run_transaction
from service.visits.models import Elder, ElderFilter
from service.visits.repository.scopes import scope_filter

COLLECTION = "elders"
declare(
    COLLECTION,
    IndexModel(
        "id_card_hash", unique=True, partialFilterExpression={"active": True}, name="id_card_hash_active_unique"
    ),
    IndexModel([("station_id", ASCENDING), ("_id", ASCENDING)], name="station_id"),
    IndexModel([("township", ASCENDING), ("_id", ASCENDING)], name="township"),
    IndexModel([("active", ASCENDING), ("_id", ASCENDING)], name="active"),
    # A station's active register, newest first: read in windows of time on the id.
    IndexModel([("station_id", ASCENDING), ("active", ASCENDING), ("_id", DESCENDING)], name="station_active"),
    IndexModel([("county_code", ASCENDING), ("active", ASCENDING), ("_id", DESCENDING)], name="county_active"),
)

_FIELDS = tuple(f.name for f in dataclasses.fields(Elder) if f.name not in ("id", "age"))


def elder_from_doc(doc: dict[str, Any]) -> Elder:
    """An Elder from its document ."""
    values: dict[str, Any] = {k: doc.get(k) for k in _FIELDS}
    values["flags"] = list(values["flags"] or [])
    values["emergency_contacts"] = list(values["emergency_contacts"] or [])
    values["active"] = bool(values["active"])
    pinned = doc.get("tier_pinned")
    # Records from before tiers could be pinned: a tier other than the stored suggestion was staff's choice.
    values["tier_pinned"] = bool(pinned) if pinned is not None else doc.get("tier") != doc.get("suggested_tier")
    values["version"] = int(values["version"] or 1)
    return Elder(id=str(doc["_id"]), **values)


def _oid(elder_id: str) -> str:
    if not is_id(elder_id):
        raise NotFoundError("elder_not_found", f"There is no registered person {elder_id!r}.")
    return elder_id


def _taken() -> ConflictError:
    return ConflictError(
        "elder_already_registered", "A person with this ID number is already on an active visit register."
    )


class EldersRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.col = db[COLLECTION]

    async def insert(self, doc: dict[str, Any]) -> Elder:
        """Register a person; an ID number active elsewhere is a conflict."""
        doc = {**doc, "_id": new_id(doc.get("created_at"))}
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise _taken() from None
        return elder_from_doc(doc)

    async def insert_all(self, docs: list[dict[str, Any]], progress: Callable[[int], None] | None = None) -> list[str]:
        """Register many people in one transaction: all or none; returns their ids."""
        docs = [{**d, "_id": new_id(d.get("created_at"))} for d in docs]

        async def write(session: Any) -> None:
            for start in range(0, len(docs), 500):
                chunk = docs[start : start + 500]
                try:
                    await self.col.bulk_write([InsertOne(d) for d in chunk], ordered=True, session=session)
                except BulkWriteError as exc:
                    raise _taken() from exc
                if progress:
                    progress(len(chunk))

        await run_transaction(self.db, write)
        return [str(d["_id"]) for d in docs]

    async def get(self, elder_id: str) -> Elder:
        """One person by id."""
        doc = await self.col.find_one({"_id": _oid(elder_id)})
        if doc is None:
            raise NotFoundError("elder_not_found", f"There is no registered person {elder_id!r}.")
        return elder_from_doc(doc)

    async def get_many(self, ids: list[str]) -> dict[str, Elder]:
        """People by id (unknown ids left out)."""
        oids = [i for i in ids if is_id(i)]
        return {str(d["_id"]): elder_from_doc(d) async for d in self.col.find({"_id": {"$in": oids}})}

    async def active_hashes(self, hashes: list[str]) -> set[str]:
        """Which of these ID-number hashes belong to an active person."""
        cursor = self.col.find({"id_card_hash": {"$in": hashes}, "active": True}, {"id_card_hash": 1})
        return {d["id_card_hash"] async for d in cursor}

    async def update(self, elder_id: str, version: int, changes: dict[str, Any]) -> Elder:
        """Apply changes if the record is still at ``version`` (else 409 ``elder_changed``)."""
        try:
            result = await self.col.update_one(
                {"_id": _oid(elder_id), "version": version}, {"$set": changes, "$inc": {"version": 1}}
            )
        except DuplicateKeyError:
            raise _taken() from None
        if result.matched_count == 0:
            await self.get(elder_id)
            raise ConflictError("elder_changed", "The record was changed meanwhile; reload and retry.")
        return await self.get(elder_id)

    async def end(self, elder_id: str, ended: dict[str, Any], now: datetime) -> Elder:
        """Take an active person off the register (conditional on being active)."""
        result = await self.col.update_one(
            {"_id": _oid(elder_id), "active": True},
            {"$set": {"active": False, "ended": ended, "updated_at": now}, "$inc": {"version": 1}},
        )
        if result.matched_count == 0:
            await self.get(elder_id)
            raise ConflictError("elder_not_active", "This person is no longer on the active register.")
        return await self.get(elder_id)

    async def note_visit(self, elder_id: str, visited_at: datetime) -> None:
        """Remember the latest reached visit."""
        await self.col.update_one({"_id": _oid(elder_id)}, {"$max": {"last_visited_at": visited_at}})

    async def list_page(self, where: ElderFilter, *, limit: int, cursor: str | None, now: datetime) -> Page[Elder]:
        """People matching ``where``, newest registered first, one page; read in windows of time on
        the id (``newest_by_new_id``) when an index serves the filter with that range."""
        prefix = where.scope.township_prefix
        if prefix is not None and len(prefix) == 6:
            # A county's register as an equality (every record's county_code is its township's first
            # six digits), which an index serves together with a range on the id, unlike a pattern.
            query: dict[str, Any] = {"county_code": prefix}
        else:
            query = scope_filter(where.scope)
        if where.station_id and query.get("station_id") != where.station_id:
            station: dict[str, Any] = {"station_id": where.station_id}
            query = {"$and": [query, station]} if query else station
        if where.tier:
            query["tier"] = where.tier
        if where.flag:
            query["flags"] = where.flag
        if where.active is not None:
            query["active"] = where.active

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", DESCENDING).limit(n).to_list()

        windows = served_with_id_range(
            query, ("station_id", "active"), ("county_code", "active"), ("station_id",), ("active",), ("township",)
        )
        docs = await newest_by_new_id(
            find, want=limit + 1, now=now, before=decode_newest_cursor(cursor), windows=windows
        )
        items = [elder_from_doc(d) for d in docs[:limit]]
        next_cursor = encode_newest_cursor(items[-1].id) if len(docs) > limit and items else None
        return Page(items=items, next_cursor=next_cursor)

    async def active_records(self, batch: int) -> AsyncIterator[list[Elder]]:
        """Every active person, in id order, ``batch`` at a time, through one cursor."""
        chunk: list[Elder] = []
        async for doc in self.col.find({"active": True}).sort("_id", ASCENDING).batch_size(batch):
            chunk.append(elder_from_doc(doc))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    async def set_suggested(self, elder_id: str, suggested: str) -> None:
        """Store the tier the rules now suggest (the tier itself unchanged)."""
        await self.col.update_one({"_id": _oid(elder_id)}, {"$set": {"suggested_tier": suggested}})

    async def active_for_schedule(self, batch: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Active people, reduced to what scheduling needs, in id order, ``batch`` at a time.

        One cursor over the whole register: paging with ``_id > last`` + ``limit`` would make
        the embedded server sort the rest of the collection for every page.
        """
        projection = {
            "name": 1,
            "tier": 1,
            "previous_tier": 1,
            "tier_from": 1,
            "station_id": 1,
            "township": 1,
            "county_code": 1,
            "city_code": 1,
        }
        chunk: list[dict[str, Any]] = []
        async for doc in self.col.find({"active": True}, projection).sort("_id", ASCENDING).batch_size(batch):
            chunk.append(doc)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
