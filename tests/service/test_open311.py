"""Pure parts of the Open311 facade: datatypes, statuses, attributes, notes and query defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.cases.models import HistoryEntry
from service.cases.states import STATES
from service.catalog.models import FIELD_TYPES, Choice, FormField, ServiceType
from service.catalog.seed import SEED_SERVICES
from service.common.errors import ValidationFailedError
from service.common.ids import new_id
from service.open311 import queries
from service.open311 import service as open311

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _service(*fields: FormField, booking: bool = False) -> ServiceType:
    return ServiceType(
        code="demo",
        version=1,
        scenario="community",
        name_zh="演示",
        name_en="Demo",
        description_zh="说明",
        description_en="About",
        fields=fields,
        capability="community",
        booking=booking,
    )


def test_every_field_type_has_a_spec_datatype() -> None:
    allowed = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
    assert set(open311.DATATYPES) == set(FIELD_TYPES)
    assert set(open311.DATATYPES.values()) <= allowed


def test_every_state_maps_to_open_or_closed() -> None:
    mapped = {state: queries.status_of(state) for state in STATES}
    assert {s for s, v in mapped.items() if v == "open"} == {"unrouted", "dispatched", "accepted", "in_progress"}
    assert {s for s, v in mapped.items() if v == "closed"} == {"resolved", "closed", "cancelled", "rejected"}


def test_service_definition_lists_choices_as_values_in_form_order() -> None:
    field = FormField("kind", "single_choice", "类型", "Kind", required=True, choices=(Choice("a", "甲", "A"),))
    definition = open311.service_definition(_service(FormField("name", "string", "姓名", "Name"), field))
    assert [a["order"] for a in definition["attributes"]] == [1, 2]
    assert definition["attributes"][1]["values"] == [{"key": "a", "name": "甲 A"}]
    assert definition["attributes"][0]["values"] == []


def test_services_without_fields_have_no_metadata() -> None:
    assert open311.service_entry(_service())["metadata"] is False
    assert all(open311.service_entry(s)["metadata"] for s in SEED_SERVICES if s.fields)


def test_attribute_keys_with_and_without_brackets_are_collected() -> None:
    params = {"attribute[a]": ["1"], "attribute[b][]": ["x", "y"], "attribute": ["z"], "other": ["q"]}
    assert open311.attribute_values(params) == {"a": ["1"], "b": ["x", "y"]}


def test_number_attributes_are_typed_and_bad_numbers_refused() -> None:
    service = _service(FormField("age", "number", "年龄", "Age"), FormField("n", "number", "数", "N"))
    assert open311.answers_from_attributes(service, {"age": ["82"], "n": ["1.5"]}) == {"age": 82, "n": 1.5}
    with pytest.raises(ValidationFailedError) as bad:
        open311.answers_from_attributes(service, {"age": ["inf"]})
    assert bad.value.code == "invalid_attribute" and "attribute[age]" in bad.value.errors


def test_a_single_value_attribute_sent_twice_is_refused() -> None:
    service = _service(FormField("name", "string", "姓名", "Name"))
    with pytest.raises(ValidationFailedError):
        open311.answers_from_attributes(service, {"name": ["a", "b"]})


def test_booking_window_comes_from_the_datetime_attribute_in_beijing_time() -> None:
    service = _service(FormField("when", "datetime", "时间", "When"), booking=True)
    window = open311.booking_window(service, {"when": "2026-12-02T09:00:00"})
    assert window is not None
    assert window["start"].astimezone(UTC) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    assert window["end"] - window["start"] == timedelta(hours=2)
    assert open311.booking_window(_service(FormField("when", "datetime", "时间", "When")), {"when": "x"}) is None


def test_status_notes_take_the_latest_note_reason_or_result() -> None:
    def line(note: str | None, **data: str) -> HistoryEntry:
        return HistoryEntry(new_id(), "note", "system", "admin", None, "resolved", NOW, note=note, data=data)

    history = (line("派单 routed"), line(None, result="已办结 done"), line(None))
    assert queries.status_notes("resolved", history) == "已办结 done"
    assert queries.status_notes("dispatched", ()) == "已派单 dispatched"


def test_request_query_defaults_to_the_last_90_days() -> None:
    q = queries.parse_request_query({}, NOW)
    assert (q.start, q.end) == (NOW - timedelta(days=90), NOW)
    q = queries.parse_request_query({"start_date": ["2026-01-01T00:00:00Z"]}, NOW)
    assert q.end == datetime(2026, 4, 1, tzinfo=UTC)


def test_request_ids_override_every_other_filter() -> None:
    q = queries.parse_request_query({"service_request_id": ["A,B"], "status": ["bogus"]}, NOW)
    assert q.ids == ["A", "B"] and q.statuses == [] and q.start is None


def test_dates_without_an_offset_are_refused() -> None:
    with pytest.raises(ValidationFailedError) as bad:
        queries.parse_request_query({"start_date": ["2026-01-01T00:00:00"]}, NOW)
    assert bad.value.code == "invalid_date"
