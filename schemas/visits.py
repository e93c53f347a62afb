"""Schemas of visit records, the due list and the visit rate."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from schemas.common import StrictBoolean
from service.visits.inputs import VisitInput
from service.visits.records import AI_FLAGS, FINDING_AREAS, LEVELS, METHODS
from service.visits.referrals import DANGER_KINDS

METHOD_HELP = "phone 电话, video 视频, home 上门, ai_call 智能外呼 (machine call, integrator clients)"


class FindingSchema(Schema):
    level = fields.String(required=True, validate=validate.OneOf(LEVELS), metadata={"description": "good, fair, poor"})
    note = fields.String(validate=validate.Length(max=1000))


FindingsSchema = Schema.from_dict({area: fields.Nested(FindingSchema) for area in FINDING_AREAS}, name="FindingsSchema")


class NeedSchema(Schema):
    service_code = fields.String(required=True, metadata={"example": "elderly_home_care"})
    note = fields.String(validate=validate.Length(max=1000))
    answers = fields.Dict(metadata={"description": "Form answers the register cannot supply (e.g. care_items)"})
    preferred_window = fields.Dict(allow_none=True, metadata={"description": "For booking services"})


class DangerSchema(Schema):
    found = StrictBoolean(required=True)
    kind = fields.String(
        validate=validate.OneOf(DANGER_KINDS), metadata={"description": "fall, illness, utilities, missing, other"}
    )
    note = fields.String(validate=validate.Length(max=1000))


class VisitCreateSchema(Schema):
    elder_id = fields.String(required=True, validate=validate.Length(1, 64))
    method = fields.String(
        required=True,
        validate=validate.OneOf(METHODS),
        metadata={"description": METHOD_HELP, "problem_code": "unknown_method"},
    )
    visitor = fields.String(validate=validate.Length(1, 64), metadata={"description": "Staff id; default: the caller"})
    visited_at = fields.AwareDateTime(required=True, metadata={"description": "Not in the future"})
    reached = StrictBoolean(required=True, metadata={"description": "Only a visit that reached the person counts"})
    findings = fields.Nested(FindingsSchema)
    needs = fields.List(fields.Nested(NeedSchema), validate=validate.Length(max=10))
    danger = fields.Nested(DangerSchema)
    corrects = fields.String(metadata={"description": "Id of an earlier record this one corrects"})
    summary = fields.String(
        validate=validate.Length(max=2000), metadata={"description": "ai_call: the transcript summary"}
    )
    flags = fields.List(
        fields.String(validate=validate.OneOf(AI_FLAGS)),
        validate=validate.Length(max=len(AI_FLAGS)),
        metadata={"description": "ai_call: needs_help, feels_unwell, asked_for_callback"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> VisitInput:
        return VisitInput(**{**data, **{k: tuple(data[k]) for k in ("needs", "flags") if k in data}})


class ReferralSchema(Schema):
    kind = fields.String(metadata={"description": "need (需求转介) or danger (紧急求助)"})
    service_code = fields.String()
    case_id = fields.String(allow_none=True)


class RecordedBySchema(Schema):
    subject = fields.String()
    role = fields.String()


class VisitSchema(Schema):
    id = fields.String()
    elder_id = fields.String()
    station_id = fields.String()
    method = fields.String()
    visitor = fields.String()
    visited_at = fields.AwareDateTime()
    reached = fields.Boolean()
    findings = fields.Nested(FindingsSchema)
    needs = fields.List(fields.Nested(NeedSchema))
    danger = fields.Nested(DangerSchema)
    corrects = fields.String(allow_none=True)
    summary = fields.String(allow_none=True)
    flags = fields.List(fields.String())
    counts_for = fields.List(fields.String(), metadata={"description": "Periods this record marked visited"})
    referrals = fields.List(fields.Nested(ReferralSchema))
    case_ids = fields.List(fields.String())
    recorded_by = fields.Nested(RecordedBySchema)
    created_at = fields.AwareDateTime()


class VisitListSchema(Schema):
    items = fields.List(fields.Nested(VisitSchema))


class VisitQuerySchema(Schema):
    elder_id = fields.String(required=True, validate=validate.Length(1, 64))
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)


# Period ids as service/visit_periods.parse_period reads them (years 2000-2099); week 53
# exists only in some years, which the pattern cannot say (422 invalid_period then).
_YEAR = r"20\d\d"
WEEK_ID = validate.Regexp(rf"^{_YEAR}-W(0[1-9]|[1-4]\d|5[0-3])$", error="Use an ISO week id like 2026-W48.")
PERIOD_ID = validate.Regexp(
    rf"^{_YEAR}-(W(0[1-9]|[1-4]\d|5[0-3])|0[1-9]|1[0-2]|Q[1-4])$",
    error="Use a period id like 2026-W48 (ISO week), 2026-11 (month) or 2026-Q4 (quarter).",
)


class DueQuerySchema(Schema):
    station = fields.String(metadata={"description": "Station id; default: the caller's station or area"})
    period = fields.String(
        validate=PERIOD_ID,
        metadata={
            "description": "2026-W48, 2026-11 or 2026-Q4: due in that period; default: in progress now",
            "problem_code": "invalid_period",
        },
    )
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)
    cursor = fields.String()


class DueSchema(Schema):
    elder_id = fields.String()
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    visitor_id = fields.String(allow_none=True)
    last_visited_at = fields.AwareDateTime(allow_none=True)
    station_id = fields.String()
    township = fields.String()
    tier = fields.String()
    period = fields.String()
    due_by = fields.AwareDateTime(metadata={"description": "End of the period (exclusive)"})
    overdue = fields.Boolean()


class DuePageSchema(Schema):
    items = fields.List(fields.Nested(DueSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class StatsQuerySchema(Schema):
    division = fields.String(validate=validate.Regexp(r"^\d{2,9}$"), metadata={"description": "Division code prefix"})
    period = fields.String(
        validate=PERIOD_ID,
        metadata={
            "description": "Report period; schedules due in it count. Default: this ISO week",
            "problem_code": "invalid_period",
        },
    )
    group_by = fields.String(validate=validate.OneOf(("station", "county", "city")), load_default="station")
    misses_limit = fields.Integer(
        validate=validate.Range(1, 1000), load_default=100, metadata={"description": "How many misses to list"}
    )


class WeeklyQuerySchema(Schema):
    division = fields.String(validate=validate.Regexp(r"^\d{2,9}$"), metadata={"description": "Division code prefix"})
    weeks = fields.Integer(validate=validate.Range(1, 104), load_default=12, metadata={"description": "How many weeks"})
    until = fields.String(
        validate=WEEK_ID,
        metadata={
            "description": "Last ISO week of the series (2026-W48); default: this week",
            "problem_code": "invalid_period",
        },
    )


class TierRateSchema(Schema):
    tier = fields.String()
    period = fields.String(allow_none=True, metadata={"description": "The tier's own period counted, when one"})
    covers = fields.String(metadata={"description": "Which of the tier's periods count, e.g. weeks ending in 2026-11"})
    due = fields.Integer()
    visited = fields.Integer()
    rate = fields.Float(allow_none=True)
    visited_without_machine = fields.Integer(metadata={"description": "Visited by people only"})
    rate_without_machine = fields.Float(allow_none=True, metadata={"description": "The rate without machine calls"})
    visited_with_machine = fields.Integer(metadata={"description": "Visited, or reached by a machine call"})
    rate_with_machine = fields.Float(allow_none=True, metadata={"description": "The rate with machine calls"})


class MethodCountSchema(Schema):
    method = fields.String()
    visited = fields.Integer()


class GroupRateSchema(Schema):
    key = fields.String(metadata={"description": "Station id, county code or city code"})
    name = fields.String(allow_none=True)
    due = fields.Integer(metadata={"description": "Weekly tier: person-weeks due (the plan's figure)"})
    visited = fields.Integer()
    rate = fields.Float(allow_none=True, metadata={"description": "周探访率: weekly tier visited / due"})
    visited_without_machine = fields.Integer(metadata={"description": "Visited by people only"})
    rate_without_machine = fields.Float(allow_none=True, metadata={"description": "The rate without machine calls"})
    visited_with_machine = fields.Integer(metadata={"description": "Visited, or reached by a machine call"})
    rate_with_machine = fields.Float(allow_none=True, metadata={"description": "The rate with machine calls"})
    by_tier = fields.List(fields.Nested(TierRateSchema), metadata={"description": "Every tier on its own period"})


class MethodNameSchema(Schema):
    method = fields.String()
    name = fields.String()


class CountyMachineSchema(Schema):
    county = fields.String()
    name = fields.String()
    counted = fields.Boolean(metadata={"description": "Reached machine calls count toward this county's rate"})


class MachineCallsSchema(Schema):
    method = fields.String()
    name = fields.String()
    counted_by_default = fields.Boolean(metadata={"description": "Counties without their own setting"})
    counties = fields.List(fields.Nested(CountyMachineSchema))


class PlanStatementSchema(Schema):
    name = fields.String(metadata={"example": "周探访率 weekly visit rate"})
    tier = fields.String(metadata={"description": "The tier the figure measures: high (weekly)"})
    tier_name = fields.String()
    counted_methods = fields.List(fields.Nested(MethodNameSchema), metadata={"description": "Visits that count"})
    not_counted = fields.List(fields.String(), metadata={"description": "What does not count"})
    machine_calls = fields.Nested(
        MachineCallsSchema, metadata={"description": "Whether machine (AI) calls count, per county"}
    )
    rule = fields.String(metadata={"description": "The counting rule, Chinese and English"})
    period = fields.String(allow_none=True)
    covers = fields.String()


class MissSchema(Schema):
    elder_id = fields.String()
    name_masked = fields.String(allow_none=True)
    station_id = fields.String()
    tier = fields.String()
    period = fields.String()
    last_visited_at = fields.AwareDateTime(allow_none=True)


class VisitStatsSchema(Schema):
    period = fields.String()
    period_start = fields.AwareDateTime()
    period_end = fields.AwareDateTime()
    closed = fields.Boolean(metadata={"description": "The report period has ended"})
    division = fields.String(allow_none=True)
    group_by = fields.String()
    plan = fields.Nested(PlanStatementSchema, metadata={"description": "What the headline figure counts"})
    due = fields.Integer(metadata={"description": "Weekly tier: person-weeks due in the report period"})
    visited = fields.Integer(metadata={"description": "Weekly tier: person-weeks visited"})
    rate = fields.Float(allow_none=True, metadata={"description": "周探访率, the plan's figure: visited / due"})
    visited_without_machine = fields.Integer(metadata={"description": "Visited by people only"})
    rate_without_machine = fields.Float(allow_none=True, metadata={"description": "The rate without machine calls"})
    visited_with_machine = fields.Integer(metadata={"description": "Visited, or reached by a machine call"})
    rate_with_machine = fields.Float(allow_none=True, metadata={"description": "The rate with machine calls"})
    by_tier = fields.List(fields.Nested(TierRateSchema), metadata={"description": "Every tier on its own period"})
    by_method = fields.List(fields.Nested(MethodCountSchema), metadata={"description": "Weekly tier, by method"})
    groups = fields.List(fields.Nested(GroupRateSchema))
    misses = fields.List(fields.Nested(MissSchema))
    misses_truncated = fields.Boolean()


class WeekRateSchema(Schema):
    period = fields.String()
    period_start = fields.AwareDateTime()
    period_end = fields.AwareDateTime()
    closed = fields.Boolean()
    due = fields.Integer()
    visited = fields.Integer()
    rate = fields.Float(allow_none=True)


class WeeklySeriesSchema(Schema):
    division = fields.String(allow_none=True)
    plan = fields.Nested(PlanStatementSchema(exclude=("period", "covers")))
    items = fields.List(fields.Nested(WeekRateSchema), metadata={"description": "Oldest week first"})
