"""The built resident app under /h5/: the console's serving rules, a strict CSP, no CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest

from handlers.h5 import H5_DIR, h5_built

pytestmark = pytest.mark.skipif(not h5_built(), reason="web/dist/h5 is not built (make test builds it)")


async def test_h5_without_slash_redirects(client: Any) -> None:
    resp = await client.get("/h5", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == "/h5/"


async def test_index_is_revalidated_with_a_strict_csp_and_may_ask_for_the_position(client: Any) -> None:
    resp = await client.get("/h5/")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-cache"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp
    assert "geolocation=(self)" in resp.headers["Permissions-Policy"]
    html = await resp.text()
    assert '<div id="app">' in html and 'name="viewport"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "http://" not in html and "https://" not in html


async def test_pages_of_the_app_get_its_index(client: Any) -> None:
    for path in ("/h5/cases", "/h5/cases/abc123", "/h5/services/dibao_application/apply", "/h5/login?redirect=/cases"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert "惠民服务" in await resp.text()


async def test_hashed_assets_are_cached_for_a_year_and_sent_gzipped(client: Any) -> None:
    html = await (await client.get("/h5/")).text()
    [script] = re.findall(r'src="(/h5/assets/[^"]+\.js)"', html)
    resp = await client.get(script, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers.get("Content-Encoding") == "gzip"


async def test_missing_assets_and_escapes_are_404(client: Any) -> None:
    for path in ("/h5/assets/nope.js", "/h5/assets/%2e%2e/%2e%2e/%2e%2e/run.py", "/h5/main.js", "/h5/api/v1/cases"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.headers["Content-Type"].startswith("application/problem+json"), path


def test_the_build_names_no_other_origin() -> None:
    # Vant's icon font names a CDN copy after its inline one; the build keeps the inline one only.
    for asset in (H5_DIR / "assets").glob("*.css"):
        assert not re.search(r"url\((['\"])?(https?:)?//", asset.read_text()), asset.name
