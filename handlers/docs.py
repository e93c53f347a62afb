"""The API description: the OpenAPI document and the browsable page at /docs, served locally."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.openapi import openapi_json

routes = web.RouteTableDef()

SWAGGER_UI_VERSION = "5.35.0"
STATIC_DIR = Path(__file__).with_name("static") / "swagger-ui"
# Only these files are served; anything else under /docs/static is a 404.
STATIC_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "huimin-docs.js": "text/javascript",
    "LICENSE": "text/plain",
    "NOTICE": "text/plain",
}
# The asset URLs carry the version, so a long cache life is safe: an upgrade changes the URL.
STATIC_CACHE = "public, max-age=604800"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

DOCS_HTML = f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>惠民 API 文档 · Huimin API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css?v={SWAGGER_UI_VERSION}">
</head>
<body>
  <noscript>本页需要 JavaScript。The API description itself is at
    <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>
  <script src="/docs/static/huimin-docs.js?v={SWAGGER_UI_VERSION}"></script>
</body>
</html>
"""


@routes.get("/api/v1/openapi.json")
@endpoint(
    "OpenAPI 3.1 description of this API 接口描述",
    tags=("docs",),
    public=True,
    description="Generated from the routes and their schemas; the same document drives /docs.",
)
async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=openapi_json(request.app),
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@routes.get("/docs")
@endpoint("Browsable API documentation", tags=("docs",), public=True, include_in_schema=False)
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=DOCS_HTML,
        content_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": DOCS_CSP, "Referrer-Policy": "no-referrer"},
    )


@routes.get("/docs/static/{name}")
@endpoint("Assets of the documentation page", tags=("docs",), public=True, include_in_schema=False)
async def docs_static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.FileResponse(
        STATIC_DIR / name,
        headers={"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": STATIC_CACHE},
    )
