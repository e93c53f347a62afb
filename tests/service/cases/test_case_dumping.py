"""The compiled case dump (handlers/dumping.py) answers exactly what marshmallow's CaseSchema.dump answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers.dumping import compiled
from schemas.cases import CasePageSchema, CaseSchema
from service.cases import queries as case_queries
from service.catalog import service as catalog
from service.common.context import Context
from service.common.models import utcnow
from tests.factories import act_on, make_case, make_staff, make_station, make_wechat_resident, principal_of


def _same(schema: Any, obj: Any) -> None:
    expected = schema.dump(obj)
    got = compiled(schema)(obj)
    assert got == expected
    assert list(got) == list(expected)  # the same keys in the same order


async def test_compiled_case_dump_equals_marshmallow_for_every_case_shape(ctx: Context) -> None:
    await catalog.seed_catalog(ctx)
    resident = await make_wechat_resident(ctx)
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    supervisor = await make_staff(ctx, role="supervisor")
    plain = await make_case(ctx, resident)
    located = await make_case(ctx, resident, location={"lon": 118.34, "lat": 29.72, "coord_system": "gcj02"})
    accepted = await act_on(ctx, worker, located["id"], "accept")
    scheduled = await act_on(ctx, worker, located["id"], "schedule", scheduled_at=utcnow() + timedelta(days=1))
    await act_on(ctx, worker, plain["id"], "accept")
    resolved = await act_on(ctx, worker, plain["id"], "resolve", result="已上门探访，老人身体健康。")
    seen = [plain, located, accepted, scheduled, resolved]
    for who in (resident, worker, supervisor):
        for case in (plain, located):
            seen.append(await case_queries.get_case(ctx=ctx, principal=principal_of(who), case_id=case["id"]))
    assert {c["status"] for c in seen} >= {"dispatched", "accepted", "resolved"}
    assert any(c.get("location") for c in seen) and any(c.get("scheduled_at") for c in seen)
    schema = CaseSchema()
    for case in seen:
        _same(schema, case)
    for who in (worker, supervisor):
        page = await case_queries.list_cases(ctx=ctx, principal=principal_of(who), query={"limit": 20})
        _same(CasePageSchema(), page)


def test_compiled_dump_leaves_out_missing_keys_and_keeps_none_and_converts_like_marshmallow() -> None:
    schema = CaseSchema()
    odd: dict[str, Any] = {
        "id": 7,  # not a string: marshmallow makes it one
        "version": True,
        "description": None,
        "location": {"type": "Point", "coordinates": [118, 29]},
        "routing": {"method": "manual", "system": {"method": "county", "candidates": [{"distance_km": 3}]}},
        "photos": ("a", "b"),
        "created_at": utcnow(),
        "history": [{"at": utcnow(), "actor": {"role": "worker"}, "from_state": None}],
        "not_in_the_schema": 1,
    }
    _same(schema, odd)
    assert "number" not in compiled(schema)(odd)
