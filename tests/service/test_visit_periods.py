from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.visits.periods import next_period, parse_period, period_of, periods_between

CST = timezone(timedelta(hours=8))


def test_sunday_2330_shanghai_is_in_that_iso_week_though_utc_says_sunday_1530():
    at = datetime(2026, 11, 29, 23, 30, tzinfo=CST)
    assert period_of("high", at).id == "2026-W48"
    assert period_of("high", at + timedelta(minutes=31)).id == "2026-W49"


def test_a_week_starts_monday_midnight_shanghai():
    p = parse_period("2026-W48")
    assert p.start == datetime(2026, 11, 23, 0, 0, tzinfo=CST) and p.end == datetime(2026, 11, 30, tzinfo=CST)
    assert p.start.tzinfo is not None and p.start.utcoffset() == timedelta(0)


def test_month_and_quarter_boundaries_follow_local_midnight():
    new_year_local = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)  # 2027-01-01 00:30 in Shanghai
    assert period_of("key", new_year_local).id == "2027-01"
    assert period_of("general", new_year_local).id == "2027-Q1"
    assert period_of("general", new_year_local - timedelta(hours=1)).id == "2026-Q4"


def test_iso_week_53_and_week_one_across_years():
    assert period_of("week", datetime(2027, 1, 1, 12, tzinfo=CST)).id == "2026-W53"
    assert next_period(parse_period("2026-W53")).id == "2027-W01"


@pytest.mark.parametrize(("quarter", "weeks"), [("2026-Q1", 14), ("2024-Q2", 13), ("2025-Q4", 14)])
def test_a_quarter_overlaps_thirteen_or_fourteen_weeks_three_months_one_quarter(quarter, weeks):
    q = parse_period(quarter)
    assert len(periods_between("week", q.start, q.end)) == weeks
    assert len(periods_between("month", q.start, q.end)) == 3
    assert len(periods_between("quarter", q.start, q.end)) == 1


def test_bad_period_ids_are_refused():
    for bad in ("2026-W54", "2026-13", "2026-Q5", "week 48"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_period_numbers_are_distinct_across_kinds():
    ids = ["2026-W11", "2026-11", "2026-Q1", "2026-W01", "2026-01"]
    assert len({parse_period(i).seq for i in ids}) == len(ids)


@pytest.mark.parametrize("bad", ["0001-W01", "9999-W52", "1999-12", "2100-Q1", "0001-01"])
def test_periods_outside_the_programme_years_are_refused_not_overflowed(bad):
    with pytest.raises(ValueError, match="year must be 2000 to 2099"):
        parse_period(bad)
