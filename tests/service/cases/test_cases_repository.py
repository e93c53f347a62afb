"""The cases repository's edge: a stored case reads back as a typed ``Case``, filed and changed for real."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from service.cases import queries
from service.cases.access import access_of
from service.cases.models import (
    Actor,
    Case,
    CaseListQuery,
    CaseNotice,
    CaseScope,
    CaseSearch,
    HistoryEntry,
    Overdue,
    Placement,
    Rating,
    parts_of,
)
from service.cases.repository.cases import CasesRepository
from service.cases.views import view
from service.common.context import Context
from service.common.errors import NotFoundError
from service.common.ids import new_id
from service.common.models import utcnow
from tests.factories import (
    TOWNSHIP,
    act_on,
    events_of,
    id_card,
    make_case,
    make_staff,
    make_station,
    make_wechat_resident,
    principal_of,
)

ID_CARD = id_card("19450101", 12, region="341021")


async def _filed(ctx: Context, **body: Any) -> tuple[Case, dict[str, Any], Any, Any]:
    """A case a resident filed at a station, read back; the filing's answer; the resident; a worker there."""
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    resident = await make_wechat_resident(ctx)
    answer = await make_case(ctx, resident, **body)
    return await CasesRepository(ctx.db).get(answer["id"]), answer, resident, worker


async def test_a_filed_case_reads_back_as_a_typed_case(ctx: Context) -> None:
    served = {"name": "王大爷", "relation": "父亲", "phone": "13700001111", "id_card": ID_CARD}
    case, answer, resident, worker = await _filed(ctx, served_person=served)
    assert isinstance(case, Case) and isinstance(case.id, str) and case.id == answer["id"]
    # Built without the dataclass's __init__ (a faster constructor): every field set, the same case.
    assert dataclasses.replace(case) == case and repr(dataclasses.replace(case)) == repr(case)
    assert (case.number, case.version, case.status) == (answer["number"], 1, "dispatched")
    assert case.service.code == "elderly_home_visit" and case.service.clock in ("working", "calendar")
    assert case.placement == Placement(
        station_id=worker.station_id,
        station_code=answer["station_code"],
        station_name=answer["station_name"],
        division=answer["division"],
        county_code=TOWNSHIP[:6],
    )
    assert case.created_by == Actor(resident.id, "resident") and case.owner == resident.id
    assert case.contact is not None and parts_of(case.contact) == {"name": "王芳", "phone": "13912345678"}
    # The ID number is kept encrypted with a lookup hash and a masked copy, never in clear.
    person = case.served_person
    assert person is not None and (person.name, person.relation, person.phone) == ("王大爷", "父亲", "13700001111")
    assert person.id_card_masked == f"{ID_CARD[:4]}**********{ID_CARD[-4:]}"
    assert person.id_card_enc and person.id_card_hash
    assert ID_CARD not in repr(case)
    assert case.overdue == Overdue(sign=False, resolve=False) and case.rating is None
    assert case.sign_due_at < case.resolve_due_at and case.next_due_at == case.sign_due_at
    [created] = await events_of(ctx, case.id)
    [entry] = case.history
    assert isinstance(entry, HistoryEntry)
    assert (entry.event_id, entry.action, entry.actor_subject, entry.to_state) == (
        created.id,
        "submit",
        resident.id,
        "dispatched",
    )
    assert case.ref.id == created.case_id and case.ref.station_id == created.station_id


