"""Which outbox events notifications have handled: claims, checkpoints and live-feed numbers.

``events`` belongs to the cases area; notifications read it through ``service.cases.reads``,
forward in ``_id`` order (ObjectId hex strings, roughly time-ordered). Which event has been
handled is kept in ``notify_claims`` (one document per event: the process that inserts it,
or takes over a stale one, handles and publishes the event, so each event is handled and
published once even with several processes), and a shared high-water mark in
``notify_checkpoints``. Published events get a ``feed_seq`` on their claim: the live
feed's resumable, strictly increasing message id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.notify.models import ParkedClaim
from service.storage.indexes import declare

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


class OutboxReader:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.claims = db[CLAIMS]
        self.checkpoints = db[CHECKPOINTS]

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

    async def feed_after(self, feed_seq: int, *, limit: int) -> list[tuple[int, str]]:
        """(live-feed id, event id) of events published after a live-feed id, in feed order."""
        cursor = (
            self.claims.find({"feed_seq": {"$gt": feed_seq}}, {"feed_seq": 1}).sort("feed_seq", ASCENDING).limit(limit)
        )
        return [(int(d["feed_seq"]), str(d["_id"])) async for d in cursor]

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

    async def claim_many(self, event_ids: list[str], *, owner: str, now: datetime, stale_before: datetime) -> set[str]:
        """Take a batch of events in one write; returns the ids this process now holds.

        Ids another process holds (and has not left stale) are not returned; the same rule
        as :meth:`claim`, one round trip for the batch instead of one per event.
        """
        if not event_ids:
            return set()
        docs = [{"_id": eid, "owner": owner, "claimed_at": now, "done": False} for eid in event_ids]
        taken = set(event_ids)
        try:
            await self.claims.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if any(e.get("code") != 11000 for e in errors):
                raise
            taken -= {event_ids[int(e["index"])] for e in errors}
        held = [eid for eid in event_ids if eid not in taken]
        if held:
            # Only stale claims can be taken over: usually none, so one read settles the rest.
            cursor = self.claims.find(
                {"_id": {"$in": held}, "done": False, "claimed_at": {"$lt": stale_before}}, {"_id": 1}
            )
            for eid in [d["_id"] async for d in cursor]:
                if await self.claim(eid, owner=owner, now=now, stale_before=stale_before):
                    taken.add(eid)
        return taken

    async def release_many(self, event_ids: list[str], *, now: datetime) -> None:
        """Mark several events handled (each one handled on its own before)."""
        if event_ids:
            await self.claims.update_many({"_id": {"$in": event_ids}}, {"$set": {"done": True, "done_at": now}})

    async def withdraw(self, event_ids: list[str], *, owner: str) -> None:
        """Give back claims taken but not handled (the batch stopped), for the next pass to take."""
        if event_ids:
            await self.claims.delete_many(
                {"_id": {"$in": event_ids}, "owner": owner, "done": False, "attempts": {"$exists": False}}
            )

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

    async def parked(self, *, after: str | None, limit: int) -> list[ParkedClaim]:
        """Claims of parked events in ``_id`` order, after a cursor id."""
        query: dict[str, Any] = {"parked": True}
        if after:
            query["_id"] = {"$gt": after}
        return [
            ParkedClaim(
                event_id=str(d["_id"]),
                attempts=int(d.get("attempts") or 0),
                last_error=str(d.get("last_error") or ""),
                parked_at=d["parked_at"],
            )
            async for d in self.claims.find(query).sort("_id", ASCENDING).limit(limit)
        ]

    async def unpark(self, event_id: str, *, stale_at: datetime) -> bool:
        """Put a parked event back for handling (the stale-claim sweep takes it); False when not parked."""
        res = await self.claims.update_one(
            {"_id": event_id, "parked": True},
            {"$set": {"done": False, "claimed_at": stale_at, "attempts": 0}, "$unset": {"parked": "", "parked_at": ""}},
        )
        return res.modified_count == 1
