"""The servers a load run starts on loopback: SecantusDB, Redis, two web processes, a proxy, fakes.

Everything here is started by the run and stopped by it; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

from service.storage.embedded import EmbeddedMongo, free_port

ROOT = Path(__file__).resolve().parent.parent


def _kill_group_on_parent_death() -> None:  # pragma: no cover - runs in the child before exec
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class RedisServer:
    """A redis-server child on a fixed loopback port, without persistence (a cache restarts empty)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 15.0) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server not found on PATH")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_kill_group_on_parent_death,
        )  # fmt: skip
        await wait_port(self.port, timeout)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_port(port: int, timeout: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
            writer.close()
            return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s") from None
            await asyncio.sleep(0.1)


@dataclass
class WebProcess:
    """One `run.py serve` child; peak RSS is sampled while it runs (across restarts)."""

    slot: int
    port: int
    env: dict[str, str]
    logdir: Path
    process: subprocess.Popen[bytes] | None = None
    peak_rss: int = 0
    starts: int = 0
    pids: list[int] = field(default_factory=list)
    command: str = "serve"  # or "worker": background work only, no port
    log: Any = None  # the open log file of the running child

    async def start(self, timeout: float = 60.0) -> None:
        name = "web" if self.command == "serve" else self.command
        self._close_log()
        log = self.log = open(self.logdir / f"{name}-{self.slot}.log", "ab")  # noqa: SIM115 - closed in stop/kill
        env = {**self.env, "HUIMIN_PORT": str(self.port)} if self.command == "serve" else dict(self.env)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), self.command],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_kill_group_on_parent_death,
        )  # fmt: skip
        self.starts += 1
        self.pids.append(self.process.pid)
        deadline = time.monotonic() + timeout
        if self.command != "serve":
            # A worker answers nothing: up when it is still running after its start-up.
            await asyncio.sleep(3.0)
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} {self.slot} exited with {self.process.returncode}; see its log")
            return
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"web process {self.slot} exited with {self.process.returncode}; see its log")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(
                        f"http://127.0.0.1:{self.port}/healthz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"web process {self.slot} not up after {timeout:.0f} s")
                await asyncio.sleep(0.2)

    def sample(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(psutil.Error):
            self.peak_rss = max(self.peak_rss, psutil.Process(self.process.pid).memory_info().rss)

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def stop(self, timeout: float = 35.0) -> int | None:
        """SIGTERM and wait (graceful shutdown); returns the exit status."""
        proc, self.process = self.process, None
        try:
            if proc is None:
                return None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    return -9
            return proc.returncode
        finally:
            self._close_log()


class RoundRobinProxy:
    """One port in front of the web processes, as nginx would be.

    A backend that refuses the connection is skipped for the next one (nothing was sent, so
    that is safe for any method); once a request was sent, its failure is the client's 502.
    """

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._next = itertools.count()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=60, connect=2),
            auto_decompress=False,
        )  # fmt: skip
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers["X-Forwarded-For"] = request.remote or "127.0.0.1"
        first = next(self._next)
        for i in range(len(self.ports)):
            port = self.ports[(first + i) % len(self.ports)]
            url = f"http://127.0.0.1:{port}{request.rel_url}"
            try:
                async with self._session.request(
                    request.method, url, data=body or None, headers=headers, allow_redirects=False
                ) as upstream:
                    payload = await upstream.read()
                    out = {
                        k: v
                        for k, v in upstream.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection")
                    }
                    return web.Response(status=upstream.status, body=payload, headers=out)
            except aiohttp.ClientConnectorError:
                continue  # refused: nothing was sent, try the next backend
            except (aiohttp.ClientError, TimeoutError) as exc:
                return web.json_response({"error": "bad_gateway", "detail": str(exc)[:200]}, status=502)
        return web.json_response({"error": "no_backend"}, status=502)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


