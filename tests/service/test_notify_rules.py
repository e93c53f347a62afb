"""Pure decisions: quiet hours, WeChat field limits, who sees what on the live feed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config import ConfigError, load_settings
from service.common.models import Principal
from service.notify.models import OutboxEvent
from service.notify.rules import STAFF_DEFAULTS, quiet_until, stream_visible
from service.notify.templates import cut_character_string, cut_phrase, cut_thing, format_time, template_ids


def test_quiet_hours_across_midnight_end_at_eight_shanghai() -> None:
    assert quiet_until(datetime(2026, 11, 28, 14, 0, tzinfo=UTC), "21:00-08:00") == datetime(
        2026, 11, 29, 0, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 11, 28, 22, 0, tzinfo=UTC), "21:00-08:00") == datetime(
        2026, 11, 29, 0, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 11, 28, 2, 0, tzinfo=UTC), "21:00-08:00") is None  # 10:00 local
    assert quiet_until(datetime(2026, 11, 28, 14, 0, tzinfo=UTC), "") is None


def test_quiet_hours_within_one_day() -> None:
    assert quiet_until(datetime(2026, 11, 28, 5, 0, tzinfo=UTC), "12:00-14:00") == datetime(
        2026, 11, 28, 6, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 11, 28, 6, 0, tzinfo=UTC), "12:00-14:00") is None


def test_field_values_respect_wechat_limits() -> None:
    assert len(cut_thing("居家上门服务（助餐、助洁、助浴、助医陪诊等综合服务项目）")) == 20
    assert cut_thing("短") == "短"
    assert cut_character_string("HM-2026 1128 0001 工单") == "HM-202611280001"
    assert len(cut_character_string("x" * 40)) == 32
    assert cut_phrase("不予受理 rejected") == "不予受理"
    assert cut_phrase("已经办结完成了") == "已经办结完"
    assert format_time(datetime(2026, 11, 28, 16, 5, tzinfo=UTC)) == "2026年11月29日 00:05"


def test_template_ids_come_from_settings() -> None:
    s = load_settings({"HUIMIN_WECHAT_TEMPLATES": '{"accepted": "real-id-1"}'})
    assert template_ids(s)["accepted"] == "real-id-1"
    assert template_ids(s)["resolved"] == "tmpl-case-resolved"
    with pytest.raises(ConfigError, match="HUIMIN_WECHAT_TEMPLATES"):
        load_settings({"HUIMIN_WECHAT_TEMPLATES": "[1]"})
    with pytest.raises(ConfigError, match="HUIMIN_QUIET_HOURS"):
        load_settings({"HUIMIN_QUIET_HOURS": "9pm-8am"})


def _event(type_: str, station: str | None = "st-1", division: str = "341002001", **data: str) -> OutboxEvent:
    return OutboxEvent(
        id="e",
        seq=1,
        type=type_,
        case_id="c",
        case_number="n",
        station_id=station,
        division=division,
        scenario="elderly",
        actor_subject="x",
        actor_role="worker",
        from_state=None,
        to_state=None,
        time=datetime(2026, 11, 28, tzinfo=UTC),
        data=dict(data),
    )


def test_stream_visibility_by_role() -> None:
    table = {k: dict(v) for k, v in STAFF_DEFAULTS.items()}
    w1 = Principal(subject="w-1", role="worker", station_id="st-1")
    w2 = Principal(subject="w-2", role="worker", station_id="st-1")
    head = Principal(subject="h-1", role="station_head", station_id="st-1")
    sup = Principal(subject="s", role="supervisor", division_prefix="3410")
    assert stream_visible(_event("case.dispatched"), w1, table)
    assert not stream_visible(_event("case.dispatched", station="st-2"), w1, table)
    assert stream_visible(_event("case.assigned", assignee_id="w-1"), w1, table)
    assert not stream_visible(_event("case.assigned", assignee_id="w-1"), w2, table)
    assert stream_visible(_event("case.assigned", assignee_id="w-1"), head, table)
    assert stream_visible(_event("case.returned", station="st-9", to_station_id="st-1"), w1, table)
    assert not stream_visible(_event("case.resolved"), w1, table)
    assert stream_visible(_event("case.overdue", division="341002001"), sup, table)
    assert not stream_visible(_event("case.overdue", division="340102001"), sup, table)
    table["case.urged"]["stream"] = False
    assert not stream_visible(_event("case.urged"), w1, table)
