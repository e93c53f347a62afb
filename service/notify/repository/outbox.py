"""Reading the events outbox for notifications and the live feed, and who the people are.

``events`` is written by the case and visit areas in the same transaction as the change.
Here it is only read, forward in ``_id`` order (ObjectId hex strings, roughly time-ordered).
Which event has been handled is kept in ``notify_claims`` (one document per event: the
process that inserts it, or takes over a stale one, handles and publishes the event, so
each event is handled and published once even with several processes), and a shared
high-water mark in ``notify_checkpoints``. Published events get a ``feed_seq`` on their
claim: the live feed's resumable, strictly increasing message id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.notify.models import OutboxEvent, ParkedEvent
from service.storage.indexes import declare

EVENTS = "events"
CLAIMS = "notify_claims"
CHECKPOINTS = "notify_checkpoints"
declare(
    CLAIMS,
    IndexModel([("done", ASCENDING), ("claimed_at", ASCENDING)]),
    IndexModel([("feed_seq", ASCENDING)], sparse=True),
    IndexModel([("parked", ASCENDING), ("_id", ASCENDING)], sparse=True),
)


def id_floor(event_id: str, seconds: float) -> str:
    """An ``_id`` bound ``seconds`` before an ObjectId-hex id (for re-reading late commits)."""
    if len(event_id) == 24:
        try:
            ts = int(event_id[:8], 16)
        except ValueError:
            return event_id
        return f"{max(0, ts - int(seconds)):08x}" + "0" * 16
    return event_id


def event_from_doc(doc: dict[str, Any]) -> OutboxEvent:
    """An outbox document as a dataclass."""
    actor = doc.get("actor") or {}
    data = dict(doc.get("data") or {})
    return OutboxEvent(
        id=str(doc["_id"]),
        seq=int(doc["seq"]),
        type=str(doc["type"]),
        case_id=doc.get("case_id"),
        case_number=doc.get("case_number"),
        station_id=doc.get("station_id") or data.get("station_id"),
        division=str(doc.get("division") or ""),
        scenario=doc.get("scenario"),
        actor_subject=actor.get("subject"),
        actor_role=actor.get("role"),
        from_state=doc.get("from_state"),
        to_state=doc.get("to_state"),
        time=doc.get("time") or doc["created_at"],
        data=data,
    )


class OutboxReader:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.events = db[EVENTS]
        self.claims = db[CLAIMS]
        self.checkpoints = db[CHECKPOINTS]

    async def after(self, event_id: str, *, limit: int) -> list[OutboxEvent]:
        """Events with an ``_id`` above ``event_id``, in ``_id`` order."""
        cursor = self.events.find({"_id": {"$gt": event_id}}).sort("_id", ASCENDING).limit(limit)
        return [event_from_doc(d) async for d in cursor]

    async def by_ids(self, event_ids: list[str]) -> dict[str, OutboxEvent]:
        """Events by id."""
        return {d["_id"]: event_from_doc(d) async for d in self.events.find({"_id": {"$in": event_ids}})}

    async def checkpoint(self, name: str) -> str:
        """The shared high-water mark of a consumer ("" at first)."""
        doc = await self.checkpoints.find_one({"_id": name})
        return str(doc["last_id"]) if doc else ""

    async def advance(self, name: str, last_id: str) -> None:
        """Raise the high-water mark (never lowers it)."""
        await self.checkpoints.update_one({"_id": name}, {"$max": {"last_id": last_id}}, upsert=True)

    async def stale_claims(self, *, stale_before: datetime, limit: int) -> list[str]:
        """Events whose handler stopped before finishing (a crashed process)."""
        cursor = self.claims.find({"done": False, "claimed_at": {"$lt": stale_before}}, {"_id": 1}).limit(limit)
        return [d["_id"] async for d in cursor]

    async def set_feed_seq(self, event_id: str, feed_seq: int) -> None:
        """Remember the live-feed id an event was published under."""
        await self.claims.update_one({"_id": event_id}, {"$set": {"feed_seq": feed_seq}})

    async def max_feed_seq(self) -> int:
        """The highest live-feed id given so far (0 when none)."""
        doc = await self.claims.find_one({"feed_seq": {"$exists": True}}, {"feed_seq": 1}, sort=[("feed_seq", -1)])
        return int(doc["feed_seq"]) if doc else 0

    async def feed_after(self, feed_seq: int, *, limit: int) -> list[tuple[int, OutboxEvent]]:
        """Published events after a live-feed id, in feed order (for Last-Event-ID resume)."""
        cursor = (
            self.claims.find({"feed_seq": {"$gt": feed_seq}}, {"feed_seq": 1}).sort("feed_seq", ASCENDING).limit(limit)
        )
        pairs = [(int(d["feed_seq"]), str(d["_id"])) async for d in cursor]
        events = await self.by_ids([eid for _, eid in pairs])
        return [(seq, events[eid]) for seq, eid in pairs if eid in events]

    async def finished(self, event_ids: list[str]) -> set[str]:
        """Which of these events have been handled completely."""
        cursor = self.claims.find({"_id": {"$in": event_ids}, "done": True}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def claim(self, event_id: str, *, owner: str, now: datetime, stale_before: datetime) -> bool:
        """Take an event for handling; True for exactly one process (or a taker-over of a stale claim)."""
        try:
            await self.claims.insert_one({"_id": event_id, "owner": owner, "claimed_at": now, "done": False})
            return True
        except DuplicateKeyError:
            pass
        res = await self.claims.update_one(
            {"_id": event_id, "done": False, "claimed_at": {"$lt": stale_before}},
            {"$set": {"owner": owner, "claimed_at": now}, "$inc": {"takeovers": 1}},
        )
        return res.modified_count == 1

    async def release(self, event_id: str, *, now: datetime) -> None:
        """Mark an event handled."""
        await self.claims.update_one({"_id": event_id}, {"$set": {"done": True, "done_at": now}})

    async def fail(self, event_id: str, *, error: str, stale_at: Callable[[int], datetime]) -> int:
        """Record a failed handling by the claim's owner; returns the attempts so far.

        The claim is dated so that it turns stale at ``stale_at(attempts)``, when the
        stale-claim sweep of any process takes it again.
        """
        doc = await self.claims.find_one({"_id": event_id}, {"attempts": 1})
        attempts = int((doc or {}).get("attempts") or 0) + 1
        await self.claims.update_one(
            {"_id": event_id},
            {"$set": {"claimed_at": stale_at(attempts), "last_error": error, "attempts": attempts}},
        )
        return attempts

    async def park(self, event_id: str, *, error: str, now: datetime) -> None:
        """Give up on an event: finished for the loops, kept with its error for an admin to see and retry."""
        await self.claims.update_one(
            {"_id": event_id}, {"$set": {"done": True, "parked": True, "parked_at": now, "last_error": error}}
        )

    async def parked(self, *, after: str | None, limit: int) -> list[ParkedEvent]:
        """Parked events in ``_id`` order, after a cursor id."""
        query: dict[str, Any] = {"parked": True}
        if after:
            query["_id"] = {"$gt": after}
        claims = [d async for d in self.claims.find(query).sort("_id", ASCENDING).limit(limit)]
        events = await self.by_ids([d["_id"] for d in claims])
        return [
            ParkedEvent(
                event=events[d["_id"]],
                attempts=int(d.get("attempts") or 0),
                last_error=str(d.get("last_error") or ""),
                parked_at=d["parked_at"],
            )
            for d in claims
            if d["_id"] in events
        ]

    async def unpark(self, event_id: str, *, stale_at: datetime) -> bool:
        """Put a parked event back for handling (the stale-claim sweep takes it); False when not parked."""
        res = await self.claims.update_one(
            {"_id": event_id, "parked": True},
            {"$set": {"done": False, "claimed_at": stale_at, "attempts": 0}, "$unset": {"parked": "", "parked_at": ""}},
        )
        return res.modified_count == 1


class PeopleReader:
    """Read-only lookups of cases, residents and staff (owned by other areas)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def case(self, case_id: str) -> dict[str, Any] | None:
        """The case document (only the fields notifications use)."""
        return await self.db["cases"].find_one(
            {"_id": case_id},
            {
                "number": 1,
                "status": 1,
                "owner": 1,
                "created_by": 1,
                "station_id": 1,
                "station_name": 1,
                "assignee_id": 1,
                "service": 1,
                "scheduled_at": 1,
                "resolve_due_at": 1,
                "result": 1,
                "source.channel": 1,
            },
        )

    async def resident(self, resident_id: str) -> dict[str, Any] | None:
        """A resident's contact addresses (openid, phone)."""
        return await self.db["residents"].find_one({"_id": resident_id}, {"openid": 1, "phone": 1})

    async def staff_member(self, staff_id: str) -> dict[str, Any] | None:
        """One staff account."""
        return await self.db["staff"].find_one({"_id": staff_id})

    async def station_staff(self, station_id: str, roles: tuple[str, ...]) -> list[dict[str, Any]]:
        """Active staff of a station with one of the roles."""
        cursor = self.db["staff"].find(
            {"station_id": station_id, "role": {"$in": list(roles)}, "active": {"$ne": False}}
        )
        return [d async for d in cursor]

    async def supervisors_over(self, division: str) -> list[dict[str, Any]]:
        """Active supervisors whose division prefix covers ``division``."""
        cursor = self.db["staff"].find({"role": "supervisor", "active": {"$ne": False}})
        return [d async for d in cursor if division.startswith(str(d.get("division_prefix") or "\x00"))]
