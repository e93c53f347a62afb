"""Notifications (collection ``notifications``): one record per (event, recipient, channel).

The unique index on (event_id, recipient, channel) is what makes delivery "never twice":
a record is inserted before anything is sent, and only the process that moves it from
``pending`` to ``sending`` talks to the third party.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import NotFoundError
from service.common.models import Page
from service.common.paging import encode_cursor, newest_by_id
from service.notify.models import CHANNEL_INBOX, DELIVERED, PENDING, SENDING, Notification
from service.storage.indexes import declare

COLLECTION = "notifications"
declare(
    COLLECTION,
    IndexModel([("event_id", ASCENDING), ("recipient", ASCENDING), ("channel", ASCENDING)], unique=True),
    IndexModel([("recipient", ASCENDING), ("channel", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("recipient", ASCENDING), ("channel", ASCENDING), ("read_at", ASCENDING)]),
    IndexModel([("status", ASCENDING), ("not_before", ASCENDING)]),
)


def new_notification_id(now: datetime) -> str:
    """A sortable id: milliseconds since the epoch in hex, then randomness."""
    return f"{int(now.timestamp() * 1000):012x}{os.urandom(6).hex()}"


def notification_id_at(at: datetime) -> str:
    """The smallest notification id made at ``at``: its time prefix, then zeros.

    A whole id rather than the bare prefix: the embedded server (SecantusDB 0.7.0b3) misses the
    keys that extend a string bound on a descending index key (``{"_id": {"$gte": prefix}}`` on
    ``(recipient, channel, _id desc)`` leaves out ``prefix + "..."``); at full length no id extends it.
    """
    return f"{max(int(at.timestamp() * 1000), 0):012x}" + "0" * 12


def notification_time(notification_id: str) -> datetime | None:
    """When a notification id was made, or None for an id not made by :func:`new_notification_id`."""
    try:
        return datetime.fromtimestamp(int(notification_id[:12], 16) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _from_doc(doc: dict[str, Any]) -> Notification:
    return Notification(
        id=doc["_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        recipient=doc["recipient"],
        channel=doc["channel"],
        status=doc["status"],
        title_zh=doc.get("title_zh", ""),
        title_en=doc.get("title_en", ""),
        body_zh=doc.get("body_zh", ""),
        body_en=doc.get("body_en", ""),
        case_id=doc.get("case_id"),
        case_number=doc.get("case_number"),
        created_at=doc["created_at"],
        template=doc.get("template"),
        reason=doc.get("reason"),
        attempts=int(doc.get("attempts", 0)),
        not_before=doc.get("not_before"),
        sent_at=doc.get("sent_at"),
        read_at=doc.get("read_at"),
        urgent=bool(doc.get("urgent", False)),
        grant_spent=bool(doc.get("grant_spent", False)),
        payload=doc.get("payload") or {},
    )


def _to_doc(n: Notification) -> dict[str, Any]:
    return {
        "_id": n.id,
        "event_id": n.event_id,
        "event_type": n.event_type,
        "recipient": n.recipient,
        "channel": n.channel,
        "status": n.status,
        "title_zh": n.title_zh,
        "title_en": n.title_en,
        "body_zh": n.body_zh,
        "body_en": n.body_en,
        "case_id": n.case_id,
        "case_number": n.case_number,
        "created_at": n.created_at,
        "template": n.template,
        "reason": n.reason,
        "attempts": n.attempts,
        "not_before": n.not_before,
        "sent_at": n.sent_at,
        "read_at": n.read_at,
        "urgent": n.urgent,
        "grant_spent": n.grant_spent,
        "payload": n.payload,
    }


class NotificationsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def insert_new(self, n: Notification) -> bool:
        """Insert a record; False when one exists for the same (event, recipient, channel)."""
        try:
            await self.col.insert_one(_to_doc(n))
        except DuplicateKeyError:
            return False
        return True

    async def due(self, *, now: datetime, limit: int) -> list[Notification]:
        """Outbound records waiting to be sent whose time has come, oldest first."""
        cursor = (
            self.col.find({"status": PENDING, "not_before": {"$lte": now}, "channel": {"$ne": CHANNEL_INBOX}})
            .sort([("not_before", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [_from_doc(d) async for d in cursor]

    async def take(self, notification_id: str, *, now: datetime) -> bool:
        """Move a pending record to sending; exactly one caller wins."""
        res = await self.col.update_one(
            {"_id": notification_id, "status": PENDING},
            {"$set": {"status": SENDING, "taken_at": now}, "$inc": {"attempts": 1}},
        )
        return res.modified_count == 1

    async def finish(
        self, notification_id: str, *, status: str, reason: str | None, now: datetime, **extra: Any
    ) -> None:
        """Record the outcome of a send (sent, skipped, failed)."""
        fields: dict[str, Any] = {"status": status, "reason": reason, "finished_at": now, **extra}
        if status in ("sent",):
            fields["sent_at"] = now
        await self.col.update_one({"_id": notification_id}, {"$set": fields})

    async def retry_later(self, notification_id: str, *, not_before: datetime, reason: str, **extra: Any) -> None:
        """Put a record back to pending until ``not_before`` (backoff, quiet hours)."""
        await self.col.update_one(
            {"_id": notification_id},
            {"$set": {"status": PENDING, "not_before": not_before, "reason": reason, **extra}},
        )

    async def mark_grant_spent(self, notification_id: str) -> None:
        """Remember that this record already used a one-time grant (a retry must not spend another)."""
        await self.col.update_one({"_id": notification_id}, {"$set": {"grant_spent": True}})

    async def get(self, notification_id: str) -> Notification:
        """One record by id."""
        doc = await self.col.find_one({"_id": notification_id})
        if doc is None:
            raise NotFoundError("notification_not_found", "No such notification.")
        return _from_doc(doc)

    async def for_event(self, event_id: str) -> list[Notification]:
        """Every record an event produced."""
        return [_from_doc(d) async for d in self.col.find({"event_id": event_id}).sort("_id", ASCENDING)]

    async def inbox(
        self, *, recipient: str, unread: bool | None, after_id: str | None, limit: int, now: datetime
    ) -> Page[Notification]:
        """A person's inbox, newest first, read in windows of time on the id (``newest_by_id``)."""
        query: dict[str, Any] = {"recipient": recipient, "channel": CHANNEL_INBOX}
        if unread is True:
            query["read_at"] = None
        elif unread is False:
            query["read_at"] = {"$ne": None}

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            window = {"_id": id_range, **query} if id_range else query
            return [d async for d in self.col.find(window).sort("_id", DESCENDING).limit(n)]

        after = (after_id, notification_time(after_id) or now) if after_id else None
        docs = await newest_by_id(find, want=limit + 1, now=now, id_at=notification_id_at, after=after)
        items = [_from_doc(d) for d in docs[:limit]]
        next_cursor = encode_cursor(items[-1].id) if len(docs) > limit and items else None
        return Page(items=items, next_cursor=next_cursor)

    async def unread_count(self, *, recipient: str) -> int:
        """How many inbox entries the person has not read."""
        return await self.col.count_documents({"recipient": recipient, "channel": CHANNEL_INBOX, "read_at": None})

    async def mark_read(self, *, recipient: str, notification_id: str, now: datetime) -> Notification:
        """Mark one inbox entry read (idempotent); NotFoundError when it is not the person's."""
        query = {"_id": notification_id, "recipient": recipient, "channel": CHANNEL_INBOX}
        await self.col.update_one({**query, "read_at": None}, {"$set": {"read_at": now}})
        doc = await self.col.find_one(query)
        if doc is None:
            raise NotFoundError("notification_not_found", "No such notification in your inbox.")
        return _from_doc(doc)

    async def mark_all_read(self, *, recipient: str, now: datetime) -> int:
        """Mark every unread inbox entry read; returns how many changed."""
        res = await self.col.update_many(
            {"recipient": recipient, "channel": CHANNEL_INBOX, "read_at": None}, {"$set": {"read_at": now}}
        )
        return res.modified_count


__all__ = ["DELIVERED", "NotificationsRepository", "new_notification_id"]
