"""The console's volunteer page in a real browser: the station's activity, its check-in code, its figures."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from playwright.sync_api import expect

from tests.factories import make_wechat_resident
from tests.web.conftest import Deployment, login, shot


def test_a_worker_sees_the_stations_activity_and_shows_its_check_in_code(page: Any, deployment: Deployment) -> None:
    worker = deployment.accounts["wang.wu"]
    headers = deployment.bearer(worker)
    now = datetime.now(UTC)
    resp = requests.post(
        f"{deployment.base}/api/v1/volunteer-activities",
        json={
            "title": "徽城镇敬老院陪伴",
            "scenario": "elderly",
            "content": "陪老人聊天",
            "start_at": (now - timedelta(minutes=30)).isoformat(),
            "end_at": (now + timedelta(hours=2)).isoformat(),
            "slots": 6,
        },
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    login(page, deployment.base, "wang.wu")
    page.get_by_role("menuitem", name="志愿服务").click()
    page.wait_for_url("**/console/volunteers")
    expect(page.locator("[data-test=volunteer-kpis]")).to_contain_text("已开展活动")
    row = page.locator("[data-test=volunteer-activities] .el-table__row", has_text="徽城镇敬老院陪伴")
    expect(row).to_contain_text("0 / 6")
    row.click()
    page.get_by_role("button", name="显示签到码").click()
    expect(page.locator("[data-test=checkin-code]")).to_contain_text("签到码：v1.")
    shot(page, "volunteers")


def _qr_state(page: Any) -> dict[str, Any]:
    """What the panel shows: the QR code's payload and pixels, the 6 characters and the signed text."""
    return dict(
        page.evaluate(
            """() => {
              const c = document.querySelector('[data-test=checkin-panel] canvas')
              const ctx = c.getContext('2d')
              const { data } = ctx.getImageData(0, 0, c.width, c.height)
              let dark = 0
              for (let i = 0; i < data.length; i += 4) if (data[i] < 128) dark++
              // A QR code's top-left finder pattern: dark just inside the quiet zone, at its centre too.
              const px = (x, y) => ctx.getImageData(x, y, 1, 1).data[0] < 128
              const m = c.width
              return {
                payload: c.dataset.qrText,
                pixels: c.toDataURL(),
                darkShare: dark / (data.length / 4),
                width: c.width,
                finder: [px(1, 1), px(Math.round(m * 0.04), Math.round(m * 0.04))],
                short: document.querySelector('[data-test=short-code]').textContent.trim(),
                text: document.querySelector('[data-test=checkin-code] code').textContent.trim(),
              }
            }"""
        )
    )


def test_the_check_in_code_shows_as_a_qr_code_that_rotates_with_the_code(page: Any, deployment: Deployment) -> None:
    worker = deployment.accounts["wang.wu"]
    headers = deployment.bearer(worker)
    now = datetime.now(UTC)
    resp = requests.post(
        f"{deployment.base}/api/v1/volunteer-activities",
        json={
            "title": "徽城镇助餐志愿",
            "scenario": "elderly",
            "content": "帮老人打饭",
            "start_at": (now - timedelta(minutes=10)).isoformat(),
            "end_at": (now + timedelta(hours=2)).isoformat(),
            "slots": 3,
        },
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    page.clock.install()  # the page's timers follow real time until the test moves the clock
    login(page, deployment.base, "wang.wu")
    page.get_by_role("menuitem", name="志愿服务").click()
    page.locator("[data-test=volunteer-activities] .el-table__row", has_text="徽城镇助餐志愿").click()
    page.get_by_role("button", name="显示签到码").click()
    panel = page.locator("[data-test=checkin-panel]")
    expect(panel.locator("[data-test=short-code]")).to_have_text(re.compile(r"^[2-9A-HJKMNP-Z]{6}$"))
    first = _qr_state(page)
    # The QR code holds the resident app's check-in page with exactly the signed code shown as text.
    assert first["text"].startswith("v1.")
    assert first["payload"] == f"{deployment.base}/h5/volunteer/checkin?code={quote(first['text'], safe='')}"
    assert first["width"] >= 300 and 0.3 < first["darkShare"] < 0.7, first["darkShare"]
    assert first["finder"] == [False, True]  # a light quiet zone around a dark finder pattern
    expect(panel.locator("[data-test=code-expiry]")).to_contain_text("秒后自动更新")
    shot(page, "volunteers-qr")

    # The code rotates before it expires, and the QR code is redrawn with the new one.
    page.clock.fast_forward("01:00")
    expect(panel.locator("[data-test=checkin-code] code")).not_to_have_text(first["text"])
    second = _qr_state(page)
    assert second["payload"].endswith(quote(second["text"], safe="")) and second["pixels"] != first["pixels"]
    # What the QR code holds checks a confirmed volunteer in.
    volunteer = deployment.bearer(deployment.server.run(make_wechat_resident(deployment.server.ctx)))
    body = {"name": "钱扫码", "id_card": "341021199001010019", "phone": "13700008888", "township": "341021100"}
    assert requests.post(f"{deployment.base}/api/v1/volunteers", json=body, headers=volunteer, timeout=10).ok
    activity_id = resp.json()["id"]
    signup = requests.post(
        f"{deployment.base}/api/v1/volunteer-activities/{activity_id}/signups", headers=volunteer, timeout=10
    ).json()
    decided = requests.post(
        f"{deployment.base}/api/v1/volunteer-signups/{signup['id']}/decision",
        json={"decision": "confirm"},
        headers=headers,
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    code = parse_qs(urlsplit(second["payload"]).query)["code"][0]
    checked = requests.post(
        f"{deployment.base}/api/v1/volunteer-checkins", json={"code": code}, headers=volunteer, timeout=10
    )
    assert checked.status_code == 200 and checked.json()["status"] == "checked_in", checked.text

    page.get_by_role("button", name="关闭 Close").click()
    expect(panel).to_have_count(0)
