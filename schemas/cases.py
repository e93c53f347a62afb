"""Schemas for cases: submission, listing queries, actions and the case as returned."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from schemas.common import StrictBoolean
from schemas.routing import TownshipSchema
from service.cases.inputs import ActionInput, CaseSubmission
from service.cases.states import STATES

COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")
SCENARIOS = ("elderly", "children", "community", "social_aid", "social_org", "social_work", "funeral")


class LocationSchema(Schema):
    lon = fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(-180, 180),
        metadata={"description": "Longitude in degrees"},
    )
    lat = fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(-90, 90),
        metadata={"description": "Latitude in degrees"},
    )
    coord_system = fields.String(
        load_default="wgs84",
        validate=validate.OneOf(COORD_SYSTEMS),
        metadata={"description": "wgs84 (GPS), gcj02 (Chinese maps, wx.getLocation type gcj02) or bd09 (Baidu)"},
    )


class ContactSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 50), metadata={"description": "联系人 name"})
    phone = fields.String(
        required=True,
        validate=validate.Regexp(r"^(\+?86)?1[3-9]\d{9}$"),
        metadata={"description": "Mainland mobile number"},
    )


class ServedPersonSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 50))
    relation = fields.String(
        validate=validate.Length(max=20), metadata={"description": "Relation to the applicant, e.g. 父亲 father"}
    )
    phone = fields.String(validate=validate.Regexp(r"^(\+?86)?1[3-9]\d{9}$"))
    id_card = fields.String(
        validate=validate.Length(15, 18),
        load_only=True,
        metadata={"description": "居民身份证号 (GB 11643); stored encrypted, shown masked"},
    )


class TimeWindowSchema(Schema):
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data["end"] <= data["start"]:
            raise ValidationError("end must be after start", "end")


class CaseCreateSchema(Schema):
    service_code = fields.String(required=True, validate=validate.Length(1, 64))
    answers = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": "Answers to the service's form fields, by field code"},
    )
    description = fields.String(validate=validate.Length(max=2000), load_default=None)
    location = fields.Nested(LocationSchema, load_default=None, metadata={"problem_code": "invalid_coordinates"})
    division_code = fields.String(
        validate=validate.Regexp(r"^\d{9}(\d{3})?$"),
        load_default=None,
        metadata={"description": "Township division code, 9 or 12 digits"},
    )
    address = fields.String(
        validate=validate.Length(max=200),
        load_default=None,
        metadata={
            "description": "详细地址 Where the service is delivered; required when the service's "
            "address_required is true (422 address_required). Asked here only, never as a form field.",
            "example": "明光路 1 号",
        },
    )
    contact = fields.Nested(
        ContactSchema,
        load_default=None,
        metadata={
            "description": "联系人 Who the station calls back; required for residents unless filing anonymously "
            "(422 contact_required). Asked here only, never as a form field."
        },
    )
    served_person = fields.Nested(
        ServedPersonSchema, load_default=None, metadata={"description": "The person served, if not the applicant"}
    )
    preferred_window = fields.Nested(
        TimeWindowSchema, load_default=None, metadata={"description": "Preferred time for bookings"}
    )
    anonymous = StrictBoolean(
        load_default=False, metadata={"description": "File without identity (confidential services only)"}
    )
    photos = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        load_default=list,
        validate=validate.Length(max=9),
        metadata={"description": "Upload ids from POST /uploads"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> CaseSubmission:
        return CaseSubmission(**{**data, "photos": tuple(data["photos"])})


class CaseReadQuerySchema(Schema):
    coord_system = fields.String(
        load_default="wgs84",
        validate=validate.OneOf(COORD_SYSTEMS),
        metadata={"description": "System of the location returned: wgs84 (stored), gcj02 (WeChat/Tencent), bd09"},
    )


class CaseQuerySchema(Schema):
    status = fields.List(fields.String(validate=validate.OneOf(STATES)), load_default=None)
    scenario = fields.String(validate=validate.OneOf(SCENARIOS), load_default=None)
    service = fields.String(load_default=None)
    station = fields.String(load_default=None)
    assignee = fields.String(load_default=None)
    overdue = fields.Boolean(load_default=None)
    created_from = fields.AwareDateTime(load_default=None)
    created_to = fields.AwareDateTime(load_default=None)
    sort = fields.String(load_default="newest", validate=validate.OneOf(("newest", "due")))
    coord_system = fields.String(
        load_default="wgs84",
        validate=validate.OneOf(COORD_SYSTEMS),
        metadata={"description": "System of the locations returned: wgs84 (stored), gcj02 (WeChat/Tencent), bd09"},
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))

    def load(self, data: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            data = {**data, "status": [s for s in data["status"].split(",") if s]}
        return super().load(data, **kwargs)


class _ActionBase(Schema):
    expected_version = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Refuse with 409 if the case has moved on"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ActionInput:
        return ActionInput(**{**data, "photos": tuple(data["photos"])} if "photos" in data else data)


class NoteOptionalSchema(_ActionBase):
    note = fields.String(validate=validate.Length(max=1000), load_default=None)


class ReasonRequiredSchema(_ActionBase):
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class ReasonOptionalSchema(_ActionBase):
    reason = fields.String(validate=validate.Length(max=1000), load_default=None)


class NoteRequiredSchema(_ActionBase):
    text = fields.String(required=True, validate=validate.Length(1, 2000), metadata={"description": "进展 progress"})


class AssignSchema(_ActionBase):
    assignee_id = fields.String(required=True, validate=validate.Length(1, 64))
    note = fields.String(validate=validate.Length(max=1000), load_default=None)


class ScheduleSchema(_ActionBase):
    scheduled_at = fields.AwareDateTime(required=True)
    note = fields.String(validate=validate.Length(max=1000), load_default=None)


class ExtensionRequestSchema(_ActionBase):
    extra_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(1, 60),
        metadata={"description": "Extra working days asked for"},
    )
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class ResolveSchema(_ActionBase):
    result = fields.String(required=True, validate=validate.Length(1, 2000))
    photos = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        load_default=list,
        validate=validate.Length(max=9),
        metadata={
            "description": "Up to 9 photos of the result: ids of images the resolver uploaded first "
            "(POST /api/v1/uploads), or photos already on the case"
        },
    )


class RateSchema(_ActionBase):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    comment = fields.String(validate=validate.Length(max=500), load_default=None)


class DispatchSchema(_ActionBase):
    station_id = fields.String(required=True, validate=validate.Length(1, 64))
    note = fields.String(validate=validate.Length(max=1000), load_default=None)


# action -> (service action, body schema, summary). The URL segment is the action's name, the
# same word ``allowed_actions`` and ``history[].action`` use: POST /cases/{id}/request_extension.
ACTIONS: dict[str, tuple[str, type[Schema], str]] = {
    "accept": ("accept", NoteOptionalSchema, "签收 Accept (sign for) a dispatched case"),
    "return": ("return", ReasonRequiredSchema, "退单 Return a case that is not this station's"),
    "assign": ("assign", AssignSchema, "分派 Assign the case to a worker of the station"),
    "start": ("start", NoteOptionalSchema, "开始办理 Start handling"),
    "schedule": ("schedule", ScheduleSchema, "预约 Schedule an appointment"),
    "note": ("note", NoteRequiredSchema, "记录进展 Record progress"),
    "request_extension": ("request_extension", ExtensionRequestSchema, "申请延期 Request more time"),
    "approve_extension": ("approve_extension", NoteOptionalSchema, "批准延期 Approve the pending extension request"),
    "deny_extension": ("deny_extension", ReasonRequiredSchema, "驳回延期 Deny the pending extension request"),
    "resolve": ("resolve", ResolveSchema, "办结 Resolve with a result"),
    "reopen": ("reopen", ReasonRequiredSchema, "重办 Reopen within 7 days"),
    "rate": ("rate", RateSchema, "评价 Rate the handling (closes the case)"),
    "cancel": ("cancel", ReasonOptionalSchema, "撤回 Cancel the request"),
    "reject": ("reject", ReasonRequiredSchema, "不予受理 Reject an ineligible request"),
    "urge": ("urge", NoteOptionalSchema, "催办 Urge the station"),
    "dispatch": ("dispatch", DispatchSchema, "人工派单 Dispatch by hand to a station"),
}
# Earlier spellings of three URL segments, still answered (not in the OpenAPI document).
ACTION_ALIASES: dict[str, str] = {
    "extension-request": "request_extension",
    "extension-approve": "approve_extension",
    "extension-deny": "deny_extension",
}


class PointSchema(Schema):
    type = fields.String()
    coordinates = fields.List(fields.Float())


class CandidateSchema(Schema):
    station_id = fields.String()
    station_code = fields.String()
    station_name = fields.String()
    distance_km = fields.Float(allow_none=True)


class SystemRoutingSchema(Schema):
    method = fields.String(metadata={"description": "division, jurisdiction, county, nearest or unrouted"})
    station_id = fields.String(allow_none=True)
    station_code = fields.String(allow_none=True)
    station_name = fields.String(allow_none=True)
    county_code = fields.String(allow_none=True)
    distance_km = fields.Float(allow_none=True)
    reason = fields.String(metadata={"description": "One line a worker can read, Chinese first"})
    candidates = fields.List(fields.Nested(CandidateSchema))
    excluded = fields.List(fields.String())
    needs_township = fields.Boolean(
        metadata={"description": "The location could not tell the county's townships apart: county dispatch queue"}
    )
    townships = fields.List(
        fields.Nested(TownshipSchema), metadata={"description": "With needs_township: the townships to dispatch to"}
    )


class RoutingOutSchema(SystemRoutingSchema):
    method = fields.String(metadata={"description": "division, jurisdiction, county, nearest, unrouted or manual"})
    in_service_area = fields.Boolean(metadata={"description": "Always true on a filed case"})
    dispatched_at = fields.DateTime(metadata={"description": "manual: when the case was dispatched by hand"})
    dispatched_by = fields.Dict(metadata={"description": "manual: {role} of who dispatched it"})
    system = fields.Nested(
        SystemRoutingSchema, metadata={"description": "manual: the system's own decision, before any dispatch by hand"}
    )


class HistoryEntrySchema(Schema):
    event_id = fields.String()
    action = fields.String()
    actor = fields.Dict()
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    at = fields.DateTime()
    note = fields.String(allow_none=True)
    data = fields.Dict()


class CaseSourceSchema(Schema):
    channel = fields.String(
        metadata={"description": "mini_program, api, staff_entry, open311, visit (需求转介), device (设备报警) ..."}
    )
    visit_record_id = fields.String(
        metadata={"description": "Cases opened from a visit: the visit record (GET /api/v1/visits/{id})"}
    )
    elder_id = fields.String(metadata={"description": "Cases opened from a visit: the person on the visit register"})
    visit_id = fields.String(
        metadata={"description": "Cases opened from a visit: the finding's key, <record id>:need:<n> or :danger"}
    )
    alert_id = fields.String(metadata={"description": "Cases opened by a device alert: GET /api/v1/alerts/{id}"})
    alert_type = fields.String(metadata={"description": "Cases opened by a device alert: sos, fall or smoke"})
    device_id = fields.String(metadata={"description": "Cases opened by a device alert: the registered device"})


class CaseSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True, metadata={"description": "工单号, HM + county code + date + sequence"})
    version = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    status_label = fields.Dict(allow_none=True, metadata={"description": "{zh, en}"})
    service = fields.Dict(required=True)
    answers = fields.Dict()
    description = fields.String(allow_none=True)
    location = fields.Nested(
        PointSchema,
        allow_none=True,
        metadata={"description": "GeoJSON point: WGS-84, or the coord_system asked for on reads"},
    )
    division_code = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    contact = fields.Dict(
        allow_none=True,
        metadata={"description": "Hidden on confidential cases; phone masked except to the resident and the assignee"},
    )
    served_person = fields.Dict(allow_none=True)
    preferred_window = fields.Dict(allow_none=True)
    anonymous = fields.Boolean()
    photos = fields.List(fields.String())
    result_photos = fields.List(
        fields.String(), metadata={"description": "Photos of the result, given with the resolution (upload ids)"}
    )
    created_by = fields.Dict()
    source = fields.Nested(CaseSourceSchema, allow_none=True, metadata={"description": "Where the case came from"})
    station_id = fields.String(allow_none=True)
    station_code = fields.String(allow_none=True)
    station_name = fields.String(allow_none=True)
    county_code = fields.String(allow_none=True)
    division = fields.String(allow_none=True)
    routing = fields.Nested(RoutingOutSchema)
    return_count = fields.Integer()
    assignee_id = fields.String(allow_none=True)
    sign_due_at = fields.DateTime()
    resolve_due_at = fields.DateTime()
    next_due_at = fields.DateTime(allow_none=True)
    overdue = fields.Dict()
    urge_count = fields.Integer()
    accepted_at = fields.DateTime(allow_none=True)
    scheduled_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    result = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    extension = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    allowed_actions = fields.List(fields.String(), metadata={"description": "What the caller may do next"})
    history = fields.List(fields.Nested(HistoryEntrySchema))


class CasePageSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema(exclude=("history",))))
    next_cursor = fields.String(allow_none=True)


class KpiQuerySchema(Schema):
    division = fields.String(validate=validate.Regexp(r"^\d{2,12}$"), load_default=None)
    date_from = fields.AwareDateTime(data_key="from", load_default=None)
    date_to = fields.AwareDateTime(data_key="to", load_default=None)
    group_by = fields.String(validate=validate.OneOf(("station", "county", "city")), load_default=None)


class KpiGroupSchema(Schema):
    key = fields.String(allow_none=True)
    total = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_scenario = fields.Dict(keys=fields.String(), values=fields.Integer())
    response_rate = fields.Float(allow_none=True, metadata={"description": "Signed within the limit / signed"})
    resolution_rate = fields.Float(allow_none=True)
    on_time_resolution_rate = fields.Float(allow_none=True)
    satisfaction_rate = fields.Float(allow_none=True, metadata={"description": "Ratings 4–5 / rated"})
    median_hours_to_sign = fields.Float(allow_none=True)
    median_hours_to_resolve = fields.Float(allow_none=True)
    overdue = fields.Integer()


class KpiSchema(Schema):
    division = fields.String(allow_none=True)
    date_from = fields.DateTime(data_key="from", attribute="from", allow_none=True)
    date_to = fields.DateTime(data_key="to", attribute="to", allow_none=True)
    group_by = fields.String(allow_none=True)
    groups = fields.List(fields.Nested(KpiGroupSchema))
