"""The console's volunteer page in a real browser: the station's activity, its check-in code, its figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from playwright.sync_api import expect

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
