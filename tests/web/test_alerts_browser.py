"""The 紧急告警 alert board in a real browser: an SOS posted by a vendor appears live, signing for it shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from playwright.sync_api import expect

from tests.factories import bearer_for, make_device, make_elder, make_rota_entry, make_vendor
from tests.web.conftest import Deployment, login, shot


def _alert(deployment: Deployment, vendor: Any, **body: Any) -> dict[str, Any]:
    assert deployment.server.settings is not None
    resp = requests.post(
        deployment.base + "/api/v1/alerts",
        json={"occurred_at": datetime.now(UTC).isoformat(), **body},
        headers=bearer_for(deployment.server.settings, vendor),
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_an_sos_appears_on_the_station_board_live_and_signing_for_it_updates_the_row(
    page: Any, deployment: Deployment
) -> None:
    server, station = deployment.server, deployment.station_a
    worker, other = deployment.accounts["wang.wu"], deployment.accounts["zhao.liu"]

    async def world() -> tuple[Any, Any, Any]:
        ctx = server.ctx
        elder = await make_elder(ctx, township=station.code, location={"lon": 118.41, "lat": 29.86})
        vendor = await make_vendor(ctx)
        sos = await make_device(ctx, elder, vendor, vendor_device_id="SOS-BOARD-1")
        meter = await make_device(ctx, elder, vendor, type="water_meter", vendor_device_id="WM-BOARD-1")
        await make_rota_entry(ctx, worker, phone="13900001111", starts_at=ctx.now() - timedelta(hours=1))
        return vendor, sos, meter

    vendor, sos, meter = server.run(world())
    login(page, deployment.base, "wang.wu")
    page.get_by_role("menuitem", name="紧急告警").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("紧急告警")
    expect(page.locator("[data-test=live-state]")).to_contain_text("实时 Live")
    expect(page.locator("[data-test=duty]")).to_contain_text("王五")
    expect(page.locator("[data-test=urgent-count]")).to_have_text("0")
    page.evaluate("window.__notReloaded = true")

    # A low battery report only lists the device for maintenance (no event); the SOS after it
    # opens an urgent case, whose event brings both onto the board without a reload.
    _alert(deployment, vendor, alert_id="BOARD-LB-1", type="low_battery", device_id=meter.vendor_device_id)
    opened = _alert(deployment, vendor, alert_id="BOARD-SOS-1", type="sos", device_id=sos.vendor_device_id)
    assert opened["outcome"] == "case_opened"
    case = deployment.case(opened["case_id"])
    row = page.locator("[data-test=urgent] .el-table__row", has_text=case["number"])
    expect(row).to_be_visible()
    expect(row).to_contain_text("紧急呼叫 SOS")
    expect(row).to_contain_text("SOS-BOARD-1")
    expect(row.locator("[data-test=signed]")).to_have_text("未签收 Not signed")
    expect(row.locator("[data-test=escalation]")).to_have_text("未升级 Not escalated")
    expect(row).to_contain_text("王五 13900001111")
    expect(row.locator("[data-test=waiting]")).to_contain_text("分")
    expect(page.locator("[data-test=urgent-count]")).to_have_text("1")
    maintenance = page.locator("[data-test=maintenance] .el-table__row", has_text="WM-BOARD-1")
    expect(maintenance).to_contain_text("低电量 Low battery")
    shot(page, "13-alerts")

    # Another worker of the station signs for it through the API: the row changes live.
    resp = requests.post(
        f"{deployment.base}/api/v1/cases/{case['id']}/accept",
        json={},
        headers=deployment.bearer(other),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    expect(row.locator("[data-test=signed]")).to_have_text("已签收 Signed")
    expect(row.locator("[data-test=sign]")).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True


def test_the_county_supervisor_sees_every_station_of_the_county_with_its_open_alerts(
    page: Any, deployment: Deployment
) -> None:
    server, station = deployment.server, deployment.station_a
    supervisor = server.run(_county_supervisor(deployment))

    async def world() -> tuple[Any, Any]:
        ctx = server.ctx
        elder = await make_elder(ctx, township=station.code, location={"lon": 118.41, "lat": 29.86})
        vendor = await make_vendor(ctx)
        return vendor, await make_device(ctx, elder, vendor, vendor_device_id="FALL-BOARD-2")

    vendor, fall = server.run(world())
    login(page, deployment.base, supervisor.username)
    page.get_by_role("menuitem", name="紧急告警").click()
    stations = page.locator("[data-test=stations] .el-table__row")
    expect(stations.filter(has_text=deployment.station_b.name)).to_be_visible()
    opened = _alert(deployment, vendor, alert_id="BOARD-FALL-2", type="fall", device_id=fall.vendor_device_id)
    case = deployment.case(opened["case_id"])
    row = page.locator("[data-test=urgent] .el-table__row", has_text=case["number"])
    expect(row).to_contain_text("跌倒 Fall")
    expect(row).to_contain_text(station.name)
    expect(row.locator("[data-test=signed]")).to_have_text("未签收 Not signed")
    expect(stations.filter(has_text=station.name)).to_contain_text("王五")


async def _county_supervisor(deployment: Deployment) -> Any:
    from service.common.models import SYSTEM
    from service.identity.staff import create_staff
    from tests.web.conftest import PASSWORD

    return await create_staff(
        ctx=deployment.server.ctx,
        principal=SYSTEM,
        username="qian.xian",
        password=PASSWORD,
        role="supervisor",
        name="钱县督办",
        division_prefix=deployment.station_a.code[:6],
    )
