"""The built console under /console/: cache lifetimes, the SPA fallback and a strict CSP."""

from __future__ import annotations

import re
from typing import Any

import pytest

from handlers.console import CONSOLE_DIR, console_built

pytestmark = pytest.mark.skipif(not console_built(), reason="web/dist/console is not built (make test builds it)")


async def test_front_page_redirects_to_the_console(client: Any) -> None:
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/console/"


async def test_index_is_revalidated_and_has_a_strict_csp(client: Any) -> None:
    resp = await client.get("/console/")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Cache-Control"] == "no-cache"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "default-src 'none'" in csp
    html = await resp.text()
    # No inline script and nothing from another origin.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "http://" not in html and "https://" not in html


async def test_client_routes_get_the_app_page(client: Any) -> None:
    for path in ("/console/queue", "/console/cases/abc123", "/console/login?redirect=/queue"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert '<div id="app">' in await resp.text()


async def test_hashed_assets_are_cached_for_a_year(client: Any) -> None:
    html = await (await client.get("/console/")).text()
    [script] = re.findall(r'src="(/console/assets/[^"]+\.js)"', html)
    resp = await client.get(script)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Type"].startswith("text/javascript")


async def test_assets_are_sent_gzipped_to_clients_that_accept_it(client: Any) -> None:
    html = await (await client.get("/console/")).text()
    [script] = re.findall(r'src="(/console/assets/[^"]+\.js)"', html)
    resp = await client.get(script, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers.get("Content-Encoding") == "gzip"


async def test_missing_assets_and_escapes_are_404_not_the_app_page(client: Any) -> None:
    for path in ("/console/assets/nope.js", "/console/assets/%2e%2e/%2e%2e/%2e%2e/run.py", "/console/main.js"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.headers["Content-Type"].startswith("application/problem+json"), path


async def test_the_county_map_data_is_served(client: Any) -> None:
    resp = await client.get("/console/data/anhui_counties.geojson")
    assert resp.status == 200
    body = await resp.json(content_type=None)
    assert body["type"] == "FeatureCollection"
    assert len(body["features"]) > 100


def test_the_build_writes_into_web_dist_console() -> None:
    assert (CONSOLE_DIR / "index.html").is_file()
    assert any((CONSOLE_DIR / "assets").glob("*.js.gz"))
