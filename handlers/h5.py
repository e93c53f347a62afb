"""The resident app (H5, 居民端): the built single-page app under /h5/, served from this process.

The reference client of the WeChat mini program. ``make run`` (and ``make test``) build
``web/`` with APP=h5 into ``web/dist/h5``; this module serves those files with the same
rules as the console (handlers/console.py): hashed assets cached for a year, ``index.html``
revalidated, any other path under ``/h5/`` is a page of the app and gets ``index.html``.
"""

from __future__ import annotations

from aiohttp import web

from handlers.console import PAGE_HEADERS, ROOT, built_app_file
from handlers.endpoint import endpoint

routes = web.RouteTableDef()

H5_DIR = ROOT / "web" / "dist" / "h5"
# The app asks for the phone's position (WGS-84) for routing; nothing else may.
H5_HEADERS = {**PAGE_HEADERS, "Permissions-Policy": "geolocation=(self), camera=(self), microphone=()"}

NOT_BUILT = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>居民端未构建 · Resident app not built</title></head>
<body><p>居民端尚未构建：请运行 <code>make run</code>（它会构建 <code>web/</code>）。</p>
<p>The resident app has not been built: run <code>make run</code>, which builds <code>web/</code>.</p></body></html>
"""


def h5_built() -> bool:
    return (H5_DIR / "index.html").is_file()


def _index() -> web.StreamResponse:
    headers = {**H5_HEADERS, "Cache-Control": "no-cache"}
    if not h5_built():
        return web.Response(text=NOT_BUILT, status=503, content_type="text/html", headers=headers)
    return web.FileResponse(H5_DIR / "index.html", headers={**headers, "Content-Type": "text/html; charset=utf-8"})


@routes.get("/h5")
@endpoint("The resident app (redirect to /h5/)", tags=("h5",), public=True, include_in_schema=False)
async def h5_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/h5/")


@routes.get("/h5/{tail:.*}")
@endpoint(
    "The resident app: its files, and index.html for its pages",
    tags=("h5",),
    public=True,
    include_in_schema=False,
)
async def h5_files(request: web.Request) -> web.StreamResponse:
    return built_app_file(H5_DIR, request.match_info["tail"], _index)
