"""Chinese working time (工作日/工作时间) in Asia/Shanghai, for 12345-style time limits.

Working days come from the ``chinese-calendar`` package (module ``chinese_calendar``):
statutory public holidays and the make-up workdays (调休) the State Council announces each
year, including make-up Saturdays and Sundays. Working hours are the office hours of
Anhui government offices, ``OFFICE_HOURS`` below (08:30-12:00 and 14:00-17:30, 7 hours a
working day); a time limit counts only time inside them.

Two kinds of limit:

* sign-for (签收) within N working hours: ``add_working_hours(submitted_at, N)``. The clock
  runs only inside office hours of working days; a case filed at night, at lunch or on a
  holiday starts counting at the next opening.
* resolve (办结) within M working days: ``add_working_days(submitted_at, M)`` is the close
  of office (17:30 local) of the M-th working day after the day of submission, whatever
  the hour of submission that day.

Years the calendar package has no data for: ``chinese_calendar`` covers a fixed range of
years (1.11.0: 2004-2026) and raises NotImplementedError outside it, because holidays are
announced only late in the preceding year. For such years this module falls back to
Monday-Friday working days, logs one warning per year, and ``calendar_covers(year)`` says
whether a year is covered. Due times that fall in an uncovered year may therefore land on a
holiday until the package is upgraded (pin a release that includes the year as soon as the
State Council publishes it, usually in November).

All inputs must be timezone-aware; results are timezone-aware UTC (how times are stored).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger("huimin.worktime")

TZ = ZoneInfo("Asia/Shanghai")
# Office hours of a working day, local time, in order; limits count only time inside them.
OFFICE_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))
CLOSE_OF_OFFICE: time = OFFICE_HOURS[-1][1]
# No real limit spans ten years; the bound stops a runaway loop on absurd input.
_MAX_DAYS_SCANNED = 3660
_warned_years: set[int] = set()


@lru_cache(maxsize=256)
def calendar_covers(year: int) -> bool:
    """True when the calendar package has holiday data for ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def is_working_day(day: date) -> bool:
    """A statutory working day, make-up workdays included (Mon-Fri for uncovered years)."""
    if calendar_covers(day.year):
        return bool(chinese_calendar.is_workday(day))
    if day.year not in _warned_years:
        _warned_years.add(day.year)
        log.warning(
            "no Chinese holiday data for %s in chinese-calendar %s: counting Monday-Friday as working days; "
            "upgrade the package when the year's holidays are published",
            day.year,
            getattr(chinese_calendar, "__version__", "?"),
        )
    return day.weekday() < 5


def _local(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("working-time arithmetic needs a timezone-aware datetime")
    return value.astimezone(TZ)


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=TZ)


def add_working_hours(start: datetime, hours: float) -> datetime:
    """The instant ``hours`` working hours after ``start`` (UTC)."""
    if hours < 0:
        raise ValueError("hours must not be negative")
    current = _local(start)
    remaining = timedelta(hours=hours)
    day = current.date()
    for _ in range(_MAX_DAYS_SCANNED):
        if is_working_day(day):
            for opens, closes in OFFICE_HOURS:
                begin = max(current, _at(day, opens))
                end = _at(day, closes)
                if begin >= end:
                    continue
                if remaining <= end - begin:
                    return (begin + remaining).astimezone(UTC)
                remaining -= end - begin
        day += timedelta(days=1)
        current = _at(day, time(0, 0))
    raise ValueError("working-hour limit too long")


def add_working_days(start: datetime, days: int) -> datetime:
    """Close of office on the ``days``-th working day after the day of ``start`` (UTC).

    ``days == 0`` means close of office on the day itself, or on the next working day when
    ``start`` is not on a working day or is after close.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    local = _local(start)
    day = local.date()
    if days == 0:
        if is_working_day(day) and local < _at(day, CLOSE_OF_OFFICE):
            return _at(day, CLOSE_OF_OFFICE).astimezone(UTC)
        days = 1
    counted = 0
    for _ in range(_MAX_DAYS_SCANNED):
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
            if counted == days:
                return _at(day, CLOSE_OF_OFFICE).astimezone(UTC)
    raise ValueError("working-day limit too long")


def working_hours_per_day() -> float:
    """Length of one working day's office hours, in hours."""
    return (
        sum(
            (datetime.combine(date.min, closes) - datetime.combine(date.min, opens)).total_seconds()
            for opens, closes in OFFICE_HOURS
        )
        / 3600
    )
