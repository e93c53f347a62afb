"""``volunteer_certificates`` (unique number and verification code), and the serial counters
that number them (``volunteer_certificate_counters``).

A serial is taken by compare-and-set, as the case numbers are: read the counter, then a
conditional update from that value to the next; of two callers that read the same value exactly
one update matches and the other reads again. No transaction is held and ``find_one_and_update``
is avoided (see MONGODB_COMPAT.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import NotFoundError, UnavailableError
from service.storage.indexes import declare
from service.volunteers.models import (
    Actor,
    Certificate,
    TimeWindow,
    VolunteerScope,
)
from service.volunteers.repository.attendance import line_from
from service.volunteers.repository.codecs import actor_doc, actor_from, as_utc
from service.volunteers.repository.filters import scope_filter, window_filter
from service.volunteers.repository.people import record_from

CERTIFICATES = "volunteer_certificates"
COUNTERS = "volunteer_certificate_counters"
MAX_ATTEMPTS = 500  # of compare-and-set; each miss means another caller took a serial


declare(
    CERTIFICATES,
    IndexModel([("number", ASCENDING)], unique=True, name="number"),
    IndexModel([("verification_code", ASCENDING)], unique=True, name="verification_code"),
    IndexModel([("volunteer_id", ASCENDING)], name="volunteer"),
)


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
        services=tuple(line_from(s) for s in doc.get("services", ())),
        records=tuple(record_from(r) for r in doc.get("records", ())),
        issued_by=actor_from(doc.get("issued_by")),
        issued_at=as_utc(doc["issued_at"]),  # type: ignore[arg-type]
        status=doc["status"],
        revoked_at=as_utc(doc.get("revoked_at")),
        revoked_reason=doc.get("revoked_reason"),
    )


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

    async def last_serial(self, prefix: str) -> int:
        """The highest serial of the numbers stored under ``prefix`` (0 if none)."""
        cursor = self.col.find({"number": {"$regex": "^" + re.escape(prefix)}}, {"number": 1})
        doc = await cursor.sort("number", DESCENDING).limit(1).to_list(1)
        return int(doc[0]["number"][len(prefix) :]) if doc else 0

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

    async def count(
        self, scope: VolunteerScope, *, issued: TimeWindow = TimeWindow(), status: str | None = None
    ) -> int:
        """How many certificates of ``scope`` (of ``status``, if given) were issued within ``issued``."""
        query = {**scope_filter(scope), **window_filter("issued_at", issued)}
        if status:
            query["status"] = status
        return await self.col.count_documents(query)


class CertificateCountersRepository:
    """One counter per numbering prefix (issuing organisation and year): gap-free serials."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COUNTERS]

    async def next(self, prefix: str, *, start_after: Callable[[], Awaitable[int]]) -> int:
        """The next serial under ``prefix``; a new counter continues after ``await start_after()``."""
        if await self.col.find_one({"_id": prefix}, {"_id": 1}) is None:
            # Numbers issued before the counter existed (or by an older release) are skipped over.
            # Of concurrent creators of one counter all but one fail with a duplicate key: it exists.
            with contextlib.suppress(DuplicateKeyError):
                await self.col.insert_one({"_id": prefix, "value": await start_after()})
        delay = 0.002
        for _ in range(MAX_ATTEMPTS):
            doc = await self.col.find_one({"_id": prefix}, {"value": 1})
            value = int(doc["value"]) if doc else 0
            taken = await self.col.update_one({"_id": prefix, "value": value}, {"$set": {"value": value + 1}})
            if taken.modified_count == 1:
                return value + 1
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.05)
        raise UnavailableError("database_busy", "The database is busy; please retry shortly.", retry_after=1)
