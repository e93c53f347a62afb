import dataclasses

import pytest

from service.catalog.answers import validate_answers
from service.catalog.definitions import check_definition
from service.catalog.models import SCENARIO_CODES, Choice, FormField, ServiceType
from service.catalog.seed import RETIRED_BUILT_INS, SEED_SERVICES
from service.common.errors import ValidationFailedError

ALLOWANCE = next(s for s in SEED_SERVICES if s.code == "elderly_age_allowance")

FORM = ServiceType(
    code="sample",
    version=1,
    scenario="community",
    name_zh="样例",
    name_en="Sample",
    description_zh="",
    description_en="",
    capability="community",
    fields=(
        FormField("title", "string", "标题", "Title", required=True, max_length=10),
        FormField("notes", "text", "备注", "Notes"),
        FormField("people", "number", "人数", "People", min=1, max=5),
        FormField("day", "date", "日期", "Day"),
        FormField("at", "datetime", "时间", "At"),
        FormField(
            "size", "single_choice", "大小", "Size", choices=(Choice("s", "小", "small"), Choice("l", "大", "large"))
        ),
        FormField("items", "multi_choice", "项目", "Items", choices=(Choice("a", "甲", "A"), Choice("b", "乙", "B"))),
        FormField("phone", "phone", "电话", "Phone"),
        FormField("id_card", "id_card", "身份证号", "ID card"),
    ),
)


def errors_of(answers):
    with pytest.raises(ValidationFailedError) as info:
        validate_answers(FORM, answers)
    assert info.value.code == "invalid_answers"
    return info.value.errors


def test_seed_catalogue_covers_seven_scenarios_with_at_least_nineteen_valid_services():
    for service in SEED_SERVICES:
        check_definition(service)
    # 21 until the volunteer service replaced the two self-declared volunteer entries.
    assert len({s.code for s in SEED_SERVICES}) == len(SEED_SERVICES) >= 19
    assert not {s.code for s in SEED_SERVICES} & set(RETIRED_BUILT_INS)
    assert {s.scenario for s in SEED_SERVICES} == set(SCENARIO_CODES)


def test_child_protection_report_is_confidential_anonymous_and_urgent():
    report = next(s for s in SEED_SERVICES if s.code == "child_protection_report")
    assert report.confidential and report.allows_anonymous and report.urgent
    emergency = next(s for s in SEED_SERVICES if s.code == "elderly_emergency")
    assert emergency.urgent and emergency.sign_within_hours <= 2


def test_old_age_allowance_asks_for_id_card_and_birth_date():
    types = {f.code: f.type for f in ALLOWANCE.fields}
    assert types["id_card"] == "id_card"
    assert types["birth_date"] == "date"


def test_valid_answers_come_back_normalised():
    out = validate_answers(
        FORM,
        {
            "title": "  hi ",
            "people": 3,
            "day": "2026-11-28",
            "at": "2026-11-28T09:30:00",
            "size": "l",
            "items": ["b", "a", "b"],
            "phone": "+86 138 0013 8000",
            "id_card": "11010519491231002x",
        },
    )
    assert out == {
        "title": "hi",
        "people": 3,
        "day": "2026-11-28",
        "at": "2026-11-28T01:30:00.000+00:00",  # Beijing time without an offset, written as every API time
        "size": "l",
        "items": ["a", "b"],
        "phone": "13800138000",
        "id_card": "11010519491231002X",
    }


def test_missing_required_answer_is_refused():
    assert errors_of({}) == {"answers.title": ["Required."]}


def test_unknown_answer_keys_are_refused():
    assert "answers.colour" in errors_of({"title": "x", "colour": "red"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "x" * 11),
        ("title", 5),
        ("people", 0),
        ("people", 6),
        ("people", "3"),
        ("people", True),
        ("day", "28/11/2026"),
        ("at", "tomorrow"),
        ("size", "m"),
        ("items", ["a", "z"]),
        ("items", "a"),
        ("phone", "12345"),
        ("id_card", "110105194912310021"),
    ],
)
def test_each_bad_answer_is_reported_under_its_field(field, value):
    answers = {"title": "ok", field: value}
    assert f"answers.{field}" in errors_of(answers)


def test_every_error_is_reported_at_once():
    errors = errors_of({"people": 9, "size": "m", "extra": 1})
    assert set(errors) == {"answers.title", "answers.people", "answers.size", "answers.extra"}


def test_definition_with_duplicate_fields_or_unknown_scenario_is_refused():
    bad = dataclasses.replace(FORM, scenario="space", fields=(FORM.fields[0], FORM.fields[0]))
    with pytest.raises(ValidationFailedError) as info:
        check_definition(bad)
    assert info.value.code == "invalid_service"
    assert "scenario" in info.value.errors and "fields[1]" in info.value.errors


def test_every_built_in_service_has_its_service_page_texts_and_an_icon():
    for service in SEED_SERVICES:
        assert service.icon and service.conditions_zh and service.conditions_en, service.code
        assert service.materials_zh and len(service.materials_zh) == len(service.materials_en), service.code
        assert str(service.resolve_within_days) in service.time_limit_zh, service.code
    assert len({s.icon for s in SEED_SERVICES}) == len(SEED_SERVICES)


def test_time_limit_text_follows_the_services_clock():
    emergency = next(s for s in SEED_SERVICES if s.code == "elderly_emergency")
    assert emergency.time_limit_zh == "1 小时内响应，1 天内办结（节假日照常）"
    assert ALLOWANCE.time_limit_zh == "16 个工作小时内受理，15 个工作日内办结"


def test_common_questions_carry_a_plain_hint():
    dibao = next(s for s in SEED_SERVICES if s.code == "dibao_application")
    hints = {f.code: f.help_zh for f in dibao.fields}
    assert hints["applicant_id_card"] == "18 位，最后一位可能是 X"
