"""Uploaded files (photos) in GridFS, bucket ``uploads`` (``uploads.files`` / ``uploads.chunks``).

Files are written chunk by chunk as they arrive, so an upload never sits whole in memory;
a failed or refused upload is aborted and leaves no chunks behind. The owner, role and the
sniffed content type are kept in the file's ``metadata``; the SHA-256 is computed while
writing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from service.common.errors import NotFoundError
from service.common.ids import is_id, new_id
from service.storage.indexes import declare

BUCKET = "uploads"
CHUNK_BYTES = 255 * 1024
declare(f"{BUCKET}.files", IndexModel([("metadata.owner", ASCENDING), ("uploadDate", ASCENDING)], name="owner_date"))


@dataclasses.dataclass(frozen=True, slots=True)
class StoredUpload:
    """An uploaded file's description (not its bytes)."""

    id: str
    owner: str
    owner_role: str
    content_type: str
    size: int
    sha256: str
    filename: str
    created_at: datetime


def _not_found() -> NotFoundError:
    return NotFoundError("upload_not_found", "There is no such upload.")


def _from_doc(d: dict[str, Any]) -> StoredUpload:
    meta = d.get("metadata") or {}
    return StoredUpload(
        id=str(d["_id"]),
        owner=meta.get("owner", ""),
        owner_role=meta.get("owner_role", ""),
        content_type=meta.get("content_type", "application/octet-stream"),
        size=int(d["length"]),
        sha256=meta.get("sha256", ""),
        filename=d.get("filename", ""),
        created_at=d["uploadDate"],
    )


class UploadsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.bucket = AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES)
        self.files = db[f"{BUCKET}.files"]

    async def save(
        self, *, chunks: AsyncIterator[bytes], filename: str, owner: str, owner_role: str, content_type: str
    ) -> StoredUpload:
        """Write the chunks as one file; an exception from the iterator aborts it and propagates."""
        digest = hashlib.sha256()
        stream = self.bucket.open_upload_stream_with_id(
            new_id(), filename, metadata={"owner": owner, "owner_role": owner_role, "content_type": content_type}
        )
        try:
            async for chunk in chunks:
                digest.update(chunk)
                await stream.write(chunk)
        except BaseException:
            await stream.abort()
            raise
        await stream.close()
        await self.files.update_one({"_id": stream._id}, {"$set": {"metadata.sha256": digest.hexdigest()}})
        return await self.get(str(stream._id))

    async def get(self, upload_id: str) -> StoredUpload:
        """The description of an upload, or NotFoundError ``upload_not_found``."""
        if not is_id(upload_id):
            raise _not_found()
        doc = await self.files.find_one({"_id": upload_id})
        if doc is None:
            raise _not_found()
        return _from_doc(doc)

    async def chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        """The file's bytes, chunk by chunk."""
        try:
            stream = await self.bucket.open_download_stream(upload_id)
        except NoFile:
            raise _not_found() from None
        try:
            while chunk := await stream.readchunk():
                yield chunk
        finally:
            await stream.close()
