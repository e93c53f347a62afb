"""The resident app (H5) in Debian's Chromium, phone-sized and touch, against the real app.

A resident logs in with the texted code (the SMS stand-in keeps it), files requests in
each of the seven scenarios through the forms drawn from the catalogue, sees the routing
preview before sending, follows the case after a worker acts, and rates it. A lost answer
during filing is retried with the same Idempotency-Key and makes one case. The large-text
mode passes axe-core with no serious violations. Screenshots go to var/screenshots/h5-*.png.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from handlers.h5 import H5_DIR, h5_built
from service.catalog.service import example_id_card
from tests.factories import bearer_for
from tests.fakes.sms import FakeSms
from tests.servers import LiveServer, isolated_settings
from tests.web.conftest import CHROMIUM, SCREENSHOTS, _world
from tests.web.support import WEB

AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
HUICHENG = (118.41, 29.86)  # 徽城镇, where station A stands
# One service of each scenario; together they ask every field type the catalogue has.
ONE_PER_SCENARIO = (
    "elderly_home_visit",
    "child_counselling",
    "community_service_request",
    "dibao_application",
    "org_complaint",
    "social_worker_booking",
    "funeral_subsidy",
)


def need_h5() -> None:
    problems = []
    if not Path(CHROMIUM).exists():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    if not h5_built():
        problems.append("web/dist/h5 is not built (make test builds it)")
    if problems:
        if os.environ.get("CI"):
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


@dataclasses.dataclass
class H5:
    server: LiveServer
    sms: FakeSms
    station_a: Any
    accounts: dict[str, Any]

    @property
    def base(self) -> str:
        return self.server.base_url

    def worker(self) -> dict[str, str]:
        assert self.server.settings is not None
        return bearer_for(self.server.settings, self.accounts["wang.wu"])

    def act(self, case_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(
            f"{self.base}/api/v1/cases/{case_id}/{action}", json=body, headers=self.worker(), timeout=10
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def upload_as_worker(self, image: Any) -> str:
        """An image uploaded by the station's worker (as the console does before resolving)."""
        buf = io.BytesIO()
        image.save(buf, "PNG")
        resp = requests.post(
            f"{self.base}/api/v1/uploads",
            files={"file": ("result.png", buf.getvalue(), "image/png")},
            headers=self.worker(),
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def cases_of(self, resident_token: str) -> list[dict[str, Any]]:
        resp = requests.get(
            f"{self.base}/api/v1/cases", headers={"Authorization": f"Bearer {resident_token}"}, timeout=10
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]


@pytest.fixture(scope="module")
def h5(mongo_uri: str, redis_url: str, tmp_path_factory: Any) -> Iterator[H5]:
    need_h5()
    server = LiveServer()
    sms = FakeSms()
    server.run(sms.start())  # on the server's loop, so it answers while the test drives the browser
    try:
        with isolated_settings(
            mongo_uri,
            redis_url,
            tmp_path_factory.mktemp("h5"),
            prefix="h5",
            background_tasks=True,  # notifications reach the resident's inbox
            notify_poll_seconds=0.1,
            sms_sender="http",
            sms_api_base=sms.url,
            wechat_api_base="http://127.0.0.1:9",
        ) as settings:
            server.serve(settings)
            a, _b, accounts = server.run(_world(server))
            yield H5(server=server, sms=sms, station_a=a, accounts=accounts)
    finally:
        server.run(sms.close())
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_h5()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def phone_context(browser: Any, base: str, *, height: int = 812, **kw: Any) -> Any:
    context = browser.new_context(
        viewport={"width": 375, "height": height},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation={"longitude": HUICHENG[0], "latitude": HUICHENG[1]},
        permissions=["geolocation"],
        **kw,
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def page(browser: Any, h5: H5) -> Iterator[Any]:
    """A phone (375x667, touch); page errors and CSP refusals fail the test."""
    context = phone_context(browser, h5.base, height=667)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".van-toast").last.wait_for(state="hidden")  # passing notes do not hide the page
    page.screenshot(path=str(SCREENSHOTS / f"h5-{name}.png"), full_page=False)


def log_in(page: Any, h5: H5, phone: str, then: str = "/h5/cases") -> str:
    """Log in through the page with the code the SMS stand-in received; returns the access token."""
    page.goto(h5.base + then)
    page.wait_for_url(re.compile(r"/h5/login\?redirect="))
    page.fill("input[name=phone]", phone)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text("秒后可重发").wait_for()
    page.fill("input[name=code]", h5.sms.last_code(phone))
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url("**" + then)
    session = page.evaluate("() => localStorage.getItem('huimin.h5.session')")
    return str(json.loads(session)["access"])


def photo_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2400, 1800), (200, 120, 40)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def service_def(h5: H5, code: str) -> dict[str, Any]:
    resp = requests.get(f"{h5.base}/api/v1/services/{code}", timeout=10)
    assert resp.status_code == 200
    return resp.json()


