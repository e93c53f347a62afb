"""Schemas of the workforce area: the register, training, reference figures and the plan's indicators."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from schemas.elders import RowErrorSchema
from service.common.inputs import from_given
from service.workforce.inputs import (
    Enrolment,
    PersonChanges,
    PersonRegistration,
    ProgrammeInput,
    RecordFields,
    SessionInput,
)
from service.workforce.models import (
    EMPLOYER_KINDS,
    OCCUPATIONS,
    QUALIFICATION_LEVELS,
    RECORD_STATUSES,
    ROLES,
    STATUSES,
    TIERS,
    TRAINING_CATEGORIES,
)
from service.workforce.targets import INDICATOR_CODES

DIVISION = r"^[1-9]\d{5}(\d{3})?$"
DIVISION_HELP = "6-digit province, city or county code (340000, 341000, 341002) or 9-digit township code"
ID = r"^[0-9a-f]{24}$"
NON_BLANK = validate.Regexp(r"^\s*\S", error="Must be non-empty text.")
CODE = "problem_code"


def _text(limit: int, **kw: object) -> fields.String:
    return fields.String(validate=[validate.Length(1, limit), NON_BLANK], **kw)  # type: ignore[arg-type]


def _person_fields(required: bool) -> dict[str, fields.Field]:
    req = {"required": True} if required else {}
    opt = {} if required else {"allow_none": True}
    out: dict[str, fields.Field] = {
        "name": _text(50, metadata={"example": "李娜"}, **req),
        "phone": fields.String(allow_none=True, validate=validate.Length(1, 20), metadata={"example": "13905591234"}),
        "occupation": fields.String(
            validate=validate.OneOf(OCCUPATIONS),
            metadata={"description": "social_work 社会工作者 (default), elderly_care 养老护理员"},
        ),
        "qualification_level": fields.String(
            validate=validate.OneOf(QUALIFICATION_LEVELS),
            metadata={
                "description": "none (default), assistant 助理社会工作师, intermediate 社会工作师, "
                "senior 高级社会工作师"
            },
        ),
        "certificate_no": _text(40, allow_none=True, metadata={"description": "Required with a qualification"}),
        "certificate_year": fields.Integer(allow_none=True, validate=validate.Range(2008, 2100)),
        "employer_kind": fields.String(
            validate=validate.OneOf(EMPLOYER_KINDS),
            metadata={
                "description": "station 社工站, care_home 养老机构, child_welfare 儿童福利机构, social_org 社会组织"
            },
            **req,
        ),
        "employer_name": _text(100, allow_none=True, metadata={"description": "Default for a station: its name"}),
        "station_id": fields.String(
            allow_none=True,
            validate=validate.Regexp(ID),
            metadata={"description": "For a station employer: the station (else found from the township)"},
        ),
        "division": fields.String(
            validate=validate.Regexp(r"^[1-9]\d{5}(\d{3}(000)?)?$"),
            metadata={"description": "Where the person works: the township (9 digits) or county (6 digits)"},
            **req,
        ),
        "post": _text(50, allow_none=True, metadata={"description": "岗位 post"}),
        "role": fields.String(
            validate=validate.OneOf(ROLES),
            metadata={"description": "frontline 一线, manager 管理, supervisor 督导"},
            **req,
        ),
        "status": fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "default active"}),
        "start_date": fields.Date(**req, **opt),
        "end_date": fields.Date(allow_none=True, metadata={"description": "Given exactly when the status is left"}),
        "staff_id": fields.String(
            allow_none=True, validate=validate.Regexp(ID), metadata={"description": "The person's staff account"}
        ),
    }
    for field in out.values():
        field.metadata = {**field.metadata, CODE: "invalid_person"}
    return out


class PersonCreateSchema(Schema.from_dict(_person_fields(True))):  # type: ignore[misc]
    id_card = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{17}[\dXx]$"),
        metadata={"description": "18-character ID number (GB 11643)", CODE: "invalid_id_card"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PersonRegistration:
        return from_given(PersonRegistration, data)


class PersonUpdateSchema(Schema.from_dict(_person_fields(False))):  # type: ignore[misc]
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> PersonChanges:
        return from_given(PersonChanges, data)


class QualificationSchema(Schema):
    level = fields.String()
    certificate_no = fields.String(allow_none=True)
    year = fields.Integer(allow_none=True)


class EmployerSchema(Schema):
    kind = fields.String()
    name = fields.String()
    station_id = fields.String(allow_none=True)


class PersonSchema(Schema):
    id = fields.String()
    name = fields.String()
    id_card_masked = fields.String(metadata={"description": "ID number, masked; the full number is never returned"})
    gender = fields.String()
    birth_date = fields.String()
    phone = fields.String(allow_none=True, metadata={"description": "Masked, except to the person themselves"})
    occupation = fields.String()
    qualification = fields.Nested(QualificationSchema)
    employer = fields.Nested(EmployerSchema)
    division = fields.String()
    county_code = fields.String()
    city_code = fields.String()
    post = fields.String(allow_none=True)
    role = fields.String()
    status = fields.String()
    start_date = fields.String()
    end_date = fields.String(allow_none=True)
    staff_id = fields.String(allow_none=True)
    version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class PersonPageSchema(Schema):
    items = fields.List(fields.Nested(PersonSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class PersonQuerySchema(Schema):
    division = fields.String(validate=validate.Regexp(DIVISION), metadata={"description": DIVISION_HELP})
    station = fields.String(validate=validate.Regexp(ID), metadata={"description": "Station id"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    role = fields.String(validate=validate.OneOf(ROLES))
    occupation = fields.String(validate=validate.OneOf(OCCUPATIONS))
    employer_kind = fields.String(validate=validate.OneOf(EMPLOYER_KINDS))
    qualification_level = fields.String(validate=validate.OneOf(QUALIFICATION_LEVELS))
    in_post_on = fields.Date(metadata={"description": "Only people in post that day (as the plan's figures count)"})
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String(validate=validate.Length(1, 200))


class HistoryEntrySchema(Schema):
    id = fields.String()
    at = fields.AwareDateTime()
    actor = fields.Dict(keys=fields.String(), values=fields.String())
    action = fields.String(metadata={"description": "created, updated or imported"})
    changes = fields.Dict(metadata={"description": "field -> {from, to}; phones masked, ID numbers never shown"})


class HistorySchema(Schema):
    items = fields.List(fields.Nested(HistoryEntrySchema), required=True)


class ImportQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=True, metadata={"description": "Only check; false writes all or nothing"})


class WorkforceImportReportSchema(Schema):
    dry_run = fields.Boolean()
    total = fields.Integer(metadata={"description": "Rows read"})
    to_create = fields.Integer()
    to_update = fields.Integer()
    written = fields.Boolean()
    encoding = fields.String(metadata={"description": "As detected: utf-8, utf-8-sig (with BOM) or gb18030 (GBK)"})
    errors = fields.List(fields.Nested(RowErrorSchema))


# ---------------------------------------------------------------- training


class ProgrammeCreateSchema(Schema):
    name = _text(100, required=True, metadata={"example": "2026年全省社会工作督导人才培训班"})
    category = fields.String(
        required=True,
        validate=validate.OneOf(TRAINING_CATEGORIES),
        metadata={"description": "certified 持证社工, manager 管理人才, supervisor 督导人才, elderly_care 养老护理员"},
    )
    tier = fields.String(
        required=True,
        validate=validate.OneOf(TIERS),
        metadata={"description": "beginner 初级, intermediate 中级, senior 高级"},
    )
    organiser_division = fields.String(
        validate=validate.Regexp(DIVISION),
        metadata={"description": "Default: the caller's division (administrators: the province)"},
    )
    description = _text(1000, allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ProgrammeInput:
        return ProgrammeInput(**data)


class ProgrammeSchema(Schema):
    id = fields.String()
    name = fields.String()
    category = fields.String()
    tier = fields.String()
    organiser_division = fields.String()
    description = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class ProgrammePageSchema(Schema):
    items = fields.List(fields.Nested(ProgrammeSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class ProgrammeQuerySchema(Schema):
    category = fields.String(validate=validate.OneOf(TRAINING_CATEGORIES))
    tier = fields.String(validate=validate.OneOf(TIERS))
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String(validate=validate.Length(1, 200))


class SessionCreateSchema(Schema):
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    place = _text(100, required=True, metadata={"example": "合肥市 安徽省民政厅培训中心"})
    hours = fields.Float(required=True, allow_nan=False, validate=validate.Range(0.5, 1000))
    trainer = _text(100, required=True, metadata={"example": "王教授"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SessionInput:
        return SessionInput(**data)


class SessionSchema(Schema):
    id = fields.String()
    programme_id = fields.String()
    category = fields.String()
    tier = fields.String()
    organiser_division = fields.String()
    starts_on = fields.String()
    ends_on = fields.String()
    place = fields.String()
    hours = fields.Float()
    trainer = fields.String()
    created_at = fields.AwareDateTime()


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema), required=True)


def _record_fields() -> dict[str, fields.Field]:
    out: dict[str, fields.Field] = {
        "status": fields.String(
            validate=validate.OneOf(RECORD_STATUSES),
            metadata={"description": "enrolled 已报名, attended 已参训, completed 已结业, not_completed 未结业"},
        ),
        "attended_hours": fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(0, 1000)),
        "completed_on": fields.Date(allow_none=True, metadata={"description": "Default: the session's last day"}),
        "certificate_no": _text(40, allow_none=True),
    }
    for field in out.values():
        field.metadata = {**field.metadata, CODE: "invalid_training_record"}
    return out


class EnrolmentCreateSchema(Schema.from_dict(_record_fields())):  # type: ignore[misc]
    person_id = fields.String(required=True, validate=validate.Regexp(ID))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Enrolment:
        record = {k: v for k, v in data.items() if k != "person_id"}
        return Enrolment(person_id=data["person_id"], record=from_given(RecordFields, record))


class RecordUpdateSchema(Schema.from_dict(_record_fields())):  # type: ignore[misc]
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RecordFields:
        return from_given(RecordFields, data)


class TrainingRecordSchema(Schema):
    id = fields.String()
    person_id = fields.String()
    person_name = fields.String()
    session_id = fields.String()
    programme_id = fields.String()
    programme_name = fields.String()
    category = fields.String()
    tier = fields.String()
    division = fields.String(metadata={"description": "Where the person worked when enrolled"})
    status = fields.String()
    attended_hours = fields.Float()
    completed_on = fields.String(allow_none=True)
    certificate_no = fields.String(allow_none=True)
    version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class RecordPageSchema(Schema):
    items = fields.List(fields.Nested(TrainingRecordSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class RecordListSchema(Schema):
    items = fields.List(fields.Nested(TrainingRecordSchema), required=True)


class RecordQuerySchema(Schema):
    division = fields.String(validate=validate.Regexp(DIVISION), metadata={"description": DIVISION_HELP})
    category = fields.String(validate=validate.OneOf(TRAINING_CATEGORIES))
    status = fields.String(validate=validate.OneOf(RECORD_STATUSES))
    completed_from = fields.Date()
    completed_to = fields.Date()
    session = fields.String(validate=validate.Regexp(ID), metadata={"description": "Session id"})
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String(validate=validate.Length(1, 200))


# ---------------------------------------------------------------- reference figures


class FigureSchema(Schema):
    id = fields.String()
    division = fields.String()
    year = fields.Integer()
    older_population = fields.Integer(allow_none=True, metadata={"description": "老年人口 (60 and over)"})
    care_home_beds = fields.Integer(allow_none=True, metadata={"description": "养老机构床位"})
    source = fields.String(metadata={"description": "Where the figure comes from"})
    imported_at = fields.AwareDateTime()
    imported_by = fields.String()


class FigurePageSchema(Schema):
    items = fields.List(fields.Nested(FigureSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class FigureQuerySchema(Schema):
    division = fields.String(validate=validate.Regexp(r"^[1-9]\d{5}$"), metadata={"description": DIVISION_HELP})
    year = fields.Integer(validate=validate.Range(2000, 2100))
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)
    cursor = fields.String(validate=validate.Length(1, 200))


# ---------------------------------------------------------------- the plan


class PlanQuerySchema(Schema):
    division = fields.String(
        validate=validate.Regexp(DIVISION),
        metadata={"description": DIVISION_HELP + "; default: the caller's division (administrators: the province)"},
    )
    year = fields.Integer(validate=validate.Range(2000, 2100), metadata={"description": "Default: this year"})


class PlanBreakdownQuerySchema(PlanQuerySchema):
    indicator = fields.String(
        required=True,
        # Listed for the OpenAPI document; the service names an unknown one (422 unknown_indicator).
        metadata={"description": "An indicator code of GET /api/v1/stats/plan", "enum": list(INDICATOR_CODES)},
    )


class DivisionFigureSchema(Schema):
    division = fields.String()
    name = fields.String()
    level = fields.String(metadata={"description": "city, county, development_zone or township"})
    target = fields.Float(allow_none=True)
    actual = fields.Float(allow_none=True)
    progress = fields.Float(allow_none=True, metadata={"description": "actual / target; null without a target"})
    met = fields.Boolean(allow_none=True)
    available = fields.Boolean()
    reason = fields.String(allow_none=True)
    records = fields.String(allow_none=True, metadata={"description": "The drill-down address of the figure"})


class PlanBreakdownSchema(Schema):
    division = fields.String()
    division_name = fields.String(allow_none=True)
    level = fields.String()
    year = fields.Integer()
    as_of = fields.String()
    computed_at = fields.AwareDateTime()
    indicator = fields.String()
    name = fields.String()
    name_en = fields.String()
    unit = fields.String()
    divisions = fields.List(fields.Nested(DivisionFigureSchema))


class IndicatorSchema(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    unit = fields.String()
    target = fields.Float(allow_none=True, metadata={"description": "From config/plan_targets.toml; null: none set"})
    target_note = fields.String(allow_none=True)
    actual = fields.Float(allow_none=True, metadata={"description": "null: not available (see reason)"})
    gap = fields.Float(allow_none=True, metadata={"description": "How far short of the target (0 when met)"})
    progress = fields.Float(allow_none=True, metadata={"description": "actual / target"})
    met = fields.Boolean(allow_none=True)
    available = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "Why there is no actual figure"})
    computation = fields.Dict(
        metadata={"description": "method, sources, inputs, as_of, computed_at and records (the drill-down address)"}
    )


class PlanPeriodSchema(Schema):
    id = fields.String()
    name = fields.String()
    basis = fields.String(allow_none=True)
    start_year = fields.Integer()
    end_year = fields.Integer()
    targets_source = fields.String()


class PlanReportSchema(Schema):
    division = fields.String()
    division_name = fields.String(allow_none=True)
    level = fields.String()
    year = fields.Integer()
    as_of = fields.String(metadata={"description": "31 December, or today for the year in progress"})
    computed_at = fields.AwareDateTime()
    plan_period = fields.Nested(PlanPeriodSchema)
    indicators = fields.List(fields.Nested(IndicatorSchema))
