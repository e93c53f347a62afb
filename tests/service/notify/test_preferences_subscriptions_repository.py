"""Notification preferences (one per person) and WeChat subscription grants (spent at most once)."""

from __future__ import annotations

from datetime import UTC, datetime

from service.common.context import Context
from service.notify.models import Preferences
from service.notify.repository.preferences import PreferencesRepository
from service.notify.repository.subscriptions import SubscriptionsRepository
from tests.factories import make_staff, make_wechat_resident

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def test_preferences_round_trip_dotted_event_types_and_replace_whole(ctx: Context) -> None:
    worker, other = await make_staff(ctx), await make_staff(ctx)
    repo = PreferencesRepository(ctx.db)
    assert await repo.get(worker.id) is None
    await repo.put(
        Preferences(worker.id, {"case.accepted": {"sms": False, "wechat": True}}, quiet_hours="21:00-08:00"), now=T0
    )
    got = await repo.get(worker.id)
    assert got == Preferences(worker.id, {"case.accepted": {"sms": False, "wechat": True}}, "21:00-08:00", T0)
    await repo.put(Preferences(worker.id, {"case.closed": {"sms": True}}, quiet_hours=None), now=T0)
    replaced = await repo.get(worker.id)
    assert replaced is not None and replaced.events == {"case.closed": {"sms": True}} and replaced.quiet_hours is None
    many = await repo.get_many([worker.id, other.id])
    assert list(many) == [worker.id] and many[worker.id] == replaced


async def test_a_grant_is_spent_once_and_a_ban_blocks_until_the_next_accept(ctx: Context) -> None:
    resident = (await make_wechat_resident(ctx)).id
    repo = SubscriptionsRepository(ctx.db)
    assert not await repo.spend(resident_id=resident, template_key="accepted", now=T0)  # never answered
    sub = await repo.record(resident_id=resident, template_key="accepted", template_id="t1", result="accept", now=T0)
    assert (sub.grants, sub.banned, sub.results) == (1, False, {"accept": 1})
    assert await repo.spend(resident_id=resident, template_key="accepted", now=T0)
    assert not await repo.spend(resident_id=resident, template_key="accepted", now=T0)  # none left
    await repo.refund(resident_id=resident, template_key="accepted")
    assert await repo.spend(resident_id=resident, template_key="accepted", now=T0)  # the refund is usable
    await repo.record(resident_id=resident, template_key="accepted", template_id="t1", result="accept", now=T0)
    banned = await repo.record(resident_id=resident, template_key="accepted", template_id="t1", result="ban", now=T0)
    assert banned.banned and banned.grants == 1
    assert not await repo.spend(resident_id=resident, template_key="accepted", now=T0)
    lifted = await repo.record(resident_id=resident, template_key="accepted", template_id="t1", result="accept", now=T0)
    assert not lifted.banned and lifted.grants == 2
    await repo.exhaust(resident_id=resident, template_key="accepted", now=T0)
    assert not await repo.spend(resident_id=resident, template_key="accepted", now=T0)
    await repo.record(resident_id=resident, template_key="closed", template_id="t2", result="reject", now=T0)
    assert [(s.template_key, s.grants) for s in await repo.list_for(resident)] == [("accepted", 0), ("closed", 0)]
