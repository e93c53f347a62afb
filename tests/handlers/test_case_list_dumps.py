"""A list's cases are dumped once per version for what every caller sees alike, and each caller
still gets exactly its own view: what the privacy rule shows it, its own actions, the case as it
is now."""

from __future__ import annotations

from typing import Any

from handlers.cases import dump_listed_case
from handlers.dumping import compiled
from handlers.keys import CTX
from schemas.cases import CaseSchema
from service.cases import views as case_views
from service.cases.access import access_of
from service.cases.repository import cases as cases_repository
from service.cases.repository.documents import case_from_document
from service.catalog import service as catalog
from service.common.memo import VersionMemo
from service.common.models import Principal
from tests.factories import (
    Who,
    act_on,
    bearer_for,
    make_case,
    make_staff,
    make_station,
    make_wechat_resident,
    principal_of,
)

PHONE = "13912345678"
MASKED = "139****5678"
LISTED = compiled(CaseSchema(exclude=("history",)))


def forget_kept_cases() -> None:
    """Empty every kept case, view and dump: the next read builds each from its document."""
    cases_repository.LISTED_CASES.clear()
    case_views.HELD_VIEWS.clear()
    dump_listed_case.clear()


async def listed(client: Any, settings: Any, who: Who, query: str = "limit=50") -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v1/cases?{query}", headers=bearer_for(settings, who))
    body = await resp.json()
    assert resp.status == 200, body
    return body["items"]  # type: ignore[no-any-return]


async def built_anew(ctx: Any, principal: Principal, case_id: str) -> dict[str, Any]:
    """The list item of one case as it is built with nothing kept: document, case, view, dump."""
    doc = await ctx.db["cases"].find_one({"_id": case_id}, {"history": 0})
    case = case_from_document(doc)
    forget_kept_cases()
    item = case_views.view(case, principal, access_of(principal, case.parties), ctx.now(), with_history=False)
    return LISTED(item)  # type: ignore[no-any-return]


async def test_each_caller_gets_its_own_view_of_a_case_another_caller_listed_first(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await make_station(ctx)
    resident = await make_wechat_resident(ctx)
    assignee = await make_staff(ctx, station_id=station.id)
    colleague = await make_staff(ctx, station_id=station.id)
    supervisor = await make_staff(ctx, role="supervisor")
    served = {"name": "李大爷", "phone": "13700001111"}
    taken = await make_case(ctx, resident, served_person=served)
    waiting = await make_case(ctx, resident)
    await act_on(ctx, assignee, taken["id"], "accept")

    # The assignee lists first: what is kept was dumped from a view that shows the phones in full.
    forget_kept_cases()
    first = {c["id"]: c for c in await listed(client, settings, assignee)}
    assert first[taken["id"]]["contact"]["phone"] == PHONE
    assert first[taken["id"]]["served_person"]["phone"] == "13700001111"
    assert len(dump_listed_case) == 2

    for who in (supervisor, colleague, resident, assignee):
        items = {c["id"]: c for c in await listed(client, settings, who)}
        assert set(items) == {taken["id"], waiting["id"]}
        for case_id, item in items.items():
            expected = await built_anew(ctx, principal_of(who), case_id)
            assert item == expected, who
            assert list(item) == list(expected)  # the same keys in the same order
        # Read again with everything kept: the same again.
        assert {c["id"]: c for c in await listed(client, settings, who)} == items

    as_supervisor = {c["id"]: c for c in await listed(client, settings, supervisor)}
    assert as_supervisor[taken["id"]]["contact"]["phone"] == MASKED
    assert as_supervisor[taken["id"]]["served_person"]["phone"] == "137****1111"
    assert as_supervisor[taken["id"]]["allowed_actions"] != first[taken["id"]]["allowed_actions"]
    as_resident = {c["id"]: c for c in await listed(client, settings, resident)}
    assert as_resident[taken["id"]]["contact"]["phone"] == PHONE
    assert "resolve" in first[taken["id"]]["allowed_actions"]
    assert "resolve" not in as_resident[taken["id"]]["allowed_actions"]


async def test_a_changed_case_is_listed_as_it_is_now(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await make_station(ctx)
    resident = await make_wechat_resident(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    case = await make_case(ctx, resident)
    (before,) = await listed(client, settings, worker)
    assert before["status"] == "dispatched" and "accept" in before["allowed_actions"]

    await act_on(ctx, worker, case["id"], "accept")
    (after,) = await listed(client, settings, worker)
    assert after["status"] == "accepted" and after["version"] == before["version"] + 1
    assert "accept" not in after["allowed_actions"] and after["accepted_at"] is not None
    assert after == await built_anew(ctx, principal_of(worker), case["id"])


async def test_the_coordinate_system_asked_for_is_kept_apart(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await make_station(ctx)
    resident = await make_wechat_resident(ctx)
    await make_case(ctx, resident, location={"lon": 118.34, "lat": 29.72})
    (wgs84,) = await listed(client, settings, resident)
    (gcj02,) = await listed(client, settings, resident, "limit=50&coord_system=gcj02")
    (again,) = await listed(client, settings, resident)
    assert wgs84["location"] == again["location"] == {"type": "Point", "coordinates": [118.34, 29.72]}
    assert gcj02["location"]["coordinates"] != wgs84["location"]["coordinates"]
    assert station.id == wgs84["station_id"]


def test_a_full_memo_drops_the_oldest_entries_first_and_never_grows_past_its_size() -> None:
    memo: VersionMemo[int] = VersionMemo(20)
    for n in range(100):
        memo.put(("case", n), n)
        assert len(memo) <= 20
    assert memo.get(("case", 99)) == 99
    assert memo.get(("case", 0)) is None
    memo.put(("case", 99), -1)  # a key already there is replaced, nothing dropped
    assert memo.get(("case", 99)) == -1
