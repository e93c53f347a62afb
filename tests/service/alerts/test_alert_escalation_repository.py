"""Alert escalation queries: due steps soonest first and only once due, each step taken once (by
one of several sweepers), a stopped ladder never due again, alerts whose event is still owed,
and the alert list newest first with pages that continue where they stopped.

Urgent alerts come from vendors through the alerts service (each opens an urgent case and starts
its county's ladder: 5 and 15 minutes for 屯溪区 in config/county_rules.toml); the repository is
then read and driven directly.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from service.alerts.escalation import escalate_alert
from service.alerts.intake import receive_alert
from service.alerts.models import Alert, AlertScope, Device
from service.alerts.repository import AlertsRepository
from service.common.context import Context
from service.common.models import utcnow
from service.identity.accounts import IssuedClient
from tests.factories import (
    alert_body,
    make_device,
    make_elder,
    make_staff,
    make_station,
    make_vendor,
    principal_of_client,
)

MINUTE = timedelta(minutes=1)
FIRST_STEP = 5 * MINUTE  # 屯溪区's ladder: the station's heads after 5 minutes, the county after 15
SECOND_STEP = 15 * MINUTE


class World:
    """A station with its head, a person on the register, a vendor and ``n`` of its devices."""

    vendor: IssuedClient
    devices: list[Device]
    station_id: str


async def world(ctx: Context, n: int = 1) -> World:
    w = World()
    station = await make_station(ctx)
    w.station_id = station.id
    await make_staff(ctx, role="station_head", station_id=station.id)
    elder = await make_elder(ctx)
    w.vendor = await make_vendor(ctx)
    w.devices = [await make_device(ctx, elder, w.vendor) for _ in range(n)]
    return w


async def alert_at(ctx: Context, w: World, device: Device, at: datetime, type: str = "sos") -> Alert:
    """The vendor reports an alert of ``device`` received at ``at``."""
    ctx.clock = lambda: at
    alert, created = await receive_alert(
        ctx=ctx, principal=principal_of_client(w.vendor), data=alert_body(device, type=type)
    )
    assert created
    return alert


def start() -> datetime:
    return utcnow().replace(microsecond=0)


async def test_due_escalations_come_soonest_first_and_only_once_due(ctx: Context) -> None:
    t0 = start()
    w = await world(ctx, 3)
    # Received in the opposite order of their ids, so the order is the due time's.
    late = await alert_at(ctx, w, w.devices[0], t0 + 2 * MINUTE)
    middle = await alert_at(ctx, w, w.devices[1], t0 + MINUTE)
    early = await alert_at(ctx, w, w.devices[2], t0)
    battery = await alert_at(ctx, w, w.devices[2], t0, type="low_battery")
    repo = AlertsRepository(ctx.db)
    assert await repo.get(early.id) == early
    assert early.escalation is not None and (early.escalation.level, early.escalation.next_at) == (0, t0 + FIRST_STEP)
    assert battery.escalation is None
    assert await repo.escalation_due(t0 + FIRST_STEP - timedelta(seconds=1), 10) == []
    assert [a.id for a in await repo.escalation_due(t0 + FIRST_STEP, 10)] == [early.id]
    assert [a.id for a in await repo.escalation_due(t0 + FIRST_STEP + MINUTE, 10)] == [early.id, middle.id]
    assert [a.id for a in await repo.escalation_due(t0 + SECOND_STEP, 10)] == [early.id, middle.id, late.id]
    assert [a.id for a in await repo.escalation_due(t0 + SECOND_STEP, 2)] == [early.id, middle.id]


async def test_an_escalation_step_is_taken_once_and_a_stale_level_is_refused(ctx: Context) -> None:
    t0 = start()
    w = await world(ctx)
    alert = await alert_at(ctx, w, w.devices[0], t0)
    repo = AlertsRepository(ctx.db)
    step_at = t0 + FIRST_STEP

    def step(n: int) -> dict[str, object]:
        return {"level": 1, "to": "station_head", "at": step_at, "staff_ids": [], "sweeper": n}

    won = await asyncio.gather(
        *(
            repo.advance(
                alert.id,
                from_level=0,
                changes={"escalation.level": 1, "escalation.next_at": t0 + SECOND_STEP},
                entry=step(n),
            )
            for n in range(4)
        )
    )
    assert sorted(won) == [False, False, False, True]
    after = await repo.get(alert.id)
    assert after.escalation is not None and (after.escalation.level, after.escalation.next_at) == (1, t0 + SECOND_STEP)
    assert after.escalation.history == (step(won.index(True)),)
    assert not await repo.advance(alert.id, from_level=0, changes={"escalation.level": 9}, entry=step(9))
    assert await repo.escalation_due(step_at + MINUTE, 10) == []  # the next step is not due yet
    assert [a.id for a in await repo.escalation_due(t0 + SECOND_STEP, 10)] == [alert.id]
    stop = {"escalation.done": True, "escalation.next_at": None, "escalation.reason": "ladder_complete"}
    assert await repo.advance(alert.id, from_level=1, changes=stop, entry={"level": 1, "stopped": "ladder_complete"})
    assert not await repo.advance(alert.id, from_level=1, changes={"escalation.level": 2}, entry=step(5))  # done
    assert await repo.escalation_due(t0 + 24 * 60 * MINUTE, 10) == []
    final = (await repo.get(alert.id)).escalation
    assert final is not None and (final.level, final.done, final.reason, len(final.history)) == (
        1,
        True,
        "ladder_complete",
        2,
    )


async def test_sweepers_at_the_same_moment_escalate_a_step_once(ctx: Context) -> None:
    t0 = start()
    w = await world(ctx)
    alert = await alert_at(ctx, w, w.devices[0], t0)
    ctx.clock = lambda: t0 + FIRST_STEP
    outcomes = await asyncio.gather(*(escalate_alert(ctx=ctx, alert=alert) for _ in range(3)))
    assert sorted(outcomes) == ["escalated", "taken", "taken"]
    escalation = (await AlertsRepository(ctx.db).get(alert.id)).escalation
    assert escalation is not None and escalation.level == 1 and len(escalation.history) == 1


async def test_alerts_whose_event_is_owed_are_found_once_older_than_the_grace(ctx: Context) -> None:
    t0 = start()
    w = await world(ctx, 3)
    alerts = [await alert_at(ctx, w, d, t0 + n * MINUTE) for n, d in enumerate(w.devices)]
    repo = AlertsRepository(ctx.db)
    assert await repo.unannounced(t0 + 60 * MINUTE, 10) == []  # intake wrote every event
    for a in alerts[:2]:
        await repo.set(a.id, {"announced": False})  # as a process stopped before writing the event leaves it
    assert await repo.unannounced(t0, 10) == []  # received at t0: not older than t0
    assert [a.id for a in await repo.unannounced(t0 + MINUTE, 10)] == [alerts[0].id]
    assert {a.id for a in await repo.unannounced(t0 + 60 * MINUTE, 10)} == {alerts[0].id, alerts[1].id}
    assert len(await repo.unannounced(t0 + 60 * MINUTE, 1)) == 1


async def test_alerts_page_newest_first_and_a_cursor_continues_where_it_stopped(ctx: Context) -> None:
    t0 = start()
    w = await world(ctx, 2)
    other_vendor = await make_vendor(ctx)
    theirs = await make_device(ctx, await make_elder(ctx), other_vendor)
    made = [
        await alert_at(ctx, w, w.devices[n % 2], t0 + n * MINUTE, type="low_battery" if n % 2 else "offline")
        for n in range(5)
    ]
    ctx.clock = lambda: t0 + 10 * MINUTE
    foreign, _ = await receive_alert(
        ctx=ctx, principal=principal_of_client(other_vendor), data=alert_body(theirs, type="low_battery")
    )
    repo = AlertsRepository(ctx.db)
    client_id = w.vendor.client.client_id
    pages: list[list[str]] = []
    before = None
    while True:
        page = await repo.page(AlertScope(), client_id=client_id, before=before, limit=2, now=ctx.now())
        if not page:
            break
        pages.append([a.id for a in page])
        before = page[-1].id
    assert pages == [[made[4].id, made[3].id], [made[2].id, made[1].id], [made[0].id]]
    assert [a.id for a in await repo.page(AlertScope(), type="low_battery", before=None, limit=10, now=ctx.now())] == [
        foreign.id,
        made[3].id,
        made[1].id,
    ]
    station = AlertScope(station_id=w.station_id)
    assert [a.id for a in await repo.page(station, before=made[1].id, limit=10, now=ctx.now())] == [made[0].id]
