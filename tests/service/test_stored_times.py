"""What a create returns carries the times the store keeps (to the millisecond), so the record a
create answers with equals the one a later read gives, for every area that stamps ``ctx.now()``."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from schemas.alerts import AlertCreateSchema
from schemas.workforce import PersonCreateSchema
from service.alerts import intake
from service.alerts import queries as alert_queries
from service.alerts.devices import get_device
from service.common.context import Context
from service.common.models import SYSTEM
from service.identity.clients import get_client
from service.identity.staff import get_staff
from service.visits.elders import get_elder
from service.volunteers.activities import get_activity
from service.volunteers.registration import get_volunteer
from service.webhooks.subscriptions import get_subscription
from service.workforce import register, training
from service.workforce.inputs import ProgrammeInput
from tests.factories import (
    alert_body,
    id_card,
    make_activity,
    make_device,
    make_elder,
    make_staff,
    make_station,
    make_vendor,
    make_volunteer,
    make_webhook,
    principal_of,
    worker_row,
)


def times(value: Any, path: str = "") -> dict[str, datetime]:
    """Every date-time inside a record, by its path."""
    if isinstance(value, datetime):
        return {path: value}
    found: dict[str, datetime] = {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items: Any = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return found
    for key, item in items:
        found.update(times(item, f"{path}.{key}"))
    return found


def assert_same_times(created: Any, read: Any) -> None:
    made, stored = times(created), times(read)
    assert made, "the record has no times"
    assert made == stored


async def test_created_records_carry_the_times_a_later_read_gives(ctx: Context) -> None:
    station = await make_station(ctx)
    admin = await make_staff(ctx, role="admin")
    as_admin = principal_of(admin)

    worker = await make_staff(ctx, station_id=station.id)
    assert_same_times(worker, await get_staff(ctx=ctx, principal=as_admin, staff_id=worker.id))

    vendor = await make_vendor(ctx, scopes=("alerts:write", "webhooks:manage"))
    assert_same_times(vendor.client, await get_client(ctx=ctx, principal=as_admin, client_id=vendor.client.client_id))

    webhook = await make_webhook(ctx, vendor)
    read = await get_subscription(ctx=ctx, principal=principal_of(vendor), subscription_id=webhook.subscription.id)
    assert_same_times(webhook.subscription, read)

    elder = await make_elder(ctx)
    assert_same_times(elder, await get_elder(ctx=ctx, principal=as_admin, elder_id=elder.id))

    device = await make_device(ctx, elder, vendor)
    assert_same_times(device, await get_device(ctx=ctx, principal=as_admin, device_id=device.id))
    data = AlertCreateSchema().load(alert_body(device))
    alert, created = await intake.receive_alert(ctx=ctx, principal=principal_of(vendor), data=data)
    assert created
    assert_same_times(alert, await alert_queries.get_alert(ctx=ctx, principal=as_admin, alert_id=alert.id))

    resident, volunteer = await make_volunteer(ctx)
    read_volunteer = await get_volunteer(ctx=ctx, principal=principal_of(resident), volunteer_id=volunteer.id)
    assert_same_times(volunteer, read_volunteer)
    activity = await make_activity(ctx, worker)
    assert_same_times(activity, await get_activity(ctx=ctx, principal=as_admin, activity_id=activity.id))

    person = await register.create_person(
        ctx=ctx, principal=SYSTEM, data=PersonCreateSchema().load(worker_row(1, id_card=id_card("19900101", 1)))
    )
    assert_same_times(person, await register.get_person(ctx=ctx, principal=SYSTEM, person_id=person.id))
    programme = await training.create_programme(
        ctx=ctx, principal=SYSTEM, data=ProgrammeInput(name="社工实务培训班", category="certified", tier="beginner")
    )
    assert_same_times(programme, await training.get_programme(ctx=ctx, principal=SYSTEM, programme_id=programme.id))
