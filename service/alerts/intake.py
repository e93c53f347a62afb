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

import contextlib
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from config.county_rules import load_county_rules
from service.alerts import rules
from service.alerts.access import require_vendor, staff_scope
from service.alerts.models import (
    ALERT_TYPES,
    CASE_OPENED,
    CHECKUP,
    CHECKUP_DUE,
    COLLAPSED,
    FAILED,
    MAINTENANCE_LISTED,
    REFUSED,
    URGENT,
    Alert,
    Device,
    Recipient,
)
from service.alerts.repository import AlertsRepository, DevicesRepository, MaintenanceRepository
from service.alerts.rota import first_responders
from service.cases import queries as cases
from service.cases import reads as case_reads
from service.cases import submit as case_submit
from service.cases.models import CaseEvent
from service.common.context import Context
from service.common.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from service.common.models import SYSTEM, Page, Principal
from service.visits import elders
from service.visits import records as visits

log = logging.getLogger("huimin.alerts")

RECEIVED = "alert.received"
ESCALATED = "alert.escalated"
# An incident whose first alert has not stored its case this long after claiming it was
# left half-way by a stopped process: the next alert takes it over.
STALE_CLAIM = timedelta(seconds=60)
MAX_PAGE = 100
NO_ADDRESS = "地址未登记 (no address on the register)"


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
        "_id": alerts.new_id(),
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
        return await _urgent(ctx, principal, stored, device), True
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


# ---------------------------------------------------------------- urgent: SOS, fall, smoke


async def _case_status(ctx: Context, case_id: str) -> str | None:
    try:
        case = await cases.get_case(ctx=ctx, principal=SYSTEM, case_id=case_id)
    except NotFoundError:
        return None
    return str(case["status"])


async def _urgent(ctx: Context, principal: Principal, alert: Alert, device: Device) -> Alert:
    devices = DevicesRepository(ctx.db)
    for _ in range(4):
        now = ctx.now()
        if await devices.claim_incident(device.id, alert.id, now):
            return await _open_case(ctx, principal, alert, device)
        current = (await devices.get(device.id)).open_incident
        if current is None:
            continue
        if current.case_id is None:
            if now - current.opened_at < STALE_CLAIM:
                return await _collapse(ctx, alert, into=current.alert_id, case_id=None)
            await devices.release_incident(device.id, current.alert_id)
            continue
        if await _case_status(ctx, current.case_id) in rules.OPEN_CASE_STATES:
            return await _collapse(ctx, alert, into=current.alert_id, case_id=current.case_id)
        await devices.release_incident(device.id, current.alert_id)  # that case is over: a new one opens
    raise ConflictError("device_busy", "Alerts of this device are arriving faster than they can be settled; retry.")


async def _collapse(ctx: Context, alert: Alert, *, into: str, case_id: str | None) -> Alert:
    repo = AlertsRepository(ctx.db)
    await repo.add_repeat(into, alert.received_at)
    return await repo.settle(alert, {"outcome": COLLAPSED, "collapsed_into": into, "case_id": case_id})


def _case_data(alert: Alert, device: Device, elder: Any) -> dict[str, Any]:
    kind, text = rules.emergency_texts(alert.type, device, alert.details)
    phone = elder.phone or next((c.get("phone") for c in elder.emergency_contacts if c.get("phone")), None)
    data: dict[str, Any] = {
        "service_code": rules.EMERGENCY_SERVICE,
        "answers": {"emergency_type": kind, "details": text},
        "description": text,
        "division_code": elder.township,
        "address": elder.address or device.location_note or NO_ADDRESS,
        "contact": {"name": elder.name, "phone": phone} if phone else None,
        "served_person": {"name": elder.name, "relation": "本人 self", "phone": elder.phone},
        "anonymous": False,
        "photos": [],
        "urgent": True,
        "source": {
            "channel": "device",
            "alert_id": alert.id,
            "alert_type": alert.type,
            "device_id": device.id,
            "elder_id": elder.id,
        },
    }
    if elder.location:
        lon, lat = elder.location["coordinates"]
        data["location"] = {"lon": lon, "lat": lat, "coord_system": "wgs84"}
    return data


