"""Photo uploads: POST multipart/form-data (field ``file``), GET the bytes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from aiohttp import BodyPartReader, web

from handlers.deadline import deadline_paused
from handlers.endpoint import endpoint
from handlers.io import body_timeout_error, json_response, within_body_timeout
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.uploads import UploadSchema
from service.common.errors import (
    BadRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.uploads import service as uploads

routes = web.RouteTableDef()
T = TypeVar("T")
UPLOAD_ROLES = ("resident", "worker", "station_head", "supervisor", "admin", "client")
READ_CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024


async def _file_part(request: web.Request) -> BodyPartReader:
    """The ``file`` part of a multipart/form-data body, positioned at its first byte."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", "Send the photo as multipart/form-data with the image in the field 'file'."
        )
    limit = request.app[CTX].settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLargeError("upload_too_large", f"The file is larger than {limit} bytes.", limit=limit)
    reader = await request.multipart()
    # Each step waits on the client, so each is bounded like the file's chunks.
    while (part := await _multipart_step(request, reader.next())) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            return part
        await _multipart_step(request, part.release())
    raise ValidationFailedError("file_missing", "The form has no field 'file'.", errors={"file": ["Missing file."]})


def _malformed_multipart() -> BadRequestError:
    return BadRequestError(
        "malformed_body", "The multipart body is empty or malformed: it has no complete part named 'file'."
    )


async def _multipart_step(request: web.Request, step: Awaitable[T]) -> T:
    """One read of the multipart body, within the body timeout; aiohttp's ValueError for a body
    without boundaries or cut short (an empty body among them) is the caller's fault: 400."""
    try:
        return await within_body_timeout(request, step)
    except ValueError:
        raise _malformed_multipart() from None


async def _chunks(request: web.Request, part: BodyPartReader, stall_seconds: float) -> AsyncIterator[bytes]:
    """The file's bytes; a client that stalls longer than ``stall_seconds`` between chunks gets 408.

    The request's deadline stops while a chunk is awaited: it bounds the store, not the client.
    """
    while True:
        try:
            with deadline_paused(request):
                async with asyncio.timeout(stall_seconds):
                    chunk = await part.read_chunk(READ_CHUNK)
        except TimeoutError:
            raise body_timeout_error(stall_seconds) from None
        except ValueError:  # the body ended inside the file part
            raise _malformed_multipart() from None
        if not chunk:
            return
        yield chunk


@routes.post("/api/v1/uploads")
@endpoint(
    "Upload a photo",
    tags=("uploads",),
    description="multipart/form-data with the image in the field `file`. JPEG, PNG, WebP, GIF or HEIC, "
    "recognised from the bytes; at most the configured size.",
    body_kind="multipart",
    response=UploadSchema(),
    status=201,
    roles=UPLOAD_ROLES,
    scopes=("cases:write",),
    problems=(408, 413, 415, 422),
)
async def create_upload(request: web.Request) -> web.Response:
    part = await _file_part(request)
    ctx = request.app[CTX]
    chunks = _chunks(request, part, ctx.settings.body_read_timeout_seconds)
    upload = await uploads.store_upload(ctx=ctx, principal=principal_of(request), chunks=chunks, filename=part.filename)
    return json_response(UploadSchema(), upload, status=201)


@routes.get("/api/v1/uploads/{upload_id}")
@endpoint(
    "Download a photo",
    tags=("uploads",),
    description="The image bytes, for the uploader and staff.",
    response_content_type="image/*",
    roles=UPLOAD_ROLES,
    scopes=("cases:read",),
    problems=(404,),
)
async def read_upload(request: web.Request) -> web.StreamResponse:
    upload, chunks = await uploads.open_upload(
        ctx=request.app[CTX], principal=principal_of(request), upload_id=request.match_info["upload_id"]
    )
    response = web.StreamResponse(
        headers={"Content-Type": upload.content_type, "Content-Length": str(upload.size), "ETag": f'"{upload.sha256}"'}
    )
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
