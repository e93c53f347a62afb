"""Photo uploads: images only, recognised by their bytes, size-limited, readable by owner and case viewers.

The declared content type and file name are not trusted: the first bytes decide whether
the file is a JPEG, PNG, WebP, GIF or HEIC/HEIF image. The size limit
(``settings.max_upload_bytes``) is enforced while the bytes stream in, so an oversize
upload is cut off at the limit, not read to its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from service.cases import reads as case_reads
from service.cases.access import access_of
from service.common.context import Context
from service.common.errors import NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError
from service.common.models import Principal
from service.uploads.repository import StoredUpload, UploadsRepository

Upload = StoredUpload
SNIFF_BYTES = 16
_HEIC_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic"}
_HEIF_BRANDS = {b"mif1": "image/heif", b"msf1": "image/heif", b"hevc": "image/heif", b"hevx": "image/heif"}
ALLOWED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif")


def sniff_image_type(head: bytes) -> str | None:
    """The image content type the leading bytes announce, or None when they are no image we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return _HEIC_BRANDS.get(brand) or _HEIF_BRANDS.get(brand)
    return None


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError("upload_too_large", f"The file is larger than {limit} bytes.", limit=limit)


async def _limited(head: bytes, rest: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    size = len(head)
    yield head
    async for chunk in rest:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


async def store_upload(
    *, ctx: Context, principal: Principal, chunks: AsyncIterator[bytes], filename: str | None = None
) -> Upload:
    """Store an image streamed in ``chunks`` for ``principal``; 413/415 errors for oversize or non-images."""
    limit = ctx.settings.max_upload_bytes
    source = aiter(chunks)
    head = b""
    async for chunk in source:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    if len(head) > limit:
        raise _too_large(limit)
    content_type = sniff_image_type(head)
    if content_type is None:
        raise UnsupportedMediaTypeError(
            "unsupported_upload_type",
            "Only images can be uploaded (JPEG, PNG, WebP, GIF or HEIC); this file is not one.",
            allowed=list(ALLOWED_TYPES),
        )
    return await UploadsRepository(ctx.db).save(
        chunks=_limited(head, source, limit),
        filename=(filename or "upload")[:255],
        owner=principal.subject,
        owner_role=principal.role,
        content_type=content_type,
    )


async def _may_read(ctx: Context, principal: Principal, upload: Upload) -> bool:
    if upload.owner == principal.subject or principal.role == "admin":
        return True
    # Photos are personal data: staff, integrators and residents see them through a case they may
    # see (a resident the photos of the resolution of their own case).
    cases = await case_reads.cases_with_photo(ctx=ctx, upload_id=upload.id)
    return any(access_of(principal, parties).can_view for parties in cases)


async def get_upload(*, ctx: Context, principal: Principal, upload_id: str) -> Upload:
    """An upload's description for its owner, or for whoever can see a case it is attached to."""
    upload = await UploadsRepository(ctx.db).get(upload_id)
    if not await _may_read(ctx, principal, upload):
        # Not 403: whether someone else's upload exists is not the caller's business.
        raise NotFoundError("upload_not_found", "There is no such upload.")
    return upload


async def open_upload(*, ctx: Context, principal: Principal, upload_id: str) -> tuple[Upload, AsyncIterator[bytes]]:
    """An upload and its bytes as chunks, for whoever may read it (see get_upload)."""
    upload = await get_upload(ctx=ctx, principal=principal, upload_id=upload_id)
    return upload, UploadsRepository(ctx.db).chunks(upload.id)


async def open_referenced_upload(*, ctx: Context, upload_id: str) -> tuple[Upload, AsyncIterator[bytes]]:
    """Read port for an area that has decided access itself (a station's evidence photos): the upload and its bytes."""
    repo = UploadsRepository(ctx.db)
    upload = await repo.get(upload_id)
    return upload, repo.chunks(upload.id)
