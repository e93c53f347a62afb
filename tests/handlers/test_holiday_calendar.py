"""The holiday calendar at start: the deployment's file is used, a missing next year is loud."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from run import create_app
from service.common import worktime


@pytest.fixture(autouse=True)
def _forget_overrides() -> Iterator[None]:
    yield
    worktime.install_overrides({})


def _last_year(metrics: str) -> float:
    found = re.search(r"^huimin_holiday_calendar_last_year (\S+)$", metrics, re.M)
    assert found, metrics
    return float(found.group(1))


async def test_without_next_years_holidays_the_start_warns_and_the_metric_shows_the_gap(
    aiohttp_client: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="huimin"):
        client = await aiohttp_client(create_app(settings))
    today = datetime.now(UTC).astimezone(worktime.TZ).date()
    expected = worktime.calendar_warning(today)
    warnings = [r.getMessage() for r in caplog.records if r.name == "huimin" and "holiday data" in r.getMessage()]
    assert warnings == ([expected] if expected else [])
    last = _last_year(await (await client.get("/metrics")).text())
    assert last == worktime.last_covered_year(today) == 2026  # chinese-calendar 1.11.0 stops at 2026


async def test_a_holidays_file_makes_new_years_day_2027_a_holiday(
    aiohttp_client: Any, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text('[2027]\nholidays = ["2027-01-01"]\nworkdays = []\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="huimin"):
        client = await aiohttp_client(create_app(settings.replace(holidays_file=str(path))))
    assert not [r for r in caplog.records if "holiday data" in r.getMessage()]
    assert _last_year(await (await client.get("/metrics")).text()) == 2027
    assert not worktime.is_working_day(datetime(2027, 1, 1).date())