def fill_form(page: Any, service: dict[str, Any]) -> None:
    """Answer every question of the form the way a resident would, by field type."""
    for f in service["fields"]:
        code, kind = f["code"], f["type"]
        if kind in ("string", "text"):
            page.fill(f"#f-{code}", "家里老人需要帮助")
        elif kind == "number":
            page.fill(f"#f-{code}", str(int(f["min"]) if f.get("min") is not None else 2))
        elif kind == "date":
            page.fill(f"#f-{code}", "2026-11-20")
        elif kind == "datetime":
            page.fill(f"#f-{code}", "2026-12-05T10:00")
        elif kind == "single_choice":
            page.locator(f"[aria-labelledby=q-{code}] [role=radio]").first.click()
        elif kind == "multi_choice":
            page.locator(f"[aria-labelledby=q-{code}] [role=checkbox]").first.click()
        elif kind == "phone":
            page.fill(f"#f-{code}", "13800000001")
        elif kind == "id_card":
            page.fill(f"#f-{code}", example_id_card())
    if service["booking"]:
        page.fill("#f-window-start", "2026-12-07T09:00")
        page.fill("#f-window-end", "2026-12-07T11:00")
    page.fill("#f-address", "徽城镇 新安路 1 号")
    page.fill("#f-contact-name", "王芳")
    page.fill("#f-contact-phone", "13912345678")


def pick_township(page: Any) -> None:
    page.get_by_role("button", name="选择乡镇（街道）").click()
    for name in ("黄山市", "歙县", "徽城镇"):
        page.locator(".van-cascader__option", has_text=re.compile(f"^{name}$")).click()


