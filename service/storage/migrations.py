"""Start-up migrations of stored data (idempotent, cheap when there is nothing to do).

Ids: documents written before the id convention of ``service.common.ids`` had BSON ObjectId
``_id`` values in the collections listed in ``REKEYED``, while every reference to them was
stored as a string, so lookups by a stored reference found nothing. Each such document is
re-keyed to the string form of its id: deleted and inserted again in one transaction (an
``_id`` cannot be updated in place, and the unique indexes of these collections would refuse
a copy made before the delete). References need no change: they already hold the string.
Uploaded files are stored in GridFS, whose chunks point at their file by ``files_id``; both
move together.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from service.storage.transactions import run_transaction

log = logging.getLogger("huimin.migrations")

# Named here, not imported from the areas that own them: storage sits below every area, and a
# migration describes the data as it was stored, which does not follow later renames.
REKEYED = ("staff", "residents", "stations", "elders", "service_types")
GRIDFS_BUCKETS = ("uploads",)
OBJECT_ID = {"$type": "objectId"}
# One document per finished migration, so a start after it reads one document, not every collection.
MIGRATIONS = "migrations"
STRING_IDS = "string_ids"


async def _rekey(db: AsyncDatabase[dict[str, Any]], name: str) -> int:
    col = db[name]
    moved = 0
    async for doc in col.find({"_id": OBJECT_ID}):

        async def move(session: Any, doc: dict[str, Any] = doc) -> None:
            await col.delete_one({"_id": doc["_id"]}, session=session)
            await col.insert_one({**doc, "_id": str(doc["_id"])}, session=session)

        await run_transaction(db, move)
        moved += 1
    return moved


async def _rekey_gridfs(db: AsyncDatabase[dict[str, Any]], bucket: str) -> int:
    files, chunks = db[f"{bucket}.files"], db[f"{bucket}.chunks"]
    moved = 0
    async for doc in files.find({"_id": OBJECT_ID}):

        async def move(session: Any, doc: dict[str, Any] = doc) -> None:
            new = str(doc["_id"])
            await chunks.update_many({"files_id": doc["_id"]}, {"$set": {"files_id": new}}, session=session)
            await files.delete_one({"_id": doc["_id"]}, session=session)
            await files.insert_one({**doc, "_id": new}, session=session)

        await run_transaction(db, move)
        moved += 1
    return moved


async def rekey_object_ids(db: AsyncDatabase[dict[str, Any]]) -> dict[str, int]:
    """Give every document that still has an ObjectId ``_id`` its string id; returns counts moved."""
    if await db[MIGRATIONS].find_one({"_id": STRING_IDS}) is not None:
        return {}
    moved: dict[str, int] = {}
    for name in REKEYED:
        moved[name] = await _rekey(db, name)
    for bucket in GRIDFS_BUCKETS:
        moved[f"{bucket}.files"] = await _rekey_gridfs(db, bucket)
    done = {k: v for k, v in moved.items() if v}
    if done:
        log.info("re-keyed documents to string ids", extra={"moved": done})
    await db[MIGRATIONS].update_one({"_id": STRING_IDS}, {"$set": {"moved": moved}}, upsert=True)
    return moved
