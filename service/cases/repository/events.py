"""The case event log and transactional outbox (collection ``events``).

Every state change of a case appends one or more events here, in the same transaction as
the case update (see service/storage/transactions.py), so an event exists exactly when
its change was committed. The log is append-only: nothing updates or deletes an event's
facts. Consumers (webhook delivery, notifications, KPIs) read forward in ``_id`` order;
delivery bookkeeping belongs to the consumers' own collections, not to these documents.

Other areas write their events here too (visit reminders and misses, alerts, volunteer
service): each event has a ``subject`` ({kind, id}: the case, or the person, alert,
activity ... it is about), and ``case_id`` only when it belongs to a case.

Document: ``_id`` (ObjectId hex string, roughly time-ordered), ``subject`` ({kind, id}),
``seq`` (for a case, its version after the change: monotonic per subject; one change may
emit several events with the same seq, e.g. case.created + case.unrouted), ``type``
(case.created ...), ``case_id`` (absent when the event belongs to no case),
``case_number``, ``station_id``, ``division`` (township code), ``actor``
({subject, role}), ``from_state``, ``to_state``, ``time`` (when it happened),
``data`` (action details: reason, rating, note ...), ``created_at`` (when written).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.cases.models import CASE, CaseEvent, Subject
from service.common.errors import ConflictError
from service.common.models import utcnow
from service.storage.indexes import declare

COLLECTION = "events"
declare(
    COLLECTION,
    # The same change cannot be logged twice (a retried transaction writes the same keys). Partial,
    # so that a database from before subjects builds it before its events are given theirs at start
    # (service/storage/migrations.py, which also drops the index this one replaced, keyed by case_id).
    IndexModel(
        [("subject.kind", ASCENDING), ("subject.id", ASCENDING), ("seq", ASCENDING), ("type", ASCENDING)],
        unique=True,
        name="subject_seq_type",
        partialFilterExpression={"subject.kind": {"$exists": True}},
    ),
    IndexModel([("case_id", ASCENDING), ("seq", ASCENDING)], name="case_seq"),
    IndexModel([("type", ASCENDING), ("time", ASCENDING)], name="type_time"),
    IndexModel([("division", ASCENDING), ("time", ASCENDING)], name="division_time"),
    # Webhook fan-out reads events in creation order.
    IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
)


def _to_doc(e: CaseEvent, now: datetime) -> dict[str, Any]:
    doc = {
        "_id": e.id,
        "subject": {"kind": e.subject.kind, "id": e.subject.id},
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
    if e.case_id is None:
        del doc["case_id"]
    return doc


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _subject(d: dict[str, Any]) -> tuple[Subject, str | None]:
    """The event's subject and case: an event written before subjects (by a process that has not
    been upgraded yet) has only the one-string key in ``case_id``."""
    stored = d.get("subject")
    if isinstance(stored, dict):
        return Subject(str(stored["kind"]), str(stored["id"])), d.get("case_id")
    subject = Subject.from_key(d["case_id"])
    return subject, d["case_id"] if subject.kind == CASE else None


def _from_doc(d: dict[str, Any]) -> CaseEvent:
    actor = d.get("actor") or {}
    subject, case_id = _subject(d)
    created_at = _utc(d["created_at"]) if isinstance(d.get("created_at"), datetime) else None
    # Passed on as stored: a malformed event fails in the consumer that handles it, not in the read of a page.
    time: Any = d.get("time") or d["created_at"]
    return CaseEvent(
        id=str(d["_id"]),
        seq=int(d["seq"]),
        type=d["type"],
        case_id=case_id,
        subject=subject,
        case_number=d.get("case_number"),
        station_id=d.get("station_id"),
        division=d.get("division"),
        actor_subject=actor.get("subject", ""),
        actor_role=actor.get("role", ""),
        from_state=d.get("from_state"),
        to_state=d.get("to_state"),
        time=_utc(time) if isinstance(time, datetime) else time,
        data=d.get("data") or {},
        created_at=created_at,
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

    async def by_ids(self, event_ids: Iterable[str]) -> dict[str, CaseEvent]:
        """Events by id (ids with no event are left out)."""
        ids = list(event_ids)
        if not ids:
            return {}
        return {str(d["_id"]): _from_doc(d) async for d in self.col.find({"_id": {"$in": ids}})}

    async def created_since(
        self, *, since: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[CaseEvent]:
        """Events written at or after ``since`` in (created_at, _id) order, past ``after``."""
        query: dict[str, Any] = {"created_at": {"$gte": since}}
        if after is not None:
            at, last_id = after
            query = {
                "$and": [
                    query,
                    {"$or": [{"created_at": {"$gt": at}}, {"created_at": at, "_id": {"$gt": last_id}}]},
                ]
            }
        cursor = self.col.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [_from_doc(d) async for d in cursor]
