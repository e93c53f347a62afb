"""Divisions for address pickers: one cacheable request per level."""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import read_query
from handlers.keys import CTX
from schemas.divisions import DivisionListSchema, DivisionQuerySchema
from service.stations import divisions

routes = web.RouteTableDef()
CACHE_CONTROL = "public, max-age=86400"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


@routes.get("/api/v1/divisions")
@endpoint(
    "Walk or search Anhui's divisions: province, city, county, township (with its station)",
    description="Without parent: the province. With parent: its children. With q: matching divisions under parent "
    "(Chinese name part, pinyin or pinyin initials). Answers carry an ETag and Cache-Control max-age of a day; "
    "a conditional GET with If-None-Match answers 304 while the stations and the division data are unchanged.",
    tags=("divisions",),
    public=True,
    query=DivisionQuerySchema(),
    response=DivisionListSchema(),
    problems=(404, 422),
)
async def list_divisions(request: web.Request) -> web.StreamResponse:
    query = read_query(request, DivisionQuerySchema())
    listing = await divisions.list_divisions(ctx=request.app[CTX], **query)
    body = json.dumps(
        DivisionListSchema().dump({"items": listing.items, "next_cursor": None}), ensure_ascii=False
    ).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", charset="utf-8", headers=headers)
