"""The collections of the volunteer service, and only these.

``volunteers`` (ID number encrypted, with a keyed lookup hash), ``volunteer_teams``,
``volunteer_activities``, ``volunteer_signups`` (one per activity and volunteer),
``volunteer_attendance`` (one per activity and volunteer, with its append-only history) and
``volunteer_certificates`` (unique number and verification code). Stations, cases and
residents are read through their own areas' service functions, never here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.storage.indexes import declare
from service.volunteers.models import (
    Activity,
    Actor,
    Attendance,
    Certificate,
    HistoryEntry,
    RecordEntry,
    ServiceLine,
    Signup,
    Team,
    Volunteer,
)

VOLUNTEERS = "volunteers"
TEAMS = "volunteer_teams"
ACTIVITIES = "volunteer_activities"
SIGNUPS = "volunteer_signups"
ATTENDANCE = "volunteer_attendance"
CERTIFICATES = "volunteer_certificates"

declare(
    VOLUNTEERS,
    IndexModel([("id_card_hash", ASCENDING)], unique=True, name="id_card_hash"),
    IndexModel(
        [("resident_id", ASCENDING)],
        unique=True,
        name="resident_id",
        partialFilterExpression={"resident_id": {"$type": "string"}},
    ),
    IndexModel([("township", ASCENDING)], name="township"),
    IndexModel([("station_id", ASCENDING)], name="station_id"),
)
declare(TEAMS, IndexModel([("station_id", ASCENDING)], name="station_id"))
declare(
    ACTIVITIES,
    IndexModel([("station_id", ASCENDING), ("start_at", DESCENDING)], name="station_start"),
    IndexModel([("township", ASCENDING), ("start_at", DESCENDING)], name="township_start"),
)
declare(
    SIGNUPS,
    IndexModel([("activity_id", ASCENDING), ("volunteer_id", ASCENDING)], unique=True, name="activity_volunteer"),
    IndexModel([("volunteer_id", ASCENDING)], name="volunteer"),
)
declare(
    ATTENDANCE,
    IndexModel([("activity_id", ASCENDING), ("volunteer_id", ASCENDING)], unique=True, name="activity_volunteer"),
    IndexModel([("volunteer_id", ASCENDING), ("check_in_at", ASCENDING)], name="volunteer_time"),
    IndexModel([("station_id", ASCENDING), ("status", ASCENDING)], name="station_status"),
)
declare(
    CERTIFICATES,
    IndexModel([("number", ASCENDING)], unique=True, name="number"),
    IndexModel([("verification_code", ASCENDING)], unique=True, name="verification_code"),
    IndexModel([("volunteer_id", ASCENDING)], name="volunteer"),
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _actor(doc: dict[str, Any] | None) -> Actor:
    doc = doc or {}
    return Actor(subject=str(doc.get("subject", "")), role=str(doc.get("role", "")))


def actor_doc(actor: Actor) -> dict[str, str]:
    return {"subject": actor.subject, "role": actor.role}


def _record(doc: dict[str, Any]) -> RecordEntry:
    return RecordEntry(
        kind=doc["kind"],
        text=doc["text"],
        on=doc["on"],
        station_id=doc["station_id"],
        by=_actor(doc.get("by")),
        at=_utc(doc["at"]),  # type: ignore[arg-type]
    )


def record_doc(entry: RecordEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "text": entry.text,
        "on": entry.on,
        "station_id": entry.station_id,
        "by": actor_doc(entry.by),
        "at": entry.at,
    }


def _volunteer(doc: dict[str, Any]) -> Volunteer:
    return Volunteer(
        id=doc["_id"],
        name=doc["name"],
        id_card_masked=doc["id_card_masked"],
        phone=doc["phone"],
        skills=tuple(doc.get("skills", ())),
        availability=doc.get("availability"),
        township=doc["township"],
        station_id=doc.get("station_id"),
        resident_id=doc.get("resident_id"),
        registered_by=_actor(doc.get("registered_by")),
        records=tuple(_record(r) for r in doc.get("records", ())),
        created_at=_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=_utc(doc["updated_at"]),  # type: ignore[arg-type]
    )


def _team(doc: dict[str, Any]) -> Team:
    return Team(
        id=doc["_id"],
        name=doc["name"],
        station_id=doc["station_id"],
        organiser_ids=tuple(doc.get("organiser_ids", ())),
        description=doc.get("description"),
        created_by=_actor(doc.get("created_by")),
        created_at=_utc(doc["created_at"]),  # type: ignore[arg-type]
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
        start_at=_utc(doc["start_at"]),  # type: ignore[arg-type]
        end_at=_utc(doc["end_at"]),  # type: ignore[arg-type]
        slots=int(doc["slots"]),
        skills_wanted=tuple(doc.get("skills_wanted", ())),
        status=doc["status"],
        confirmed_count=int(doc.get("confirmed_count", 0)),
        case_id=doc.get("case_id"),
        organiser=_actor(doc.get("organiser")),
        created_at=_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=_utc(doc["updated_at"]),  # type: ignore[arg-type]
        cancel_reason=doc.get("cancel_reason"),
    )


def _signup(doc: dict[str, Any]) -> Signup:
    return Signup(
        id=doc["_id"],
        activity_id=doc["activity_id"],
        volunteer_id=doc["volunteer_id"],
        status=doc["status"],
        note=doc.get("note"),
        created_at=_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=_utc(doc["updated_at"]),  # type: ignore[arg-type]
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
        k: {kk: _utc(vv) if isinstance(vv, datetime) else vv for kk, vv in v.items()}
        for k, v in (doc.get("changes") or {}).items()
    }
    return HistoryEntry(
        at=_utc(doc["at"]),  # type: ignore[arg-type]
        by=_actor(doc.get("by")),
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
        check_in_at=_utc(doc.get("check_in_at")),
        check_out_at=_utc(doc.get("check_out_at")),
        method=doc["method"],
        hours=doc.get("hours"),
        status=doc["status"],
        evaluation=doc.get("evaluation"),
        history=tuple(_history(h) for h in doc.get("history", ())),
        version=int(doc.get("version", 1)),
        created_at=_utc(doc["created_at"]),  # type: ignore[arg-type]
    )


def _line(doc: dict[str, Any]) -> ServiceLine:
    return ServiceLine(
        activity_id=doc["activity_id"],
        title=doc["title"],
        content=doc["content"],
        place=doc["place"],
        start_at=_utc(doc["start_at"]),  # type: ignore[arg-type]
        end_at=_utc(doc["end_at"]),  # type: ignore[arg-type]
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


def _certificate(doc: dict[str, Any]) -> Certificate:
    return Certificate(
        id=doc["_id"],
        number=doc["number"],
        verification_code=doc["verification_code"],
        volunteer_id=doc["volunteer_id"],
        volunteer_name=doc["volunteer_name"],
        id_card_masked=doc["id_card_masked"],
        station_id=doc["station_id"],
        organisation=doc["organisation"],
        period_from=doc["period_from"],
        period_to=doc["period_to"],
        total_hours=float(doc["total_hours"]),
        services=tuple(_line(s) for s in doc.get("services", ())),
        records=tuple(_record(r) for r in doc.get("records", ())),
        issued_by=_actor(doc.get("issued_by")),
        issued_at=_utc(doc["issued_at"]),  # type: ignore[arg-type]
        status=doc["status"],
        revoked_at=_utc(doc.get("revoked_at")),
        revoked_reason=doc.get("revoked_reason"),
    )


class VolunteersRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[VOLUNTEERS]

    async def insert(self, doc: dict[str, Any]) -> Volunteer:
        """Store a new volunteer; ConflictError when the ID number or resident is already registered."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError("volunteer_exists", "This person is already registered as a volunteer.") from None
        return _volunteer(doc)

    async def get(self, volunteer_id: str) -> Volunteer:
        """One volunteer, or NotFoundError ``volunteer_not_found``."""
        doc = await self.col.find_one({"_id": volunteer_id})
        if doc is None:
            raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")
        return _volunteer(doc)

    async def by_resident(self, resident_id: str) -> Volunteer | None:
        """The volunteer registration of a resident account, if any."""
        doc = await self.col.find_one({"resident_id": resident_id})
        return _volunteer(doc) if doc else None

    async def many(self, ids: list[str]) -> dict[str, Volunteer]:
        """Volunteers by id (missing ids are left out)."""
        return {d["_id"]: _volunteer(d) async for d in self.col.find({"_id": {"$in": list(ids)}})}

    async def find_page(self, query: dict[str, Any], *, after: str | None, limit: int) -> list[Volunteer]:
        """A page of volunteers in id order."""
        if after:
            query = {**query, "_id": {"$gt": after}}
        cursor = self.col.find(query).sort("_id", ASCENDING).limit(limit)
        return [_volunteer(d) async for d in cursor]

    async def add_record(self, volunteer_id: str, entry: RecordEntry, now: datetime) -> Volunteer:
        """Append a training, award or evaluation entry to the record."""
        await self.col.update_one(
            {"_id": volunteer_id}, {"$push": {"records": record_doc(entry)}, "$set": {"updated_at": now}}
        )
        return await self.get(volunteer_id)

    async def count(self, query: dict[str, Any]) -> int:
        return await self.col.count_documents(query)


class TeamsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[TEAMS]

    async def insert(self, doc: dict[str, Any]) -> Team:
        await self.col.insert_one(doc)
        return _team(doc)

    async def get(self, team_id: str) -> Team:
        """One team, or NotFoundError ``team_not_found``."""
        doc = await self.col.find_one({"_id": team_id})
        if doc is None:
            raise NotFoundError("team_not_found", f"There is no volunteer team {team_id!r}.")
        return _team(doc)

    async def find(self, team_id: str) -> Team | None:
        doc = await self.col.find_one({"_id": team_id})
        return _team(doc) if doc else None

    async def find_page(self, query: dict[str, Any], *, limit: int = 100) -> list[Team]:
        return [_team(d) async for d in self.col.find(query).sort("_id", ASCENDING).limit(limit)]


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

    async def find_page(self, query: dict[str, Any], *, after: str | None, limit: int) -> list[Activity]:
        """A page of activities, newest first."""
        if after:
            query = {**query, "_id": {"$lt": after}}
        cursor = self.col.find(query).sort("_id", DESCENDING).limit(limit)
        return [_activity(d) async for d in cursor]

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

    async def count(self, query: dict[str, Any]) -> int:
        return await self.col.count_documents(query)

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

    async def for_volunteer(self, volunteer_id: str) -> list[Signup]:
        cursor = self.col.find({"volunteer_id": volunteer_id}).sort("_id", DESCENDING).limit(200)
        return [_signup(d) async for d in cursor]


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

    async def confirmed(self, query: dict[str, Any]) -> AsyncIterator[Attendance]:
        """Confirmed records matching ``query`` (for KPIs and exports), oldest first."""
        async for d in self.col.find({**query, "status": "confirmed"}).sort("check_in_at", ASCENDING):
            yield _attendance(d)


class CertificatesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[CERTIFICATES]

    async def insert(self, doc: dict[str, Any]) -> Certificate | None:
        """Store a certificate; None when its number or code was taken meanwhile (the caller retries)."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return None
        return _certificate(doc)

    async def count_numbers(self, prefix: str) -> int:
        return await self.col.count_documents({"number": {"$regex": f"^{prefix}"}})

    async def get(self, certificate_id: str) -> Certificate:
        doc = await self.col.find_one({"_id": certificate_id})
        if doc is None:
            raise NotFoundError("certificate_not_found", f"There is no certificate {certificate_id!r}.")
        return _certificate(doc)

    async def by_code(self, code: str) -> Certificate | None:
        doc = await self.col.find_one({"verification_code": code})
        return _certificate(doc) if doc else None

    async def for_volunteer(self, volunteer_id: str) -> list[Certificate]:
        cursor = self.col.find({"volunteer_id": volunteer_id}).sort("_id", DESCENDING).limit(200)
        return [_certificate(d) async for d in cursor]

    async def revoke(self, certificate_id: str, *, reason: str, by: Actor, now: datetime) -> bool:
        result = await self.col.update_one(
            {"_id": certificate_id, "status": "valid"},
            {"$set": {"status": "revoked", "revoked_at": now, "revoked_reason": reason, "revoked_by": actor_doc(by)}},
        )
        return result.modified_count == 1

    async def count(self, query: dict[str, Any]) -> int:
        return await self.col.count_documents(query)
