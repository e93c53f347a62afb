"""The staff console in a real browser against the real app: login, the live queue, handling a case."""

from __future__ import annotations

import re
import time
from typing import Any

import requests
from playwright.sync_api import expect

from handlers.console import CONSOLE_DIR
from tests.factories import make_elder
from tests.handlers.test_uploads import png
from tests.web.conftest import PASSWORD, Deployment, login, shot


def test_wrong_password_is_refused_in_chinese_and_the_right_one_opens_the_queue(
    page: Any, deployment: Deployment
) -> None:
    page.goto(deployment.base + "/console/")
    page.wait_for_url(re.compile(r"/console/login\?redirect="))
    page.fill("input[name=username]", "wang.wu")
    page.fill("input[name=password]", "not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码不对")
    shot(page, "01-login")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")  # usable from the keyboard
    page.wait_for_url("**/console/queue")
    expect(page.locator("[data-test=who]")).to_contain_text("王五")


def test_a_case_filed_by_a_resident_appears_in_the_open_queue_without_a_reload(
    page: Any, deployment: Deployment
) -> None:
    login(page, deployment.base, "wang.wu")
    expect(page.locator("[data-test=live]")).to_have_text("实时更新中")
    page.evaluate("window.__sameDocument = true")
    case = deployment.file_case()
    row = page.locator("[data-test=queue] .el-table-v2__row", has_text=case["number"])
    expect(row).to_be_visible(timeout=10_000)
    expect(page.locator(".feed-notice")).to_contain_text(case["number"])
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect(row).to_contain_text("待签收")
    expect(row).to_contain_text(re.compile(r"剩 \d"))
    shot(page, "02-queue")


def test_worker_accepts_schedules_and_resolves_a_case_with_a_photo(page: Any, deployment: Deployment) -> None:
    case = deployment.file_case(location={"lon": 118.4312, "lat": 29.8675})
    login(page, deployment.base, "wang.wu")
    page.locator("[data-test=queue] .el-table-v2__row", has_text=case["number"]).click()
    page.wait_for_url(f"**/console/cases/{case['id']}")
    expect(page.locator("[data-test=case-number]")).to_have_text(case["number"])
    expect(page.locator("[data-test=routing-reason]")).not_to_be_empty()
    # The answers are shown with the service's labels, not their codes.
    service = requests.get(f"{deployment.base}/api/v1/services/elderly_home_visit", timeout=10).json()
    first_label = next(f["label_zh"] for f in service["fields"] if f["code"] in case["answers"])
    expect(page.locator("[data-test=answers]")).to_contain_text(first_label)
    # The location on the small map of the county polygons (歙县 shaded), drawn on a canvas.
    expect(page.locator("[data-test=case-map]")).to_contain_text("歙县")
    expect(page.locator("[data-test=case-map]")).to_contain_text("118.4312, 29.8675")
    wait_painted(page, "[data-test=case-map]")
    shot(page, "03-case-dispatched")

    act(page, "accept")
    expect(page.locator("[data-test=case-status]")).to_have_text("已签收")

    page.locator("[data-action=schedule]").click()
    dialog = page.locator(".el-dialog", has_text="预约上门")
    picker = dialog.locator("input[name=scheduled_at]")
    picker.fill("2026-12-10 09:30")
    picker.press("Enter")
    dialog.locator("textarea[name=note]").fill("电话约好上门时间")
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-test=history]")).to_contain_text("预约")

    # Resolving without a result is refused at the field, in Chinese, without a request.
    page.locator("[data-action=resolve]").click()
    dialog = page.locator(".el-dialog", has_text="办理结果")
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_contain_text("请填写办理结果")
    dialog.locator("textarea[name=result]").fill("已上门探访，老人身体状况良好，已登记助餐需求。")
    # A photo of the visit: uploaded when picked, sent with the resolution by its upload id.
    dialog.locator("input[name=photos]").set_input_files(
        {"name": "visit.png", "mimeType": "image/png", "buffer": png(32, 24)}
    )
    expect(dialog.locator("[data-test=photo-picker] [data-uploaded=true]")).to_have_count(1)
    shot(page, "04-resolve-dialog")
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-test=case-status]")).to_have_text("已办结")
    photo = page.locator("[data-test=result-photos] img")
    expect(photo).to_have_count(1)
    expect(photo).to_have_attribute("src", re.compile(r"^blob:"))  # fetched with the bearer token
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 32
    shot(page, "05-case-resolved")

    done = deployment.case(case["id"])
    assert done["status"] == "resolved"
    assert done["result"] == "已上门探访，老人身体状况良好，已登记助餐需求。"
    [photo_id] = done["result_photos"]
    assert done["history"][-1]["data"]["photos"] == [photo_id]
    assert done["scheduled_at"] is not None and done["scheduled_at"].startswith("2026-12-10")


