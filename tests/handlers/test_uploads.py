"""Photo uploads through the HTTP API, stored in GridFS."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.models import Principal, Role, utcnow
from service.identity.tokens import issue_access_token

LIMIT = 4096


def png(width: int = 4, height: int = 4) -> bytes:
    """A real, minimal RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(range(width * 3)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bearer(
    settings: Settings, subject: str, role: Role = "resident", scopes: frozenset[str] = frozenset()
) -> dict[str, str]:
    principal = Principal(subject=subject, role=role, scopes=scopes, station_id="s1" if role == "worker" else None)
    token, _ = issue_access_token(settings=settings, principal=principal, now=utcnow())
    return {"Authorization": f"Bearer {token}"}


def form(data: bytes, filename: str = "photo.png", content_type: str = "image/png") -> aiohttp.FormData:
    fd = aiohttp.FormData()
    fd.add_field("note", "门口台阶破损")
    fd.add_field("file", data, filename=filename, content_type=content_type)
    return fd


@pytest.fixture
async def api(aiohttp_client: Any, settings: Settings) -> Any:
    return await aiohttp_client(create_app(settings.replace(max_upload_bytes=LIMIT)))


async def stored_counts(api: Any) -> tuple[int, int]:
    db = api.app[CTX].db
    return await db["uploads.files"].count_documents({}), await db["uploads.chunks"].count_documents({})


async def test_image_roundtrip_for_owner_and_admin(api: Any, settings: Settings) -> None:
    image = png()
    resp = await api.post("/api/v1/uploads", data=form(image), headers=bearer(settings, "u1"))
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {"id", "content_type", "size", "sha256", "created_at"}
    assert body["content_type"] == "image/png"
    assert body["size"] == len(image)
    assert body["sha256"] == hashlib.sha256(image).hexdigest()
    for headers in (bearer(settings, "u1"), bearer(settings, "a1", "admin")):
        got = await api.get(f"/api/v1/uploads/{body['id']}", headers=headers)
        assert got.status == 200
        assert got.content_type == "image/png"
        assert await got.read() == image


async def test_another_resident_cannot_read_it(api: Any, settings: Settings) -> None:
    resp = await api.post("/api/v1/uploads", data=form(png()), headers=bearer(settings, "u1"))
    upload_id = (await resp.json())["id"]
    got = await api.get(f"/api/v1/uploads/{upload_id}", headers=bearer(settings, "u2"))
    assert got.status == 404
    assert (await got.json())["code"] == "upload_not_found"


async def test_declared_type_is_ignored_bytes_decide(api: Any, settings: Settings) -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
    resp = await api.post("/api/v1/uploads", data=form(jpeg, "x.txt", "text/plain"), headers=bearer(settings, "u1"))
    assert resp.status == 201
    assert (await resp.json())["content_type"] == "image/jpeg"


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7 not an image" + b"\x00" * 100, b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"MZ\x90\x00", b""],
)
async def test_non_image_is_refused(api: Any, settings: Settings, data: bytes) -> None:
    resp = await api.post("/api/v1/uploads", data=form(data, "photo.png", "image/png"), headers=bearer(settings, "u1"))
    assert resp.status == 415
    assert (await resp.json())["code"] == "unsupported_upload_type"
    assert await stored_counts(api) == (0, 0)


async def test_oversize_upload_is_refused_and_leaves_nothing(api: Any, settings: Settings) -> None:
    too_big = png() + b"\x00" * LIMIT
    resp = await api.post("/api/v1/uploads", data=form(too_big), headers=bearer(settings, "u1"))
    assert resp.status == 413
    assert (await resp.json())["code"] == "upload_too_large"
    assert await stored_counts(api) == (0, 0)


async def test_oversize_chunked_upload_is_cut_off_while_streaming(api: Any, settings: Settings) -> None:
    boundary = "huiminboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head + png()
        for _ in range(8):  # 8 KiB of image data against a 4 KiB limit, without a Content-Length
            yield b"\x00" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**bearer(settings, "u1"), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = await api.post("/api/v1/uploads", data=body(), headers=headers)
    assert resp.status == 413
    assert (await resp.json())["code"] == "upload_too_large"
    assert await stored_counts(api) == (0, 0)


async def test_upload_exactly_at_the_limit_is_accepted(api: Any, settings: Settings) -> None:
    image = png()
    image += b"\x00" * (LIMIT - len(image))
    resp = await api.post("/api/v1/uploads", data=form(image), headers=bearer(settings, "u1"))
    assert resp.status == 201
    assert (await resp.json())["size"] == LIMIT


async def test_form_without_file_is_422(api: Any, settings: Settings) -> None:
    fd = aiohttp.FormData()
    fd.add_field("note", "x")
    fd.add_field("photo", b"\x89PNG\r\n\x1a\n", filename="a.png")
    resp = await api.post("/api/v1/uploads", data=fd, headers=bearer(settings, "u1"))
    assert resp.status == 422
    assert (await resp.json())["code"] == "file_missing"


async def test_multipart_part_with_malformed_header_is_400(api: Any, settings: Settings) -> None:
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="\x0bfile"\r\n\r\nx\r\n--{boundary}--\r\n').encode()
    headers = {**bearer(settings, "u1"), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = await api.post("/api/v1/uploads", data=body, headers=headers)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["code"] == "malformed_body"


async def test_json_body_is_415(api: Any, settings: Settings) -> None:
    resp = await api.post("/api/v1/uploads", json={"file": "x"}, headers=bearer(settings, "u1"))
    assert resp.status == 415
    assert (await resp.json())["code"] == "unsupported_media_type"


async def test_client_needs_cases_write_scope(api: Any, settings: Settings) -> None:
    resp = await api.post(
        "/api/v1/uploads", data=form(png()), headers=bearer(settings, "c1", "client", frozenset({"cases:read"}))
    )
    assert resp.status == 403
    assert (await resp.json())["code"] == "insufficient_scope"
    ok = await api.post(
        "/api/v1/uploads", data=form(png()), headers=bearer(settings, "c1", "client", frozenset({"cases:write"}))
    )
    assert ok.status == 201


async def test_anonymous_upload_is_401(api: Any) -> None:
    resp = await api.post("/api/v1/uploads", data=form(png()))
    assert resp.status == 401


@pytest.mark.parametrize("upload_id", ["nope", "0123456789abcdef01234567"])
async def test_missing_upload_is_404(api: Any, settings: Settings, upload_id: str) -> None:
    got = await api.get(f"/api/v1/uploads/{upload_id}", headers=bearer(settings, "u1"))
    assert got.status == 404
    assert (await got.json())["code"] == "upload_not_found"
