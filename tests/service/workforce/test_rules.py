"""The workforce area's pure decisions and its target table, without I/O."""

from __future__ import annotations

from datetime import date

import pytest

from service.common.models import Principal
from service.workforce import checks, rules
from service.workforce.repository.filters import scope_match
from service.workforce.targets import DEFAULT_FILE, TargetsError, parse_targets, plan_targets

TODAY = date(2025, 11, 27)


@pytest.mark.parametrize(
    ("code", "prefix", "level"),
    [
        ("340000", "34", "province"),
        ("341000", "3410", "city"),
        ("341002", "341002", "county"),
        ("341002001", "341002001", "township"),
    ],
)
def test_a_division_code_becomes_the_prefix_its_records_share(code: str, prefix: str, level: str) -> None:
    assert rules.prefix_of(code) == prefix and rules.level_of(prefix) == level and rules.code_of(prefix)[:6] == code[:6]


def test_the_scope_filter_uses_the_stored_division_fields() -> None:
    assert scope_match("34") == {"province_code": "340000"}
    assert scope_match("3410") == {"city_code": "341000"}
    assert scope_match("341002") == {"county_code": "341002"}
    assert scope_match("341002001") == {"division": "341002001"}


def test_a_supervisor_sees_only_under_their_prefix() -> None:
    sup = Principal(subject="s", role="supervisor", division_prefix="3410")
    assert rules.may_see_division(sup, "341002") and not rules.may_see_division(sup, "34")
    assert not rules.may_see_division(Principal(subject="w", role="worker", station_id="x"), "341002")
    assert rules.may_manage_division(sup, "341002001") and not rules.may_manage_division(sup, "340102")


def test_the_phone_is_shown_only_to_the_person_themselves() -> None:
    me = Principal(subject="a" * 24, role="worker", station_id="x")
    assert rules.show_phone(me, "13905591234", "a" * 24) == "13905591234"
    assert rules.show_phone(me, "13905591234", "b" * 24) == "139****1234"


def test_a_whole_record_must_hold_together() -> None:
    base = {"employer_kind": "station", "division": "341002001", "start_date": "2024-01-01", "status": "active"}
    assert checks.check_person_whole(base, TODAY) == {}
    assert "end_date" in checks.check_person_whole({**base, "status": "left"}, TODAY)
    assert "end_date" in checks.check_person_whole({**base, "end_date": "2025-01-01"}, TODAY)
    assert "end_date" in checks.check_person_whole({**base, "status": "left", "end_date": "2023-01-01"}, TODAY)
    assert "certificate_no" in checks.check_person_whole({**base, "qualification_level": "senior"}, TODAY)
    assert "division" in checks.check_person_whole({**base, "division": "341002"}, TODAY)
    assert "start_date" in checks.check_person_whole({**base, "start_date": "2026-01-01"}, TODAY)


def test_the_gap_is_the_shortfall_and_zero_once_met() -> None:
    assert rules.compare(500, 350) == (150, 0.7, False)
    assert rules.compare(1.0, 1.2) == (0.0, 1.2, True)
    assert rules.compare(None, 3) == (None, None, None)
    assert rules.compare(1.0, None) == (None, None, None)
    assert rules.ratio(3, 60000, 1000) == 0.05 and rules.ratio(3, 0) is None


def test_a_past_year_is_taken_on_31_december_and_this_year_today() -> None:
    assert rules.as_of_date(2024, TODAY) == date(2024, 12, 31)
    assert rules.as_of_date(2025, TODAY) == TODAY


def test_the_shipped_target_table_covers_the_plan_periods() -> None:
    table = plan_targets(DEFAULT_FILE)
    period = table.period_of(2025)
    assert period is not None and period.id == "2021-2025"
    assert period.target_for("social_workers_total", "340000", "province") == (
        131000.0,
        period.targets["social_workers_total"].note,
    )
    value, note = period.target_for("social_workers_total", "341002", "county")
    assert value is None and note and "province" in note
    assert period.target_for("station_coverage", "341002", "county")[0] == 1.0
    nxt = table.period_of(2027)
    assert nxt is not None and nxt.target_for("trained_certified", "340000", "province")[0] is None
    assert table.period_of(2019) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[periods."2021-2025"]\nstart_year = 2021\nend_year = 2024\n', "period id"),
        (
            '[periods."2021-2025"]\nstart_year = 2021\nend_year = 2025\n'
            '[periods."2021-2025".targets]\nfoo = { value = 1 }\n',
            "unknown indicator",
        ),
        (
            '[periods."2021-2025"]\nstart_year = 2021\nend_year = 2025\n[periods."2021-2025".targets]\n'
            'station_coverage = { value = -1, applies_to = "every" }\n',
            "0 or more",
        ),
        (
            '[periods."2021-2025"]\nstart_year = 2021\nend_year = 2025\n[periods."2025-2030"]\nstart_year = 2025\n'
            "end_year = 2030\n",
            "overlap",
        ),
    ],
)
def test_a_bad_target_table_names_its_first_problem(text: str, problem: str) -> None:
    with pytest.raises(TargetsError, match=problem):
        parse_targets(text, "t.toml")


def test_a_division_can_be_given_its_own_share_of_a_province_wide_total() -> None:
    table = parse_targets(
        '[periods."2021-2025"]\nstart_year = 2021\nend_year = 2025\n[periods."2021-2025".targets]\n'
        'social_workers_total = { value = 131000, applies_to = "province" }\n'
        '[periods."2021-2025".divisions."341000"]\nsocial_workers_total = { value = 3500, note = "黄山市" }\n',
        "t.toml",
    )
    period = table.periods[0]
    assert period.target_for("social_workers_total", "341000", "city") == (3500.0, "黄山市")
    assert period.target_for("social_workers_total", "341002", "county")[0] is None
