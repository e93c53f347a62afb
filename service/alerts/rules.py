"""Pure decisions of the alerts area: what an alert type does, who is on duty, when to escalate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from config.county_rules import CountyRule
from service.alerts.models import (
    ALERT_TYPE_NAMES,
    CHECKUP,
    MAINTENANCE,
    URGENT,
    Alert,
    Device,
    RotaEntry,
)

RULES = {
    "sos": URGENT,
    "fall": URGENT,
    "smoke": URGENT,
    "no_activity": CHECKUP,
    "low_battery": MAINTENANCE,
    "offline": MAINTENANCE,
}
# The 紧急求助 form's "what happened" for each urgent alert type.
EMERGENCY_KIND = {"sos": "other", "fall": "fall", "smoke": "other"}
EMERGENCY_SERVICE = "elderly_emergency"
# Case states in which later alerts of the device still collapse into the case.
OPEN_CASE_STATES = frozenset({"unrouted", "dispatched", "accepted", "in_progress"})
# Nobody has signed for the case yet: the escalation ladder goes on.
UNSIGNED_STATES = frozenset({"unrouted", "dispatched"})


def rule_for(alert_type: str) -> str:
    """urgent (open a case), checkup (a visit due today) or maintenance (the station's list)."""
    return RULES[alert_type]


def fingerprint(data: dict[str, Any]) -> str:
    """A hash of what the vendor sent, so a reused vendor alert id with other content is told apart."""
    keep = {k: data.get(k) for k in ("type", "device_id", "occurred_at", "details")}
    raw = json.dumps(keep, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def on_duty(entries: Iterable[RotaEntry], at: datetime) -> list[RotaEntry]:
    """Rota entries covering ``at``, earliest start first (ties by staff id, so the order is stable)."""
    return sorted((e for e in entries if e.starts_at <= at < e.ends_at), key=lambda e: (e.starts_at, e.staff_id))


def step_due_at(rule: CountyRule, received_at: datetime, level: int) -> datetime | None:
    """When step ``level`` (0-based) of the county's ladder fires, or None past the last step."""
    if level >= len(rule.escalation):
        return None
    return received_at + timedelta(minutes=rule.escalation[level].after_minutes)


def emergency_texts(alert_type: str, device: Device, details: dict[str, Any]) -> tuple[str, str]:
    """(emergency_type answer, details text) of the 紧急求助 case an urgent alert opens."""
    zh, en = ALERT_TYPE_NAMES[alert_type]
    where = f"，安装位置：{device.location_note}" if device.location_note else ""
    extra = str(details.get("message") or "")
    text = f"设备报警（{zh} {en}）：设备 {device.vendor_device_id}{where}。{extra}".strip()
    return EMERGENCY_KIND[alert_type], text[:2000]


def summary(alert: Alert, *, level_to: str | None = None) -> tuple[str, str]:
    """(zh, en) one-line text of an alert for inboxes and SMS."""
    zh, en = ALERT_TYPE_NAMES[alert.type]
    if level_to is None:
        device = alert.vendor_device_id
        return f"{zh}：设备 {device}，请立即签收处理", f"{en}: device {device}, sign for it now"
    who_zh = {"station_head": "站长", "county": "县级民政"}.get(level_to, level_to)
    return (
        f"{zh}：设备 {alert.vendor_device_id}，无人签收，已升级至{who_zh}",
        f"{en}: device {alert.vendor_device_id}, nobody signed for it; escalated to {level_to}",
    )
