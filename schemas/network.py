"""Schemas of the station network against the plan (社工站建设): records, verifications, figures."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from service.network.models import (
    GROUPINGS,
    OUTCOMES,
    STATUSES,
    UNREPORTED,
    Document,
    EquipmentItem,
)

ID = validate.Regexp(r"^[0-9a-f]{24}$", error="Must be an upload id.")
NON_BLANK = validate.Regexp(r"^\s*\S", error="Must be non-empty text.")
DIVISION = fields.String(
    validate=validate.Regexp(r"^34\d{4}$"),
    metadata={"description": "Division code: 340000 (province), a city (341000) or a county (341002)"},
)


def _division() -> fields.String:
    return fields.String(validate=DIVISION.validate, metadata=DIVISION.metadata)


# ---------------------------------------------------------------- input


class DatesSchema(Schema):
    """The day each status was reached (null removes a date)."""

    planned = fields.Date(allow_none=True, metadata={"description": "规划 planned on"})
    built = fields.Date(allow_none=True, metadata={"description": "建成 built on"})
    operating = fields.Date(allow_none=True, metadata={"description": "投入运营 operating since"})
    model = fields.Date(allow_none=True, metadata={"description": "评为示范站 model station since"})


class SiteInputSchema(Schema):
    address = fields.String(allow_none=True, validate=[validate.Length(1, 200), NON_BLANK])
    floor_area_m2 = fields.Float(
        allow_none=True, allow_nan=False, validate=validate.Range(0, 100_000, min_inclusive=False)
    )
    photos = fields.List(
        fields.String(validate=ID),
        validate=validate.Length(max=20),
        metadata={"description": "Upload ids of photos of the site (POST /api/v1/uploads first)"},
    )


class EquipmentItemSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(1, 100), NON_BLANK])
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 1_000_000))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> EquipmentItem:
        return EquipmentItem(name=data["name"].strip(), quantity=data["quantity"])


class DocumentInputSchema(Schema):
    title = fields.String(required=True, validate=[validate.Length(1, 100), NON_BLANK])
    issued_on = fields.Date(required=True, metadata={"description": "The day it took effect"})
    uploads = fields.List(
        fields.String(validate=ID),
        required=True,
        validate=validate.Length(1, 20),
        metadata={"description": "Upload ids of the document's pages (images)"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Document:
        return Document(title=data["title"].strip(), issued_on=data["issued_on"], uploads=tuple(data["uploads"]))


class NetworkUpdateSchema(Schema):
    status = fields.String(
        validate=validate.OneOf(STATUSES), metadata={"description": "planned, built, operating, model"}
    )
    dates = fields.Nested(DatesSchema)
    site = fields.Nested(SiteInputSchema, metadata={"description": "有场地; the fields given replace theirs"})
    equipment = fields.List(fields.Nested(EquipmentItemSchema), validate=validate.Length(max=200))
    workflows = fields.List(fields.Nested(DocumentInputSchema), validate=validate.Length(max=50))
    rules = fields.List(fields.Nested(DocumentInputSchema), validate=validate.Length(max=50))
    expected_revision = fields.Integer(
        strict=True,
        validate=validate.Range(0, None),
        metadata={"description": "The revision you read; 409 network_record_changed when it moved on"},
    )

    @post_load
    def split(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        expected = data.pop("expected_revision", None)
        return {"changes": data, "expected_revision": expected}


class VerificationCreateSchema(Schema):
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(OUTCOMES),
        metadata={"description": "approved (签字确认: all six haves met) or returned (退回, say why in note)"},
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=500))
    revision = fields.Integer(
        strict=True, validate=validate.Range(1, None), metadata={"description": "The revision you checked"}
    )


class NetworkQuerySchema(Schema):
    division = _division()
    status = fields.String(validate=validate.OneOf((*STATUSES, UNREPORTED)))
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)
    cursor = fields.String(validate=validate.Length(max=100))


class StatsQuerySchema(Schema):
    division = _division()
    group_by = fields.String(validate=validate.OneOf(GROUPINGS), metadata={"description": "city or county"})


class ExportQuerySchema(Schema):
    division = _division()


# ---------------------------------------------------------------- output


class ActorSchema(Schema):
    subject = fields.String(metadata={"description": "Staff account id"})
    role = fields.String()


class StationRefSchema(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    county_code = fields.String()
    county_name = fields.String()
    city_code = fields.String()
    city_name = fields.String()


class SiteSchema(Schema):
    address = fields.String(allow_none=True)
    floor_area_m2 = fields.Float(allow_none=True)
    photos = fields.List(fields.String())


class DocumentSchema(Schema):
    title = fields.String()
    issued_on = fields.Date()
    uploads = fields.List(fields.String())


class StaffingSchema(Schema):
    people = fields.Integer(metadata={"description": "The figure the checklist uses"})
    staff_accounts = fields.Integer(metadata={"description": "Active worker and station-head accounts"})
    register = fields.Integer(allow_none=True, metadata={"description": "Social-worker register (not yet kept)"})
    sources = fields.List(fields.String())


class HaveCheckSchema(Schema):
    have = fields.String(metadata={"description": "site, equipment, staff, services, workflows, rules"})
    name = fields.String(metadata={"description": "有场地, 有设备, 有人员, 有服务功能, 有工作流程, 有规章制度"})
    met = fields.Boolean()
    missing = fields.List(fields.String())


class VerificationSchema(Schema):
    id = fields.String()
    station_id = fields.String()
    revision = fields.Integer(metadata={"description": "The record revision that was checked"})
    outcome = fields.String()
    note = fields.String(allow_none=True)
    by = fields.Nested(ActorSchema)
    at = fields.AwareDateTime()


class VerificationListSchema(Schema):
    items = fields.List(fields.Nested(VerificationSchema))


class StationNetworkSchema(Schema):
    station = fields.Nested(StationRefSchema)
    status = fields.String(metadata={"description": "planned, built, operating, model, or unreported"})
    status_name = fields.String(metadata={"description": "规划中, 已建成, 运营中, 示范站, 未填报"})
    dates = fields.Nested(DatesSchema, attribute="record.dates")
    site = fields.Nested(SiteSchema, attribute="record.site")
    equipment = fields.List(fields.Nested(EquipmentItemSchema), attribute="record.equipment")
    workflows = fields.List(fields.Nested(DocumentSchema), attribute="record.workflows")
    rules = fields.List(fields.Nested(DocumentSchema), attribute="record.rules")
    services = fields.List(fields.String(), attribute="station.capabilities")
    staffing = fields.Nested(StaffingSchema)
    checklist = fields.List(fields.Nested(HaveCheckSchema))
    compliant = fields.Boolean(metadata={"description": "All six haves met, as recorded"})
    verified = fields.Boolean(metadata={"description": "Compliant and signed off at this revision"})
    verification = fields.Nested(VerificationSchema, allow_none=True, metadata={"description": "The latest"})
    revision = fields.Integer(attribute="record.revision")
    updated_at = fields.AwareDateTime(attribute="record.updated_at", allow_none=True)
    updated_by = fields.Nested(ActorSchema, attribute="record.updated_by", allow_none=True)


class NetworkPageSchema(Schema):
    items = fields.List(fields.Nested(StationNetworkSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class StatusCountsSchema(Schema):
    planned = fields.Integer()
    built = fields.Integer()
    operating = fields.Integer()
    model = fields.Integer()
    unreported = fields.Integer()


class DivisionFiguresSchema(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    townships = fields.Integer(metadata={"description": "Townships (乡镇街道), township-like units with a station"})
    covered_townships = fields.Integer(metadata={"description": "With an operating or model station"})
    coverage_pct = fields.Float()
    coverage_gap_pct = fields.Float()
    stations = fields.Integer(metadata={"description": "Active stations"})
    by_status = fields.Nested(StatusCountsSchema)
    model_stations = fields.Integer()
    compliant = fields.Integer(metadata={"description": "Stations meeting all six haves, as recorded"})
    verified = fields.Integer(metadata={"description": "Of those, signed off at their current revision"})
    compliance_pct = fields.Float(metadata={"description": "verified / stations"})
    compliance_gap_pct = fields.Float()
    reported_compliance_pct = fields.Float(metadata={"description": "compliant / stations"})
    target_pct = fields.Float()


class NetworkStatsSchema(Schema):
    division = fields.Nested(DivisionFiguresSchema)
    group_by = fields.String(allow_none=True)
    groups = fields.List(fields.Nested(DivisionFiguresSchema))
