"""The console's plan page (规划指标): the figures equal the plan API, and a figure opens its records."""

from __future__ import annotations

from typing import Any

import requests
from playwright.sync_api import expect

from tests.web.conftest import Deployment, login, shot


def shown(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{value * 100:.1f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.2f}"


def test_the_plan_page_shows_the_plan_apis_figures_and_opens_the_records(page: Any, deployment: Deployment) -> None:
    supervisor = deployment.accounts["sun.du"]
    headers = deployment.bearer(supervisor)
    api = requests.get(deployment.base + "/api/v1/stats/plan", headers=headers, timeout=30).json()
    indicators = {i["code"]: i for i in api["indicators"]}
    assert indicators["station_coverage"]["actual"] is not None
    login(page, deployment.base, "sun.du")
    page.get_by_role("menuitem", name="规划指标").click()
    table = page.locator("[data-test=plan-table]")
    for code in ("station_coverage", "social_workers_total", "six_haves_compliance"):
        i = indicators[code]
        expect(table.locator(f"[data-test=actual-{code}]")).to_have_text(shown(i["actual"], i["unit"]))
    table.locator("[data-test=actual-station_coverage]").click()
    expect(page.locator("[data-test=plan-records] li").first).to_be_visible()
    shot(page, "10-plan")


def _seed_map_figures(deployment: Deployment) -> int:
    """Social workers in 歙县 (黄山市) and 文峰街道 (阜阳市), and older populations that put 歙县 over the
    plan's one per 1,000 and 颍州区 at half of it; the other cities have no figure."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.factories import id_card, import_reference_figures, import_register

    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    rows = [
        {
            "name": f"地图社工{seq}",
            "id_card": id_card("19850101", seq, region=division[:6]),
            "employer_kind": "station",
            "division": division,
            "role": "frontline",
            "occupation": "social_work",
            "start_date": f"{year - 1}-03-01",
        }
        for seq, division in ((901, "341021100"), (902, "341021101"), (903, "341202002"))
    ]
    ctx = deployment.server.ctx
    report = deployment.server.run(import_register(ctx, rows))
    assert report.written, report
    figures = [
        {"division": "341021", "year": year, "older_population": 1000, "source": "测试统计年鉴"},
        {"division": "341202", "year": year, "older_population": 2000, "source": "测试统计年鉴"},
    ]
    report = deployment.server.run(import_reference_figures(ctx, figures))
    assert report.written, report
    return year


def test_the_plan_map_colours_the_divisions_by_progress_and_a_click_drills_down(
    page: Any, deployment: Deployment
) -> None:
    year = _seed_map_figures(deployment)
    headers = deployment.bearer(deployment.accounts["sun.du"])
    indicator = "social_workers_per_1000_older"
    api = requests.get(
        deployment.base + f"/api/v1/stats/plan/divisions?year={year}&indicator={indicator}", headers=headers, timeout=30
    ).json()
    cities = {r["division"]: r for r in api["divisions"]}
    assert cities["341000"]["progress"] == 2.0 and cities["341200"]["progress"] == 0.5  # the API's own figures
    # The outlines: one gzipped request, a fraction of the county GeoJSON, revalidated by its tag.
    resp = requests.get(deployment.base + "/console/data/anhui_divisions.json", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert int(resp.headers["Content-Length"]) < 40_000 and len(resp.json()["divisions"]) == 120
    again = requests.get(
        deployment.base + "/console/data/anhui_divisions.json",
        headers={"If-None-Match": resp.headers["ETag"]},
        timeout=30,
    )
    assert again.status_code == 304

    login(page, deployment.base, "sun.du")
    page.get_by_role("menuitem", name="规划指标").click()
    page.locator("[data-test=map-indicator]").click()
    page.get_by_role("option", name="每千名老年人社会工作者数").click()
    the_map = page.locator("[data-test=plan-map]")
    expect(the_map).to_have_attribute("data-loaded", f"340000:{indicator}", timeout=60_000)
    paths = the_map.locator("[data-test=map-division]")
    expect(paths).to_have_count(16)  # the province's cities
    met, half, none = (
        the_map.locator(f"[data-test=map-division][data-code='{c}']") for c in ("341000", "341200", "340100")
    )
    expect(met).to_have_attribute("data-bin", "met")
    expect(half).to_have_attribute("data-bin", "p50")
    expect(none).to_have_attribute("data-bin", "none")
    fills = {p.get_attribute("fill") for p in (met, half, none)}
    assert len(fills) == 3, fills  # three colours, as the legend says
    legend = page.locator("[data-test=map-legend]")
    expect(legend).to_contain_text("≥ 100% 达标")
    expect(legend).to_contain_text("暂无数据")
    met.hover()
    expect(page.locator("[data-test=map-tip]")).to_have_text("黄山市：2 / 目标 1（200%）")
    shot(page, "10-plan-map")

    met.click()  # drill down into 黄山市: its counties, and the page's division follows
    expect(the_map).to_have_attribute("data-loaded", f"341000:{indicator}", timeout=60_000)
    expect(page.get_by_label("区划代码")).to_have_value("341000")
    expect(page.locator("[data-test=plan] .meta")).to_contain_text("黄山市")
    expect(paths).to_have_count(7)
    expect(the_map.locator("[data-test=map-division][data-code='341021']")).to_have_attribute("data-bin", "met")
    expect(the_map.locator("[data-test=map-division][data-code='341002']")).to_have_attribute("data-bin", "none")
    # the figure's records: the reference figures it was computed from
    the_map.locator("[data-test=map-records-341021]").click()
    expect(page.locator("[data-test=plan-records] li")).to_have_count(1)
    expect(page.locator("[data-test=plan-records] li").first).to_contain_text("341021")
    page.keyboard.press("Escape")

    the_map.locator("[data-test=map-division][data-code='341021']").click()  # into 歙县: the county alone
    expect(the_map).to_have_attribute("data-loaded", f"341021:{indicator}", timeout=60_000)
    expect(page.get_by_label("区划代码")).to_have_value("341021")
    expect(paths).to_have_count(1)
    expect(the_map.locator("[data-test=map-table]")).to_contain_text("徽城镇")
    page.locator("[data-test=plan-up]").click()
    expect(the_map).to_have_attribute("data-loaded", f"341000:{indicator}", timeout=60_000)
