"""The deployment's own holiday calendar (``HUIMIN_HOLIDAYS_FILE``), for years the installed
``chinese-calendar`` release does not know yet.

The State Council (国务院办公厅) publishes each year's public holidays and make-up workdays
(调休) late in the year before; a release of the package follows some weeks later. Until
then a deployment copies the notice into a TOML file, one table per year:

    [2027]
    holidays = ["2027-01-01", "2027-02-05"]   # days off (放假), weekdays included
    workdays = ["2027-02-13"]                 # make-up workdays (调休上班), weekends included

A year listed here replaces the package's data for that year. Every other weekday is a
working day and every other Saturday and Sunday a day off.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from pathlib import Path

YearTable = dict[int, tuple[frozenset[date], frozenset[date]]]


def parse_holidays(text: str) -> YearTable:
    """The years of a holidays file; ValueError naming the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    years: YearTable = {}
    for key, table in raw.items():
        if not (key.isdigit() and len(key) == 4) or not isinstance(table, dict):
            raise ValueError(f"expected one table per year, like [2027], got {key!r}")
        year = int(key)
        unknown = sorted(set(table) - {"holidays", "workdays"})
        if unknown:
            raise ValueError(f"[{key}]: unknown key {unknown[0]!r} (use holidays and workdays)")
        sets: list[frozenset[date]] = []
        for name in ("holidays", "workdays"):
            days: set[date] = set()
            values = table.get(name, [])
            if not isinstance(values, list):
                raise ValueError(f"[{key}] {name}: expected a list of dates")
            for value in values:
                try:
                    if isinstance(value, datetime):
                        raise ValueError
                    day = value if isinstance(value, date) else date.fromisoformat(str(value))
                except ValueError:
                    raise ValueError(f"[{key}] {name}: {value!r} is not a date (YYYY-MM-DD)") from None
                if day.year != year:
                    raise ValueError(f"[{key}] {name}: {day.isoformat()} is not in {year}")
                days.add(day)
            sets.append(frozenset(days))
        if sets[0] & sets[1]:
            clash = min(sets[0] & sets[1]).isoformat()
            raise ValueError(f"[{key}]: {clash} is listed both as a holiday and as a workday")
        years[year] = (sets[0], sets[1])
    return years


def load_holidays(path: str) -> YearTable:
    """The years of the file at ``path`` (empty path: none); ValueError if it cannot be used."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return parse_holidays(text)
