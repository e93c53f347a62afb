"""Urgent alerts (SOS, fall, smoke): one urgent 紧急求助 case per incident at the person's station.

The first alert of an incident opens the case and tells the on-duty worker at once; later
alerts of the same device collapse into that case while it is open. An incident left half-way
by a stopped process is taken over by the next alert.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from config.county_rules import load_county_rules
from service.alerts import rules
from service.alerts.events import announce, log
from service.alerts.models import (
    CASE_OPENED,
    COLLAPSED,
    FAILED,
    Alert,
    Device,
)
from service.alerts.repository import AlertsRepository, DevicesRepository
from service.alerts.rota import first_responders
from service.cases import queries as cases
from service.cases import submit as case_submit
from service.cases.inputs import CaseSubmission, LocationInput
from service.common.context import Context
from service.common.errors import ConflictError, DomainError, NotFoundError
from service.common.models import SYSTEM, Principal
from service.visits import elders

# An incident whose first alert has not stored its case this long after claiming it was
# left half-way by a stopped process: the next alert takes it over.
STALE_CLAIM = timedelta(seconds=60)


NO_ADDRESS = "地址未登记 (no address on the register)"


# ---------------------------------------------------------------- urgent: SOS, fall, smoke


async def _case_status(ctx: Context, case_id: str) -> str | None:
    try:
        case = await cases.get_case(ctx=ctx, principal=SYSTEM, case_id=case_id)
    except NotFoundError:
        return None
    return str(case["status"])


async def handle_urgent(ctx: Context, principal: Principal, alert: Alert, device: Device) -> Alert:
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


def _case_data(alert: Alert, device: Device, elder: Any) -> CaseSubmission:
    kind, text = rules.emergency_texts(alert.type, device, alert.details)
    phone = elder.phone or next((c.get("phone") for c in elder.emergency_contacts if c.get("phone")), None)
    location: LocationInput | None = None
    if elder.location:
        lon, lat = elder.location["coordinates"]
        location = {"lon": lon, "lat": lat, "coord_system": "wgs84"}
    return CaseSubmission(
        service_code=rules.EMERGENCY_SERVICE,
        answers={"emergency_type": kind, "details": text},
        description=text,
        location=location,
        division_code=elder.township,
        address=elder.address or device.location_note or NO_ADDRESS,
        contact={"name": elder.name, "phone": phone} if phone else None,
        served_person={"name": elder.name, "relation": "本人 self", "phone": elder.phone},
        urgent=True,
        source={
            "channel": "device",
            "alert_id": alert.id,
            "alert_type": alert.type,
            "device_id": device.id,
            "elder_id": elder.id,
        },
    )


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
