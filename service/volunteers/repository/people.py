"""``volunteers`` (ID number encrypted, with a keyed lookup hash; record entries inside) and ``volunteer_teams``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.paging import newest_by_new_id, served_with_id_range
from service.storage.indexes import declare
from service.volunteers.models import (
    RecordEntry,
    Team,
    Volunteer,
    VolunteerScope,
)
from service.volunteers.repository.codecs import actor_doc, actor_from, as_utc
from service.volunteers.repository.filters import scope_filter

VOLUNTEERS = "volunteers"
TEAMS = "volunteer_teams"


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
    # A station's volunteers, newest first: read in windows of time on the id.
    IndexModel([("station_id", ASCENDING), ("_id", DESCENDING)], name="station_newest"),
)
declare(TEAMS, IndexModel([("station_id", ASCENDING)], name="station_id"))


def record_from(doc: dict[str, Any]) -> RecordEntry:
    return RecordEntry(
        kind=doc["kind"],
        text=doc["text"],
        on=doc["on"],
        station_id=doc["station_id"],
        by=actor_from(doc.get("by")),
        at=as_utc(doc["at"]),  # type: ignore[arg-type]
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
        registered_by=actor_from(doc.get("registered_by")),
        records=tuple(record_from(r) for r in doc.get("records", ())),
        created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=as_utc(doc["updated_at"]),  # type: ignore[arg-type]
    )


def _team(doc: dict[str, Any]) -> Team:
    return Team(
        id=doc["_id"],
        name=doc["name"],
        station_id=doc["station_id"],
        organiser_ids=tuple(doc.get("organiser_ids", ())),
        description=doc.get("description"),
        created_by=actor_from(doc.get("created_by")),
        created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
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

    async def find_page(
        self, scope: VolunteerScope, *, skill: str | None = None, before: str | None, limit: int, now: datetime
    ) -> list[Volunteer]:
        """A page of the volunteers of ``scope`` (with ``skill``, if given), newest registered first, below
        the id ``before``; read in windows of time on the id (``newest_by_new_id``) when an index serves
        the filter with that range."""
        query = scope_filter(scope)
        if skill:
            query["skills"] = skill

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", DESCENDING).limit(n).to_list()

        windows = served_with_id_range(query, ("station_id",))
        return [
            _volunteer(d) for d in await newest_by_new_id(find, want=limit, now=now, before=before, windows=windows)
        ]

    async def add_record(self, volunteer_id: str, entry: RecordEntry, now: datetime) -> Volunteer:
        """Append a training, award or evaluation entry to the record."""
        await self.col.update_one(
            {"_id": volunteer_id}, {"$push": {"records": record_doc(entry)}, "$set": {"updated_at": now}}
        )
        return await self.get(volunteer_id)

    async def count(self, scope: VolunteerScope) -> int:
        """How many volunteers ``scope`` holds."""
        return await self.col.count_documents(scope_filter(scope))


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