class FakeSmsGateway:
    """The SMS gateway contract of HttpSmsSender: POST /send {phone, template, params} -> {ok: true}."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.notices: list[dict[str, Any]] = []  # every message that is not a login code
        self.waiters: dict[str, asyncio.Event] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        code = (body.get("params") or {}).get("code")
        if code:
            self.codes[body["phone"]] = code
            self.waiters.setdefault(body["phone"], asyncio.Event()).set()
        else:
            self.notices.append(body)
        return web.json_response({"ok": True})

    async def code_for(self, phone: str, timeout: float = 10.0) -> str:
        event = self.waiters.setdefault(phone, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        event.clear()
        return self.codes[phone]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class WebhookReceiver:
    """An integrator's endpoint: verifies signatures, counts deliveries, de-duplicates on the event id."""

    def __init__(self) -> None:
        self.secret = ""
        self.event_ids: set[str] = set()
        self.deliveries = 0
        self.bad_signatures = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.deliveries += 1
        fields = dict(p.split("=", 1) for p in request.headers.get("Huimin-Signature", "").split(",") if "=" in p)
        expected = hmac.new(self.secret.encode(), f"{fields.get('t', '')}.".encode() + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("v1", "")):
            self.bad_signatures += 1
            return web.json_response({"ok": False}, status=400)
        event = json.loads(raw)
        if event.get("type") != "webhook.ping":
            self.event_ids.add(str(event["id"]))
        return web.json_response({"ok": True})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Cluster:
    """Everything one run starts; ``env`` is what every Huimin process gets."""

    workdir: Path
    mongo: EmbeddedMongo
    redis: RedisServer
    sms: FakeSmsGateway
    receiver: WebhookReceiver
    webs: list[WebProcess]
    proxy: RoundRobinProxy
    env: dict[str, str]
    base_url: str = ""
    admin_password: str = "load-admin-Passw0rd!"
    workers: list[WebProcess] = field(default_factory=list)  # `run.py worker` processes
    worker_exit_codes: dict[int, int | None] = field(default_factory=dict)

    @classmethod
    async def start(
        cls, workdir: Path, *, webs: int = 2, workers: int = 0, sms: FakeSmsGateway | None = None
    ) -> Cluster:
        """Start everything; with ``workers``, the web processes leave background work to them."""
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        mongo = EmbeddedMongo(str(workdir / "mongo"), durable=True)
        await mongo.start_async()
        redis = RedisServer(workdir / "redis")
        await redis.start()
        sms, receiver = sms or FakeSmsGateway(), WebhookReceiver()
        await sms.start()
        await receiver.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
        env.update(
            {
                "HUIMIN_ENV": "development",
                "HUIMIN_MONGODB_URI": mongo.uri,
                "HUIMIN_MONGODB_DB": "huimin_load",
                "HUIMIN_REDIS_URL": redis.url,
                "HUIMIN_REDIS_PREFIX": "huimin-load:",
                "HUIMIN_DATA_DIR": str(workdir),
                "HUIMIN_LOG_LEVEL": "WARNING",
                "HUIMIN_BACKGROUND_TASKS": "true",
                "HUIMIN_SMS_SENDER": "http",
                "HUIMIN_SMS_API_BASE": sms.url,
                # Notices go out at once, so the ledger can count them at the end of the run.
                "HUIMIN_QUIET_HOURS": "",
                "HUIMIN_ADMIN_PASSWORD": cls.admin_password,
                # A crashed process's delivery leases pass sooner than the default 60 s.
                "HUIMIN_WEBHOOK_LEASE_SECONDS": "30",
            }
        )
        seed = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "run.py"), "seed", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(seed.communicate(), 300)
        if seed.returncode != 0:
            raise RuntimeError(f"seed failed: {out.decode()[-2000:]}")
        web_env = {**env, "HUIMIN_BACKGROUND_TASKS": "false"} if workers else env
        procs = [WebProcess(slot=i, port=free_port(), env=web_env, logdir=workdir) for i in range(webs)]
        bg = [WebProcess(slot=i, port=0, env=env, logdir=workdir, command="worker") for i in range(workers)]
        await asyncio.gather(*(p.start() for p in procs + bg))
        proxy = RoundRobinProxy([p.port for p in procs])
        base = await proxy.start()
        return cls(workdir, mongo, redis, sms, receiver, procs, proxy, env, base, workers=bg)

    async def restart_mongo(self) -> None:
        await self.mongo.start_async()

    async def close(self) -> dict[int, int | None]:
        """Stop everything; returns each web process's exit status after SIGTERM (0: graceful)."""
        codes = {}
        for p in self.webs:
            codes[p.slot] = await asyncio.to_thread(p.stop)
        for p in self.workers:
            self.worker_exit_codes[p.slot] = await asyncio.to_thread(p.stop)
        await self.proxy.close()
        await self.sms.close()
        await self.receiver.close()
        self.redis.stop()
        await asyncio.to_thread(self.mongo.stop)
        return codes
