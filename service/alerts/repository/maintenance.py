"""The collection ``maintenance``: one open item per device and kind, counting the reports on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.alerts.models import AlertScope, MaintenanceItem
from service.alerts.repository.filters import scope_filter
from service.common.errors import ConflictError, NotFoundError
from service.common.ids import new_id
from service.common.paging import newest_by_new_id, served_with_id_range
from service.storage.indexes import declare

MAINTENANCE = "maintenance"

declare(
    MAINTENANCE,
    IndexModel([("open_key", ASCENDING)], unique=True, sparse=True, name="one_open"),
    IndexModel([("station_id", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)], name="station_status"),
)


def _item(d: dict[str, Any]) -> MaintenanceItem:
    return MaintenanceItem(
        id=str(d["_id"]),
        station_id=d["station_id"],
        device_id=d["device_id"],
        vendor_device_id=d["vendor_device_id"],
        elder_id=d["elder_id"],
        kind=d["kind"],
        status=d["status"],
        first_at=d["first_at"],
        last_at=d["last_at"],
        count=int(d.get("count", 1)),
        done_at=d.get("done_at"),
        done_by=d.get("done_by"),
        note=d.get("note"),
        township=d.get("township"),
    )


class MaintenanceRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[MAINTENANCE]

    async def open_or_count(self, doc: dict[str, Any], at: datetime) -> tuple[str, bool]:
        """Count one more report on the open item of (device, kind), or open one; (item id, opened)."""
        key = f"{doc['device_id']}:{doc['kind']}"
        # Most reports repeat an open item: count first, open only when none is open.
        counted = await self.col.update_one({"open_key": key}, {"$inc": {"count": 1}, "$max": {"last_at": at}})
        if counted.matched_count:
            found = await self.col.find_one({"open_key": key}, {"_id": 1})
            if found is not None:
                return str(found["_id"]), False
        fresh = {"_id": new_id(at), "open_key": key, "status": "open", "first_at": at, "last_at": at, "count": 1, **doc}
        try:
            await self.col.insert_one(fresh)
            return str(fresh["_id"]), True
        except DuplicateKeyError:  # another report opened it at the same moment
            await self.col.update_one({"open_key": key}, {"$inc": {"count": 1}, "$max": {"last_at": at}})
        found = await self.col.find_one({"open_key": key}, {"_id": 1})
        if found is None:  # closed in between: the next report opens a new one
            raise ConflictError("maintenance_changed", "The maintenance item changed; send the report again.")
        return str(found["_id"]), False

    async def get(self, item_id: str) -> MaintenanceItem:
        doc = await self.col.find_one({"_id": item_id})
        if doc is None:
            raise NotFoundError("maintenance_item_not_found", f"There is no maintenance item {item_id!r}.")
        return _item(doc)

    async def close(self, item_id: str, *, by: str, at: datetime, note: str | None) -> bool:
        """Mark an open item done; True if this call did."""
        result = await self.col.update_one(
            {"_id": item_id, "status": "open"},
            {"$set": {"status": "done", "done_at": at, "done_by": by, "note": note}, "$unset": {"open_key": ""}},
        )
        return result.modified_count == 1

    async def page(
        self,
        scope: AlertScope,
        *,
        status: str | None = None,
        device_id: str | None = None,
        before: str | None,
        limit: int,
        now: datetime,
    ) -> list[MaintenanceItem]:
        """Items of ``scope`` (of ``status`` or one device, if given), newest first, below the id ``before``;
        read in windows of time on the id (``newest_by_new_id``) when an index serves the filter with that range."""
        query = scope_filter(scope, status=status, device_id=device_id)

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", DESCENDING).limit(n).to_list()

        windows = served_with_id_range(query, ("station_id", "status"))
        docs = await newest_by_new_id(find, want=limit, now=now, before=before, windows=windows)
        return [_item(d) for d in docs]
