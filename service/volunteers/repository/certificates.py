"""``volunteer_certificates`` (unique number and verification code)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import NotFoundError
from service.storage.indexes import declare
from service.volunteers.models import (
    Actor,
    Certificate,
)
from service.volunteers.repository.attendance import line_from
from service.volunteers.repository.codecs import actor_doc, actor_from, as_utc
from service.volunteers.repository.people import record_from

CERTIFICATES = "volunteer_certificates"


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