def act(page: Any, action: str) -> None:
    page.locator(f"[data-action={action}]").click()
    dialog = page.locator("[data-test=action-dialog]").locator("visible=true").last
    page.locator(".el-dialog [data-test=action-submit]").locator("visible=true").click()
    expect(dialog).to_be_hidden()


def test_supervisor_dispatches_an_unrouted_case(page: Any, deployment: Deployment) -> None:
    # A township of 阜阳 with no station and no location: nobody to route it to.
    case = deployment.file_case(division_code="341202001")
    assert case["status"] == "unrouted", case["routing"]
    login(page, deployment.base, "sun.du")
    page.get_by_role("menuitem", name="派单与审批").click()
    row = page.locator("[data-test=dispatch-queue] .el-table__row", has_text=case["number"])
    expect(row).to_be_visible()
    shot(page, "06-dispatch-queue")
    row.locator("[data-action=dispatch]").click()
    dialog = page.locator(".el-dialog", has_text="派往社工站")
    dialog.locator(".el-select").click()
    page.locator(".el-select-dropdown__item", has_text="文峰街道社工站").click()
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_be_hidden()
    expect(row).to_be_hidden()
    after = deployment.case(case["id"])
    assert after["status"] == "dispatched"
    assert after["station_name"] == "文峰街道社工站"


CANVAS_PAINTED = """(sel) => {
  const canvas = document.querySelector(sel + ' canvas');
  if (!canvas || !canvas.width || !canvas.height) return 0;
  const ctx = canvas.getContext('2d');
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4 * 7) if (data[i] !== 0) painted++;
  return painted;
}"""


