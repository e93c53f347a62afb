"""The one privacy rule for every copy of a personal field, decided without I/O."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.cases import privacy as case_privacy
from service.cases.lifecycle import Relationship
from service.cases.models import Actor, Case, Contact, ServedPerson, ServiceRef
from service.catalog.models import FormField
from service.catalog.seed import SEED_SERVICES
from service.common.ids import new_id
from service.common.models import utcnow

# Fields of the built-in forms that name a person or give where they live.
PEOPLE_FIELDS = {
    "address",
    "applicant_name",
    "child_name",
    "deceased_name",
    "elder_name",
    "guardian_name",
    "other_party",
    "where",
}
REPORT = next(s for s in SEED_SERVICES if s.code == "child_protection_report")
COMPLAINT = next(s for s in SEED_SERVICES if s.code == "org_complaint")


def _case(service: Any, answers: dict[str, Any]) -> Case:
    now = utcnow()
    return Case(
        id=new_id(),
        number="HM3410022026113000001",
        version=1,
        status="dispatched",
        service=ServiceRef(code=service.code, confidential=service.confidential, keys=("code", "confidential")),
        created_by=Actor(new_id(), "resident"),
        created_at=now,
        updated_at=now,
        sign_due_at=now,
        resolve_due_at=now,
        answers=answers,
        personal=case_privacy.personal_marks(service),
        contact=Contact(name="王芳", phone="13912345678", keys=("name", "phone")),
        served_person=ServedPerson(
            name="王大爷",
            phone="13700001111",
            id_card_masked="3410**********123X",
            keys=("name", "phone", "id_card_masked"),
        ),
    )


def test_phone_and_id_card_fields_are_personal_by_their_type_and_phones_identify_the_reporter() -> None:
    phone = FormField("tel", "phone", "电话", "Phone")
    assert (phone.personal, phone.reporter) == ("phone", True)
    card = FormField("card", "id_card", "身份证", "ID")
    assert (card.personal, card.reporter) == ("id_card", False)
    plain = FormField("note", "text", "说明", "Note")
    assert (plain.personal, plain.reporter) == (None, False)
    own = FormField("tel", "phone", "电话", "Phone", reporter=False)
    assert own.reporter is False


@pytest.mark.parametrize(
    ("access", "phones_clear"),
    [
        (Relationship(owner=True), True),
        (Relationship(station=True, assignee=True), True),
        (Relationship(station=True), False),
        (Relationship(division=True), False),
        (Relationship(admin=True), False),
        (Relationship(creator=True), False),
    ],
)
def test_answers_contact_and_served_person_follow_the_same_phone_rule(access: Relationship, phones_clear: bool) -> None:
    case = _case(COMPLAINT, {"reporter_phone": "13687654321", "org_name": "某协会"})
    seen = case_privacy.disclosure(access, case)
    answers = case_privacy.shown_answers(case, seen)
    contact = case_privacy.shown_contact(case, seen)
    served = case_privacy.shown_served_person(case, seen)
    assert contact is not None and served is not None
    if phones_clear:
        assert (answers["reporter_phone"], contact["phone"], served["phone"]) == (
            "13687654321",
            "13912345678",
            "13700001111",
        )
    else:
        assert (answers["reporter_phone"], contact["phone"], served["phone"]) == (
            "136****4321",
            "139****5678",
            "137****1111",
        )
    assert answers["org_name"] == "某协会"


def test_a_confidential_case_hides_the_reporter_but_not_the_child_from_station_staff() -> None:
    case = _case(REPORT, {"reporter_phone": "13687654321", "where": "学校门口", "details": "x"})
    staff = case_privacy.disclosure(Relationship(station=True, assignee=True), case)
    assert case_privacy.shown_contact(case, staff) is None
    assert case_privacy.shown_answers(case, staff) == {"where": "学校门口", "details": "x"}
    assert case_privacy.clear_phones(case, staff) == ["served_person.phone"]
    supervisor = case_privacy.disclosure(Relationship(division=True), case)
    assert case_privacy.shown_answers(case, supervisor)["reporter_phone"] == "136****4321"
    anonymous_case = dataclasses.replace(case, anonymous=True)
    assert not case_privacy.disclosure(Relationship(division=True), anonymous_case).reporter
    assert case_privacy.disclosure(Relationship(owner=True), anonymous_case).reporter


def test_an_anonymous_report_keeps_no_answer_that_identifies_the_reporter() -> None:
    answers = {"reporter_phone": "13687654321", "where": "学校门口", "concern": "neglect"}
    assert case_privacy.stored_answers(REPORT, answers, anonymous=True) == {"where": "学校门口", "concern": "neglect"}
    assert case_privacy.stored_answers(REPORT, answers, anonymous=False) == answers


def test_cases_filed_before_forms_had_marks_still_mask_their_phone_answers() -> None:
    case = dataclasses.replace(
        _case(REPORT, {"reporter_phone": "13687654321", "applicant_id_card": "34102119450101123X"}), personal=None
    )
    staff = case_privacy.disclosure(Relationship(station=True), case)
    assert case_privacy.shown_answers(case, staff) == {"applicant_id_card": "3410**********123X"}


def test_every_built_in_phone_or_id_field_is_marked_and_names_and_addresses_are_too() -> None:
    for service in SEED_SERVICES:
        # Where the service is delivered and whom to call are the case's own address and contact.
        assert not {"address", "contact_phone"} & {f.code for f in service.fields}, service.code
        for f in service.fields:
            if f.type in ("phone", "id_card"):
                assert f.personal == f.type, (service.code, f.code)
            if f.code in PEOPLE_FIELDS:
                assert f.personal in ("name", "address"), (service.code, f.code)
    marks = case_privacy.personal_marks(dataclasses.replace(REPORT))
    assert marks["reporter_phone"] == {"kind": "phone", "reporter": True}
