"""The station network's own collections: ``station_network`` (one record per station, keyed by the
station's id) and ``station_network_verifications`` (append-only sign-offs)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError
from service.common.ids import new_id
from service.network.models import Actor, Document, EquipmentItem, NetworkRecord, Site, Verification
from service.storage.indexes import declare
from service.storage.transactions import run_transaction

RECORDS = "station_network"
VERIFICATIONS = "station_network_verifications"
declare(VERIFICATIONS, IndexModel([("station_id", 1), ("at", DESCENDING)], name="station_at"))


def _changed() -> ConflictError:
    return ConflictError(
        "network_record_changed", "The station's record changed since you read it; reload and try again."
    )


def _document_doc(d: Document) -> dict[str, Any]:
    return {"title": d.title, "issued_on": d.issued_on.isoformat(), "uploads": list(d.uploads)}


def _document(doc: dict[str, Any]) -> Document:
    return Document(doc["title"], date.fromisoformat(doc["issued_on"]), tuple(doc.get("uploads") or ()))


def record_to_doc(record: NetworkRecord) -> dict[str, Any]:
    """The stored form of a record (dates as YYYY-MM-DD text: they are days, not instants)."""
    return {
        "_id": record.station_id,
        "status": record.status,
        "dates": {k: v.isoformat() for k, v in record.dates.items()},
        "site": {
            "address": record.site.address,
            "floor_area_m2": record.site.floor_area_m2,
            "photos": list(record.site.photos),
        },
        "equipment": [{"name": i.name, "quantity": i.quantity} for i in record.equipment],
        "workflows": [_document_doc(d) for d in record.workflows],
        "rules": [_document_doc(d) for d in record.rules],
        "revision": record.revision,
        "updated_at": record.updated_at,
        "updated_by": {"subject": record.updated_by.subject, "role": record.updated_by.role}
        if record.updated_by
        else None,
    }


def record_from_doc(doc: dict[str, Any]) -> NetworkRecord:
    """A record from its stored form."""
    site = doc.get("site") or {}
    by = doc.get("updated_by")
    return NetworkRecord(
        station_id=str(doc["_id"]),
        status=doc.get("status"),
        dates={k: date.fromisoformat(v) for k, v in (doc.get("dates") or {}).items()},
        site=Site(site.get("address"), site.get("floor_area_m2"), tuple(site.get("photos") or ())),
        equipment=tuple(EquipmentItem(i["name"], int(i.get("quantity", 1))) for i in doc.get("equipment") or ()),
        workflows=tuple(_document(d) for d in doc.get("workflows") or ()),
        rules=tuple(_document(d) for d in doc.get("rules") or ()),
        revision=int(doc.get("revision") or 0),
        updated_at=doc.get("updated_at"),
        updated_by=Actor(by["subject"], by["role"]) if by else None,
    )


def _verification(doc: dict[str, Any]) -> Verification:
    return Verification(
        id=str(doc["_id"]),
        station_id=doc["station_id"],
        revision=int(doc["revision"]),
        outcome=doc["outcome"],
        note=doc.get("note"),
        by=Actor(doc["by"]["subject"], doc["by"]["role"]),
        at=doc["at"],
    )


class NetworkRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.records = db[RECORDS]
        self.verifications = db[VERIFICATIONS]

    async def get(self, station_id: str) -> NetworkRecord | None:
        """A station's record, or None when nothing was recorded yet."""
        doc = await self.records.find_one({"_id": station_id})
        return record_from_doc(doc) if doc else None

    async def get_many(self, station_ids: Iterable[str]) -> dict[str, NetworkRecord]:
        """The records of these stations that exist, by station id."""
        wanted = list(station_ids)
        return {str(d["_id"]): record_from_doc(d) async for d in self.records.find({"_id": {"$in": wanted}})}

    async def save(self, record: NetworkRecord, *, expected_revision: int, session: Any = None) -> NetworkRecord:
        """Store ``record`` if the stored one still has ``expected_revision`` (0: none stored yet), else 409."""
        doc = record_to_doc(record)
        if expected_revision == 0:
            try:
                await self.records.insert_one(doc, session=session)
            except DuplicateKeyError:
                raise _changed() from None
            return record
        result = await self.records.update_one(
            {"_id": record.station_id, "revision": expected_revision},
            {"$set": {k: v for k, v in doc.items() if k != "_id"}},
            session=session,
        )
        if result.matched_count != 1:
            raise _changed()
        return record

    async def save_all(self, changes: list[tuple[NetworkRecord, int]]) -> None:
        """Store every (record, expected revision) in one transaction: all of them or none."""

        async def write(session: Any) -> None:
            for record, expected in changes:
                try:
                    await self.save(record, expected_revision=expected, session=session)
                except ConflictError:
                    raise ConflictError(
                        "import_conflict", "A station in the import was changed meanwhile; nothing was written."
                    ) from None

        await run_transaction(self.db, write)

    async def add_verification(
        self, *, station_id: str, revision: int, outcome: str, note: str | None, by: Actor, at: Any
    ) -> Verification:
        """Append a verification; earlier ones are never changed."""
        doc = {
            "_id": new_id(),
            "station_id": station_id,
            "revision": revision,
            "outcome": outcome,
            "note": note,
            "by": {"subject": by.subject, "role": by.role},
            "at": at,
        }
        await self.verifications.insert_one(doc)
        return _verification(doc)

    async def verifications_of(self, station_id: str, *, limit: int = 100) -> list[Verification]:
        """A station's verifications, newest first."""
        cursor = self.verifications.find({"station_id": station_id}).sort([("at", DESCENDING), ("_id", DESCENDING)])
        return [_verification(d) async for d in cursor.limit(limit)]

    async def latest_verifications(self, station_ids: Iterable[str]) -> dict[str, Verification]:
        """The newest verification of each of these stations that has one."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"station_id": {"$in": list(station_ids)}}},
            {"$sort": {"at": -1, "_id": -1}},
            {"$group": {"_id": "$station_id", "latest": {"$first": "$$ROOT"}}},
        ]
        cursor = await self.verifications.aggregate(pipeline)
        return {str(d["_id"]): _verification(d["latest"]) async for d in cursor}
