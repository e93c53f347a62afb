"""Typed records of the alerts area."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

ALERT_TYPES = ("sos", "fall", "smoke", "no_activity", "low_battery", "offline")
ALERT_TYPE_NAMES = {
    "sos": ("紧急呼叫", "SOS"),
    "fall": ("跌倒报警", "fall"),
    "smoke": ("烟雾报警", "smoke"),
    "no_activity": ("长时间无活动", "no activity"),
    "low_battery": ("电量低", "low battery"),
    "offline": ("设备离线", "offline"),
}
DEVICE_TYPES = (
    "sos_button",
    "fall_detector",
    "smoke_sensor",
    "door_sensor",
    "water_meter",
    "power_meter",
    "wearable",
    "other",
)
# What each alert type does (rules.rule_for).
URGENT, CHECKUP, MAINTENANCE = "urgent", "checkup", "maintenance"
# Outcomes of one alert.
CASE_OPENED = "case_opened"
COLLAPSED = "collapsed"
CHECKUP_DUE = "checkup_due"
MAINTENANCE_LISTED = "maintenance_listed"
REFUSED = "refused"
FAILED = "failed"
OUTCOMES = (CASE_OPENED, COLLAPSED, CHECKUP_DUE, MAINTENANCE_LISTED, REFUSED, FAILED)


@dataclasses.dataclass(frozen=True, slots=True)
class Incident:
    """The urgent alert a device has open: later alerts from it collapse into its case."""

    alert_id: str
    case_id: str | None
    opened_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Device:
    id: str
    elder_id: str
    station_id: str
    township: str
    county_code: str
    type: str
    vendor_client_id: str
    vendor_device_id: str
    location_note: str | None
    installed_by: str | None
    installed_at: datetime | None
    active: bool
    created_at: datetime
    created_by: str
    open_incident: Incident | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Escalation:
    """Where an urgent alert stands on its county's ladder: ``level`` steps taken so far."""

    level: int
    next_at: datetime | None
    done: bool
    reason: str | None = None
    history: tuple[dict[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    id: str
    client_id: str
    vendor_alert_id: str
    type: str
    vendor_device_id: str
    occurred_at: datetime
    received_at: datetime
    details: dict[str, Any]
    fingerprint: str
    outcome: str
    device_id: str | None = None
    elder_id: str | None = None
    station_id: str | None = None
    township: str | None = None
    county_code: str | None = None
    case_id: str | None = None
    collapsed_into: str | None = None
    checkup_id: str | None = None
    maintenance_id: str | None = None
    repeats: int = 0
    last_repeat_at: datetime | None = None
    refusal: dict[str, str] | None = None
    escalation: Escalation | None = None
    announced: bool = False
    notified: tuple[dict[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class RotaEntry:
    id: str
    station_id: str
    staff_id: str
    phone: str
    starts_at: datetime
    ends_at: datetime
    note: str | None
    created_by: str
    created_at: datetime
    staff_name: str | None = None  # filled in when listed, for the board


@dataclasses.dataclass(frozen=True, slots=True)
class MaintenanceItem:
    id: str
    station_id: str
    device_id: str
    vendor_device_id: str
    elder_id: str
    kind: str  # low_battery | offline
    status: str  # open | done
    first_at: datetime
    last_at: datetime
    count: int
    done_at: datetime | None = None
    done_by: str | None = None
    note: str | None = None
    township: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Recipient:
    """Someone an urgent alert is sent to, with the phone to text (a rota's on-call phone, or None)."""

    staff_id: str
    role: str
    phone: str | None = None

    def as_data(self) -> dict[str, Any]:
        return {"staff_id": self.staff_id, "role": self.role, "phone": self.phone}


@dataclasses.dataclass(frozen=True, slots=True)
class AlertScope:
    """Which records (devices, alerts, maintenance items: each carries ``station_id``, ``township`` and
    ``county_code``) a staff member may list: of one station, of the townships under a division prefix,
    of one county, any of these together, or all (none set)."""

    station_id: str | None = None
    township_prefix: str | None = None
    county_code: str | None = None
