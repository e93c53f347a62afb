"""What other areas may read of cases (open311, uploads, visit referrals): the cases area's read port."""

from __future__ import annotations

from typing import Any

from service.cases.models import CaseEvent
from service.cases.repository.cases import CasesRepository
from service.cases.repository.events import EventsRepository
from service.common.context import Context


async def cases_with_photo(*, ctx: Context, upload_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Cases with an upload among their photos or their resolution's (who may see them is the caller's call)."""
    return await CasesRepository(ctx.db).with_photo(upload_id, limit)


async def case_from_source(*, ctx: Context, key: str, value: str) -> dict[str, Any] | None:
    """The case created from another record (e.g. a visit referral), if one exists."""
    return await CasesRepository(ctx.db).find_by_source(key, value)


async def find_cases(
    *, ctx: Context, query: dict[str, Any], sort: list[tuple[str, int]], limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` whole case documents matching ``query``, in ``sort`` order."""
    return await CasesRepository(ctx.db).find(query, sort=sort, limit=limit)


async def append_event(*, ctx: Context, event: CaseEvent) -> None:
    """Write one event to the outbox on its own (ConflictError when it was written before)."""
    await EventsRepository(ctx.db).append(event)