def test_a_resident_logs_in_files_with_a_photo_sees_the_routing_and_follows_the_case_to_a_rating(
    page: Any, h5: H5
) -> None:
    scripts: dict[str, int] = {}

    def count(resp: Any) -> None:
        if resp.url.endswith(".js") and "/h5/assets/" in resp.url:
            scripts[resp.url] = resp.request.sizes()["responseBodySize"]

    page.on("response", count)
    page.goto(h5.base + "/h5/")
    page.get_by_role("heading", name="惠民服务").wait_for()
    for name in ("养老服务", "儿童关爱", "社区服务", "社会救助", "社会组织", "社工服务", "殡葬服务"):
        page.get_by_text(name, exact=True).wait_for()
    page.wait_for_load_state("networkidle")
    first_screen = sum(scripts.values())
    # The bytes on the wire are the .gz files the server sends to gzip clients.
    on_disk = sum((H5_DIR / "assets" / (url.rsplit("/", 1)[1] + ".gz")).stat().st_size for url in scripts)
    assert 0 < first_screen < 200 * 1024, f"{first_screen / 1024:.0f} KB of gzipped JavaScript on the first screen"
    assert abs(first_screen - on_disk) < 1024
    print(f"H5 first screen: {len(scripts)} scripts, {first_screen / 1024:.1f} KB gzipped")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "h5-first-screen-js.txt").write_text(
        f"{first_screen} bytes gzipped JavaScript in {len(scripts)} files on the H5 home page\n"
    )
    shot(page, "home")

    page.get_by_placeholder("搜索服务").fill("探访")
    page.get_by_text("上门探访").first.wait_for()
    shot(page, "search")
    page.get_by_placeholder("搜索服务").fill("")

    token = log_in(page, h5, "13700001111")
    expect_text(page, "您还没有办件")
    shot(page, "cases-empty")

    page.goto(h5.base + "/h5/")
    page.get_by_text("养老服务", exact=True).click()
    page.get_by_text("上门探访", exact=True).click()
    page.get_by_role("heading", name="谁可以申请").wait_for()
    expect_text(page, "8 个工作小时内受理，5 个工作日内办结")
    shot(page, "service")
    page.get_by_role("button", name="我要申请").click()
    page.get_by_role("heading", name="上门探访").wait_for()

    # Nothing is sent while required answers are missing; the messages sit under the questions.
    page.get_by_role("button", name="提交申请").click()
    expect_text(page, "请用定位或选择乡镇（街道）")
    page.get_by_role("button", name="用我现在的位置").click()
    page.locator(".routing").get_by_text("将由 徽城镇社工站 办理").wait_for()

    service = service_def(h5, "elderly_home_visit")
    fill_form(page, service)
    page.fill("#f-elder_age", "59")  # below the form's minimum
    page.get_by_role("button", name="提交申请").click()
    page.locator("[data-field=elder_age]").get_by_text("不能小于 60").wait_for()
    page.fill("#f-elder_age", "82")

    page.locator(".van-uploader input[type=file]").set_input_files(
        files=[{"name": "room.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes()}]
    )
    page.locator(".van-uploader__preview").first.wait_for()
    page.wait_for_function(
        "() => JSON.parse(localStorage.getItem('huimin.h5.draft.elderly_home_visit')).photos.length === 1"
    )
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, "apply")

    # The draft survives a reload, and the filing keeps its key.
    key = page.evaluate("() => JSON.parse(localStorage.getItem('huimin.h5.draft.elderly_home_visit')).idempotencyKey")
    page.reload()
    assert page.input_value("#f-contact-name") == "王芳"
    page.locator(".routing").get_by_text("将由 徽城镇社工站 办理").wait_for()
    assert (
        page.evaluate("() => JSON.parse(localStorage.getItem('huimin.h5.draft.elderly_home_visit')).idempotencyKey")
        == key
    )

    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r"/h5/cases/[0-9a-f]+\?new=1"))
    expect_text(page, "提交成功")
    expect_text(page, "徽城镇社工站")
    assert page.evaluate("() => localStorage.getItem('huimin.h5.draft.elderly_home_visit')") is None
    shot(page, "case-filed")

    [case] = h5.cases_of(token)
    assert case["station_name"] == "徽城镇社工站"
    assert case["answers"]["elder_age"] == 82 and len(case["photos"]) == 1
    upload = requests.get(
        f"{h5.base}/api/v1/uploads/{case['photos'][0]}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    from PIL import Image

    width, height = Image.open(io.BytesIO(upload.content)).size
    assert max(width, height) <= 1600, "the photo was not made smaller on the phone"

    page.locator(".van-tabbar").get_by_text("我的办件").click()
    page.get_by_text("上门探访").wait_for()
    expect_text(page, "等待社工站接手")
    shot(page, "cases")

    # A worker signs for the case and resolves it through the API with a photo of the result; the
    # resident sees it in plain words, and the photo (fetched with the resident's own token).
    accepted = h5.act(case["id"], "accept", {})
    result_photo = h5.upload_as_worker(Image.new("RGB", (40, 30), (30, 160, 90)))
    resolved = h5.act(
        case["id"],
        "resolve",
        {"expected_version": accepted["version"], "result": "已上门看望，老人身体健康", "photos": [result_photo]},
    )
    assert resolved["result_photos"] == [result_photo]
    page.goto(f"{h5.base}/h5/cases/{case['id']}")
    expect_text(page, "已办完，请评价")
    expect_text(page, "社工站已接手，正在安排")
    expect_text(page, "已办完：已上门看望，老人身体健康")
    page.get_by_role("heading", name="办理结果照片").wait_for()
    shown = page.locator("[data-test=result-photos] img")
    shown.wait_for()
    assert shown.count() == 1 and shown.get_attribute("alt") == "社工站拍的办理结果照片"
    assert (shown.get_attribute("src") or "").startswith("blob:")  # fetched with the bearer token
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-test=result-photos] img'); return i && i.complete }"
    )
    assert shown.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 30]
    shot(page, "case-resolved")
    page.get_by_role("button", name="提交评价").click()
    expect_text(page, "请点星星打分")
    page.locator(".van-rate__item").nth(4).click()
    page.fill("#f-comment", "社工很耐心")
    page.get_by_role("button", name="提交评价").click()
    expect_text(page, "您的评价")
    expect_text(page, "已完成")
    rated = h5.cases_of(token)[0]
    assert (rated["status"], rated["rating"]) == ("closed", 5)

    # The inbox has the news, with the unread count on its tab.
    page.goto(h5.base + "/h5/inbox")
    page.locator(".van-cell").first.wait_for()
    expect_text(page, "未读")
    shot(page, "inbox")
    page.goto(h5.base + "/h5/me")
    expect_text(page, "大字模式")
    expect_text(page, "137****1111")  # the session is read on a fresh load
    shot(page, "me")


