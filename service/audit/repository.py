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
    # The reads of one person on the visit register.
    IndexModel([("elder_id", ASCENDING), ("at", ASCENDING)], name="elder_at"),
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
        target_ids: list[str],
        fields: list[str],
        keyed_as: str | None = None,
    ) -> None:
        """Append one audit entry per target (each also under ``keyed_as`` when given)."""
        if not target_ids:
            return
        docs = [
            {
                "_id": new_id(),
                "at": at,
                "actor": {"subject": actor_subject, "role": actor_role},
                "action": action,
                "target": {"kind": target_kind, "id": target_id},
                **({keyed_as: target_id} if keyed_as else {}),
                "fields": fields,
            }
            for target_id in target_ids
        ]
        await self.col.insert_many(docs, ordered=False)