async def _open_case(ctx: Context, principal: Principal, alert: Alert, device: Device) -> Alert:
    """Open the urgent case of the device's new incident, tell the on-duty worker, start the ladder."""
    alerts, devices = AlertsRepository(ctx.db), DevicesRepository(ctx.db)
    try:
        elder = await elders.load_visible(ctx=ctx, principal=SYSTEM, elder_id=device.elder_id)
        case = await case_submit.submit_case(ctx=ctx, principal=principal, data=_case_data(alert, device, elder))
    except DomainError as exc:
        await devices.release_incident(device.id, alert.id)
        await alerts.set(alert.id, {"outcome": FAILED, "refusal": {"code": exc.code, "detail": exc.detail}})
        log.error("urgent alert %s could not open a case: %s", alert.id, exc.code)
        raise
    await devices.set_incident_case(device.id, alert.id, case["id"])
    rule = load_county_rules(ctx.settings.county_rules_file).for_county(device.county_code)
    first_step = rules.step_due_at(rule, alert.received_at, 0)
    station_id = case.get("station_id") or device.station_id
    responders = await first_responders(ctx=ctx, station_id=station_id, at=ctx.now())
    alert = await alerts.set(
        alert.id,
        {
            "outcome": CASE_OPENED,
            "case_id": case["id"],
            "station_id": station_id,
            "escalation": {
                "level": 0,
                "next_at": first_step,
                "done": first_step is None,
                "reason": None if first_step else "no_steps",
                "history": [],
            },
            "notified": [r.as_data() for r in responders],
            "announced": False,
        },
    )
    await announce(ctx=ctx, alert=alert, case=case, recipients=responders)
    return dataclasses.replace(alert, announced=True)


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


# ---------------------------------------------------------------- events


def alert_event(
    alert: Alert,
    *,
    event_type: str,
    seq: int,
    case: dict[str, Any] | None,
    recipients: list[Recipient],
    now: datetime,
    extra: dict[str, Any] | None = None,
    level_to: str | None = None,
) -> CaseEvent:
    """The outbox event of an alert (keyed by its case, or ``alert:<id>`` when it opened none)."""
    zh, en = rules.summary(alert, level_to=level_to)
    return CaseEvent(
        type=event_type,
        case_id=alert.case_id or f"alert:{alert.id}",
        seq=seq,
        actor_subject=alert.client_id if event_type == RECEIVED else "system",
        actor_role="client" if event_type == RECEIVED else "system",
        time=now,
        case_number=(case or {}).get("number"),
        station_id=alert.station_id,
        division=(case or {}).get("division") or alert.township,
        data={
            "alert_id": alert.id,
            "vendor_alert_id": alert.vendor_alert_id,
            "alert_type": alert.type,
            "device_id": alert.vendor_device_id,
            "outcome": alert.outcome,
            "urgent": rules.rule_for(alert.type) == URGENT,
            "summary_zh": zh,
            "summary_en": en,
            # Staff ids and on-call phones: for notifications only, never sent to webhooks.
            "notify_staff": [r.as_data() for r in recipients],
            **(extra or {}),
        },
    )


async def announce(*, ctx: Context, alert: Alert, case: dict[str, Any] | None, recipients: list[Recipient]) -> None:
    """Write ``alert.received`` (once: the events log keys it), then mark the alert announced."""
    event = alert_event(alert, event_type=RECEIVED, seq=1, case=case, recipients=recipients, now=ctx.now())
    with contextlib.suppress(ConflictError):  # written before a process stopped; the log keeps one
        await case_reads.append_event(ctx=ctx, event=event)
    await AlertsRepository(ctx.db).settle(alert, {"announced": True})


# ---------------------------------------------------------------- reading


async def list_alerts(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    outcome: str | None = None,
    type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Alert]:
    """Alerts newest first: a vendor's client sees its own (refused ones too), staff their station or division."""
    if principal.is_client:
        require_vendor(principal)
        query: dict[str, Any] = {"client_id": principal.subject}
    else:
        query = {**staff_scope(principal), "outcome": {"$ne": REFUSED}}
        if station:
            if query.get("station_id", station) != station:
                return Page(items=[], next_cursor=None)
            query["station_id"] = station
    if outcome:
        query["outcome"] = outcome
    if type:
        query["type"] = type
    limit = max(1, min(limit, MAX_PAGE))
    items = await AlertsRepository(ctx.db).page(query, before=cursor, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1].id if more and items else None)


async def get_alert(*, ctx: Context, principal: Principal, alert_id: str) -> Alert:
    """One alert, if the caller reported it or may see its station."""
    if principal.is_client:
        require_vendor(principal)
    else:
        scope = staff_scope(principal)
    try:
        alert: Alert | None = await AlertsRepository(ctx.db).get(alert_id)
    except NotFoundError:
        alert = None
    if alert is not None and principal.is_client:
        visible = alert.client_id == principal.subject
    else:
        visible = (
            alert is not None
            and alert.outcome != REFUSED
            and all(_matches(alert, key, value) for key, value in scope.items())
        )
    if alert is None or not visible:
        raise NotFoundError("alert_not_found", f"There is no alert {alert_id!r}.")
    return alert


def _matches(alert: Alert, key: str, value: Any) -> bool:
    if key == "station_id":
        return alert.station_id == value
    if key == "township":
        return alert.township is not None and value["$gte"] <= alert.township < value["$lt"]
    return True
