"""The plan's counts of the register and the training records, and the stored copies of them.

The aggregations are built here from a typed window and return typed counts; the indicators
(growth, ratios) are the plan's arithmetic. ``people_pipeline`` and ``training_pipeline`` are
public so the benchmark can issue the same aggregations directly through the driver. A stored
copy (collection ``plan_snapshots``) keeps the aggregations' own output shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from service.workforce.models import RegisterCounts, RegisterWindow, StoredCounts
from service.workforce.repository.filters import scope_match
from service.workforce.repository.indexes import PEOPLE, RECORDS, SNAPSHOTS


def people_pipeline(w: RegisterWindow) -> list[dict[str, Any]]:
    """Social workers in post on ``as_of`` (by employer kind) and on ``before``, under the window's prefix."""
    as_of, before = w.as_of.isoformat(), w.before.isoformat()
    in_post = {"$or": [{"end_date": None}, {"end_date": {"$gt": as_of}}]}
    was_in_post = {"start_date": {"$lte": before}, "$or": [{"end_date": None}, {"end_date": {"$gt": before}}]}
    return [
        {"$match": {**scope_match(w.prefix), "occupation": "social_work", "start_date": {"$lte": as_of}}},
        {
            "$facet": {
                "now": [{"$match": in_post}, {"$group": {"_id": "$employer.kind", "n": {"$sum": 1}}}],
                "before": [{"$match": was_in_post}, {"$count": "n"}],
            }
        },
    ]


def training_pipeline(w: RegisterWindow) -> list[dict[str, Any]]:
    """Completions under the window's prefix: people per category this year, elderly-care completions in the period."""
    return [
        {
            "$match": {
                **scope_match(w.prefix),
                "status": "completed",
                "completed_on": {"$gte": w.period_start.isoformat(), "$lte": w.as_of.isoformat()},
            }
        },
        {
            "$facet": {
                "year_people": [
                    {"$match": {"completed_on": {"$gte": w.year_start.isoformat()}}},
                    {"$group": {"_id": {"c": "$category", "p": "$person_id"}}},
                    {"$group": {"_id": "$_id.c", "n": {"$sum": 1}}},
                ],
                "period_elderly_care": [{"$match": {"category": "elderly_care"}}, {"$count": "n"}],
            }
        },
    ]


def _counts(people: dict[str, Any], trained: dict[str, Any]) -> RegisterCounts:
    return RegisterCounts(
        in_post_by_kind={r["_id"]: int(r["n"]) for r in people["now"]},
        in_post_before=int(people["before"][0]["n"]) if people["before"] else 0,
        trained_by_category={r["_id"]: int(r["n"]) for r in trained["year_people"]},
        elderly_care_completions=int(trained["period_elderly_care"][0]["n"]) if trained["period_elderly_care"] else 0,
    )


def _facets(c: RegisterCounts) -> tuple[dict[str, Any], dict[str, Any]]:
    """The counts in the aggregations' own output shape (as stored before the counts were typed)."""
    people = {
        "now": [{"_id": k, "n": n} for k, n in c.in_post_by_kind.items()],
        "before": [{"n": c.in_post_before}] if c.in_post_before else [],
    }
    trained = {
        "year_people": [{"_id": k, "n": n} for k, n in c.trained_by_category.items()],
        "period_elderly_care": [{"n": c.elderly_care_completions}] if c.elderly_care_completions else [],
    }
    return people, trained


class RegisterCountsRepository:
    """The plan's counts of the register and training records, and their stored copies."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.people = db[PEOPLE]
        self.records = db[RECORDS]
        self.snapshots = db[SNAPSHOTS]

    async def count(self, w: RegisterWindow) -> RegisterCounts:
        """Run the people and training aggregations of ``w``."""
        [people] = await (await self.people.aggregate(people_pipeline(w))).to_list()
        [trained] = await (await self.records.aggregate(training_pipeline(w))).to_list()
        return _counts(people, trained)

    async def stored(self, key: str) -> StoredCounts | None:
        """Counts stored under ``key`` (with the counter value they were computed at), or None."""
        doc = await self.snapshots.find_one({"_id": key})
        if doc is None:
            return None
        return StoredCounts(_counts(doc["people"], doc["trained"]), doc.get("version"), doc["computed_at"])

    async def store(self, key: str, counts: RegisterCounts, *, version: int, computed_at: datetime) -> None:
        """Store counts under ``key``, replacing older ones."""
        people, trained = _facets(counts)
        doc = {"version": version, "computed_at": computed_at, "people": people, "trained": trained}
        await self.snapshots.replace_one({"_id": key}, doc, upsert=True)
