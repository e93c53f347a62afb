"""The resident app's volunteer pages in Chromium as a phone, against the real app.

A resident registers as a volunteer (a lost answer keeps what was typed), finds the station's
activity near home, signs up, is confirmed by the organiser, checks in by typing the code on
the organiser's screen and checks out by opening the address the QR code holds, sees the
confirmed hours on the service record, asks for a correction, and downloads the certificate
the station issued. A full activity shows the place on the waiting list. The station's side
(confirming, showing codes, confirming hours, issuing) goes through the public API as the
console does.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from playwright.sync_api import expect

from tests.factories import bearer_for, id_card, make_phone_resident
from tests.web.test_h5_browser import AXE, H5, browser, h5, log_in, page, phone_context, pick_township, shot

__all__ = ["browser", "h5", "page"]


def publish(h5: H5, title: str, *, slots: int = 5, starts_in: timedelta = timedelta(minutes=-30)) -> dict[str, Any]:
    start = datetime.now(UTC) + starts_in
    resp = requests.post(
        f"{h5.base}/api/v1/volunteer-activities",
        json={
            "title": title,
            "scenario": "elderly",
            "content": "陪老人聊天、读报",
            "location": "徽城镇敬老院",
            "start_at": start.isoformat(),
            "end_at": (start + timedelta(hours=3)).isoformat(),
            "slots": slots,
            "skills_wanted": ["companionship"],
        },
        headers=h5.worker(),
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def as_worker(h5: H5, method: str, path: str, **kw: Any) -> Any:
    resp = requests.request(method, h5.base + path, headers=h5.worker(), timeout=10, **kw)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def resident_headers(h5: H5, phone: str) -> dict[str, str]:
    """A resident who logged in by phone elsewhere (not through this browser)."""
    assert h5.server.settings is not None
    resident = h5.server.run(make_phone_resident(h5.server.ctx, phone=phone))
    return bearer_for(h5.server.settings, resident)


def confirm_everyone(h5: H5, activity_id: str) -> None:
    for s in as_worker(h5, "GET", f"/api/v1/volunteer-activities/{activity_id}/signups")["items"]:
        if s["status"] == "pending":
            as_worker(h5, "POST", f"/api/v1/volunteer-signups/{s['id']}/decision", json={"decision": "confirm"})


def test_a_resident_registers_signs_up_checks_in_by_code_and_gets_a_certificate(page: Any, h5: H5) -> None:
    activity = publish(h5, "徽城镇敬老院陪伴")
    log_in(page, h5, "13700005555", then="/h5/volunteer/register")

    # Registration: the page checks the ID number before sending; a lost answer keeps the input.
    page.fill("#v-name", "李志愿")
    page.fill("#v-id", "341021199001010018")
    page.fill("#v-phone", "13700005555")
    page.fill("#v-availability", "周末上午")
    page.get_by_role("checkbox", name="陪伴关怀").click()
    pick_township(page)
    page.get_by_role("button", name="提交注册").click()
    expect(page.get_by_text("身份证号最后一位对不上，请核对")).to_be_visible()
    good_id = id_card("19900101", 1, region="341021")
    page.fill("#v-id", good_id)
    page.route("**/api/v1/volunteers", lambda route: route.abort("internetdisconnected"))
    page.get_by_role("button", name="提交注册").click()
    expect(page.locator("[data-test=register-error]")).to_contain_text("填写的内容已保存在本机")
    page.unroute("**/api/v1/volunteers")
    page.reload()
    expect(page.locator("#v-name")).to_have_value("李志愿")
    expect(page.locator("#v-id")).to_have_value(good_id)
    expect(page.get_by_role("checkbox", name="陪伴关怀")).to_have_attribute("aria-checked", "true")
    expect(page.get_by_text("黄山市 歙县 徽城镇")).to_be_visible()
    page.get_by_role("button", name="提交注册").click()
    page.wait_for_url("**/h5/volunteer")
    expect(page.get_by_text("身份证 3410**********")).to_be_visible()
    assert page.evaluate("() => localStorage.getItem('huimin.h5.volunteer.register')") is None
    shot(page, "volunteer-home")

    # Near home: the county's activities that have not ended.
    page.get_by_text("找活动报名").click()
    page.wait_for_url("**/h5/volunteer/activities")
    listed = page.locator("[data-test=activities] .van-cell", has_text="徽城镇敬老院陪伴")
    expect(listed).to_contain_text("还剩 5 个名额")
    shot(page, "volunteer-activities")
    listed.click()
    page.wait_for_url(f"**/h5/volunteer/activities/{activity['id']}")
    page.locator("[data-test=sign-up]").click()
    expect(page.locator("[data-test=signup-status]")).to_contain_text("已报名，等组织方确认")

    confirm_everyone(h5, activity["id"])
    page.reload()
    expect(page.locator("[data-test=signup-status]")).to_contain_text("已确认")
    shot(page, "volunteer-activity")

    # Check in by typing the 6 characters under the QR code on the organiser's screen.
    shown = as_worker(h5, "GET", f"/api/v1/volunteer-activities/{activity['id']}/checkin-code?purpose=in")
    page.get_by_role("button", name="签到 / 签退").click()
    page.wait_for_url("**/h5/volunteer/checkin?activity=*")
    expect(page.get_by_role("radio", name=re.compile("徽城镇敬老院陪伴"))).to_have_attribute("aria-checked", "true")
    page.fill("#checkin-code", "ABC")
    page.get_by_role("button", name="提交签到码").click()
    expect(page.get_by_text("签到码是 6 位字母和数字")).to_be_visible()
    page.fill("#checkin-code", shown["short_code"].lower())
    page.get_by_role("button", name="提交签到码").click()
    expect(page.locator("[data-test=checkin-done]")).to_contain_text("签到成功")
    page.fill("#checkin-code", shown["short_code"])
    page.get_by_role("button", name="提交签到码").click()  # the same code again: refused, said plainly
    expect(page.locator("[data-test=checkin-error]")).to_contain_text("这个码您已经用过了")
    shot(page, "volunteer-checkin")

    # Check out by opening what the QR code holds (a phone camera opens the address).
    out = as_worker(h5, "GET", f"/api/v1/volunteer-activities/{activity['id']}/checkin-code?purpose=out")
    page.goto(f"{h5.base}/h5/volunteer/checkin?code={quote(out['code'])}")
    expect(page.locator("[data-test=checkin-done]")).to_contain_text("签退成功")
    expect(page).not_to_have_url(re.compile(r"code="))  # a reload does not send the used code again

    # The organiser confirms the hours; the record shows them; the volunteer asks for a correction.
    attendance = as_worker(h5, "GET", f"/api/v1/volunteer-activities/{activity['id']}/attendance")["items"]
    assert [a["status"] for a in attendance] == ["checked_out"]
    as_worker(
        h5,
        "POST",
        f"/api/v1/volunteer-attendance/{attendance[0]['id']}/confirm",
        json={"hours": 1.5, "evaluation": "认真负责"},
    )
    page.goto(h5.base + "/h5/volunteer/record")
    expect(page.locator("[data-test=record-total]")).to_contain_text("1.5 小时")
    service = page.locator("[data-test=record-service]", has_text="徽城镇敬老院陪伴")
    expect(service).to_contain_text("认真负责")
    service.get_by_text("申请更正").click()
    service.get_by_role("button", name="提交更正申请").click()
    expect(service.get_by_text("请说明哪里不对")).to_be_visible()
    page.fill(f"#ask-reason-{attendance[0]['id']}", "实际服务了 2 小时，签退晚了")
    page.fill(f"#ask-hours-{attendance[0]['id']}", "2")
    service.get_by_role("button", name="提交更正申请").click()
    expect(service.get_by_text("已提交更正申请")).to_be_visible()
    history = as_worker(h5, "GET", f"/api/v1/volunteer-attendance/{attendance[0]['id']}")["history"]
    assert history[-1]["action"] == "correction_requested" and history[-1]["changes"]["hours"] == {
        "old": 1.5,
        "new": 2.0,
    }
    assert as_worker(h5, "GET", f"/api/v1/volunteer-attendance/{attendance[0]['id']}")["hours"] == 1.5
    shot(page, "volunteer-record")

    # The station issues a certificate; the volunteer downloads it and sees its verify link.
    volunteer_id = attendance[0]["volunteer_id"]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    period = {"period_from": (today - timedelta(days=1)).isoformat(), "period_to": today.isoformat()}
    cert = as_worker(h5, "POST", f"/api/v1/volunteers/{volunteer_id}/certificates", json=period)
    page.goto(h5.base + "/h5/volunteer/certificates")
    card = page.locator("[data-test=certificate]", has_text=cert["number"])
    expect(card).to_contain_text("有效")
    expect(card).to_contain_text("1.5 小时")
    link = card.get_by_role("link", name="打开")
    assert link.get_attribute("href") == f"{h5.base}/verify/{cert['verification_code']}"
    with page.expect_download() as download:
        card.get_by_role("button", name="下载 PDF").click()
    pdf = download.value
    assert pdf.suggested_filename == f"志愿服务记录证明-{cert['number']}.pdf"
    assert Path(pdf.path()).read_bytes()[:5] == b"%PDF-"
    checked = requests.get(f"{h5.base}/verify/{cert['verification_code']}?format=json", timeout=10).json()
    assert checked["valid"] is True and checked["total_hours"] == 1.5
    shot(page, "volunteer-certificates")


def test_a_full_activity_shows_the_place_on_the_waiting_list_and_the_sign_up_can_be_withdrawn(
    page: Any, h5: H5
) -> None:
    activity = publish(h5, "周末社区清扫", slots=1, starts_in=timedelta(days=2))
    other = resident_headers(h5, "13700006666")
    first = requests.post(
        f"{h5.base}/api/v1/volunteers",
        json={
            "name": "王先到",
            "id_card": id_card("19850101", 7, region="341021"),
            "phone": "13700006666",
            "township": h5.station_a.code,
        },
        headers=other,
        timeout=10,
    )
    assert first.status_code == 201, first.text
    signed = requests.post(
        f"{h5.base}/api/v1/volunteer-activities/{activity['id']}/signups",
        headers=other,
        timeout=10,
    )
    assert signed.status_code == 201, signed.text
    confirm_everyone(h5, activity["id"])

    token = log_in(page, h5, "13700007777", then="/h5/volunteer/register")
    resp = requests.post(
        f"{h5.base}/api/v1/volunteers",
        json={
            "name": "赵后来",
            "id_card": id_card("19920202", 8, region="341021"),
            "phone": "13700007777",
            "township": h5.station_a.code,
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    page.goto(f"{h5.base}/h5/volunteer/activities/{activity['id']}")
    expect(page.get_by_text("名额已满（共 1），可以候补")).to_be_visible()
    page.get_by_role("button", name="名额已满，报名候补").click()
    expect(page.locator("[data-test=signup-status]")).to_contain_text("名额已满，候补第 1 位")
    page.goto(h5.base + "/h5/volunteer/signups")
    expect(page.locator("[data-test=my-signups]")).to_contain_text("候补第 1 位")
    page.goto(f"{h5.base}/h5/volunteer/activities/{activity['id']}")
    page.get_by_role("button", name="取消报名").click()
    page.locator(".van-dialog").get_by_role("button", name="取消报名").click()
    expect(page.get_by_role("button", name="名额已满，报名候补")).to_be_visible()
    mine = requests.get(
        f"{h5.base}/api/v1/volunteers/me/signups", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["items"]
    assert [s["status"] for s in mine] == ["cancelled"]


def test_the_volunteer_pages_pass_an_accessibility_check_in_large_text(browser: Any, h5: H5) -> None:
    # axe-core is put into the page by the test (bypass_csp): the app itself loads no such script.
    activity = publish(h5, "无障碍检查活动")
    context = phone_context(browser, h5.base, bypass_csp=True)
    page = context.new_page()
    try:
        token = log_in(page, h5, "13700009999", then="/h5/volunteer/register")
        page.goto(h5.base + "/h5/me")
        page.get_by_role("switch", name="大字模式").click()
        assert page.evaluate("() => document.documentElement.classList.contains('large-text')")
        found: dict[str, list[str]] = {}

        def check(path: str, ready: str) -> None:
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

        check("/h5/volunteer", "志愿服务")
        check("/h5/volunteer/register", "注册志愿者")
        body = {"name": "周无障", "id_card": id_card("19800303", 9, region="341021"), "phone": "13700009999",
                "township": h5.station_a.code}  # fmt: skip
        resp = requests.post(
            f"{h5.base}/api/v1/volunteers", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert resp.status_code == 201, resp.text
        for path, ready in (
            ("/h5/volunteer", "我要"),
            ("/h5/volunteer/activities", "找活动"),
            (f"/h5/volunteer/activities/{activity['id']}", "无障碍检查活动"),
            ("/h5/volunteer/signups", "我的活动"),
            ("/h5/volunteer/checkin", "签到 / 签退"),
            ("/h5/volunteer/record", "我的服务记录"),
            ("/h5/volunteer/certificates", "我的志愿服务证明"),
        ):
            check(path, ready)
        assert not found, json.dumps(found, ensure_ascii=False, indent=1)
    finally:
        context.close()
