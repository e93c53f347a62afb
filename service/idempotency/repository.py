"""Idempotency records (collection ``idempotency_keys``): one per (caller, Idempotency-Key).

The ``_id`` is built from the caller's subject and the key, so the primary-key index makes
the first ``insert_one`` win and every concurrent duplicate get DuplicateKeyError. A record
is ``pending`` while its operation runs (held by ``owner`` until ``lease_until``) and
``done`` with the response once it finished. A TTL index removes records 24 h after
creation (``expires_at``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.idempotency.keys import record_id
from service.storage.indexes import declare

COLLECTION = "idempotency_keys"
declare(COLLECTION, IndexModel("expires_at", expireAfterSeconds=0, name="expires_at_ttl"))

PENDING = "pending"
DONE = "done"


@dataclasses.dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    subject: str
    key: str
    fingerprint: str
    state: str  # pending | done
    owner: str
    lease_until: datetime
    status: int | None = None
    body: str | None = None  # the response body as JSON text, replayed byte for byte
    # The id the request's new resource gets, made with the record and kept when a retry takes
    # the key over, so a resource stored before a crash is found again instead of made twice.
    resource_id: str | None = None


def _from_doc(d: dict[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        subject=d["subject"],
        key=d["key"],
        fingerprint=d["fingerprint"],
        state=d["state"],
        owner=d["owner"],
        lease_until=d["lease_until"],
        status=d.get("status"),
        body=d.get("body"),
        resource_id=d.get("resource_id"),
    )


class IdempotencyRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def claim(
        self,
        *,
        subject: str,
        key: str,
        fingerprint: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
        resource_id: str | None = None,
    ) -> bool:
        """Insert a pending record; False when one exists already for (subject, key)."""
        doc: dict[str, Any] = {
            "_id": record_id(subject, key),
            "subject": subject,
            "key": key,
            "fingerprint": fingerprint,
            "state": PENDING,
            "owner": owner,
            "lease_until": lease_until,
            "created_at": now,
            "expires_at": expires_at,
        }
        if resource_id is not None:
            doc["resource_id"] = resource_id
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, subject: str, key: str) -> IdempotencyRecord | None:
        """The record for (subject, key), if any."""
        doc = await self.col.find_one({"_id": record_id(subject, key)})
        return _from_doc(doc) if doc else None

    async def take_over(self, record: IdempotencyRecord, *, owner: str, lease_until: datetime) -> bool:
        """Take a pending record whose holder's lease ran out; True for exactly one caller."""
        result = await self.col.update_one(
            {
                "_id": record_id(record.subject, record.key),
                "state": PENDING,
                "owner": record.owner,
                "lease_until": record.lease_until,
            },
            {"$set": {"owner": owner, "lease_until": lease_until}},
        )
        return result.modified_count == 1

    async def complete(self, *, subject: str, key: str, owner: str, status: int, body: str) -> None:
        """Store the response of a finished operation (only by the record's holder)."""
        await self.col.update_one(
            {"_id": record_id(subject, key), "state": PENDING, "owner": owner},
            {"$set": {"state": DONE, "status": status, "body": body}},
        )

    async def release(self, *, subject: str, key: str, owner: str) -> None:
        """Forget a pending record after its operation failed, so the key can be used again."""
        await self.col.delete_one({"_id": record_id(subject, key), "state": PENDING, "owner": owner})
