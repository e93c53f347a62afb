"""The audit log: one append-only entry per person read, found by actor and by target."""

from __future__ import annotations

from datetime import UTC, datetime

from service.audit.repository import AuditRepository
from service.common.context import Context
from tests.factories import make_elder, make_staff

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def test_each_target_gets_its_own_entry_keyed_for_the_register(ctx: Context) -> None:
    worker = await make_staff(ctx)
    elders = [await make_elder(ctx), await make_elder(ctx)]
    repo = AuditRepository(ctx.db)
    await repo.record(
        at=T0,
        actor_subject=worker.id,
        actor_role=worker.role,
        action="elder.read",
        target_kind="elder",
        target_ids=[e.id for e in elders],
        fields=["id_card"],
        keyed_as="elder_id",
    )
    await repo.record(  # a read of nobody leaves no trace
        at=T0,
        actor_subject=worker.id,
        actor_role=worker.role,
        action="elder.read",
        target_kind="elder",
        target_ids=[],
        fields=["id_card"],
    )
    entries = [d async for d in repo.col.find({"actor.subject": worker.id}).sort("target.id", 1)]
    assert [d["target"] for d in entries] == [{"kind": "elder", "id": i} for i in sorted(e.id for e in elders)]
    assert all(d["elder_id"] == d["target"]["id"] and d["at"] == T0 for d in entries)
    assert all(d["actor"] == {"subject": worker.id, "role": "worker"} and d["fields"] == ["id_card"] for d in entries)
    assert len({d["_id"] for d in entries}) == 2
