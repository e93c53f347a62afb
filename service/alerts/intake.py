"""Alert intake from device vendors: one record per vendor alert id, and each type's rule applied.

SOS, fall and smoke open an urgent 紧急求助 case at the person's station through
``service.cases.submit_case`` and tell the on-duty worker at once (``alert.received``,
an urgent event: no SMS quiet hours); later alerts of the same device collapse into that
case while it is open. No-activity puts a check-up due today on the due list through
``service.visits.request_checkup``. Low battery and offline go to the station's
maintenance list. An alert for a device not on the register is refused (422) and kept,
so the vendor can list what was refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.alerts import rules
from service.alerts.access import require_vendor
from service.alerts.events import announce, log
from service.alerts.models import (
    ALERT_TYPES,
    CHECKUP,
    CHECKUP_DUE,
    COLLAPSED,
    MAINTENANCE_LISTED,
    REFUSED,
    URGENT,
    Alert,
    Device,
)
from service.alerts.repository import AlertsRepository, DevicesRepository, MaintenanceRepository
from service.alerts.urgent import handle_urgent
from service.common.context import Context
from service.common.errors import ConflictError, ValidationFailedError
from service.common.models import SYSTEM, Principal
from service.visits import records as visits


def _refusal(code: str, vendor_device_id: str) -> str:
    if code == "device_inactive":
        return (
            f"设备 {vendor_device_id} 已停用，报警未受理。Device {vendor_device_id} is taken off the register; "
            "the alert was recorded but not acted on."
        )
    return (
        f"设备 {vendor_device_id} 未登记，报警未受理，请联系社工站登记设备。Device {vendor_device_id} is not on the "
        "register for your client: the alert was recorded as refused and not acted on. Ask the station to "
        "register the device."
    )


def _raise_refused(alert: Alert) -> None:
    refusal = alert.refusal or {}
    raise ValidationFailedError(
        refusal.get("code", "device_not_registered"),
        refusal.get("detail", "The device is not on the register."),
        errors={"device_id": [refusal.get("detail", "Not on the register.")]},
        alert_id=alert.id,
    )


async def receive_alert(*, ctx: Context, principal: Principal, data: dict[str, Any]) -> tuple[Alert, bool]:
    """Take one alert from a vendor's client and apply its type's rule; (alert, newly received).

    The vendor's alert id makes it idempotent: the same id and content answers the first
    record; the same id with other content is refused (422 ``alert_id_reused``).
    """
    require_vendor(principal)
    if data["type"] not in ALERT_TYPES:
        raise ValidationFailedError(
            "unknown_alert_type", "Unknown alert type.", errors={"type": [f"Use one of {', '.join(ALERT_TYPES)}."]}
        )
    alerts = AlertsRepository(ctx.db)
    print_ = rules.fingerprint(data)
    now = ctx.now()
    device = await DevicesRepository(ctx.db).find_by_vendor(principal.subject, data["device_id"])
    doc: dict[str, Any] = {
        "_id": alerts.new_id(now),
        "client_id": principal.subject,
        "vendor_alert_id": data["alert_id"],
        "type": data["type"],
        "vendor_device_id": data["device_id"],
        "occurred_at": data["occurred_at"],
        "received_at": now,
        "details": data.get("details") or {},
        "fingerprint": print_,
        "outcome": "received",
        "device_id": device.id if device else None,
        "elder_id": device.elder_id if device else None,
        "station_id": device.station_id if device else None,
        "township": device.township if device else None,
        "county_code": device.county_code if device else None,
        "case_id": None,
        "collapsed_into": None,
        "repeats": 0,
        "escalation": None,
        "announced": True,  # set False only while an event is owed
        "notified": [],
    }
    if device is None or not device.active:
        code = "device_inactive" if device else "device_not_registered"
        doc.update({"outcome": REFUSED, "refusal": {"code": code, "detail": _refusal(code, data["device_id"])}})
    # Insert first: a new alert (the usual case) costs no read; a repeated id fails the unique index.
    stored = await alerts.insert(doc)
    if stored is None:  # the vendor sent this alert id before (or at the same moment): answer the first
        first = await alerts.find_by_vendor(principal.subject, data["alert_id"])
        if first is None:
            raise ConflictError("alert_changed", "The alert is being recorded; send it again.")
        return _replay(first, print_), False
    if stored.outcome == REFUSED:
        log.info("alert refused", extra={"client_id": principal.subject, "code": doc["refusal"]["code"]})
        _raise_refused(stored)
    assert device is not None
    rule = rules.rule_for(stored.type)
    if rule == URGENT:
        return await handle_urgent(ctx, principal, stored, device), True
    if rule == CHECKUP:
        return await _checkup(ctx, stored, device), True
    return await _maintenance(ctx, stored, device), True


def _replay(alert: Alert, print_: str) -> Alert:
    if alert.fingerprint != print_:
        raise ValidationFailedError(
            "alert_id_reused",
            "This alert id was already used for a different alert; give each alert its own id.",
            errors={"alert_id": ["Already used with other content."]},
        )
    if alert.outcome == REFUSED:
        _raise_refused(alert)
    return alert


# ---------------------------------------------------------------- check-up and maintenance


async def _checkup(ctx: Context, alert: Alert, device: Device) -> Alert:
    alerts = AlertsRepository(ctx.db)
    zh, en = rules.ALERT_TYPE_NAMES[alert.type]
    checkup = await visits.request_checkup(
        ctx=ctx,
        principal=SYSTEM,
        elder_id=device.elder_id,
        reason=f"设备报警：{zh}（{device.vendor_device_id}）device alert: {en}",
        source={"channel": "device", "alert_id": alert.id, "device_id": device.id},
    )
    outcome = CHECKUP_DUE if checkup["created"] else COLLAPSED
    changes = {"outcome": outcome, "checkup_id": checkup["id"], "announced": not checkup["created"]}
    alert = await alerts.settle(alert, changes)
    if checkup["created"]:
        await announce(ctx=ctx, alert=alert, case=None, recipients=[])
        alert = dataclasses.replace(alert, announced=True)
    return alert


async def _maintenance(ctx: Context, alert: Alert, device: Device) -> Alert:
    alerts = AlertsRepository(ctx.db)
    item_id, opened = await MaintenanceRepository(ctx.db).open_or_count(
        {
            "station_id": device.station_id,
            "township": device.township,
            "device_id": device.id,
            "vendor_device_id": device.vendor_device_id,
            "elder_id": device.elder_id,
            "kind": alert.type,
        },
        alert.received_at,
    )
    # No event: a flat battery is the maintenance list's business, and the events loop that
    # texts on-duty workers about SOS alerts should not queue behind a county's battery reports.
    return await alerts.settle(
        alert, {"outcome": MAINTENANCE_LISTED if opened else COLLAPSED, "maintenance_id": item_id}
    )
