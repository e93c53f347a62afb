"""Webhook subscriptions, deliveries and the fan-out checkpoint.

Collections: ``webhook_subscriptions``, ``webhook_deliveries`` (one per subscription and
event, unique), ``webhook_state`` (the fan-out checkpoint). Events and cases belong to the
cases area (read through ``service.cases.reads``), clients to identity
(``service.identity.directory``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.common.errors import NotFoundError
from service.common.paging import decode_cursor, encode_cursor, newest_by_time
from service.storage.indexes import declare
from service.webhooks.models import Attempt, Delivery, Subscription

SUBSCRIPTIONS = "webhook_subscriptions"
DELIVERIES = "webhook_deliveries"
STATE = "webhook_state"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ATTEMPT_LOG_KEEP = 20
FANOUT_CHECKPOINT = "fanout"

declare(
    SUBSCRIPTIONS,
    IndexModel([("client_id", ASCENDING), ("_id", ASCENDING)]),
    # Newest first, one client's or all: read in windows of creation time (ids are random); the
    # time key ascending, read backwards (see storage.migrations.DESCENDING_AFTER_EQUALITY).
    IndexModel([("client_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)], name="client_created"),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="newest"),
)
declare(
    DELIVERIES,
    IndexModel([("subscription_id", ASCENDING), ("event_id", ASCENDING)], unique=True),
    IndexModel([("event_id", ASCENDING)]),
    IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
    IndexModel([("subscription_id", ASCENDING), ("status", ASCENDING), ("event_created_at", ASCENDING)]),
    IndexModel([("subscription_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
)


MAX_PAUSES = 20


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _subscription(doc: dict[str, Any]) -> Subscription:
    return Subscription(
        id=str(doc["_id"]),
        client_id=doc["client_id"],
        url=doc["url"],
        event_types=tuple(doc.get("event_types", ())),
        description=doc.get("description", ""),
        active=bool(doc.get("active", True)),
        secret_enc=doc["secret_enc"],
        scopes=frozenset(doc.get("scopes", ())),
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
        paused_at=_utc(doc["paused_at"]) if doc.get("paused_at") else None,
        pauses=tuple((_utc(p["from"]), _utc(p["to"])) for p in doc.get("pauses", ())),
    )


def _delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        id=str(doc["_id"]),
        subscription_id=doc["subscription_id"],
        client_id=doc["client_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        case_id=doc.get("case_id"),
        seq=int(doc.get("seq", 0)),
        event_created_at=_utc(doc["event_created_at"]),
        status=doc["status"],
        attempts=int(doc.get("attempts", 0)),
        next_attempt_at=_utc(doc["next_attempt_at"]),
        lease_until=_utc(doc.get("lease_until") or EPOCH),
        lease_owner=doc.get("lease_owner"),
        lease_token=doc.get("lease_token"),
        last_status_code=doc.get("last_status_code"),
        last_latency_ms=doc.get("last_latency_ms"),
        last_error=doc.get("last_error"),
        delivered_at=_utc(doc["delivered_at"]) if doc.get("delivered_at") else None,
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
        window_start=_utc(doc.get("window_start") or doc["created_at"]),
        attempt_log=tuple(
            Attempt(
                at=_utc(a["at"]),
                status_code=a.get("status_code"),
                latency_ms=int(a.get("latency_ms", 0)),
                error=a.get("error"),
                worker_id=a.get("worker_id", ""),
            )
            for a in doc.get("attempt_log", ())
        ),
        ping=doc.get("ping"),
    )


class WebhookSubscriptionsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[SUBSCRIPTIONS]

    async def insert(self, doc: dict[str, Any]) -> Subscription:
        """Store a new subscription document (its ``_id`` is chosen by the caller)."""
        await self.col.insert_one(doc)
        return _subscription(doc)

    async def get(self, subscription_id: str) -> Subscription:
        """One subscription, or NotFoundError."""
        doc = await self.col.find_one({"_id": subscription_id})
        if doc is None:
            raise NotFoundError("webhook_not_found", "No such webhook subscription.")
        return _subscription(doc)

    async def count_for_client(self, client_id: str) -> int:
        """How many subscriptions a client holds."""
        return await self.col.count_documents({"client_id": client_id})

    async def list_page(
        self, *, client_id: str | None, cursor: str | None, limit: int, now: datetime
    ) -> tuple[list[Subscription], str | None]:
        """A page of subscriptions (one client's, or all), newest first, read in windows of creation
        time (``newest_by_time``)."""
        query: dict[str, Any] = {"client_id": client_id} if client_id is not None else {}

        async def find(condition: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, **condition}
            return await self.col.find(q).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(n).to_list()

        after = decode_cursor(cursor, datetime, str) if cursor else None
        docs = await newest_by_time(
            find, field="created_at", want=limit + 1, now=now, after=(after[0], after[1]) if after else None
        )
        items = [_subscription(d) for d in docs[:limit]]
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(docs) > limit else None
        return items, next_cursor

    async def list_active(self) -> list[Subscription]:
        """Every active subscription (the fan-out matches events against these)."""
        return [_subscription(d) for d in await self.col.find({"active": True}).to_list()]

    async def update(
        self, subscription_id: str, changes: dict[str, Any], *, pause: tuple[datetime, datetime] | None = None
    ) -> Subscription:
        """Set fields of a subscription (and record an ended inactive spell); NotFoundError when it is gone."""
        update: dict[str, Any] = {"$set": changes}
        if pause is not None:
            # The fan-out skips events of these spells; the newest few are enough, since it
            # never looks further back than the last activation's overlap.
            update["$push"] = {"pauses": {"$each": [{"from": pause[0], "to": pause[1]}], "$slice": -MAX_PAUSES}}
        result = await self.col.update_one({"_id": subscription_id}, update)
        if result.matched_count == 0:
            raise NotFoundError("webhook_not_found", "No such webhook subscription.")
        return await self.get(subscription_id)

    async def delete(self, subscription_id: str) -> None:
        """Remove a subscription; NotFoundError when it is gone."""
        result = await self.col.delete_one({"_id": subscription_id})
        if result.deleted_count == 0:
            raise NotFoundError("webhook_not_found", "No such webhook subscription.")


class WebhookDeliveriesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[DELIVERIES]

    async def existing_pairs(self, event_ids: Iterable[str]) -> set[tuple[str, str]]:
        """The (subscription_id, event_id) pairs that already have a delivery."""
        ids = list(event_ids)
        if not ids:
            return set()
        cursor = self.col.find({"event_id": {"$in": ids}}, {"subscription_id": 1, "event_id": 1})
        return {(d["subscription_id"], d["event_id"]) async for d in cursor}

    async def insert_many_new(self, docs: list[dict[str, Any]]) -> int:
        """Insert deliveries, skipping those that exist already; returns how many were new."""
        if not docs:
            return 0
        try:
            result = await self.col.insert_many(docs, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            return int(exc.details.get("nInserted", len(docs) - len(errors)))

    async def insert(self, doc: dict[str, Any]) -> Delivery:
        """Store one delivery (pings); ConflictError never happens as ids are random."""
        await self.col.insert_one(doc)
        return _delivery(doc)

    async def get(self, delivery_id: str, *, subscription_id: str | None = None) -> Delivery:
        """One delivery (of that subscription, when given), or NotFoundError."""
        query: dict[str, Any] = {"_id": delivery_id}
        if subscription_id is not None:
            query["subscription_id"] = subscription_id
        doc = await self.col.find_one(query)
        if doc is None:
            raise NotFoundError("delivery_not_found", "No such delivery for this webhook subscription.")
        return _delivery(doc)

    async def subscriptions_with_due_work(self, now: datetime) -> list[str]:
        """Ids of subscriptions that have a pending delivery due and not leased."""
        ids = await self.col.distinct(
            "subscription_id",
            {"status": "pending", "next_attempt_at": {"$lte": now}, "lease_until": {"$lte": now}},
        )
        return sorted(str(i) for i in ids)

    async def pending_for(self, subscription_id: str, limit: int) -> list[Delivery]:
        """A subscription's pending deliveries in event order."""
        docs = (
            await self.col.find({"subscription_id": subscription_id, "status": "pending"})
            .sort([("event_created_at", ASCENDING), ("seq", ASCENDING), ("event_id", ASCENDING)])
            .limit(limit)
            .to_list()
        )
        return [_delivery(d) for d in docs]

    async def lease(
        self, delivery_id: str, *, now: datetime, until: datetime, owner: str, token: str
    ) -> Delivery | None:
        """Take the lease on a due delivery; None when it is not due or another worker holds it."""
        result = await self.col.update_one(
            {
                "_id": delivery_id,
                "status": "pending",
                "next_attempt_at": {"$lte": now},
                "lease_until": {"$lte": now},
            },
            {"$set": {"lease_until": until, "lease_owner": owner, "lease_token": token}},
        )
        if result.modified_count != 1:
            return None
        doc = await self.col.find_one({"_id": delivery_id})
        if doc is None or doc.get("lease_token") != token:
            return None
        return _delivery(doc)

    async def record_attempt(self, delivery_id: str, *, token: str, attempt: Attempt, changes: dict[str, Any]) -> bool:
        """Record one attempt and release the lease; False when the lease was lost meanwhile."""
        entry = {
            "at": attempt.at,
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
            "worker_id": attempt.worker_id,
        }
        result = await self.col.update_one(
            {"_id": delivery_id, "lease_token": token},
            {
                "$set": {
                    **changes,
                    "last_status_code": attempt.status_code,
                    "last_latency_ms": attempt.latency_ms,
                    "last_error": attempt.error,
                    "lease_until": EPOCH,
                    "lease_owner": None,
                    "lease_token": None,
                    "updated_at": attempt.at,
                },
                "$inc": {"attempts": 1},
                "$push": {"attempt_log": {"$each": [entry], "$slice": -ATTEMPT_LOG_KEEP}},
            },
        )
        return result.modified_count == 1

    async def requeue(self, delivery_id: str, *, subscription_id: str, now: datetime) -> Delivery:
        """Make a delivery due now, whatever its status; a dead one gets a fresh retry window."""
        current = await self.get(delivery_id, subscription_id=subscription_id)
        changes: dict[str, Any] = {"next_attempt_at": now, "updated_at": now}
        if current.status != "pending":
            changes.update(
                {
                    "status": "pending",
                    "window_start": now,
                    "lease_until": EPOCH,
                    "lease_owner": None,
                    "lease_token": None,
                }
            )
        await self.col.update_one({"_id": delivery_id, "status": current.status}, {"$set": changes})
        return await self.get(delivery_id, subscription_id=subscription_id)

    async def list_page(
        self, *, subscription_id: str, status: str | None, cursor: str | None, limit: int, now: datetime
    ) -> tuple[list[Delivery], str | None]:
        """A page of a subscription's deliveries, newest first, read in windows of creation time
        (``newest_by_time``) when no status is asked for (the index holds no status before the time)."""
        query: dict[str, Any] = {"subscription_id": subscription_id}
        if status:
            query["status"] = status

        async def find(condition: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, **condition}
            return await self.col.find(q).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(n).to_list()

        after = decode_cursor(cursor, datetime, str) if cursor else None
        docs = await newest_by_time(
            find,
            field="created_at",
            want=limit + 1,
            now=now,
            after=(after[0], after[1]) if after else None,
            windows=not status,
        )
        items = [_delivery(d) for d in docs[:limit]]
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(docs) > limit else None
        return items, next_cursor

    async def delete_for_subscription(self, subscription_id: str) -> int:
        """Drop every delivery of a deleted subscription."""
        return (await self.col.delete_many({"subscription_id": subscription_id})).deleted_count


class WebhookStateRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[STATE]

    async def checkpoint(self) -> datetime | None:
        """The creation time up to which every visible event has been fanned out."""
        doc = await self.col.find_one({"_id": FANOUT_CHECKPOINT})
        return _utc(doc["created_at"]) if doc else None

    async def advance(self, created_at: datetime) -> None:
        """Move the checkpoint forward (never back: several processes may advance it)."""
        try:
            await self.col.update_one({"_id": FANOUT_CHECKPOINT}, {"$max": {"created_at": created_at}}, upsert=True)
        except DuplicateKeyError:  # two first upserts raced; the other one created it
            await self.col.update_one({"_id": FANOUT_CHECKPOINT}, {"$max": {"created_at": created_at}})
