"""Notification preferences (collection ``notification_preferences``), one per person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from service.notify.models import Preferences

COLLECTION = "notification_preferences"


def _from_doc(doc: dict[str, Any]) -> Preferences:
    # Event types contain dots, which MongoDB field names must not; they are stored with ':'.
    events = doc.get("events") or {}
    return Preferences(
        recipient=doc["_id"],
        events={str(k).replace(":", "."): {str(c): bool(v) for c, v in (m or {}).items()} for k, m in events.items()},
        quiet_hours=doc.get("quiet_hours"),
        updated_at=doc.get("updated_at"),
    )


class PreferencesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]

    async def get(self, recipient: str) -> Preferences | None:
        """The stored preferences of a person, or None when they never set any."""
        doc = await self.col.find_one({"_id": recipient})
        return None if doc is None else _from_doc(doc)

    async def get_many(self, recipients: list[str]) -> dict[str, Preferences]:
        """Stored preferences of several people at once."""
        out: dict[str, Preferences] = {}
        async for doc in self.col.find({"_id": {"$in": recipients}}):
            out[doc["_id"]] = _from_doc(doc)
        return out

    async def put(self, prefs: Preferences, *, now: datetime) -> None:
        """Replace a person's preferences."""
        doc = {
            "events": {k.replace(".", ":"): v for k, v in prefs.events.items()},
            "quiet_hours": prefs.quiet_hours,
            "updated_at": now,
        }
        await self.col.replace_one({"_id": prefs.recipient}, doc, upsert=True)
