"""The visit tier table page of the staff console in a real browser: read-only for staff, a dry run for admins."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.factories import elder_body
from tests.servers import LiveServer, isolated_settings
from tests.web.conftest import Deployment, _world, login, need_browser, shot

RULES = Path(__file__).resolve().parents[2] / "config" / "visit_tiers.toml"


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("tiers") / "visit_tiers.toml"
    shutil.copy(RULES, path)
    return path


@pytest.fixture(scope="module")
def tiers(mongo_uri: str, redis_url: str, tmp_path_factory: Any, rules_file: Path) -> Iterator[Deployment]:
    """The app with its own copy of the tier table, which a test may edit as an operator would."""
    need_browser()
    with isolated_settings(
        mongo_uri,
        redis_url,
        tmp_path_factory.mktemp("tier-console"),
        prefix="webtiers",
        visit_tier_rules_file=str(rules_file),
    ) as settings:
        server = LiveServer().serve(settings)
        try:
            a, b, accounts = server.run(_world(server))
            yield Deployment(server=server, station_a=a, station_b=b, accounts=accounts)
        finally:
            server.stop()


def register(d: Deployment, seq: int, flags: list[str]) -> dict[str, Any]:
    """Register a 76-year-old through the API, as staff do."""
    body = elder_body(d.station_a.code, seq=seq, born="19500101", flags=flags, name="赵桂兰")
    resp = requests.post(d.base + "/api/v1/elders", json=body, headers=d.admin, timeout=10)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_staff_read_the_tier_table_the_api_serves_and_cannot_apply_it(page: Any, tiers: Deployment) -> None:
    api = requests.get(
        tiers.base + "/api/v1/elders/tier-rules", headers=tiers.bearer(tiers.accounts["wang.wu"]), timeout=10
    ).json()
    anhui = next(p for p in api["provinces"] if p["province"] == "34")
    login(page, tiers.base, "wang.wu")
    page.get_by_role("menuitem", name="探访规则").click()
    page.wait_for_url("**/console/visits/tier-rules")
    expect(page.get_by_role("heading", level=1)).to_contain_text("探访频次规则")
    card = page.locator("[data-test=tier-province-34]")
    expect(card).to_contain_text(anhui["name"])
    rows = card.locator("[data-test=tier-rules] .el-table__row")
    expect(rows).to_have_count(len(anhui["rules"]))
    # Anhui: everyone 高龄, 独居 or 不能自理 (失能, 失智) is visited weekly.
    expect(rows.nth(0)).to_contain_text("高龄(80+)、独居、失能、失智")
    expect(rows.nth(0)).to_contain_text("每周探访")
    expect(rows.nth(1)).to_contain_text("每月探访")
    expect(card.locator("[data-test=tier-default]")).to_contain_text("每季探访")
    expect(page.locator("[data-test=tier-province-default]")).to_be_visible()
    expect(page.locator("[data-test=tier-preview]")).to_have_count(0)  # workers only read
    shot(page, "09-tier-rules")


def test_admin_previews_who_moves_after_the_table_changes(page: Any, tiers: Deployment, rules_file: Path) -> None:
    empty_nest = register(tiers, 1, ["empty_nest"])
    register(tiers, 2, ["left_behind"])
    assert empty_nest["tier"] == "key"
    # An operator makes 空巢 weekly in Anhui: the running server reads the file again.
    text = rules_file.read_text(encoding="utf-8")
    weekly = 'any_of = ["very_old", "alone", "disabled", "dementia"'
    changed = text.replace(weekly + "]", weekly + ', "empty_nest"]')
    assert changed != text
    rules_file.write_text(changed, encoding="utf-8")
    login(page, tiers.base, "admin.e2e")
    page.goto(tiers.base + "/console/visits/tier-rules")
    first = page.locator("[data-test=tier-province-34] [data-test=tier-rules] .el-table__row").nth(0)
    expect(first).to_contain_text("空巢")
    page.locator("[data-test=tier-preview]").click()
    report = re.compile(r"检查 2 人，固定频次 0 人，将变更\s*1\s*人")
    expect(page.locator("[data-test=tier-report]")).to_contain_text(report)
    moves = page.locator("[data-test=tier-moves] .el-table__row")
    expect(moves).to_have_count(1)
    expect(moves.nth(0)).to_contain_text("赵**")
    expect(moves.nth(0)).to_contain_text("每月探访")
    expect(moves.nth(0)).to_contain_text("每周探访")
    shot(page, "09-tier-rules-dry-run")
    # A dry run writes nothing.
    after = requests.get(
        f"{tiers.base}/api/v1/elders/{empty_nest['id']}",
        headers=tiers.admin,
        timeout=10,
    )
    assert after.json()["tier"] == "key"
