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

Two clocks (a service type's ``clock``): ``working`` counts as above; ``calendar`` runs
around the clock for urgent services (an emergency filed on a Friday evening is due that
night, not on Monday): N hours are N elapsed hours and M days are M x 24 hours.
``add_hours`` / ``add_days`` take the clock.

Years the calendar package has no data for: ``chinese_calendar`` covers a fixed range of
years (1.11.0: 2004-2026) and raises NotImplementedError outside it, because holidays are
announced only late in the preceding year. A deployment can supply a year itself, from the
State Council's notice, in the file named by ``HUIMIN_HOLIDAYS_FILE`` (see
``config/holidays.py``); ``install_overrides`` puts those years in place at start and they
take precedence over the package. For years neither knows this module falls back to
Monday-Friday working days, logs one warning per year, and ``calendar_covers(year)`` says
whether a year is covered; ``last_covered_year()`` feeds the start-up warning and the
``huimin_holiday_calendar_last_year`` metric, so a missing next year is seen in autumn.

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
CLOCKS = ("working", "calendar")
_warned_years: set[int] = set()
# Years supplied by the deployment (HUIMIN_HOLIDAYS_FILE): year -> (holidays, make-up workdays).
# Process-wide like the package's own tables; installed once at start by install_overrides().
_overrides: dict[int, tuple[frozenset[date], frozenset[date]]] = {}


def install_overrides(years: dict[int, tuple[frozenset[date], frozenset[date]]]) -> None:
    """Use these years' holidays and make-up workdays in place of (or beyond) the package's."""
    _overrides.clear()
    _overrides.update(years)
    _package_covers.cache_clear()
    _working_day.cache_clear()


@lru_cache(maxsize=256)
def _package_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def calendar_covers(year: int) -> bool:
    """True when holiday data for ``year`` is known (the package or the deployment's file)."""
    return year in _overrides or _package_covers(year)


def last_covered_year(today: date | None = None) -> int:
    """The last year of the unbroken run of covered years from this one (this year - 1 if it is not)."""
    year = (today or datetime.now(TZ).date()).year
    while calendar_covers(year):
        year += 1
    return year - 1


def calendar_version() -> str:
    """The installed chinese-calendar release."""
    return str(getattr(chinese_calendar, "__version__", "?"))


def is_working_day(day: date) -> bool:
    """A statutory working day, make-up workdays included (Mon-Fri for uncovered years)."""
    if day.year not in _warned_years and not calendar_covers(day.year):
        _warned_years.add(day.year)
        log.warning(
            "no Chinese holiday data for %s in chinese-calendar %s: counting Monday-Friday as working days; "
            "upgrade the package or list the year in HUIMIN_HOLIDAYS_FILE when its holidays are published",
            day.year,
            calendar_version(),
        )
    return _working_day(day)


# Remembered by date (a deadline counts some ten days, each filing again): the answer changes
# only with the overrides, which clear it.
@lru_cache(maxsize=4096)
def _working_day(day: date) -> bool:
    override = _overrides.get(day.year)
    if override is not None:
        holidays, workdays = override
        return day in workdays or (day.weekday() < 5 and day not in holidays)
    if _package_covers(day.year):
        return bool(chinese_calendar.is_workday(day))
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


def add_hours(start: datetime, hours: float, clock: str = "working") -> datetime:
    """``hours`` after ``start`` on the given clock: working hours, or elapsed hours (``calendar``)."""
    if clock == "calendar":
        if hours < 0:
            raise ValueError("hours must not be negative")
        return _local(start).astimezone(UTC) + timedelta(hours=hours)
    return add_working_hours(start, hours)


def add_days(start: datetime, days: int, clock: str = "working") -> datetime:
    """``days`` after ``start`` on the given clock: close of the M-th working day, or M x 24 hours."""
    if clock == "calendar":
        if days < 0:
            raise ValueError("days must not be negative")
        return _local(start).astimezone(UTC) + timedelta(days=days)
    return add_working_days(start, days)


# From October the State Council's notice for next year is due (it usually comes in
# November): a calendar that does not know next year by then is reported at every start.
WARN_FROM_MONTH = 10


def calendar_warning(today: date) -> str | None:
    """Pure: what the start-up log should say about holiday data (None when all is well)."""
    last = last_covered_year(today)
    if last < today.year:
        return (
            f"no Chinese holiday data for {today.year} (chinese-calendar {calendar_version()}): deadlines count "
            "Monday-Friday and may land on holidays; list the year in HUIMIN_HOLIDAYS_FILE or upgrade the package"
        )
    if last == today.year and today.month >= WARN_FROM_MONTH:
        return (
            f"no Chinese holiday data for {today.year + 1} yet (chinese-calendar {calendar_version()} knows up to "
            f"{last}): deadlines reaching into {today.year + 1} count Monday-Friday; once the State Council "
            "publishes the holidays, list them in HUIMIN_HOLIDAYS_FILE or upgrade the package"
        )
    return None
