"""``volunteer_attendance`` (one per activity and volunteer, with its append-only history); service lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.storage.indexes import declare
from service.volunteers.models import (
    Attendance,
    HistoryEntry,
    ServiceLine,
    TimeWindow,
    VolunteerScope,
)
from service.volunteers.repository.codecs import actor_doc, actor_from, as_utc
from service.volunteers.repository.filters import scope_filter, window_filter

ATTENDANCE = "volunteer_attendance"


declare(
    ATTENDANCE,
    IndexModel([("activity_id", ASCENDING), ("volunteer_id", ASCENDING)], unique=True, name="activity_volunteer"),
    IndexModel([("volunteer_id", ASCENDING), ("check_in_at", ASCENDING)], name="volunteer_time"),
    IndexModel([("station_id", ASCENDING), ("status", ASCENDING)], name="station_status"),
)


def history_doc(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "by": actor_doc(entry.by),
        "action": entry.action,
        "changes": entry.changes,
        "reason": entry.reason,
    }


def _history(doc: dict[str, Any]) -> HistoryEntry:
    changes = {
        k: {kk: as_utc(vv) if isinstance(vv, datetime) else vv for kk, vv in v.items()}
        for k, v in (doc.get("changes") or {}).items()
    }
    return HistoryEntry(
        at=as_utc(doc["at"]),  # type: ignore[arg-type]
        by=actor_from(doc.get("by")),
        action=doc["action"],
        changes=changes,
        reason=doc.get("reason"),
    )


def _attendance(doc: dict[str, Any]) -> Attendance:
    return Attendance(
        id=doc["_id"],
        activity_id=doc["activity_id"],
        volunteer_id=doc["volunteer_id"],
        station_id=doc["station_id"],
        check_in_at=as_utc(doc.get("check_in_at")),
        check_out_at=as_utc(doc.get("check_out_at")),
        method=doc["method"],
        hours=doc.get("hours"),
        status=doc["status"],
        evaluation=doc.get("evaluation"),
        history=tuple(_history(h) for h in doc.get("history", ())),
        version=int(doc.get("version", 1)),
        created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
    )


def line_from(doc: dict[str, Any]) -> ServiceLine:
    return ServiceLine(
        activity_id=doc["activity_id"],
        title=doc["title"],
        content=doc["content"],
        place=doc["place"],
        start_at=as_utc(doc["start_at"]),  # type: ignore[arg-type]
        end_at=as_utc(doc["end_at"]),  # type: ignore[arg-type]
        hours=float(doc["hours"]),
    )


def line_doc(line: ServiceLine) -> dict[str, Any]:
    return {
        "activity_id": line.activity_id,
        "title": line.title,
        "content": line.content,
        "place": line.place,
        "start_at": line.start_at,
        "end_at": line.end_at,
        "hours": line.hours,
    }


class AttendanceRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[ATTENDANCE]

    async def insert(self, doc: dict[str, Any]) -> Attendance:
        """A new attendance record; ConflictError ``already_checked_in`` when the volunteer has one here."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError(
                "already_checked_in", "This volunteer already has an attendance record for this activity."
            ) from None
        return _attendance(doc)

    async def get(self, attendance_id: str) -> Attendance:
        doc = await self.col.find_one({"_id": attendance_id})
        if doc is None:
            raise NotFoundError("attendance_not_found", f"There is no attendance record {attendance_id!r}.")
        return _attendance(doc)

    async def find(self, activity_id: str, volunteer_id: str) -> Attendance | None:
        doc = await self.col.find_one({"activity_id": activity_id, "volunteer_id": volunteer_id})
        return _attendance(doc) if doc else None

    async def apply(self, attendance_id: str, *, version: int, sets: dict[str, Any], entry: HistoryEntry) -> bool:
        """Change a record and append its history entry, if nobody changed it since ``version``."""
        result = await self.col.update_one(
            {"_id": attendance_id, "version": version},
            {"$set": sets, "$push": {"history": history_doc(entry)}, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def for_activity(self, activity_id: str) -> list[Attendance]:
        cursor = self.col.find({"activity_id": activity_id}).sort("_id", ASCENDING)
        return [_attendance(d) async for d in cursor]

    async def for_volunteer(
        self, volunteer_id: str, *, status: str | None = None, station_id: str | None = None
    ) -> list[Attendance]:
        query: dict[str, Any] = {"volunteer_id": volunteer_id}
        if status:
            query["status"] = status
        if station_id:
            query["station_id"] = station_id
        cursor = self.col.find(query).sort("check_in_at", ASCENDING).limit(5000)
        return [_attendance(d) async for d in cursor]

    async def confirmed(
        self,
        scope: VolunteerScope = VolunteerScope(),
        *,
        checked_in: TimeWindow = TimeWindow(),
        volunteer_id: str | None = None,
    ) -> AsyncIterator[Attendance]:
        """Confirmed records of ``scope`` (of one volunteer, if given) checked in within ``checked_in``
        (for KPIs and exports), oldest first."""
        query = scope_filter(scope)
        if volunteer_id is not None:
            query["volunteer_id"] = volunteer_id
        query.update(window_filter("check_in_at", checked_in))
        async for d in self.col.find({**query, "status": "confirmed"}).sort("check_in_at", ASCENDING):
            yield _attendance(d)