async def test_the_case_read_back_shows_exactly_what_the_filing_answered(ctx: Context) -> None:
    at = utcnow()
    ctx.clock = lambda: at.replace(microsecond=at.microsecond // 1000 * 1000)  # as stored: milliseconds
    case, answer, resident, _worker = await _filed(ctx, location={"lon": 118.34, "lat": 29.72, "coord_system": "gcj02"})
    who = principal_of(resident)
    assert view(case, who, access_of(who, case.parties), ctx.now()) == answer
    assert case.location is not None and answer["location"]["coordinates"] == [case.location.lon, case.location.lat]


async def test_a_field_set_then_cleared_reads_as_null_and_one_never_set_is_left_out(ctx: Context) -> None:
    case, answer, _resident, worker = await _filed(ctx)
    assert "accepted_at" not in case.fields_set and "accepted_at" not in answer
    await act_on(ctx, worker, case.id, "accept")
    accepted = await CasesRepository(ctx.db).get(case.id)
    assert accepted.accepted_at is not None and accepted.assignee_id == worker.id and accepted.signed_late is False
    returned = await act_on(ctx, worker, case.id, "return", reason="不属本站 not ours")
    stored = await CasesRepository(ctx.db).get(case.id)
    assert stored.accepted_at is None and "accepted_at" in stored.fields_set
    assert returned["accepted_at"] is None and "resolved_at" not in returned
    assert stored.returned_by == (worker.station_id,) and stored.return_count == 1 and stored.version == 3


async def test_a_rated_case_holds_its_rating_and_the_resolution(ctx: Context) -> None:
    case, _answer, resident, worker = await _filed(ctx)
    await act_on(ctx, worker, case.id, "accept")
    await act_on(ctx, worker, case.id, "resolve", result="已上门探访 visited")
    rated = await act_on(ctx, resident, case.id, "rate", rating=5, comment="很满意")
    stored = await CasesRepository(ctx.db).get(case.id)
    assert stored.status == "closed" and stored.result == "已上门探访 visited" and stored.result_photos == ()
    assert stored.rating == Rating(5, "很满意", stored.closed_at) and rated["rating"] == 5
    assert [h.action for h in stored.history] == ["submit", "accept", "resolve", "rate"]


async def test_a_change_applied_to_the_case_read_equals_the_case_read_back(ctx: Context) -> None:
    case, _answer, _resident, _worker = await _filed(ctx)
    repo = CasesRepository(ctx.db)
    read = await repo.get(case.id)
    now = utcnow()  # microseconds, which the server keeps to the millisecond
    entry = HistoryEntry("e1", "urge", "sup", "supervisor", "dispatched", "dispatched", now, "快办", {"n": 1})
    changed = await repo.apply_to_read(
        read,
        fields={"urged_at": now, "overdue.resolve": True, "extension": {"status": "requested", "at": now}},
        increments={"urge_count": 1, "reopen_count": 2},
        history=entry,
    )
    assert changed is not None and changed == await CasesRepository(ctx.db).get(case.id)
    assert (changed.version, changed.urge_count, changed.reopen_count) == (2, 1, 2)
    assert changed.overdue == Overdue(sign=False, resolve=True) and changed.history[-1].note == "快办"
    assert changed.urged_at == now.replace(microsecond=now.microsecond // 1000 * 1000)
    # Read at version 1, the case is at 2 now: nothing is written and None comes back.
    assert await repo.apply_to_read(read, fields={"urged_at": now}) is None
    assert (await repo.get(case.id)).version == 2


async def test_every_action_answers_the_case_as_a_read_afterwards_shows_it(ctx: Context) -> None:
    """An action's answer is built from the case it read and the change it made, not read back."""
    case, _answer, resident, worker = await _filed(ctx)
    head = await make_staff(ctx, role="station_head", station_id=worker.station_id)
    supervisor = await make_staff(ctx, role="supervisor")
    steps: list[tuple[Any, str, dict[str, Any]]] = [
        (worker, "accept", {}),
        (worker, "schedule", {"scheduled_at": utcnow() + timedelta(days=1)}),
        (worker, "start", {}),
        (worker, "note", {"text": "已电话联系"}),
        (head, "request_extension", {"extra_days": 3, "reason": "等材料"}),
        (supervisor, "approve_extension", {}),
        (supervisor, "urge", {"note": "请尽快"}),
        (worker, "resolve", {"result": "已上门探访"}),
        (resident, "reopen", {"reason": "还没解决"}),
        (worker, "resolve", {"result": "再次上门"}),
        (resident, "rate", {"rating": 4, "comment": "好"}),
    ]
    for who, action, data in steps:
        answered = await act_on(ctx, who, case.id, action, **data)
        assert answered == await queries.get_case(ctx=ctx, principal=principal_of(who), case_id=case.id), action
    other = await make_case(ctx, resident)
    for who, action, data in [(worker, "return", {"reason": "不属本站"}), (resident, "cancel", {})]:
        answered = await act_on(ctx, who, other["id"], action, **data)
        # A worker who returned a case no longer sees it: the view of the case read back, as they were answered.
        back, p = await CasesRepository(ctx.db).get(other["id"]), principal_of(who)
        assert answered == view(back, p, access_of(p, back.parties), utcnow()), action


async def test_reads_of_a_missing_case(ctx: Context) -> None:
    repo = CasesRepository(ctx.db)
    with pytest.raises(NotFoundError) as missing:
        await repo.get(new_id())
    assert missing.value.code == "case_not_found"
    assert await repo.get_if_any(new_id()) is None
    assert await repo.find_by_source("visit_id", new_id()) is None


async def test_a_case_is_found_by_the_record_it_was_opened_from(ctx: Context) -> None:
    station = await make_station(ctx)
    head = await make_staff(ctx, role="station_head", station_id=station.id)
    key = f"{new_id()}:need:0"
    answer = await make_case(ctx, head, source={"channel": "visit", "visit_id": key})
    found = await CasesRepository(ctx.db).find_by_source("visit_id", key)
    assert found is not None and found.id == answer["id"]
    assert found.source == {"channel": "visit", "visit_id": key}


async def test_lists_of_cases_are_typed_and_leave_the_history_out(ctx: Context) -> None:
    case, _answer, resident, worker = await _filed(ctx)
    repo = CasesRepository(ctx.db)
    [listed], _width = await repo.listed(CaseListQuery(scope=CaseScope(owner=resident.id)), limit=5, now=ctx.now())
    assert listed.id == case.id and listed.history == () and "history" not in listed.fields_set
    assert listed.placement == case.placement
    queue = CaseListQuery(scope=CaseScope(station_id=worker.station_id), sort="due", statuses=("dispatched",))
    due, width = await repo.listed(queue, limit=5, now=ctx.now())
    assert [c.id for c in due] == [case.id] and width is None
    elsewhere = CaseListQuery(scope=CaseScope(division_prefix="3401"))
    assert (await repo.listed(elsewhere, limit=5, now=ctx.now()))[0] == []


async def test_a_search_keeps_the_filers_own_cases_that_match_newest_first(ctx: Context) -> None:
    case, _answer, resident, worker = await _filed(ctx)
    second = await make_case(ctx, resident)
    repo = CasesRepository(ctx.db)
    mine = CaseSearch(created_by=resident.id, limit=10)
    found = await repo.search(mine)
    assert [c.id for c in found] == [second["id"], case.id] and found[1].history == case.history
    assert [c.id for c in await repo.search(dataclasses.replace(mine, numbers=(case.number,)))] == [case.id]
    assert [c.id for c in await repo.search(dataclasses.replace(mine, ids=(second["id"],)))] == [second["id"]]
    assert [c.id for c in await repo.search(dataclasses.replace(mine, limit=1))] == [second["id"]]
    assert len(await repo.search(dataclasses.replace(mine, service_codes=(case.service.code,)))) == 2
    assert len(await repo.search(dataclasses.replace(mine, closed=False))) == 2
    assert len(await repo.search(dataclasses.replace(mine, created_from=case.created_at, created_to=ctx.now()))) == 2
    assert await repo.search(dataclasses.replace(mine, closed=True)) == []
    assert await repo.search(dataclasses.replace(mine, service_codes=("no_such_service",))) == []
    assert await repo.search(dataclasses.replace(mine, created_to=case.created_at - timedelta(seconds=1))) == []
    assert await repo.search(dataclasses.replace(mine, created_by=worker.id)) == []


async def test_what_notifications_read_of_a_case(ctx: Context) -> None:
    case, answer, resident, worker = await _filed(ctx)
    await act_on(ctx, worker, case.id, "accept")
    await act_on(ctx, worker, case.id, "resolve", result="已上门探访 visited")
    repo = CasesRepository(ctx.db)
    assert await repo.for_notice(case.id) == CaseNotice(
        number=answer["number"],
        owner=resident.id,
        assignee_id=worker.id,
        station_name=answer["station_name"],
        service_name_zh=case.service.name_zh,
        service_name_en=case.service.name_en,
        urgent_service=case.service.urgent,
        source_channel=(case.source or {}).get("channel"),
        scheduled_at=None,
        result="已上门探访 visited",
    )
    assert await repo.for_notice(new_id()) is None
