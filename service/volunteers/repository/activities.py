"""``volunteer_activities`` (with their slots) and ``volunteer_signups`` (one per activity and volunteer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.paging import newest_by_new_id, served_with_id_range
from service.storage.indexes import declare
from service.volunteers.models import (
    Activity,
    Signup,
    TimeWindow,
    VolunteerScope,
)
from service.volunteers.repository.codecs import actor_from, as_utc
from service.volunteers.repository.filters import scope_filter, window_filter

ACTIVITIES = "volunteer_activities"
SIGNUPS = "volunteer_signups"


declare(
    ACTIVITIES,
    IndexModel([("station_id", ASCENDING), ("start_at", DESCENDING)], name="station_start"),
    IndexModel([("township", ASCENDING), ("start_at", DESCENDING)], name="township_start"),
    # A station's activities, newest first: read in windows of time on the id.
    IndexModel([("station_id", ASCENDING), ("_id", DESCENDING)], name="station_newest"),
)
declare(
    SIGNUPS,
    IndexModel([("activity_id", ASCENDING), ("volunteer_id", ASCENDING)], unique=True, name="activity_volunteer"),
    IndexModel([("volunteer_id", ASCENDING)], name="volunteer"),
)


def _activity(doc: dict[str, Any]) -> Activity:
    return Activity(
        id=doc["_id"],
        title=doc["title"],
        scenario=doc["scenario"],
        content=doc["content"],
        station_id=doc["station_id"],
        station_name=doc["station_name"],
        township=doc["township"],
        team_id=doc.get("team_id"),
        location=doc["location"],
        start_at=as_utc(doc["start_at"]),  # type: ignore[arg-type]
        end_at=as_utc(doc["end_at"]),  # type: ignore[arg-type]
        slots=int(doc["slots"]),
        skills_wanted=tuple(doc.get("skills_wanted", ())),
        status=doc["status"],
        confirmed_count=int(doc.get("confirmed_count", 0)),
        case_id=doc.get("case_id"),
        organiser=actor_from(doc.get("organiser")),
        created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(doc["updated_at"]),  # type: ignore[arg-type]
        cancel_reason=doc.get("cancel_reason"),
    )


def _signup(doc: dict[str, Any]) -> Signup:
    return Signup(
        id=doc["_id"],
        activity_id=doc["activity_id"],
        volunteer_id=doc["volunteer_id"],
        status=doc["status"],
        note=doc.get("note"),
        created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(doc["updated_at"]),  # type: ignore[arg-type]
    )


class ActivitiesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[ACTIVITIES]

    async def insert(self, doc: dict[str, Any]) -> Activity:
        await self.col.insert_one(doc)
        return _activity(doc)

    async def delete(self, activity_id: str) -> None:
        """Remove an activity nobody has seen yet (its case could not be noted)."""
        await self.col.delete_one({"_id": activity_id, "confirmed_count": 0})

    async def get(self, activity_id: str) -> Activity:
        """One activity, or NotFoundError ``activity_not_found``."""
        doc = await self.col.find_one({"_id": activity_id})
        if doc is None:
            raise NotFoundError("activity_not_found", f"There is no volunteer activity {activity_id!r}.")
        return _activity(doc)

    async def many(self, ids: list[str]) -> dict[str, Activity]:
        return {d["_id"]: _activity(d) async for d in self.col.find({"_id": {"$in": list(ids)}})}

    async def find_page(
        self,
        scope: VolunteerScope,
        *,
        status: str | None = None,
        ends_after: datetime | None = None,
        before: str | None,
        limit: int,
        now: datetime,
    ) -> list[Activity]:
        """A page of the activities of ``scope`` (of ``status``, not over by ``ends_after``, if given), newest
        first, below the id ``before``; read in windows of time on the id (``newest_by_new_id``) when an
        index serves the filter with that range."""
        query = scope_filter(scope)
        if status:
            query["status"] = status
        if ends_after is not None:
            query["end_at"] = {"$gt": ends_after}

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", DESCENDING).limit(n).to_list()

        windows = served_with_id_range(query, ("station_id",))
        return [_activity(d) for d in await newest_by_new_id(find, want=limit, now=now, before=before, windows=windows)]

    async def take_slot(
        self, activity_id: str, *, slots: int, now: datetime, session: AsyncClientSession | None = None
    ) -> bool:
        """Count one more confirmed volunteer if a slot is free (a conditional update: no overbooking)."""
        result = await self.col.update_one(
            {"_id": activity_id, "status": "published", "slots": slots, "confirmed_count": {"$lt": slots}},
            {"$inc": {"confirmed_count": 1}, "$set": {"updated_at": now}},
            session=session,
        )
        return result.modified_count == 1

    async def free_slot(self, activity_id: str, now: datetime, session: AsyncClientSession | None = None) -> None:
        await self.col.update_one(
            {"_id": activity_id, "confirmed_count": {"$gt": 0}},
            {"$inc": {"confirmed_count": -1}, "$set": {"updated_at": now}},
            session=session,
        )

    async def cancel(self, activity_id: str, reason: str, now: datetime) -> bool:
        result = await self.col.update_one(
            {"_id": activity_id, "status": "published"},
            {"$set": {"status": "cancelled", "cancel_reason": reason, "updated_at": now}},
        )
        return result.modified_count == 1

    async def count(self, scope: VolunteerScope, *, starting: TimeWindow, status: str | None = None) -> int:
        """How many activities of ``scope`` (of ``status``, if given) start within ``starting``."""
        query = scope_filter(scope)
        if status:
            query["status"] = status
        return await self.col.count_documents({**query, **window_filter("start_at", starting)})

    async def ids(self, query: dict[str, Any]) -> list[str]:
        return [d["_id"] async for d in self.col.find(query, {"_id": 1})]


class SignupsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[SIGNUPS]

    async def insert(self, doc: dict[str, Any]) -> Signup:
        """A new sign-up; ConflictError ``already_signed_up`` for a second one of the same volunteer."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError("already_signed_up", "You have already signed up for this activity.") from None
        return _signup(doc)

    async def get(self, signup_id: str) -> Signup:
        doc = await self.col.find_one({"_id": signup_id})
        if doc is None:
            raise NotFoundError("signup_not_found", f"There is no sign-up {signup_id!r}.")
        return _signup(doc)

    async def find(self, activity_id: str, volunteer_id: str) -> Signup | None:
        doc = await self.col.find_one({"activity_id": activity_id, "volunteer_id": volunteer_id})
        return _signup(doc) if doc else None

    async def move(
        self,
        signup_id: str,
        *,
        expected: tuple[str, ...],
        status: str,
        now: datetime,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Change a sign-up's status if it is still in one of ``expected`` (exactly one of concurrent moves wins)."""
        result = await self.col.update_one(
            {"_id": signup_id, "status": {"$in": list(expected)}},
            {"$set": {"status": status, "updated_at": now}},
            session=session,
        )
        return result.modified_count == 1

    async def for_activity(self, activity_id: str) -> list[Signup]:
        cursor = self.col.find({"activity_id": activity_id}).sort("_id", ASCENDING)
        return [_signup(d) async for d in cursor]

    async def first_waiting(self, activity_id: str) -> Signup | None:
        doc = await self.col.find_one({"activity_id": activity_id, "status": "waitlisted"}, sort=[("_id", ASCENDING)])
        return _signup(doc) if doc else None

    async def waiting_ahead(self, activity_id: str, signup_id: str) -> int:
        """How many waiting sign-ups of the activity came before this one (they move up first)."""
        return await self.col.count_documents(
            {"activity_id": activity_id, "status": "waitlisted", "_id": {"$lt": signup_id}}
        )

    async def for_volunteer(self, volunteer_id: str) -> list[Signup]:
        cursor = self.col.find({"volunteer_id": volunteer_id}).sort("_id", DESCENDING).limit(200)
        return [_signup(d) async for d in cursor]
