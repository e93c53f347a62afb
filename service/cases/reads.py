"""What other areas may read of cases and their events: the cases area's read port.

Open311, uploads and visit referrals read cases here; notifications and webhook delivery
read the ``events`` outbox here, forward in ``_id`` or creation order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from service.cases.models import Actor, Case, CaseEvent, CaseNotice, CaseSearch, Parties
from service.cases.repository.cases import CasesRepository
from service.cases.repository.events import EventsRepository
from service.common.context import Context


async def cases_with_photo(*, ctx: Context, upload_id: str, limit: int = 20) -> list[Parties]:
    """The parties of cases with an upload among their photos or their resolution's (who may see them is
    the caller's call, with ``access.access_of``)."""
    return await CasesRepository(ctx.db).with_photo(upload_id, limit)


async def case_from_source(*, ctx: Context, key: str, value: str) -> Case | None:
    """The case created from another record (e.g. a visit referral), if one exists."""
    return await CasesRepository(ctx.db).find_by_source(key, value)


async def find_cases(*, ctx: Context, search: CaseSearch) -> list[Case]:
    """The cases one client filed that ``search`` asks for, newest first (history included)."""
    return await CasesRepository(ctx.db).search(search)


async def append_event(*, ctx: Context, event: CaseEvent) -> None:
    """Write one event to the outbox on its own (ConflictError when it was written before)."""
    await EventsRepository(ctx.db).append(event)


async def case_for_notice(*, ctx: Context, case_id: str) -> CaseNotice | None:
    """What notifications read of one case (None when there is no such case)."""
    return await CasesRepository(ctx.db).for_notice(case_id)


async def case_creators(*, ctx: Context, case_ids: Iterable[str]) -> dict[str, Actor]:
    """Who created each of these cases that records it, by case id."""
    return await CasesRepository(ctx.db).creators(case_ids)


async def events_after(*, ctx: Context, after_id: str, limit: int) -> list[CaseEvent]:
    """Events with an ``_id`` above ``after_id``, in ``_id`` order."""
    return await EventsRepository(ctx.db).after(after_id, limit=limit)


async def events_by_ids(*, ctx: Context, event_ids: Iterable[str]) -> dict[str, CaseEvent]:
    """Events by id (ids with no event are left out)."""
    return await EventsRepository(ctx.db).by_ids(event_ids)


async def events_created_since(
    *, ctx: Context, since: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[CaseEvent]:
    """Events written at or after ``since``, in (created_at, _id) order, past ``after``."""
    return await EventsRepository(ctx.db).created_since(since=since, after=after, limit=limit)
