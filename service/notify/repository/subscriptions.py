"""Residents' WeChat subscription-message grants (collection ``wechat_subscriptions``).

One document per (resident, template). Each ``accept`` adds one one-time grant; sending a
message spends one with a conditional decrement, so two processes can never spend the
same grant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.notify.models import Subscription
from service.storage.indexes import declare

COLLECTION = "wechat_subscriptions"
declare(COLLECTION, IndexModel([("resident_id", ASCENDING), ("template_key", ASCENDING)]))


def _from_doc(doc: dict[str, Any]) -> Subscription:
    return Subscription(
        resident_id=doc["resident_id"],
        template_key=doc["template_key"],
        template_id=doc.get("template_id", ""),
        grants=int(doc.get("grants", 0)),
        banned=bool(doc.get("banned", False)),
        last_result=doc.get("last_result"),
        results={str(k): int(v) for k, v in (doc.get("results") or {}).items()},
        updated_at=doc.get("updated_at"),
    )


class SubscriptionsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    @staticmethod
    def _id(resident_id: str, template_key: str) -> str:
        return f"{resident_id}:{template_key}"

    async def record(
        self, *, resident_id: str, template_key: str, template_id: str, result: str, now: datetime
    ) -> Subscription:
        """Record one answer to a consent prompt; ``accept`` adds a grant, ``ban`` blocks sends."""
        _id = self._id(resident_id, template_key)
        update: dict[str, Any] = {
            "$set": {"last_result": result, "updated_at": now, "template_id": template_id},
            "$inc": {f"results.{result}": 1, "grants": 1 if result == "accept" else 0},
            "$setOnInsert": {"resident_id": resident_id, "template_key": template_key},
        }
        # WeChat only answers "accept" for a template it has not banned, so an accept lifts a ban.
        if result == "accept":
            update["$set"]["banned"] = False
        elif result == "ban":
            update["$set"]["banned"] = True
        for attempt in range(2):
            try:
                await self.col.update_one({"_id": _id}, update, upsert=True)
                break
            except DuplicateKeyError:  # two first answers at once: the second becomes an update
                if attempt:
                    raise
        doc = await self.col.find_one({"_id": _id})
        assert doc is not None
        return _from_doc(doc)

    async def list_for(self, resident_id: str) -> list[Subscription]:
        """Every template the resident has answered for."""
        return [_from_doc(d) async for d in self.col.find({"resident_id": resident_id}).sort("template_key", 1)]

    async def spend(self, *, resident_id: str, template_key: str, now: datetime) -> bool:
        """Use one grant; False when none is left or the template is banned."""
        res = await self.col.update_one(
            {"_id": self._id(resident_id, template_key), "grants": {"$gt": 0}, "banned": {"$ne": True}},
            {"$inc": {"grants": -1, "spent": 1}, "$set": {"updated_at": now}},
        )
        return res.modified_count == 1

    async def refund(self, *, resident_id: str, template_key: str) -> None:
        """Give back a grant that WeChat did not use (the message was never accepted for sending)."""
        await self.col.update_one({"_id": self._id(resident_id, template_key)}, {"$inc": {"grants": 1, "spent": -1}})

    async def exhaust(self, *, resident_id: str, template_key: str, now: datetime) -> None:
        """WeChat says the person has no quota left (43101): our count was wrong, so zero it."""
        await self.col.update_one(
            {"_id": self._id(resident_id, template_key)},
            {"$set": {"grants": 0, "updated_at": now, "last_refused_at": now}, "$inc": {"refused": 1}},
        )
