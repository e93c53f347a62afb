"""The worker's queue with 1,000 open cases: a virtualised table that keeps a window of rows in the DOM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from service.common.context import Context
from tests.factories import STAFF_PASSWORD, bearer_for, make_case, make_phone_resident, make_staff, make_station
from tests.servers import LiveServer, isolated_settings
from tests.web.conftest import login, need_browser, shot

CASES = 1000
# A window: the rows in view plus el-table-v2's small overscan, far fewer than the cases.
MAX_ROWS_IN_DOM = 60


async def _thousand_cases(ctx: Context) -> Any:
    """One station, its worker, and 1,000 cases filed by residents through the submit service, 20 at a time."""
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id, username="queue.worker", name="钱七")
    residents = [await make_phone_resident(ctx) for _ in range(20)]
    gate = asyncio.Semaphore(20)

    async def one(n: int) -> None:
        async with gate:
            await make_case(ctx, residents[n % len(residents)])

    await asyncio.gather(*(one(n) for n in range(CASES)))
    return worker


@pytest.fixture(scope="module")
def big_queue(mongo_uri: str, redis_url: str, tmp_path_factory: Any) -> Iterator[tuple[LiveServer, Any]]:
    need_browser()
    with isolated_settings(mongo_uri, redis_url, tmp_path_factory.mktemp("queue"), prefix="webq") as settings:
        server = LiveServer().serve(settings)
        try:
            started = time.monotonic()
            worker = server.run(_thousand_cases(server.ctx), timeout=600)
            print(f"{CASES} cases filed in {time.monotonic() - started:.1f} s")
            yield server, worker
        finally:
            server.stop()


def _queue_numbers(server: LiveServer, worker: Any) -> list[str]:
    """The open queue as the API sorts it by due time (the order the console shows)."""
    assert server.settings is not None
    numbers: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "due", "limit": 100, "status": "unrouted,dispatched,accepted,in_progress"}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(
            server.base_url + "/api/v1/cases", params=params, headers=bearer_for(server.settings, worker), timeout=30
        ).json()
        numbers += [c["number"] for c in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return numbers


ROWS = "[data-test=queue] .el-table-v2__row"


# Filing 1,000 cases through the service takes about 40 s on an idle 2-core machine, longer on a busy one.
@pytest.mark.timeout(600)
def test_a_queue_of_1000_cases_keeps_a_window_of_rows_and_scrolls_to_the_last(
    page: Any, big_queue: tuple[LiveServer, Any]
) -> None:
    server, worker = big_queue
    numbers = _queue_numbers(server, worker)
    assert len(numbers) == CASES
    login(page, server.base_url, "queue.worker", STAFF_PASSWORD)
    started = time.monotonic()
    expect(page.locator("[data-test=queue]")).to_have_attribute("data-count", str(CASES), timeout=60_000)
    expect(page.locator(f'{ROWS}[data-case="{numbers[0]}"]')).to_be_visible()
    print(f"queue of {CASES} shown {time.monotonic() - started:.1f} s after the login")
    assert page.locator(ROWS).count() <= MAX_ROWS_IN_DOM
    expect(page.get_by_text(f"共 {CASES} 件")).to_be_visible()
    expect(page.locator(f'{ROWS}[data-case="{numbers[-1]}"]')).to_have_count(0)  # far below: not rendered

    # Scroll to the end with the mouse wheel as a person would; the DOM holds a window all the way.
    page.locator(ROWS).first.hover()
    started = time.monotonic()
    for _ in range(200):
        page.mouse.wheel(0, 2000)
        assert page.locator(ROWS).count() <= MAX_ROWS_IN_DOM
        if page.locator(f'{ROWS}[data-case="{numbers[-1]}"]').count():
            break
    scrolled = time.monotonic() - started
    last = page.locator(f'{ROWS}[data-case="{numbers[-1]}"]')
    expect(last).to_be_visible()
    expect(last).to_have_attribute("aria-rowindex", str(CASES + 1))  # the header is row 1
    expect(page.locator(f'{ROWS}[data-case="{numbers[0]}"]')).to_have_count(0)
    print(f"scrolled through {CASES} cases in {scrolled:.1f} s")
    assert scrolled < 30, f"scrolling 1,000 rows took {scrolled:.1f} s"
    shot(page, "10-queue-1000")

    # A row far down opens its case like any other.
    last.click()
    page.wait_for_url("**/console/cases/*")
    expect(page.locator("[data-test=case-number]")).to_have_text(numbers[-1])
