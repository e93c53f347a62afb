"""Named sequences (collection ``counters``): gap-free under concurrency, one document per name.

A value is taken by compare-and-set: read the document, then a conditional update from that
value to the next; of two callers that read the same value exactly one update matches and the
other reads again. No transaction is held, so a process that dies half-way holds nothing: a
transaction left open by a killed process would block every writer of a hot counter until the
server's transaction lifetime ran out. (``find_one_and_update`` is avoided: it scans the whole
collection on the embedded server and sometimes returns nothing for concurrent upserts there,
see MONGODB_COMPAT.md.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.common.errors import UnavailableError

COLLECTION = "counters"
MAX_ATTEMPTS = 500  # of compare-and-set; each miss means another caller got a value


class CountersRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.col = db[COLLECTION]

    async def next(self, name: str) -> int:
        """The next value of sequence ``name`` (1 for a new name)."""
        delay = 0.002
        for _ in range(MAX_ATTEMPTS):
            doc = await self.col.find_one({"_id": name}, {"value": 1})
            if doc is None:
                # A new name (the first case of a county's day): create the document at 0 and
                # read again. Of concurrent upserts of one new _id all but one fail with a
                # duplicate key, which is fine: the document exists.
                with contextlib.suppress(DuplicateKeyError):
                    await self.col.update_one({"_id": name}, {"$setOnInsert": {"value": 0}}, upsert=True)
                continue
            value = int(doc["value"])
            taken = await self.col.update_one({"_id": name, "value": value}, {"$set": {"value": value + 1}})
            if taken.modified_count == 1:
                return value + 1
            # Someone else took this value; spread the retries of a busy counter a little.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.05)
        raise UnavailableError("database_busy", "The database is busy; please retry shortly.", retry_after=1)

    async def current(self, name: str) -> int:
        """The last value handed out for ``name`` (0 if none)."""
        doc = await self.col.find_one({"_id": name})
        return int(doc["value"]) if doc else 0
