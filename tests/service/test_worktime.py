"""Working-time arithmetic against the Chinese statutory calendar, Asia/Shanghai."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from config.holidays import parse_holidays
from service.common import worktime
from service.common.worktime import add_working_days, add_working_hours, calendar_covers, is_working_day

SH = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


def test_sign_for_due_skips_the_2026_national_day_holiday() -> None:
    # Wed 30 Sep 16:00 + 8 h: 1.5 h that day, Oct 1-7 are holidays, then 3.5 h + 3 h on Thu Oct 8.
    due = add_working_hours(local(2026, 9, 30, 16, 0), 8)
    assert due == local(2026, 10, 8, 17, 0)
    assert due.tzinfo == UTC


def test_resolve_due_counts_the_make_up_saturday_after_national_day() -> None:
    # Working days after Sep 30: Oct 8 (Thu), Oct 9 (Fri), Oct 10 (Sat, make-up workday 调休).
    assert not is_working_day(local(2026, 10, 7, 0, 0).date())
    assert is_working_day(local(2026, 10, 10, 0, 0).date())
    assert add_working_days(local(2026, 9, 30, 10, 0), 1) == local(2026, 10, 8, 17, 30)
    assert add_working_days(local(2026, 9, 30, 10, 0), 3) == local(2026, 10, 10, 17, 30)
    assert add_working_days(local(2026, 9, 30, 10, 0), 4) == local(2026, 10, 12, 17, 30)


def test_resolve_due_counts_the_make_up_sunday_of_january_2026() -> None:
    assert add_working_days(local(2026, 1, 3, 10, 0), 1) == local(2026, 1, 4, 17, 30)


def test_night_submission_starts_counting_at_next_opening() -> None:
    assert add_working_hours(local(2026, 11, 2, 22, 0), 2) == local(2026, 11, 3, 10, 30)
    assert add_working_hours(local(2026, 11, 3, 6, 0), 1) == local(2026, 11, 3, 9, 30)


def test_weekend_submission_counts_from_monday() -> None:
    assert add_working_hours(local(2026, 11, 28, 10, 0), 1) == local(2026, 11, 30, 9, 30)
    assert add_working_days(local(2026, 11, 28, 10, 0), 1) == local(2026, 11, 30, 17, 30)


def test_lunch_break_does_not_count() -> None:
    assert add_working_hours(local(2026, 11, 30, 12, 30), 1) == local(2026, 11, 30, 15, 0)
    assert add_working_hours(local(2026, 11, 30, 11, 30), 1) == local(2026, 11, 30, 14, 30)


def test_after_close_rolls_to_next_working_day() -> None:
    assert add_working_hours(local(2026, 11, 30, 17, 30), 0.5) == local(2026, 12, 1, 9, 0)
    assert add_working_hours(local(2026, 11, 30, 17, 0), 0.5) == local(2026, 11, 30, 17, 30)


def test_a_full_working_day_is_seven_hours() -> None:
    assert worktime.working_hours_per_day() == 7
    assert add_working_hours(local(2026, 11, 30, 8, 30), 7) == local(2026, 11, 30, 17, 30)


def test_resolve_due_ignores_hour_of_submission_day() -> None:
    assert add_working_days(local(2026, 11, 30, 23, 59), 2) == local(2026, 12, 2, 17, 30)
    assert add_working_days(local(2026, 11, 30, 0, 1), 2) == local(2026, 12, 2, 17, 30)


def test_zero_days_is_close_of_the_same_or_next_working_day() -> None:
    assert add_working_days(local(2026, 11, 30, 9, 0), 0) == local(2026, 11, 30, 17, 30)
    assert add_working_days(local(2026, 11, 30, 18, 0), 0) == local(2026, 12, 1, 17, 30)


def test_utc_input_is_converted_to_shanghai_time() -> None:
    # 01:00 UTC is 09:00 in Shanghai.
    assert add_working_hours(datetime(2026, 11, 30, 1, 0, tzinfo=UTC), 1) == local(2026, 11, 30, 10, 0)


def test_calendar_coverage_is_reported_per_year() -> None:
    assert calendar_covers(2026)
    assert not calendar_covers(2027)


def test_uncovered_year_falls_back_to_monday_to_friday_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    worktime._warned_years.discard(2027)
    with caplog.at_level(logging.WARNING, logger="huimin.worktime"):
        # Fri 8 Jan 2027 + 1 working day: the weekend is skipped -> Mon 11 Jan.
        assert add_working_days(local(2027, 1, 8, 10, 0), 1) == local(2027, 1, 11, 17, 30)
        assert add_working_hours(local(2027, 1, 9, 10, 0), 1) == local(2027, 1, 11, 9, 30)
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1


def test_due_time_crossing_into_an_uncovered_year() -> None:
    # Thu 31 Dec 2026 16:00 + 8 h: 1.5 h on Dec 31, then Fri 1 Jan 2027 counts (fallback), 6.5 h.
    assert add_working_hours(local(2026, 12, 31, 16, 0), 8) == local(2027, 1, 1, 17, 0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError):
        add_working_hours(datetime(2026, 11, 30, 9, 0), 1)
    with pytest.raises(ValueError):
        add_working_days(local(2026, 11, 30, 9, 0), -1)


# ---------------------------------------------------------------- clocks


FRIDAY_EVENING = local(2026, 12, 4, 18, 0)


def test_the_calendar_clock_counts_elapsed_hours_through_nights_and_weekends() -> None:
    assert worktime.add_hours(FRIDAY_EVENING, 1, "calendar") == local(2026, 12, 4, 19, 0)
    assert worktime.add_days(FRIDAY_EVENING, 1, "calendar") == local(2026, 12, 5, 18, 0)
    assert worktime.add_hours(local(2026, 10, 1, 2, 0), 2, "calendar") == local(2026, 10, 1, 4, 0)  # a holiday night


def test_the_working_clock_waits_for_monday() -> None:
    assert worktime.add_hours(FRIDAY_EVENING, 1, "working") == local(2026, 12, 7, 9, 30)
    assert worktime.add_days(FRIDAY_EVENING, 1, "working") == local(2026, 12, 7, 17, 30)
    assert worktime.add_hours(FRIDAY_EVENING, 1) == worktime.add_working_hours(FRIDAY_EVENING, 1)


def test_the_calendar_clock_refuses_negative_limits_and_naive_times() -> None:
    with pytest.raises(ValueError):
        worktime.add_hours(FRIDAY_EVENING, -1, "calendar")
    with pytest.raises(ValueError):
        worktime.add_days(datetime(2026, 12, 4, 18, 0), 1, "calendar")


# ---------------------------------------------------------------- the deployment's holiday years


@pytest.fixture
def overrides() -> Iterator[None]:
    yield
    worktime.install_overrides({})


HOLIDAYS_2027 = """
[2027]
holidays = ["2027-01-01", "2027-10-04"]
workdays = ["2027-01-09"]
"""


def test_a_year_supplied_by_the_deployment_is_used_and_counts_as_covered(overrides: None) -> None:
    assert not calendar_covers(2027)
    assert is_working_day(local(2027, 1, 1, 0, 0).date())  # Mon-Fri fallback: wrong without the file
    worktime.install_overrides(parse_holidays(HOLIDAYS_2027))
    assert calendar_covers(2027)
    assert not is_working_day(local(2027, 1, 1, 0, 0).date())
    assert is_working_day(local(2027, 1, 9, 0, 0).date())  # a make-up Saturday
    assert not is_working_day(local(2027, 1, 10, 0, 0).date())  # an ordinary Sunday
    assert is_working_day(local(2027, 1, 4, 0, 0).date())  # an ordinary Monday
    assert add_working_days(local(2026, 12, 31, 10, 0), 1) == local(2027, 1, 4, 17, 30)
    assert worktime.last_covered_year(local(2026, 11, 1, 0, 0).date()) == 2027


def test_a_supplied_year_takes_precedence_over_the_package(overrides: None) -> None:
    assert is_working_day(local(2026, 6, 1, 0, 0).date())
    worktime.install_overrides(parse_holidays('[2026]\nholidays = ["2026-06-01"]\n'))
    assert not is_working_day(local(2026, 6, 1, 0, 0).date())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[2027\n", "not valid TOML"),
        ('[twenty]\nholidays = ["2027-01-01"]\n', "one table per year"),
        ('[2027]\nholidays = ["2027-02-30"]\n', "is not a date"),
        ('[2027]\nholidays = ["2028-01-01"]\n', "is not in 2027"),
        ('[2027]\nholiday = ["2027-01-01"]\n', "unknown key"),
        ('[2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]\n', "both as a holiday and as a workday"),
        ("[2027]\nholidays = 2027-01-01T00:00:00\n", "expected a list"),
    ],
)
def test_a_bad_holidays_file_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_holidays(text)


def test_toml_dates_are_accepted_as_well_as_strings() -> None:
    years = parse_holidays("[2027]\nholidays = [2027-01-01]\n")
    assert years[2027][0] == frozenset({date(2027, 1, 1)})


def test_a_missing_next_year_is_reported_from_october(overrides: None) -> None:
    assert worktime.calendar_warning(date(2026, 9, 30)) is None
    warning = worktime.calendar_warning(date(2026, 10, 1))
    assert warning is not None and "2027" in warning and "HUIMIN_HOLIDAYS_FILE" in warning
    missing_now = worktime.calendar_warning(date(2027, 3, 1))
    assert missing_now is not None and "no Chinese holiday data for 2027 (" in missing_now
    worktime.install_overrides(parse_holidays(HOLIDAYS_2027))
    assert worktime.calendar_warning(date(2026, 11, 29)) is None
