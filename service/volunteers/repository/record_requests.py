"""``volunteer_record_requests``: volunteers' requests to record missing service (补录申请), with their history."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.storage.indexes import declare
from service.volunteers.models import HistoryEntry, RecordRequest
from service.volunteers.repository.attendance import _history, history_doc
from service.volunteers.repository.codecs import as_utc

RECORD_REQUESTS = "volunteer_record_requests"

declare(
    RECORD_REQUESTS,
    # At most one open request per volunteer and activity; settled ones stay as history.
    IndexModel(
        [("activity_id", ASCENDING), ("volunteer_id", ASCENDING)],
        unique=True,
        partialFilterExpression={"status": "open"},
        name="one_open_per_activity_volunteer",
    ),
    IndexModel([("activity_id", ASCENDING), ("status", ASCENDING)], name="activity_status"),
    IndexModel([("volunteer_id", ASCENDING), ("created_at", DESCENDING)], name="volunteer_created"),
)


def _request(doc: dict[str, Any]) -> RecordRequest:
    hours = doc.get("proposed_hours")
    return RecordRequest(
        id=doc["_id"],
        activity_id=doc["activity_id"],
        volunteer_id=doc["volunteer_id"],
        station_id=doc["station_id"],
        township=doc["township"],
        reason=doc["reason"],
        proposed_check_in_at=as_utc(doc.get("proposed_check_in_at")),
        proposed_check_out_at=as_utc(doc.get("proposed_check_out_at")),
        proposed_hours=None if hours is None else float(hours),
        status=doc["status"],
        attendance_id=doc.get("attendance_id"),
        decline_reason=doc.get("decline_reason"),
        history=tuple(_history(h) for h in doc.get("history", ())),
        version=int(doc.get("version", 1)),
        created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(doc["updated_at"]),  # type: ignore[arg-type]
    )


class RecordRequestsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[RECORD_REQUESTS]

    async def insert(self, doc: dict[str, Any]) -> RecordRequest:
        """A new open request; ConflictError ``record_request_open`` when one is already open."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            open_one = await self.find_open(doc["activity_id"], doc["volunteer_id"])
            raise ConflictError(
                "record_request_open",
                "A request to record this service is already open; wait for the organiser's answer.",
                request_id=open_one.id if open_one else None,
            ) from None
        return _request(doc)

    async def get(self, request_id: str) -> RecordRequest:
        doc = await self.col.find_one({"_id": request_id})
        if doc is None:
            raise NotFoundError("record_request_not_found", f"There is no record request {request_id!r}.")
        return _request(doc)

    async def find_open(self, activity_id: str, volunteer_id: str) -> RecordRequest | None:
        doc = await self.col.find_one({"activity_id": activity_id, "volunteer_id": volunteer_id, "status": "open"})
        return _request(doc) if doc else None

    async def settle(self, request_id: str, *, version: int, sets: dict[str, Any], entry: HistoryEntry) -> bool:
        """Close an open request and append its history entry, if nobody settled or changed it since ``version``."""
        result = await self.col.update_one(
            {"_id": request_id, "version": version, "status": "open"},
            {
                "$set": {**sets, "updated_at": entry.at},
                "$push": {"history": history_doc(entry)},
                "$inc": {"version": 1},
            },
        )
        return result.modified_count == 1

    async def for_activity(self, activity_id: str, *, status: str | None = None) -> list[RecordRequest]:
        query: dict[str, Any] = {"activity_id": activity_id}
        if status:
            query["status"] = status
        cursor = self.col.find(query).sort("created_at", ASCENDING).limit(1000)
        return [_request(d) async for d in cursor]

    async def for_volunteer(self, volunteer_id: str) -> list[RecordRequest]:
        cursor = self.col.find({"volunteer_id": volunteer_id}).sort("created_at", DESCENDING).limit(1000)
        return [_request(d) async for d in cursor]
