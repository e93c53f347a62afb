"""Named sequences (collection ``counters``): gap-free under concurrency, one document per name.

The increment and the read-back of the new value run in one transaction, so two callers
can never read the same value: on a write conflict one transaction is retried. That avoids
``find_one_and_update``, which scans the whole collection on the embedded server and
sometimes returns nothing for concurrent upserts there (see MONGODB_COMPAT.md).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.storage.transactions import run_transaction

COLLECTION = "counters"


class CountersRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.col = db[COLLECTION]

    async def next(self, name: str) -> int:
        """The next value of sequence ``name`` (1 for a new name)."""
        # Create the document outside the transaction: concurrent upserts of one new _id
        # inside transactions would fail with a duplicate key rather than a retryable conflict.
        with contextlib.suppress(DuplicateKeyError):
            await self.col.update_one({"_id": name}, {"$setOnInsert": {"value": 0}}, upsert=True)

        async def bump(session: AsyncClientSession) -> int:
            await self.col.update_one({"_id": name}, {"$inc": {"value": 1}}, session=session)
            doc: dict[str, Any] | None = await self.col.find_one({"_id": name}, session=session)
            assert doc is not None
            return int(doc["value"])

        return await run_transaction(self.db, bump)

    async def current(self, name: str) -> int:
        """The last value handed out for ``name`` (0 if none)."""
        doc = await self.col.find_one({"_id": name})
        return int(doc["value"]) if doc else 0
