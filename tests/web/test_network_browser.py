"""The 社工站建设 page in a real browser: the figures are the API's, the table shows status and six haves."""

from __future__ import annotations

from typing import Any

import requests
from playwright.sync_api import expect

from tests.web.conftest import Deployment, login, shot


def test_supervisor_sees_the_network_figures_of_the_api_and_each_stations_status(
    page: Any, deployment: Deployment
) -> None:
    head = deployment.accounts["li.zhan"]
    station = deployment.station_a
    resp = requests.patch(
        f"{deployment.base}/api/v1/network/stations/{station.id}",
        json={"status": "operating", "dates": {"built": "2024-03-01", "operating": "2024-05-20"}},
        headers=deployment.bearer(head),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    supervisor = deployment.accounts["sun.du"]
    as_supervisor = deployment.bearer(supervisor)
    stats = requests.get(
        deployment.base + "/api/v1/stats/stations", params={"group_by": "county"}, headers=as_supervisor, timeout=30
    ).json()
    figures = stats["division"]
    assert figures["covered_townships"] >= 1

    login(page, deployment.base, "sun.du")
    page.get_by_role("menuitem", name="社工站建设").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("社工站建设")
    expect(page.locator("[data-test=coverage-pct]")).to_have_text(f"{figures['coverage_pct']:.1f}%")
    expect(page.locator("[data-test=compliance-pct]")).to_have_text(f"{figures['compliance_pct']:.1f}%")
    row = page.locator("[data-test=network] .el-table__row", has_text=station.name)
    expect(row).to_contain_text("运营中")
    expect(row).to_contain_text("✗场地")
    other = page.locator("[data-test=network] .el-table__row", has_text=deployment.station_b.name)
    expect(other).to_contain_text("未填报")
    expect(page.locator("[data-test=network-groups] .el-table__row").first).to_be_visible()
    with page.expect_download() as download:
        page.locator("[data-test=network-export]").click()
    assert download.value.suggested_filename.endswith(".csv")
    shot(page, "12-network")
