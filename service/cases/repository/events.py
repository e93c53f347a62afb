"""The case event log and transactional outbox (collection ``events``).

Every state change of a case appends one or more events here, in the same transaction as
the case update (see service/storage/transactions.py), so an event exists exactly when
its change was committed. The log is append-only: nothing updates or deletes an event's
facts. Consumers (webhook delivery, notifications, KPIs) read forward in ``_id`` order;
delivery bookkeeping belongs to the consumers' own collections, not to these documents.

Document: ``_id`` (ObjectId hex string, roughly time-ordered), ``seq`` (the case's version
after the change: monotonic per case; one change may emit several events with the same
seq, e.g. case.created + case.unrouted), ``type`` (case.created ...), ``case_id``,
``case_number``, ``station_id``, ``division`` (township code), ``actor``
({subject, role}), ``from_state``, ``to_state``, ``time`` (when it happened),
``data`` (action details: reason, rating, note ...), ``created_at`` (when written).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.cases.models import CaseEvent
from service.common.errors import ConflictError
from service.common.models import utcnow
from service.storage.indexes import declare

COLLECTION = "events"
declare(
    COLLECTION,
    # The same change cannot be logged twice (a retried transaction writes the same keys).
    IndexModel([("case_id", ASCENDING), ("seq", ASCENDING), ("type", ASCENDING)], unique=True, name="case_seq_type"),
    IndexModel([("type", ASCENDING), ("time", ASCENDING)], name="type_time"),
    IndexModel([("division", ASCENDING), ("time", ASCENDING)], name="division_time"),
)


def _to_doc(e: CaseEvent, now: datetime) -> dict[str, Any]:
    return {
        "_id": e.id,
        "seq": e.seq,
        "type": e.type,
        "case_id": e.case_id,
        "case_number": e.case_number,
        "station_id": e.station_id,
        "division": e.division,
        "actor": {"subject": e.actor_subject, "role": e.actor_role},
        "from_state": e.from_state,
        "to_state": e.to_state,
        "time": e.time,
        "data": e.data,
        "created_at": e.created_at or now,
    }


def _from_doc(d: dict[str, Any]) -> CaseEvent:
    actor = d.get("actor") or {}
    return CaseEvent(
        id=str(d["_id"]),
        seq=int(d["seq"]),
        type=d["type"],
        case_id=d["case_id"],
        case_number=d.get("case_number"),
        station_id=d.get("station_id"),
        division=d.get("division"),
        actor_subject=actor.get("subject", ""),
        actor_role=actor.get("role", ""),
        from_state=d.get("from_state"),
        to_state=d.get("to_state"),
        time=d["time"],
        data=d.get("data") or {},
        created_at=d.get("created_at"),
    )


class EventsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def append(self, *events: CaseEvent, session: AsyncClientSession | None = None) -> None:
        """Append events (inside the caller's transaction when ``session`` is given)."""
        if not events:
            return
        now = utcnow()
        docs = [_to_doc(e, now) for e in events]
        try:
            if len(docs) == 1:
                await self.col.insert_one(docs[0], session=session)
            else:
                await self.col.insert_many(docs, ordered=True, session=session)
        except DuplicateKeyError:
            raise ConflictError("event_already_recorded", "This change of the case was already recorded.") from None

    async def after(self, last_id: str | None, *, limit: int = 100) -> list[CaseEvent]:
        """Events written after ``last_id`` in ``_id`` order (for outbox consumers).

        Ids are made before commit, so a slow transaction can commit an id lower than one
        already read: consumers re-read a short window behind their mark and deduplicate by id.
        """
        query: dict[str, Any] = {"_id": {"$gt": last_id}} if last_id else {}
        cursor = self.col.find(query).sort("_id", ASCENDING).limit(limit)
        return [_from_doc(d) async for d in cursor]
