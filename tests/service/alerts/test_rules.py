"""Pure decisions of the alerts area and the county rules table (no I/O)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from config.county_rules import load_county_rules, parse_county_rules
from service.alerts import rules
from service.alerts.models import RotaEntry
from service.visits.repository.rates import counted_expr
from service.visits.stats import machine_calls

T0 = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)  # 03:00 in Shanghai


def _entry(staff: str, start_h: float, end_h: float) -> RotaEntry:
    return RotaEntry(
        id=f"r-{staff}",
        station_id="s",
        staff_id=staff,
        phone="13700000000",
        starts_at=T0 + timedelta(hours=start_h),
        ends_at=T0 + timedelta(hours=end_h),
        note=None,
        created_by="h",
        created_at=T0,
    )


def test_each_alert_type_has_its_rule() -> None:
    assert {t: rules.rule_for(t) for t in ("sos", "fall", "smoke")} == dict.fromkeys(("sos", "fall", "smoke"), "urgent")
    assert rules.rule_for("no_activity") == "checkup"
    assert rules.rule_for("low_battery") == rules.rule_for("offline") == "maintenance"


def test_on_duty_is_whoever_covers_the_moment_and_not_the_shift_that_just_ended() -> None:
    night, day, ended = _entry("night", -1, 5), _entry("day", 5, 13), _entry("evening", -9, 0)
    assert [e.staff_id for e in rules.on_duty([day, night, ended], T0)] == ["night"]
    assert [e.staff_id for e in rules.on_duty([day, night, ended], T0 + timedelta(hours=5))] == ["day"]


def test_escalation_steps_count_from_the_alert_and_end_after_the_last() -> None:
    rule = parse_county_rules(
        '[counties.default]\nescalation = [{ after_minutes = 5, to = "station_head" }, '
        '{ after_minutes = 15, to = "county" }]\n'
    ).for_county("341002")
    assert rules.step_due_at(rule, T0, 0) == T0 + timedelta(minutes=5)
    assert rules.step_due_at(rule, T0, 1) == T0 + timedelta(minutes=15)
    assert rules.step_due_at(rule, T0, 2) is None


def test_the_fingerprint_tells_a_reused_alert_id_apart() -> None:
    body = {"type": "sos", "device_id": "D1", "occurred_at": T0, "details": {"message": "x"}}
    assert rules.fingerprint(body) == rules.fingerprint(dict(body))
    assert rules.fingerprint(body) != rules.fingerprint({**body, "type": "fall"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[counties.341002]\nname = 'x'\n", "needs a [counties.default] table"),
        ("[counties.default]\nescalation = [{ after_minutes = 0, to = 'county' }]\n", "positive number"),
        ("[counties.default]\nescalation = [{ after_minutes = 5, to = 'mayor' }]\n", "expected one of"),
        (
            "[counties.default]\nescalation = [{ after_minutes = 9, to = 'county' }, "
            "{ after_minutes = 5, to = 'county' }]\n",
            "later than the step before",
        ),
        ("[counties.default]\n[counties.3410]\n", "six-digit code"),
        ("[counties.default]\nmachine_calls_count = 'yes'\n", "true or false"),
    ],
)
def test_a_bad_county_table_is_refused_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_county_rules(text)


def test_the_shipped_table_has_a_default_and_counts_no_machine_calls() -> None:
    table = load_county_rules()
    assert table.for_county("340102001").county == "default"
    assert [s.to for s in table.for_county("341002").escalation] == ["station_head", "county"]
    assert table.machine_counting_counties() == []
    assert counted_expr(machine_calls(table))["$or"][0] == {"$eq": ["$visited", True]}
