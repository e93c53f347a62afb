"""Browser tests of the staff console: the real app on a real port, driven by Debian's Chromium."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from handlers.console import console_built
from service.catalog import service as catalog
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import example_answers
from service.common.models import SYSTEM
from service.identity.staff import create_staff
from tests.factories import Who, bearer_for, make_station, make_wechat_resident
from tests.servers import LiveServer, isolated_settings

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "console-pass-0123"
XI_COUNTY = "341021"  # 歙县
CAPABILITIES = sorted({s.capability for s in SEED_SERVICES})


def need_browser() -> None:
    """Skip without Chromium on a developer machine; in CI (CI=true) its absence is a failure."""
    problems = []
    if not Path(CHROMIUM).exists():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    if not console_built():
        problems.append("web/dist/console is not built (make test builds it)")
    if problems:
        if os.environ.get("CI"):
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


@dataclasses.dataclass
class Deployment:
    server: LiveServer
    station_a: Any
    station_b: Any
    accounts: dict[str, Any]  # username -> staff member

    @property
    def base(self) -> str:
        return self.server.base_url

    def bearer(self, who: Who) -> dict[str, str]:
        """An Authorization header of an account of this deployment."""
        assert self.server.settings is not None
        return bearer_for(self.server.settings, who)

    @property
    def admin(self) -> dict[str, str]:
        return self.bearer(self.accounts["admin.e2e"])

    def resident(self) -> dict[str, str]:
        """The Authorization header of the deployment's resident (made on first use)."""
        if "resident" not in self.accounts:
            self.accounts["resident"] = self.server.run(make_wechat_resident(self.server.ctx))
        return self.bearer(self.accounts["resident"])

    def file_case(
        self,
        *,
        division_code: str | None = None,
        code: str = "elderly_home_visit",
        **extra: Any,
    ) -> dict[str, Any]:
        """A resident files a case through the public API, as the mini program does."""
        service = self.server.run(catalog.get_service(ctx=self.server.ctx, code=code))
        body: dict[str, Any] = {
            "service_code": code,
            "answers": example_answers(service),
            "division_code": division_code or self.station_a.code,
            "address": "徽城镇 新安路 1 号",
            "contact": {"name": "王芳", "phone": "13912345678"},
            **extra,
        }
        if service.booking and "preferred_window" not in body:
            body["preferred_window"] = {"start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T11:00:00+08:00"}
        resp = requests.post(self.base + "/api/v1/cases", json=body, headers=self.resident(), timeout=10)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def case(self, case_id: str) -> dict[str, Any]:
        resp = requests.get(f"{self.base}/api/v1/cases/{case_id}", headers=self.admin, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()


async def _world(server: LiveServer) -> tuple[Any, Any, dict[str, Any]]:
    ctx = server.ctx
    await catalog.seed_catalog(ctx)
    a = await make_station(ctx, code="341021100", name="徽城镇社工站", point=(118.41, 29.86))
    b = await make_station(ctx, code="341021101", name="深渡镇社工站", point=(118.60, 29.80))
    # A station in 阜阳 that offers no elderly-care services: such requests there stay unrouted.
    other = [c for c in CAPABILITIES if c != "elderly_care"]
    await make_station(ctx, code="341202002", name="文峰街道社工站", point=(115.80, 32.88), capabilities=other)
    accounts = {}
    for username, role, name, extra in (
        ("wang.wu", "worker", "王五", {"station_id": a.id}),
        ("zhao.liu", "worker", "赵六", {"station_id": a.id}),
        ("li.zhan", "station_head", "李站长", {"station_id": a.id}),
        ("sun.du", "supervisor", "孙督办", {"division_prefix": "34"}),
        ("admin.e2e", "admin", "管理员", {}),
    ):
        accounts[username] = await create_staff(
            ctx=ctx, principal=SYSTEM, username=username, password=PASSWORD, role=role, name=name, **extra
        )
    return a, b, accounts


@pytest.fixture(scope="module")
def deployment(mongo_uri: str, redis_url: str, tmp_path_factory: Any) -> Iterator[Deployment]:
    need_browser()
    with isolated_settings(
        mongo_uri,
        redis_url,
        tmp_path_factory.mktemp("console"),
        prefix="web",
        background_tasks=True,  # the event relay feeds the live stream
        notify_poll_seconds=0.1,
        stream_heartbeat_seconds=2,
        wechat_api_base="http://127.0.0.1:9",
    ) as settings:
        server = LiveServer().serve(settings)
        try:
            a, b, accounts = server.run(_world(server))
            yield Deployment(server=server, station_a=a, station_b=b, accounts=accounts)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def short_sessions(deployment: Deployment) -> Iterator[Deployment]:
    """A second web process over the same database whose access tokens live 4 seconds."""
    assert deployment.server.settings is not None
    server = LiveServer().serve(deployment.server.settings.replace(access_token_ttl_seconds=4, background_tasks=False))
    try:
        yield dataclasses.replace(deployment, server=server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def login(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/console/queue")


__all__ = ["Deployment", "login", "shot"]