def expect_text(page: Any, text: str) -> None:
    page.get_by_text(text).first.wait_for()


def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one_case(page: Any, h5: H5) -> None:
    token = log_in(page, h5, "13700002222", then="/h5/services/community_service_request/apply")
    page.get_by_role("button", name="用我现在的位置").click()
    page.locator(".routing").wait_for()
    fill_form(page, service_def(h5, "community_service_request"))
    keys: list[str] = []

    def lose_the_answer(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        route.fetch()  # the server makes the case ...
        route.abort("connectionreset")  # ... and the answer never reaches the phone

    page.route("**/api/v1/cases", lose_the_answer)
    page.get_by_role("button", name="提交申请").click()
    expect_text(page, "网络不好")
    page.unroute("**/api/v1/cases")
    page.on("request", lambda r: keys.append(r.headers["idempotency-key"]) if r.url.endswith("/api/v1/cases") else None)
    page.get_by_role("button", name="重新提交").click()
    page.wait_for_url(re.compile(r"/h5/cases/[0-9a-f]+"))
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(h5.cases_of(token)) == 1

    # While the station has not finished, the resident may take the request back.
    page.get_by_role("button", name="撤回申请").click()
    page.locator(".van-dialog").get_by_role("button", name="撤回", exact=True).click()
    expect_text(page, "您撤回了申请")
    assert h5.cases_of(token)[0]["status"] == "cancelled"


def test_a_resident_files_one_request_in_each_of_the_seven_scenarios(browser: Any, h5: H5) -> None:
    context = phone_context(browser, h5.base)
    page = context.new_page()
    try:
        token = log_in(page, h5, "13700003333", then="/h5/cases")
        for i, code in enumerate(ONE_PER_SCENARIO):
            service = service_def(h5, code)
            page.goto(f"{h5.base}/h5/services/{code}/apply")
            page.get_by_role("heading", name=service["name_zh"]).wait_for()
            if i % 2:
                pick_township(page)
            else:
                page.get_by_role("button", name="用我现在的位置").click()
            page.locator(".routing").get_by_text("将由 徽城镇社工站 办理").wait_for()
            fill_form(page, service)
            page.get_by_role("button", name="提交申请").click()
            page.wait_for_url(re.compile(r"/h5/cases/[0-9a-f]+\?new=1"))
        filed = h5.cases_of(token)
        assert sorted(c["service"]["code"] for c in filed) == sorted(ONE_PER_SCENARIO)
        assert len({c["service"]["scenario"] for c in filed}) == 7

        # Not satisfied with the result: within 7 days the resident asks for it to be done again.
        last = filed[0]
        accepted = h5.act(last["id"], "accept", {})
        h5.act(last["id"], "resolve", {"expected_version": accepted["version"], "result": "已电话回复"})
        page.goto(f"{h5.base}/h5/cases/{last['id']}")
        page.get_by_role("button", name="没办好，要求重新办理").click()
        page.fill("#f-reopen", "还没有人上门")
        page.get_by_role("button", name="要求重新办理", exact=True).click()
        expect_text(page, "您要求重新办理：还没有人上门")
        assert h5.cases_of(token)[0]["status"] == "in_progress"
    finally:
        context.close()


def test_large_text_mode_passes_an_accessibility_check(browser: Any, h5: H5) -> None:
    # axe-core is put into the page by the test (bypass_csp): the app itself loads no such script.
    context = phone_context(browser, h5.base, bypass_csp=True)
    page = context.new_page()
    try:
        log_in(page, h5, "13700004444")
        page.goto(h5.base + "/h5/me")
        page.get_by_role("switch", name="大字模式").click()
        assert page.evaluate("() => document.documentElement.classList.contains('large-text')")
        shot(page, "me-large-text")
        found: dict[str, list[str]] = {}
        for path, ready in (
            ("/h5/", "服务分类"),
            ("/h5/services/elderly_home_visit", "谁可以申请"),
            ("/h5/services/elderly_home_visit/apply", "请填写"),
            ("/h5/cases", "我的办件"),
            ("/h5/inbox", "消息"),
            ("/h5/me", "看得更清楚"),
        ):
            page.goto(h5.base + path)
            page.get_by_role("heading", name=ready).first.wait_for()
            page.wait_for_load_state("networkidle")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
            serious = [
                f"{v['id']}: {v['help']} ({len(v['nodes'])}: {v['nodes'][0]['target']})"
                for v in result
                if v["impact"] in ("serious", "critical")
            ]
            if serious:
                found[path] = serious
        shot(page, "me-large-text-after")
        assert not found, json.dumps(found, ensure_ascii=False, indent=1)
    finally:
        context.close()


def test_a_wechat_resident_adds_a_verified_phone_on_the_me_page(page: Any, h5: H5) -> None:
    from tests.factories import make_phone_resident, make_wechat_resident

    assert h5.server.settings is not None
    resident = h5.server.run(make_wechat_resident(h5.server.ctx))
    taken = "13700005555"
    h5.server.run(make_phone_resident(h5.server.ctx, phone=taken))  # someone who logs in with that number
    token = bearer_for(h5.server.settings, resident)["Authorization"].removeprefix("Bearer ")
    # The session a WeChat login leaves (the mini program's web view shares it).
    stored = {"access": token, "refresh": "-", "accessExpiresAt": 4102444800000, "earlyMs": 30000, "role": "resident"}
    page.add_init_script(f"localStorage.setItem('huimin.h5.session', {json.dumps(json.dumps(stored))})")
    page.goto(h5.base + "/h5/me")
    form = page.locator("[data-test=add-phone]")
    page.get_by_role("heading", name="绑定手机号").wait_for()

    def add(phone: str) -> None:
        form.locator("input[name=phone]").fill(phone)
        form.get_by_role("button", name="获取验证码").click()
        form.get_by_text("秒后可重发").wait_for()
        form.locator("input[name=code]").fill(h5.sms.last_code(phone))
        form.get_by_role("button", name="绑定手机号").click()

    add(taken)
    expect_text(page, "这个手机号已用于另一个账号登录")
    me = requests.get(f"{h5.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert me["has_phone"] is False
    page.reload()
    add("13700006666")
    expect_text(page, "137****6666")
    form.wait_for(state="detached")
    me = requests.get(f"{h5.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert me["has_phone"] is True and me["phone_masked"] == "137****6666"
    shot(page, "me-phone-added")
