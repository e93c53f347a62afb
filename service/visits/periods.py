"""Visit periods of the 探访关爱 programme: ISO weeks, calendar months and quarters in Asia/Shanghai.

Pure functions, no I/O. A period is half-open ``[start, end)``; times are stored in UTC but
the boundaries are local midnights in Asia/Shanghai (China has no daylight saving time).
Period ids: ``2026-W48`` (ISO week, Monday to Sunday), ``2026-11`` (month), ``2026-Q4``.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIERS = ("high", "key", "general")
# How often each risk tier is visited.
TIER_KIND = {"high": "week", "key": "month", "general": "quarter"}
TIER_NAMES = {"high": "高风险 high (weekly)", "key": "重点 key (monthly)", "general": "一般 general (quarterly)"}
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
# Periods the programme can have: its records start in 2000; nothing is planned past 2099.
MIN_YEAR, MAX_YEAR = 2000, 2099


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """One visit period: ``start`` inclusive, ``end`` exclusive, both UTC."""

    id: str
    kind: str  # week | month | quarter
    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def seq(self) -> int:
        """A stable number unique per period id (e.g. for event sequence numbers)."""
        year, rest = self.id[:4], self.id[5:]
        offset = {"week": 100, "month": 200, "quarter": 300}[self.kind]
        return int(year) * 1000 + offset + int(rest.lstrip("WQ"))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)


def _week(year: int, week: int) -> Period:
    monday = date.fromisocalendar(year, week, 1)
    return Period(f"{year}-W{week:02d}", "week", _midnight(monday), _midnight(monday + timedelta(days=7)))


def _month(year: int, month: int) -> Period:
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(f"{year}-{month:02d}", "month", _midnight(date(year, month, 1)), _midnight(nxt))


def _quarter(year: int, q: int) -> Period:
    first = date(year, 3 * q - 2, 1)
    nxt = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return Period(f"{year}-Q{q}", "quarter", _midnight(first), _midnight(nxt))


def local_date(at: datetime) -> date:
    """The calendar day of ``at`` in Asia/Shanghai."""
    return at.astimezone(SHANGHAI).date()


def period_of(kind: str, at: datetime) -> Period:
    """The period of ``kind`` (week, month, quarter; or a tier name) that contains ``at``."""
    kind = TIER_KIND.get(kind, kind)
    day = local_date(at)
    if kind == "week":
        iso = day.isocalendar()
        return _week(iso.year, iso.week)
    if kind == "month":
        return _month(day.year, day.month)
    if kind == "quarter":
        return _quarter(day.year, (day.month - 1) // 3 + 1)
    raise ValueError(f"unknown period kind {kind!r}")


def parse_period(text: str) -> Period:
    """The period named by an id like 2026-W48, 2026-11 or 2026-Q4; ValueError otherwise."""
    value = (text or "").strip()
    m = _WEEK.match(value) or _MONTH.match(value) or _QUARTER.match(value)
    if m and not MIN_YEAR <= int(m[1]) <= MAX_YEAR:
        raise ValueError(f"{value}: the year must be {MIN_YEAR} to {MAX_YEAR}.")
    if m := _WEEK.match(value):
        try:
            return _week(int(m[1]), int(m[2]))
        except ValueError:
            raise ValueError(f"{value} is not an ISO week of that year.") from None
    if m := _MONTH.match(value):
        if not 1 <= int(m[2]) <= 12:
            raise ValueError(f"{value}: the month must be 01 to 12.")
        return _month(int(m[1]), int(m[2]))
    if m := _QUARTER.match(value):
        return _quarter(int(m[1]), int(m[2]))
    raise ValueError("Use a period id like 2026-W48 (ISO week), 2026-11 (month) or 2026-Q4 (quarter).")


def next_period(period: Period) -> Period:
    """The period of the same kind that follows ``period``."""
    return period_of(period.kind, period.end)


def periods_between(kind: str, start: datetime, end: datetime) -> list[Period]:
    """Every period of ``kind`` that overlaps ``[start, end)``, in order."""
    out = []
    p = period_of(kind, start)
    while p.start < end:
        out.append(p)
        p = next_period(p)
    return out


def age_on(birth: date, day: date) -> int:
    """Completed years of age on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
