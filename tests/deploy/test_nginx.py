"""The deployment recipe of docs/deployment.md, run: two web processes and a worker behind nginx.

nginx runs the repository's own server directives (``deploy/nginx/huimin-locations.conf``,
included verbatim by ``loadtest.nginx.Nginx``); the web processes are ``run.py serve`` with
background work off and the background work runs in one ``run.py worker``, all on this
test's own database and Redis prefix.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from config import Settings
from loadtest.cluster import WebProcess
from loadtest.nginx import LOCATIONS, WEB_DIST, Nginx, nginx_binary
from run import open_context
from service.storage.embedded import free_port
from tests.factories import bearer_for, case_body, make_phone_resident, make_staff, make_station

pytestmark = pytest.mark.slow


def need_nginx() -> None:
    """Skip where nginx is not installed, except in CI (.ci/run installs it), where that fails."""
    if nginx_binary() is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("nginx is missing: .ci/run installs nginx-light (apt-get install nginx-light)")
    pytest.skip("nginx is not installed (Debian: apt-get install nginx-light); the nginx recipe is not tested here")


class Deployment:
    def __init__(self, base: str, webs: list[WebProcess], headers: dict[str, dict[str, str]], body: dict[str, Any]):
        self.base, self.webs, self.headers, self.body = base, webs, headers, body


@pytest.fixture
async def deployment(settings: Settings, tmp_path: Path) -> AsyncIterator[Deployment]:
    need_nginx()
    for app in ("console", "h5"):
        assert (WEB_DIST / app / "index.html").is_file(), f"build the front ends first: make console h5 ({app})"
    ctx, close = await open_context(settings)
    try:
        station = await make_station(ctx)
        worker = await make_staff(ctx, role="worker", station_id=station.id)
        resident = await make_phone_resident(ctx)
        body = await case_body(ctx)
    finally:
        await close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env.update(
        HUIMIN_ENV=settings.env,
        HUIMIN_MONGODB_URI=settings.mongodb_uri,
        HUIMIN_MONGODB_DB=settings.mongodb_db,
        HUIMIN_REDIS_URL=settings.redis_url,
        HUIMIN_REDIS_PREFIX=settings.redis_prefix,
        HUIMIN_DATA_DIR=str(tmp_path),
        HUIMIN_LOG_LEVEL="WARNING",
        HUIMIN_STREAM_HEARTBEAT_SECONDS="1",
    )
    webs = [
        WebProcess(slot=i, port=free_port(), env={**env, "HUIMIN_BACKGROUND_TASKS": "false"}, logdir=tmp_path)
        for i in range(2)
    ]
    bg = WebProcess(slot=0, port=0, env={**env, "HUIMIN_BACKGROUND_TASKS": "true"}, logdir=tmp_path, command="worker")
    nginx = Nginx(tmp_path / "nginx", free_port(), [p.port for p in webs])
    try:
        await asyncio.gather(*(p.start() for p in [*webs, bg]))
        base = nginx.start()
        headers = {"resident": bearer_for(settings, resident), "worker": bearer_for(settings, worker)}
        yield Deployment(base, webs, headers, body)
    finally:
        nginx.stop()
        for p in [*webs, bg]:
            await asyncio.to_thread(p.stop, 20.0)


async def _next_event(stream: aiohttp.StreamReader, case_id: str, timeout: float) -> dict[str, Any]:
    """Read SSE lines until an event about ``case_id`` arrives."""
    deadline = time.monotonic() + timeout
    while True:
        line = await asyncio.wait_for(stream.readline(), max(0.1, deadline - time.monotonic()))
        if line.startswith(b"data: "):
            event = json.loads(line[6:])
            if event.get("case_id") == case_id:
                return dict(event)


async def test_submission_list_live_feed_and_front_ends_through_nginx(deployment: Deployment) -> None:
    d = deployment
    async with aiohttp.ClientSession() as s:
        token = d.headers["worker"]["Authorization"].removeprefix("Bearer ")
        # The live feed through the proxy, opened as the browser's EventSource opens it.
        async with s.get(
            f"{d.base}/api/v1/stream?access_token={token}", timeout=aiohttp.ClientTimeout(total=30)
        ) as feed:
            assert feed.status == 200
            assert feed.headers["Content-Type"].startswith("text/event-stream")
            assert "Content-Encoding" not in feed.headers
            assert await asyncio.wait_for(feed.content.readline(), 5) == b"retry: 3000\n"

            key = uuid.uuid4().hex
            async with s.post(
                f"{d.base}/api/v1/cases",
                json=d.body,
                headers={**d.headers["resident"], "Idempotency-Key": key},
            ) as r:
                assert r.status == 201, await r.text()
                case = await r.json()
                assert r.headers.get("X-Request-ID")
            assert case["status"] == "dispatched"
            # The worker process publishes the event; it reaches this stream unbuffered.
            event = await _next_event(feed.content, case["id"], timeout=15)
            assert event["type"] == "case.created"

        async with s.get(f"{d.base}/api/v1/cases?limit=20", headers=d.headers["resident"]) as r:
            assert r.status == 200
            assert [c["id"] for c in (await r.json())["items"]] == [case["id"]]

        # The front ends: index.html from the app (its CSP), hashed assets from disk, gzipped.
        for app in ("console", "h5"):
            async with s.get(f"{d.base}/{app}/", headers={"Accept-Encoding": "gzip"}) as r:
                assert r.status == 200
                assert "Content-Security-Policy" in r.headers  # index.html comes from the app
                html = await r.text()
            asset = re.search(rf'src="(/{app}/assets/[^"]+\.js)"', html)
            assert asset, html[:500]
            async with s.get(f"{d.base}{asset.group(1)}", headers={"Accept-Encoding": "gzip"}) as r:
                assert r.status == 200
                assert r.headers["Content-Encoding"] == "gzip"
                assert "immutable" in r.headers["Cache-Control"]
                on_disk = (WEB_DIST / asset.group(1).lstrip("/")).read_bytes()
                assert await r.read() == on_disk  # decompressed by the client

        # A body over the proxy's limit: problem JSON from nginx, not its HTML page.
        async with s.post(
            f"{d.base}/api/v1/uploads", data=io.BytesIO(b"x" * (7 * 2**20)), headers=d.headers["resident"]
        ) as r:
            assert r.status == 413
            assert r.content_type == "application/problem+json"
            assert (await r.json())["code"] == "payload_too_large"

        # One web process dies: reads go on through the other.
        d.webs[0].kill()
        for _ in range(4):
            async with s.get(f"{d.base}/api/v1/cases?limit=20", headers=d.headers["resident"]) as r:
                assert r.status == 200
        d.webs[1].kill()
        async with s.get(f"{d.base}/api/v1/cases?limit=20", headers=d.headers["resident"]) as r:
            assert r.status == 503
            assert r.headers["Retry-After"] == "5"
            assert (await r.json())["code"] == "upstream_unavailable"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "huimin.example.gov.cn")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / "huimin.crt", directory / "huimin.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def test_the_production_site_file_passes_nginx_t(tmp_path: Path) -> None:
    """deploy/nginx/huimin.conf as installed (only the snippet and certificate paths differ)."""
    need_nginx()
    crt, pem = _self_signed(tmp_path)
    site = (LOCATIONS.parent / "huimin.conf").read_text(encoding="utf-8")
    for installed, here in (
        ("/etc/nginx/snippets/huimin-locations.conf", str(LOCATIONS)),
        ("/etc/nginx/tls/huimin.crt", str(crt)),
        ("/etc/nginx/tls/huimin.key", str(pem)),
    ):
        assert installed in site
        site = site.replace(installed, here)
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{k}_temp_path {tmp_path}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include /etc/nginx/mime.types; access_log {tmp_path}/access.log; {temp}\n"
        f"  include {tmp_path}/site.conf; }}\n",
        encoding="utf-8",
    )
    exe = nginx_binary()
    assert exe is not None
    check = subprocess.run(
        [exe, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr
