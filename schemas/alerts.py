"""Schemas of devices, alerts, the duty rota and the maintenance list."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from service.alerts.inputs import DeviceChanges, DeviceRegistration, RotaShift
from service.alerts.models import ALERT_TYPES, DEVICE_TYPES, OUTCOMES
from service.common.inputs import from_given

DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_DETAILS = 20
ID = validate.Length(1, 64)
VENDOR_ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$", error="1-64 letters, digits, . _ : -")
ALERT_TYPE_HELP = (
    "sos 紧急呼叫, fall 跌倒, smoke 烟雾 (open an urgent case); no_activity 无活动 (a check-up due today); "
    "low_battery 电量低, offline 离线 (the station's maintenance list)"
)


def _check_details(value: dict[str, Any]) -> None:
    """Flat key/value details: snake_case keys, short text, numbers or booleans."""
    if len(value) > MAX_DETAILS:
        raise ValidationError(f"At most {MAX_DETAILS} entries.")
    for key, item in value.items():
        if not isinstance(key, str) or not DETAIL_KEY.match(key):
            raise ValidationError(f"{key!r}: keys are snake_case, up to 40 characters.")
        if isinstance(item, str):
            if len(item) > 500:
                raise ValidationError(f"{key}: at most 500 characters.")
        elif not (isinstance(item, bool | int | float) or item is None):
            raise ValidationError(f"{key}: a value is text, a number, true/false or null.")


# ---------------------------------------------------------------- devices


class DeviceCreateSchema(Schema):
    elder_id = fields.String(required=True, validate=ID, metadata={"description": "The person on the visit register"})
    type = fields.String(
        required=True,
        validate=validate.OneOf(DEVICE_TYPES),
        metadata={"description": ", ".join(DEVICE_TYPES), "problem_code": "validation_failed"},
    )
    vendor_client_id = fields.String(
        required=True, validate=ID, metadata={"description": "The vendor's integrator client (alerts:write)"}
    )
    vendor_device_id = fields.String(
        required=True, validate=VENDOR_ID, metadata={"description": "The device id the vendor reports alerts under"}
    )
    location_note = fields.String(validate=validate.Length(max=200), metadata={"description": "Installed where"})
    installed_by = fields.String(validate=validate.Length(max=100), metadata={"description": "Installed by whom"})
    installed_at = fields.AwareDateTime()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> DeviceRegistration:
        return DeviceRegistration(**data)


class DeviceUpdateSchema(Schema):
    location_note = fields.String(validate=validate.Length(max=200), allow_none=True)
    installed_by = fields.String(validate=validate.Length(max=100), allow_none=True)
    installed_at = fields.AwareDateTime(allow_none=True)
    active = fields.Boolean(metadata={"description": "false takes the device off: its alerts are refused"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> DeviceChanges:
        return from_given(DeviceChanges, data)


class IncidentSchema(Schema):
    alert_id = fields.String()
    case_id = fields.String(allow_none=True)
    opened_at = fields.AwareDateTime()


class DeviceSchema(Schema):
    id = fields.String()
    elder_id = fields.String()
    station_id = fields.String()
    township = fields.String()
    county_code = fields.String()
    type = fields.String()
    vendor_client_id = fields.String()
    vendor_device_id = fields.String()
    location_note = fields.String(allow_none=True)
    installed_by = fields.String(allow_none=True)
    installed_at = fields.AwareDateTime(allow_none=True)
    active = fields.Boolean()
    open_incident = fields.Nested(IncidentSchema, allow_none=True)
    created_at = fields.AwareDateTime()


class DevicePageSchema(Schema):
    items = fields.List(fields.Nested(DeviceSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class DeviceQuerySchema(Schema):
    station = fields.String(validate=ID, metadata={"description": "Station id"})
    elder_id = fields.String(validate=ID)
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)
    cursor = fields.String(validate=ID)


# ---------------------------------------------------------------- alerts


class AlertCreateSchema(Schema):
    alert_id = fields.String(
        required=True, validate=VENDOR_ID, metadata={"description": "The vendor's own alert id (resending is safe)"}
    )
    type = fields.String(
        required=True,
        validate=validate.OneOf(ALERT_TYPES),
        metadata={"description": ALERT_TYPE_HELP, "problem_code": "validation_failed"},
    )
    device_id = fields.String(
        required=True, validate=VENDOR_ID, metadata={"description": "The vendor's device id, as registered"}
    )
    occurred_at = fields.AwareDateTime(required=True, metadata={"description": "When the device raised it"})
    details = fields.Dict(
        validate=_check_details,
        metadata={"description": "Flat key/value details (message, battery_percent, ...)", "example": {}},
    )


class EscalationStepSchema(Schema):
    level = fields.Integer()
    to = fields.String()
    at = fields.AwareDateTime()
    stopped = fields.String()


class EscalationSchema(Schema):
    level = fields.Integer(metadata={"description": "Steps taken so far"})
    next_at = fields.AwareDateTime(allow_none=True, metadata={"description": "When the next step fires if unsigned"})
    done = fields.Boolean()
    reason = fields.String(allow_none=True)
    history = fields.List(fields.Nested(EscalationStepSchema))


class RefusalSchema(Schema):
    code = fields.String()
    detail = fields.String()


class AlertSchema(Schema):
    id = fields.String()
    alert_id = fields.String(attribute="vendor_alert_id", metadata={"description": "The vendor's alert id"})
    type = fields.String()
    device_id = fields.String(attribute="vendor_device_id", metadata={"description": "The vendor's device id"})
    occurred_at = fields.AwareDateTime()
    received_at = fields.AwareDateTime()
    details = fields.Dict()
    outcome = fields.String(metadata={"description": " | ".join(OUTCOMES)})
    station_id = fields.String(allow_none=True)
    case_id = fields.String(allow_none=True, metadata={"description": "The urgent case opened, or collapsed into"})
    collapsed_into = fields.String(allow_none=True, metadata={"description": "The alert this one repeated"})
    checkup_id = fields.String(allow_none=True, metadata={"description": "The check-up due today"})
    maintenance_id = fields.String(allow_none=True)
    repeats = fields.Integer(metadata={"description": "Later alerts collapsed into this one"})
    refusal = fields.Nested(RefusalSchema, allow_none=True)
    escalation = fields.Nested(EscalationSchema, allow_none=True)


class AlertPageSchema(Schema):
    items = fields.List(fields.Nested(AlertSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class AlertQuerySchema(Schema):
    station = fields.String(validate=ID, metadata={"description": "Station id (staff)"})
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    type = fields.String(validate=validate.OneOf(ALERT_TYPES))
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)
    cursor = fields.String(validate=ID)


# ---------------------------------------------------------------- rota


class RotaEntryCreateSchema(Schema):
    staff_id = fields.String(required=True, validate=ID, metadata={"description": "A worker or head of the station"})
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True, metadata={"description": "At most 7 days after starts_at"})
    phone = fields.String(
        validate=validate.Length(1, 20), metadata={"description": "On-call mobile; default: the account's phone"}
    )
    note = fields.String(validate=validate.Length(max=200))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RotaShift:
        return RotaShift(**data)


class RotaEntrySchema(Schema):
    id = fields.String()
    station_id = fields.String()
    staff_id = fields.String()
    staff_name = fields.String(allow_none=True, metadata={"description": "The staff member's name"})
    phone = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    note = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class RotaListSchema(Schema):
    items = fields.List(fields.Nested(RotaEntrySchema), required=True)


class RotaQuerySchema(Schema):
    at = fields.AwareDateTime(metadata={"description": "Shifts not over at this time (default now)"})


# ---------------------------------------------------------------- maintenance


class MaintenanceItemSchema(Schema):
    id = fields.String()
    station_id = fields.String()
    device_id = fields.String()
    vendor_device_id = fields.String()
    elder_id = fields.String()
    kind = fields.String(metadata={"description": "low_battery | offline"})
    status = fields.String(metadata={"description": "open | done"})
    first_at = fields.AwareDateTime()
    last_at = fields.AwareDateTime()
    count = fields.Integer(metadata={"description": "Reports while open"})
    done_at = fields.AwareDateTime(allow_none=True)
    note = fields.String(allow_none=True)


class MaintenancePageSchema(Schema):
    items = fields.List(fields.Nested(MaintenanceItemSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class MaintenanceQuerySchema(Schema):
    station = fields.String(validate=ID)
    status = fields.String(validate=validate.OneOf(("open", "done")), load_default="open")
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=50)
    cursor = fields.String(validate=ID)


class MaintenanceDoneSchema(Schema):
    note = fields.String(validate=validate.Length(max=500))
