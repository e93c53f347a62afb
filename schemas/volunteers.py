"""Schemas of the volunteer service (志愿服务): volunteers, teams, activities, attendance, certificates."""

from __future__ import annotations

from typing import Any, TypeVar

from marshmallow import Schema, fields, post_load, validate

from service.catalog.models import SCENARIO_CODES
from service.volunteers.inputs import (
    ActivityInput,
    AttendanceInput,
    CorrectionInput,
    RecordRequestInput,
    TaskFromCase,
    TeamInput,
    VolunteerRegistration,
)
from service.volunteers.models import RECORD_KINDS, RECORD_REQUEST_STATUSES, SIGNUP_STATUSES, SKILLS

NON_BLANK = validate.Regexp(r"^\s*\S", error="Must be non-empty text.")
PHONE_PATTERN = r"^(\+?86-?)?1[3-9]\d{9}$"
SKILL_HELP = "Skills: " + ", ".join(SKILLS)


T = TypeVar("T")


def _input(cls: type[T], data: dict[str, Any]) -> T:
    """The service's input record of a loaded body (lists as tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _text(max_len: int, **kw: object) -> fields.String:
    return fields.String(validate=[validate.Length(1, max_len), NON_BLANK], **kw)  # type: ignore[arg-type]


class VolunteerActorSchema(Schema):
    role = fields.String()


# ---------------------------------------------------------------- volunteers


class VolunteerCreateSchema(Schema):
    name = _text(50, required=True, metadata={"example": "李志愿", "description": "Real name (实名)"})
    id_card = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{17}[\dXx]$"),
        metadata={
            "description": "18-character ID number; stored encrypted, shown masked",
            "problem_code": "invalid_id_card",
        },
    )
    phone = fields.String(required=True, validate=validate.Regexp(PHONE_PATTERN), metadata={"example": "13912345678"})
    skills = fields.List(
        fields.String(validate=validate.OneOf(SKILLS)), load_default=list, metadata={"description": SKILL_HELP}
    )
    availability = fields.String(
        allow_none=True, validate=validate.Length(max=200), metadata={"example": "周末上午 weekend mornings"}
    )
    township = fields.String(
        required=True, validate=validate.Regexp(r"^[1-9]\d{8}$"), metadata={"description": "Home township (9 digits)"}
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> VolunteerRegistration:
        return _input(VolunteerRegistration, data)


class RecordEntrySchema(Schema):
    kind = fields.String(metadata={"description": "training 培训, award 表彰奖励, evaluation 评价"})
    text = fields.String()
    on = fields.String(metadata={"description": "ISO date"})
    station_id = fields.String()
    at = fields.AwareDateTime()


class VolunteerSchema(Schema):
    id = fields.String()
    name = fields.String()
    id_card_masked = fields.String()
    phone = fields.String()
    skills = fields.List(fields.String())
    availability = fields.String(allow_none=True)
    township = fields.String()
    station_id = fields.String(allow_none=True)
    registered_by = fields.Nested(VolunteerActorSchema)
    records = fields.List(fields.Nested(RecordEntrySchema))
    created_at = fields.AwareDateTime()


class VolunteerPageSchema(Schema):
    items = fields.List(fields.Nested(VolunteerSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class VolunteerQuerySchema(Schema):
    skill = fields.String(validate=validate.OneOf(SKILLS))
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String(validate=validate.Length(max=200))


class RecordEntryCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(RECORD_KINDS))
    text = _text(500, required=True, metadata={"example": "完成应急救护培训 first-aid training"})
    on = fields.Date(required=True)


# ---------------------------------------------------------------- teams


class TeamCreateSchema(Schema):
    name = _text(100, required=True, metadata={"example": "昱东街道助老志愿服务队"})
    station_id = fields.String(metadata={"description": "Default: the caller's station"})
    organiser_ids = fields.List(fields.String(), load_default=list, validate=validate.Length(max=20))
    description = fields.String(allow_none=True, validate=validate.Length(max=500))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TeamInput:
        return _input(TeamInput, data)


class TeamSchema(Schema):
    id = fields.String()
    name = fields.String()
    station_id = fields.String()
    organiser_ids = fields.List(fields.String())
    description = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


ID_PATTERN = validate.Regexp(r"^[0-9a-f]{24}$", error="Must be an id (24 hex characters).")


class TeamQuerySchema(Schema):
    station = fields.String(validate=ID_PATTERN, metadata={"description": "Station id"})


class TeamListSchema(Schema):
    items = fields.List(fields.Nested(TeamSchema))


# ---------------------------------------------------------------- activities


class ActivityCreateSchema(Schema):
    title = _text(100, required=True, metadata={"example": "重阳节敬老院陪伴"})
    scenario = fields.String(required=True, validate=validate.OneOf(SCENARIO_CODES))
    content = _text(2000, required=True, metadata={"example": "陪老人聊天、读报 keep company, read aloud"})
    location = fields.String(validate=validate.Length(max=200), metadata={"description": "Default: the station"})
    start_at = fields.AwareDateTime(required=True)
    end_at = fields.AwareDateTime(required=True)
    slots = fields.Integer(required=True, validate=validate.Range(1, 500))
    skills_wanted = fields.List(fields.String(validate=validate.OneOf(SKILLS)), load_default=list)
    team_id = fields.String(allow_none=True, metadata={"description": "The organising team (its station hosts it)"})
    station_id = fields.String(metadata={"description": "Admins only: the hosting station"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ActivityInput:
        return _input(ActivityInput, data)


class TaskFromCaseSchema(Schema):
    case_id = fields.String(required=True)
    title = _text(100, required=True, metadata={"example": "为独居老人代买药品"})
    content = fields.String(validate=validate.Length(max=2000), metadata={"description": "Default: the case's text"})
    location = fields.String(validate=validate.Length(max=200))
    start_at = fields.AwareDateTime(required=True)
    end_at = fields.AwareDateTime(required=True)
    slots = fields.Integer(load_default=1, validate=validate.Range(1, 50))
    skills_wanted = fields.List(fields.String(validate=validate.OneOf(SKILLS)), load_default=list)
    team_id = fields.String(allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TaskFromCase:
        return _input(TaskFromCase, data)


class ActivitySchema(Schema):
    id = fields.String()
    title = fields.String()
    scenario = fields.String()
    content = fields.String()
    station_id = fields.String()
    station_name = fields.String()
    township = fields.String()
    team_id = fields.String(allow_none=True)
    location = fields.String()
    start_at = fields.AwareDateTime()
    end_at = fields.AwareDateTime()
    slots = fields.Integer()
    confirmed_count = fields.Integer()
    skills_wanted = fields.List(fields.String())
    status = fields.String(metadata={"description": "published 已发布, cancelled 已取消"})
    cancel_reason = fields.String(allow_none=True)
    case_id = fields.String(allow_none=True, metadata={"description": "The case this task came from"})
    length_hours = fields.Float()
    created_at = fields.AwareDateTime()


class ActivityPageSchema(Schema):
    items = fields.List(fields.Nested(ActivitySchema), required=True)
    next_cursor = fields.String(allow_none=True)


class ActivityQuerySchema(Schema):
    station = fields.String(validate=ID_PATTERN, metadata={"description": "Station id"})
    township = fields.String(validate=validate.Regexp(r"^[1-9]\d{8}$"))
    county = fields.String(
        validate=validate.Regexp(r"^[1-9]\d{5}$"), metadata={"description": "County code (6 digits): its townships"}
    )
    status = fields.String(validate=validate.OneOf(("published", "cancelled")))
    upcoming = fields.Boolean(
        load_default=False, metadata={"description": "Only activities that have not ended (for volunteers browsing)"}
    )
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String(validate=validate.Length(max=200))


class VolunteerReasonSchema(Schema):
    reason = _text(500, required=True)


class SignupCreateSchema(Schema):
    note = fields.String(allow_none=True, validate=validate.Length(max=200))


class SignupSchema(Schema):
    id = fields.String()
    activity_id = fields.String()
    volunteer_id = fields.String()
    status = fields.String(metadata={"description": ", ".join(SIGNUP_STATUSES)})
    note = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class SignupListSchema(Schema):
    items = fields.List(fields.Nested(SignupSchema))


class MySignupSchema(SignupSchema):
    activity = fields.Nested(ActivitySchema)
    attendance = fields.Nested(
        lambda: AttendanceSchema(), allow_none=True, metadata={"description": "My attendance, once checked in"}
    )
    record_request = fields.Nested(
        lambda: RecordRequestSchema(),
        allow_none=True,
        metadata={"description": "My latest request to record missing service here (补录申请), if any"},
    )
    waiting_position = fields.Integer(
        allow_none=True, metadata={"description": "1 = next to move up (only while waitlisted)"}
    )


class MySignupListSchema(Schema):
    items = fields.List(fields.Nested(MySignupSchema), required=True)


class SignupDecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("confirm", "decline")))


# ---------------------------------------------------------------- attendance


class CheckinCodeQuerySchema(Schema):
    purpose = fields.String(load_default="in", validate=validate.OneOf(("in", "out")))


class CheckinCodeSchema(Schema):
    code = fields.String(metadata={"description": "Show it as a QR code; it expires in about a minute"})
    short_code = fields.String(
        metadata={
            "description": "The same code in 6 characters, for volunteers who type it instead of scanning "
            "(sent with activity_id)",
            "example": "K7M4QX",
        }
    )
    purpose = fields.String()
    expires_at = fields.AwareDateTime()
    activity_id = fields.String()


class CheckinSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(1, 400),
        metadata={"description": "The scanned code (v1.…), or the 6 characters typed from the screen"},
    )
    activity_id = fields.String(
        validate=ID_PATTERN, metadata={"description": "Required with a typed 6-character code: the activity"}
    )


class AttendanceHistoryEntrySchema(Schema):
    at = fields.AwareDateTime()
    by = fields.Nested(VolunteerActorSchema)
    action = fields.String()
    changes = fields.Dict(metadata={"description": "field -> {old, new}"})
    reason = fields.String(allow_none=True)


class AttendanceSchema(Schema):
    id = fields.String()
    activity_id = fields.String()
    volunteer_id = fields.String()
    station_id = fields.String()
    check_in_at = fields.AwareDateTime(allow_none=True)
    check_out_at = fields.AwareDateTime(allow_none=True)
    method = fields.String(metadata={"description": "code (scanned) or organiser (recorded)"})
    hours = fields.Float(allow_none=True)
    status = fields.String(metadata={"description": "checked_in, checked_out, confirmed"})
    evaluation = fields.String(allow_none=True)
    history = fields.List(fields.Nested(AttendanceHistoryEntrySchema), metadata={"description": "Append-only"})
    version = fields.Integer()


class AttendanceListSchema(Schema):
    items = fields.List(fields.Nested(AttendanceSchema))


class AttendanceCreateSchema(Schema):
    volunteer_id = fields.String(required=True)
    check_in_at = fields.AwareDateTime(required=True)
    check_out_at = fields.AwareDateTime(required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AttendanceInput:
        return _input(AttendanceInput, data)


class ConfirmHoursSchema(Schema):
    hours = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(0, 168))
    evaluation = fields.String(allow_none=True, validate=validate.Length(max=500))


class CorrectionSchema(Schema):
    reason = _text(500, required=True)
    hours = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(0, 168))
    check_in_at = fields.AwareDateTime(allow_none=True)
    check_out_at = fields.AwareDateTime(allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> CorrectionInput:
        return _input(CorrectionInput, data)


class CorrectionRequestSchema(Schema):
    reason = _text(500, required=True)
    proposed_hours = fields.Float(allow_none=True, allow_nan=False, validate=validate.Range(0, 168))


# ---------------------------------------------------------------- requests to record missing service (补录申请)


class RecordRequestCreateSchema(Schema):
    reason = _text(500, required=True, metadata={"example": "我参加了活动，但忘记签到签退"})
    proposed_check_in_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When I arrived (with proposed_check_out_at, or neither)"}
    )
    proposed_check_out_at = fields.AwareDateTime(allow_none=True)
    proposed_hours = fields.Float(
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(0, 168),
        metadata={"description": "At most the activity's length; computed from the times when omitted"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RecordRequestInput:
        return _input(RecordRequestInput, data)


class RecordRequestSchema(Schema):
    id = fields.String()
    activity_id = fields.String()
    volunteer_id = fields.String()
    station_id = fields.String()
    reason = fields.String()
    proposed_check_in_at = fields.AwareDateTime(allow_none=True)
    proposed_check_out_at = fields.AwareDateTime(allow_none=True)
    proposed_hours = fields.Float(allow_none=True)
    status = fields.String(
        metadata={"description": "open; recorded (the organiser recorded the attendance); declined (with a reason)"}
    )
    attendance_id = fields.String(allow_none=True, metadata={"description": "The record made, once recorded"})
    decline_reason = fields.String(allow_none=True)
    history = fields.List(fields.Nested(AttendanceHistoryEntrySchema), metadata={"description": "Append-only"})
    version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class RecordRequestListSchema(Schema):
    items = fields.List(fields.Nested(RecordRequestSchema), required=True)


class RecordRequestQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(RECORD_REQUEST_STATUSES))


# ---------------------------------------------------------------- records and certificates


class ServiceLineSchema(Schema):
    activity_id = fields.String()
    title = fields.String()
    content = fields.String()
    place = fields.String()
    start_at = fields.AwareDateTime()
    end_at = fields.AwareDateTime()
    hours = fields.Float()


class RecordServiceSchema(ServiceLineSchema):
    attendance_id = fields.String()
    station_id = fields.String()
    evaluation = fields.String(allow_none=True)


class CertificateSchema(Schema):
    id = fields.String()
    number = fields.String()
    verification_code = fields.String()
    volunteer_id = fields.String()
    volunteer_name = fields.String()
    id_card_masked = fields.String()
    station_id = fields.String()
    organisation = fields.String()
    period_from = fields.String()
    period_to = fields.String()
    total_hours = fields.Float()
    services = fields.List(fields.Nested(ServiceLineSchema))
    records = fields.List(fields.Nested(RecordEntrySchema))
    issued_at = fields.AwareDateTime()
    status = fields.String(metadata={"description": "valid 有效 or revoked 已撤销"})
    revoked_at = fields.AwareDateTime(allow_none=True)
    revoked_reason = fields.String(allow_none=True)


class VolunteerRecordSchema(Schema):
    volunteer = fields.Nested(VolunteerSchema)
    services = fields.List(fields.Nested(RecordServiceSchema))
    total_hours = fields.Float()
    records = fields.List(fields.Nested(RecordEntrySchema))
    certificates = fields.List(fields.Nested(CertificateSchema))


class CertificateCreateSchema(Schema):
    period_from = fields.Date(required=True)
    period_to = fields.Date(required=True)
    station_id = fields.String(metadata={"description": "The recording station (staff: their own)"})


class CertificateVerificationSchema(Schema):
    number = fields.String()
    status = fields.String()
    valid = fields.Boolean()
    name_masked = fields.String()
    organisation = fields.String()
    total_hours = fields.Float()
    period_from = fields.String()
    period_to = fields.String()
    issued_at = fields.AwareDateTime()
    revoked_at = fields.AwareDateTime(allow_none=True)
    revoked_reason = fields.String(allow_none=True)


class VerifyQuerySchema(Schema):
    format = fields.String(validate=validate.OneOf(("html", "json")), metadata={"description": "Default: by Accept"})


class VolunteerKpiQuerySchema(Schema):
    station = fields.String(validate=ID_PATTERN, metadata={"description": "Station id"})
    county = fields.String(validate=validate.Regexp(r"^\d{2,12}$"), metadata={"description": "Division code prefix"})
    period_from = fields.Date(data_key="from")
    period_to = fields.Date(data_key="to")


class VolunteerKpiStationSchema(Schema):
    station_id = fields.String()
    hours = fields.Float()
    active_volunteers = fields.Integer()


class VolunteerKpiSchema(Schema):
    scope = fields.String()
    registered_volunteers = fields.Integer()
    active_volunteers = fields.Integer(metadata={"description": "With confirmed hours in the period"})
    hours = fields.Float(metadata={"description": "Confirmed hours in the period"})
    activities_held = fields.Integer(metadata={"description": "Published activities that have started"})
    activities_published = fields.Integer()
    certificates_issued = fields.Integer(metadata={"description": "Valid certificates issued in the period"})
    by_station = fields.List(fields.Nested(VolunteerKpiStationSchema))
