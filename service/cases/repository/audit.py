"""The audit log of staff reads of personal data (collection ``audit_log``, append-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from service.common.ids import new_id
from service.storage.indexes import declare

COLLECTION = "audit_log"
declare(
    COLLECTION,
    IndexModel([("actor.subject", ASCENDING), ("at", DESCENDING)]),
    IndexModel([("target.kind", ASCENDING), ("target.id", ASCENDING), ("at", DESCENDING)]),
)


class AuditRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def record(
        self,
        *,
        at: datetime,
        actor_subject: str,
        actor_role: str,
        action: str,
        target_kind: str,
        target_id: str,
        fields: list[str],
    ) -> None:
        """Append one audit entry."""
        await self.col.insert_one(
            {
                "_id": new_id(),
                "at": at,
                "actor": {"subject": actor_subject, "role": actor_role},
                "action": action,
                "target": {"kind": target_kind, "id": target_id},
                "fields": fields,
            }
        )