def wait_painted(page: Any, selector: str, timeout: float = 10.0) -> None:
    """Wait until the chart's canvas has pixels drawn (polled from here: the page's CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    while page.evaluate(CANVAS_PAINTED, selector) < 50:
        assert time.monotonic() < deadline, f"{selector} drew nothing"
        time.sleep(0.2)


def test_dashboard_figures_equal_the_kpi_api_and_its_charts_are_drawn(page: Any, deployment: Deployment) -> None:
    deployment.file_case()  # at least one case in the figures
    supervisor = deployment.accounts["sun.du"]
    api = requests.get(
        deployment.base + "/api/v1/stats/kpis",
        params={"division": "34"},
        headers=deployment.bearer(supervisor),
        timeout=10,
    ).json()
    [overall] = api["groups"]
    assert overall["total"] >= 1
    login(page, deployment.base, "sun.du")
    page.get_by_role("menuitem", name="绩效看板").click()
    cards = page.locator("[data-test=kpi-cards]")
    expect(cards.locator("[data-figure=total]")).to_have_text(str(overall["total"]))
    expect(cards.locator("[data-figure=overdue]")).to_have_text(str(overall["overdue"]))
    for rate in ("response_rate", "on_time_resolution_rate", "resolution_rate", "satisfaction_rate"):
        value = overall[rate]
        expect(cards.locator(f"[data-figure={rate}]")).to_have_text("—" if value is None else f"{value * 100:.1f}%")
    for chart in ("map", "scenario-chart", "trend-chart", "group-chart"):
        wait_painted(page, f"[data-test={chart}]")
    # Export of the grouped table as CSV.
    with page.expect_download() as download:
        page.locator("[data-test=export]").click()
    assert download.value.suggested_filename.endswith(".csv")
    shot(page, "07-dashboard")


def test_an_access_token_that_expires_mid_work_is_refreshed_without_losing_the_dialog_input(
    page: Any, short_sessions: Deployment
) -> None:
    case = short_sessions.file_case()
    refreshes: list[int] = []
    page.on("response", lambda r: refreshes.append(r.status) if r.url.endswith("/api/v1/auth/refresh") else None)
    login(page, short_sessions.base, "zhao.liu")
    page.locator("[data-test=queue] .el-table-v2__row", has_text=case["number"]).click()
    page.locator("[data-action=note]").click()
    dialog = page.locator(".el-dialog", has_text="进展情况")
    dialog.locator("textarea[name=text]").fill("已电话联系家属，约定周五上门。")
    time.sleep(5)  # the 4-second access token runs out while the dialog is open
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-test=history]")).to_contain_text("已电话联系家属，约定周五上门。")
    assert 200 in refreshes
    assert "login" not in page.url
    history = short_sessions.case(case["id"])["history"]
    assert history[-1]["action"] == "note" and history[-1]["note"] == "已电话联系家属，约定周五上门。"


def test_every_page_renders_for_its_role(page: Any, deployment: Deployment) -> None:
    login(page, deployment.base, "admin.e2e")
    for name, heading, table in (
        ("visits", "探访关爱", "visits-due"),
        ("stations", "社工站", "stations"),
        ("staff", "工作人员", "staff"),
        ("clients", "接入客户端", "clients"),
        ("catalogue", "服务目录", "catalogue"),
    ):
        page.goto(
            f"{deployment.base}/console/admin/{name}" if name != "visits" else f"{deployment.base}/console/visits"
        )
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        expect(page.locator(f"[data-test={table}]")).to_be_visible()
        shot(page, f"08-{name}")
    expect(page.locator("[data-test=catalogue] .el-table__row").first).to_be_visible()
    page.locator("[data-test=logout]").click()
    page.wait_for_url("**/console/login")
    page.goto(deployment.base + "/console/queue")
    page.wait_for_url(re.compile(r"/console/login\?redirect="))


def test_the_queue_loads_under_300_kb_of_gzipped_javascript(page: Any, deployment: Deployment) -> None:
    scripts: set[str] = set()
    page.on("response", lambda r: scripts.add(r.url.split("/console/")[1]) if r.url.endswith(".js") else None)
    login(page, deployment.base, "wang.wu")  # the login page, then the queue
    expect(page.locator("[data-test=queue]")).to_be_visible()
    page.wait_for_load_state("networkidle")
    gzipped = sum((CONSOLE_DIR / f"{name}.gz").stat().st_size for name in scripts)
    assert scripts, "no script was loaded"
    assert gzipped < 300 * 1024, f"{gzipped / 1024:.0f} KB of gzipped JavaScript for the queue: {sorted(scripts)}"
    print(f"queue route: {len(scripts)} scripts, {gzipped / 1024:.0f} KB gzipped")


def test_station_head_asks_for_more_time_and_the_supervisor_approves(page: Any, deployment: Deployment) -> None:
    case = deployment.file_case()
    head = deployment.accounts["li.zhan"]
    accepted = requests.post(
        f"{deployment.base}/api/v1/cases/{case['id']}/accept",
        json={},
        headers=deployment.bearer(head),
        timeout=10,
    )
    assert accepted.status_code == 200, accepted.text
    login(page, deployment.base, "li.zhan")
    page.goto(f"{deployment.base}/console/cases/{case['id']}")
    page.locator("[data-action=request_extension]").click()
    dialog = page.locator(".el-dialog", has_text="延长工作日")
    dialog.locator("textarea[name=reason]").fill("需协调医院出具证明")
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-test=extension]")).to_contain_text("待审批")
    page.locator("[data-test=logout]").click()
    page.wait_for_url("**/console/login")

    login(page, deployment.base, "sun.du")
    page.get_by_role("menuitem", name="派单与审批").click()
    page.get_by_role("tab", name=re.compile("延期申请")).click()
    row = page.locator("[data-test=extensions] .el-table__row", has_text=case["number"])
    expect(row).to_contain_text("需协调医院出具证明")
    shot(page, "09-extensions")
    row.locator("[data-action=approve_extension]").click()
    page.locator(".el-dialog [data-test=action-submit]").locator("visible=true").click()
    expect(row).to_be_hidden()
    after = deployment.case(case["id"])
    assert after["extension"]["status"] == "approved"
    assert after["resolve_due_at"] > case["resolve_due_at"]


def _station_by_code(deployment: Deployment, code: str) -> dict[str, Any] | None:
    page = requests.get(
        deployment.base + "/api/v1/stations",
        params={"county": code[:6], "limit": 100, "include_inactive": "true"},
        timeout=10,
    ).json()
    return next((s for s in page["items"] if s["code"] == code), None)


STATIONS_CSV = "code,name,county_code,county_name,city_name,lon,lat,capabilities,capacity\n"


def test_admin_edits_a_station_and_imports_after_a_dry_run_that_shows_every_bad_row(
    page: Any, deployment: Deployment
) -> None:
    login(page, deployment.base, "admin.e2e")
    page.goto(deployment.base + "/console/admin/stations")
    county = page.get_by_label("县区代码")
    county.fill("341021")
    county.press("Enter")
    row = page.locator("[data-test=stations] .el-table__row", has_text="深渡镇社工站")
    row.locator("[data-action=edit-station]").click()
    dialog = page.locator("[data-test=station-dialog]").locator("visible=true")
    dialog.locator("input[name=contact_phone]").fill("0559-651234")  # a digit short
    dialog.locator("[data-test=station-save]").click()
    # The server's field error, in Chinese at the field, and what it means above the buttons.
    expect(dialog.locator(".el-form-item", has=page.locator("input[name=contact_phone]"))).to_contain_text("格式不对")
    expect(dialog.locator(".el-alert")).to_contain_text("社工站信息有误")
    dialog.locator("input[name=contact_phone]").fill("0559-6512345")
    capacity = dialog.locator("input[name=capacity]")
    capacity.fill("30")
    capacity.press("Tab")
    shot(page, "11-station-edit")
    dialog.locator("[data-test=station-save]").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("0559-6512345")
    saved = _station_by_code(deployment, deployment.station_b.code)
    assert saved is not None
    assert (saved["contact_phone"], saved["capacity"], saved["name"]) == ("0559-6512345", 30, "深渡镇社工站")

    # Import: the dry run lists every bad row and nothing can be written until the file is right.
    bad = (
        STATIONS_CSV
        + "341021102,街口镇社工站,341021,歙县,黄山市,118.55,29.78,elderly_care,20\n"
        + "34102,坏代码,341021,歙县,黄山市,118.5,29.8,,\n"
        + "341021103,经度坏,341021,歙县,黄山市,east,29.8,,\n"
        + "341021100,徽城镇社工站,341021,歙县,黄山市,118.41,29.86,,lots\n"
    )
    page.locator("[data-test=import-open]").click()
    dialog = page.locator("[data-test=import-dialog]").locator("visible=true")
    file_input = dialog.locator("input[name=stations-file]")
    file_input.set_input_files({"name": "stations.csv", "mimeType": "text/csv", "buffer": bad.encode()})
    dialog.locator("[data-test=import-preview]").click()
    expect(dialog.locator("[data-test=import-error-count]")).to_have_text("3 个问题")
    problems = dialog.locator("[data-test=import-errors] .el-table__row")
    expect(problems).to_have_count(3)
    for n, (line, field) in enumerate(((3, "code"), (4, "lon"), (5, "capacity"))):
        expect(problems.nth(n)).to_contain_text(str(line))
        expect(problems.nth(n)).to_contain_text(field)
    expect(dialog.locator("[data-test=import-apply]")).to_be_disabled()
    shot(page, "12-station-import-preview")
    assert _station_by_code(deployment, "341021102") is None  # a preview writes nothing

    good = STATIONS_CSV + "341021102,街口镇社工站,341021,歙县,黄山市,118.55,29.78,elderly_care,20\n"
    file_input.set_input_files({"name": "stations.csv", "mimeType": "text/csv", "buffer": good.encode()})
    expect(dialog.locator("[data-test=import-report]")).to_have_count(0)  # a new file needs its own preview
    dialog.locator("[data-test=import-preview]").click()
    expect(dialog.locator("[data-test=import-error-count]")).to_have_text("0 个问题")
    expect(dialog.locator("[data-test=import-create]")).to_have_text("1")
    dialog.locator("[data-test=import-apply]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-test=stations] .el-table__row", has_text="街口镇社工站")).to_be_visible()
    imported = _station_by_code(deployment, "341021102")
    assert imported is not None and imported["capacity"] == 20 and imported["capabilities"] == ["elderly_care"]


def test_worker_reads_the_elder_register_masked_and_opens_one_record(page: Any, deployment: Deployment) -> None:
    elder = deployment.server.run(
        make_elder(
            deployment.server.ctx,
            township=deployment.station_a.code,
            name="王秀英",
            phone="13800138000",
            address="徽城镇 新安路 12 号",
            location={"lon": 118.41, "lat": 29.86},
        )
    )
    login(page, deployment.base, "wang.wu")
    page.get_by_role("menuitem", name="探访关爱").click()
    due = page.locator("[data-test=visits-due] .el-table__row", has_text="王秀英")
    expect(due).to_contain_text("每周（高风险）")  # 独居: the weekly tier, by its Chinese name
    page.get_by_role("tab", name="老人名册").click()
    register = page.locator("[data-test=elders]")
    row = register.locator(".el-table__row", has_text=elder.id_card_masked)
    expect(row).to_be_visible()
    expect(row.locator("[data-field=name]")).to_have_text("王**")
    expect(row.locator("[data-field=phone]")).to_have_text("138****8000")
    expect(row).to_contain_text("新安路 *号")
    expect(row).to_contain_text("独居")
    assert "*" in elder.id_card_masked
    for clear in ("王秀英", "13800138000", "12 号"):
        expect(register).not_to_contain_text(clear)
    shot(page, "13-elder-register")
    row.locator("[data-action=elder-detail]").click()
    dialog = page.locator("[data-test=elder-dialog]").locator("visible=true")
    expect(dialog).to_contain_text("王秀英")
    expect(dialog).to_contain_text(elder.id_card_masked)


def test_station_head_assigns_a_case_to_a_worker_picked_from_the_station_staff(
    page: Any, deployment: Deployment
) -> None:
    case = deployment.file_case()
    head = deployment.accounts["li.zhan"]
    accepted = requests.post(
        f"{deployment.base}/api/v1/cases/{case['id']}/accept",
        json={},
        headers=deployment.bearer(head),
        timeout=10,
    )
    assert accepted.status_code == 200, accepted.text
    login(page, deployment.base, "li.zhan")
    page.goto(f"{deployment.base}/console/cases/{case['id']}")
    page.locator("[data-action=assign]").click()
    dialog = page.locator(".el-dialog", has_text="工作人员").locator("visible=true")
    dialog.locator("[data-test=assignee-select]").click()
    options = page.locator(".el-select-dropdown__item").locator("visible=true")
    expect(options).to_have_count(3)  # 王五, 赵六 and the head: the station's active staff, nobody else's
    options.filter(has_text="赵六").click()
    dialog.locator("textarea[name=note]").fill("赵六熟悉该户情况")
    shot(page, "14-assign")
    dialog.locator("[data-test=action-submit]").click()
    expect(dialog).to_be_hidden()
    after = deployment.case(case["id"])
    assert after["assignee_id"] == deployment.accounts["zhao.liu"].id


def test_admin_gives_an_integrator_a_territory_on_creation_and_changes_it(page: Any, deployment: Deployment) -> None:
    login(page, deployment.base, "admin.e2e")
    page.goto(f"{deployment.base}/console/admin/clients")
    page.get_by_role("button", name="新建客户端").click()
    dialog = page.locator(".el-dialog", has_text="新建客户端")
    dialog.get_by_placeholder("如 皖事通").fill("黄山市智能外呼平台")
    dialog.locator("input[data-test=client-territory-input]").fill("9x")  # not a division prefix
    dialog.get_by_role("button", name="创建").click()
    expect(dialog).to_contain_text("3410")  # the field's error names an example of a good prefix
    dialog.locator("input[data-test=client-territory-input]").fill("3410")
    dialog.get_by_role("button", name="创建").click()
    expect(page.locator("[data-test=client-secret]")).to_be_visible()
    row = page.locator("[data-test=clients] .el-table__row", has_text="黄山市智能外呼平台")
    expect(row.locator("[data-test=client-territory]")).to_have_text("3410")

    row.locator("[data-test=client-set-territory]").click()
    box = page.locator(".el-message-box")
    box.locator("input").fill("341021")
    box.get_by_role("button", name="保存").click()
    expect(box).to_be_hidden()
    expect(row.locator("[data-test=client-territory]")).to_have_text("341021")
    listed = requests.get(f"{deployment.base}/api/v1/clients", headers=deployment.admin, timeout=10).json()["items"]
    assert [c["division_prefix"] for c in listed if c["name"] == "黄山市智能外呼平台"] == ["341021"]
    shot(page, "08-clients-territory")
