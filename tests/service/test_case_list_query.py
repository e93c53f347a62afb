"""The list query: scope filters that an index can answer, on the real server's planner."""

from __future__ import annotations

from typing import Any

import pytest

from service.cases import all_of, division_range, list_query
from service.context import Context
from service.models import Principal

SUPERVISOR = Principal(subject="sup-xi", role="supervisor", division_prefix="341021")
WORKER = Principal(subject="w-a", role="worker", station_id="st-a")


def _in_range(code: str, rng: dict[str, str]) -> bool:
    return rng["$gte"] <= code < rng["$lt"]


@pytest.mark.parametrize(
    ("code", "inside"),
    [
        ("341021", True),
        ("341021100", True),
        ("341021100001", True),
        ("341022001", False),
        ("341020999", False),
        ("34102", False),
        ("340102001", False),
    ],
)
def test_division_range_holds_exactly_the_codes_under_the_prefix(code: str, inside: bool) -> None:
    assert _in_range(code, division_range("341021")) is inside


def test_all_of_merges_distinct_fields_and_keeps_and_for_repeated_ones() -> None:
    assert all_of([{"station_id": "a"}, {}, {"status": "dispatched"}]) == {"station_id": "a", "status": "dispatched"}
    both = [{"$or": [{"a": 1}]}, {"$or": [{"b": 1}]}]
    assert all_of(both) == {"$and": both}
    assert all_of([{}]) == {}


def test_list_query_has_no_regex_and_no_and_for_a_plain_scope() -> None:
    filt, sort, limit = list_query(SUPERVISOR, {"limit": 20})
    assert filt == {"division": {"$gte": "341021", "$lt": "341021:"}}
    assert sort == [("created_at", -1), ("_id", -1)] and limit == 20
    filt, sort, _ = list_query(WORKER, {"sort": "due"})
    assert filt == {"station_id": "st-a"}
    assert sort == [("next_due_at", 1), ("_id", 1)]


def _stages(plan: dict[str, Any]) -> list[str]:
    out, node = [], plan
    while isinstance(node, dict):
        out.append(node.get("stage", ""))
        node = node.get("inputStage")
    return out


@pytest.mark.parametrize(
    ("principal", "query"),
    [
        (SUPERVISOR, {}),
        (SUPERVISOR, {"sort": "due"}),
        (WORKER, {}),
        (WORKER, {"sort": "due"}),
        (WORKER, {"status": "dispatched", "sort": "due"}),
    ],
)
async def test_list_queries_are_answered_from_an_index(
    ctx: Context, principal: Principal, query: dict[str, Any]
) -> None:
    filt, sort, limit = list_query(principal, query)
    await ctx.db["cases"].insert_many(
        [
            {
                "_id": f"c{i}",
                "number": f"n{i}",
                "station_id": "st-a" if i % 2 else "st-b",
                "division": "341021100",
                "status": "dispatched",
                "created_at": i,
                "next_due_at": i,
            }
            for i in range(20)
        ]
    )
    explained = await ctx.db.command(
        "explain", {"find": "cases", "filter": filt, "sort": dict(sort), "limit": limit + 1}, verbosity="queryPlanner"
    )
    stages = _stages(explained["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in stages and "COLLSCAN" not in stages, stages
