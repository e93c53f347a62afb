"""Uploads in GridFS: written chunk by chunk with their hash, read back whole, aborted cleanly."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.uploads.repository import CHUNK_BYTES, StoredUpload, UploadsRepository
from tests.factories import make_photo, make_wechat_resident, png_bytes


async def test_a_stored_upload_reads_back_byte_for_byte_with_its_description(ctx: Context) -> None:
    resident = await make_wechat_resident(ctx)
    photo = await make_photo(ctx, resident)
    repo = UploadsRepository(ctx.db)
    got = await repo.get(photo.id)
    assert isinstance(got, StoredUpload) and got == photo
    assert (got.owner, got.owner_role, got.content_type) == (resident.id, "resident", "image/png")
    data = b"".join([c async for c in repo.chunks(photo.id)])
    assert data == png_bytes() and got.size == len(data) and got.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_large_file_spans_chunks_and_its_hash_covers_all_of_them(ctx: Context) -> None:
    resident = await make_wechat_resident(ctx)
    parts = [bytes([i]) * (CHUNK_BYTES // 2 + 7) for i in range(5)]

    async def arriving() -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    repo = UploadsRepository(ctx.db)
    stored = await repo.save(
        chunks=arriving(), filename="scan.png", owner=resident.id, owner_role="resident", content_type="image/png"
    )
    whole = b"".join(parts)
    read = [c async for c in repo.chunks(stored.id)]
    assert len(read) == 3 and b"".join(read) == whole
    assert stored.size == len(whole) and stored.sha256 == hashlib.sha256(whole).hexdigest()


async def test_an_aborted_upload_leaves_nothing_and_missing_ones_are_not_found(ctx: Context) -> None:
    resident = await make_wechat_resident(ctx)
    repo = UploadsRepository(ctx.db)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (CHUNK_BYTES + 10)
        raise ValueError("the connection dropped")

    with pytest.raises(ValueError):
        await repo.save(chunks=broken(), filename="a.png", owner=resident.id, owner_role="resident", content_type="x")
    assert await repo.files.count_documents({}) == 0
    assert await ctx.db["uploads.chunks"].count_documents({}) == 0
    for missing in ("not-an-id", resident.id):
        with pytest.raises(NotFoundError) as exc:
            await repo.get(missing)
        assert exc.value.code == "upload_not_found"
    with pytest.raises(NotFoundError):
        [c async for c in repo.chunks(resident.id)]
