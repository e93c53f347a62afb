"""The staff console (工作台): the built single-page app under /console/, served from this process.

``make run`` (and ``make test``) build ``web/`` into ``web/dist/console``; this module only
serves those files. Hashed assets under ``/console/assets/`` never change at a given URL,
so they are cached for a year; ``index.html`` is revalidated every time so a new build is
picked up at once. Any other path under ``/console/`` is a client route of the app and
gets ``index.html`` (the router in the browser draws the page).
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from handlers.endpoint import endpoint
from service.stations.division_shapes import division_shapes

routes = web.RouteTableDef()

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_DIR = ROOT / "web" / "dist" / "console"
COUNTIES_GEOJSON = ROOT / "data" / "anhui_counties.geojson"

ASSET_CACHE = "public, max-age=31536000, immutable"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self' data:; manifest-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
# Element Plus and ECharts set element styles at run time, hence 'unsafe-inline' for styles
# only; scripts come from this origin alone (no inline script, no CDN).
PAGE_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

NOT_BUILT = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>工作台未构建 · Console not built</title></head>
<body><p>工作台尚未构建：请运行 <code>make run</code>（它会构建 <code>web/</code>）。</p>
<p>The console has not been built: run <code>make run</code>, which builds <code>web/</code>.</p></body></html>
"""


def console_built() -> bool:
    return (CONSOLE_DIR / "index.html").is_file()


def _index() -> web.StreamResponse:
    headers = {**PAGE_HEADERS, "Cache-Control": "no-cache"}
    if not console_built():
        return web.Response(text=NOT_BUILT, status=503, content_type="text/html", headers=headers)
    return web.FileResponse(CONSOLE_DIR / "index.html", headers={**headers, "Content-Type": "text/html; charset=utf-8"})


@routes.get("/")
@endpoint("The front page: the staff console", tags=("console",), public=True, include_in_schema=False)
async def front_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


@routes.get("/console")
@endpoint("The staff console (redirect to /console/)", tags=("console",), public=True, include_in_schema=False)
async def console_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/console/")


@routes.get("/console/data/anhui_counties.geojson")
@endpoint("County polygons of Anhui for the console's map", tags=("console",), public=True, include_in_schema=False)
async def console_counties(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        COUNTIES_GEOJSON,
        headers={"Content-Type": "application/geo+json", "Cache-Control": "public, max-age=86400"},
    )


@routes.get("/console/data/anhui_divisions.json")
@endpoint(
    "Simplified outlines of Anhui's cities and counties as SVG paths, for the console's maps",
    tags=("console",),
    public=True,
    include_in_schema=False,
)
async def console_division_shapes(request: web.Request) -> web.StreamResponse:
    shapes = await asyncio.to_thread(division_shapes)  # built once per process (~1 s), then cached
    headers = {
        "Cache-Control": "public, max-age=86400",
        "ETag": shapes.etag,
        "Vary": "Accept-Encoding",
        "Content-Type": "application/json",
    }
    if shapes.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=shapes.gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return web.Response(body=shapes.body, headers=headers)


@routes.get("/console/{tail:.*}")
@endpoint(
    "The staff console: its files, and index.html for its pages",
    tags=("console",),
    public=True,
    include_in_schema=False,
)
async def console_files(request: web.Request) -> web.StreamResponse:
    return built_app_file(CONSOLE_DIR, request.match_info["tail"], _index)


def built_app_file(app_dir: Path, tail: str, index: Callable[[], web.StreamResponse]) -> web.StreamResponse:
    """One file of a built app (console or H5): a hashed asset, a top-level file, or its index page."""
    if tail.startswith("assets/"):
        path = (app_dir / tail).resolve()
        # Only regular files inside the build's assets folder; '..' or symlinks out are a 404.
        if not path.is_relative_to(app_dir / "assets") or not path.is_file():
            raise web.HTTPNotFound()
        ctype, _ = mimetypes.guess_type(path.name)
        if path.suffix == ".js":
            ctype = "text/javascript"
        return web.FileResponse(
            path, headers={"Cache-Control": ASSET_CACHE, "Content-Type": ctype or "application/octet-stream"}
        )
    top = (app_dir / tail).resolve()
    if tail and "/" not in tail and top.parent == app_dir and top.is_file() and top.name != "index.html":
        # Files the build puts next to index.html (favicon): short cache, the name is not hashed.
        return web.FileResponse(top, headers={"Cache-Control": "public, max-age=3600"})
    if tail.startswith(("api/", "data/")) or Path(tail).suffix in {".js", ".css", ".map", ".json"}:
        raise web.HTTPNotFound()
    return index()
