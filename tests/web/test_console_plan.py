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
