"""Due visits (collection ``visit_schedules``) and visit records (collection ``visits``).

A schedule document is one person's due visit in one period; its ``_id`` is
``"<elder_id>:<period>"`` and (elder_id, period) is unique, so any number of schedulers
may insert the same period at once and exactly one document results.

Visit records are append-only: a correction is a new record whose ``corrects`` names the
record it replaces (unique, so a record is corrected at most once and corrections form a
chain). The only later write to a record fills in the ids of the cases it opened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import new_id
from service.common.models import Page
from service.common.paging import decode_cursor, encode_cursor
from service.storage.indexes import declare
from service.visits.models import DueVisit, DueWindow, Referral, RegisterScope, Visit
from service.visits.repository.scopes import scope_filter

SCHEDULES = "visit_schedules"
VISITS = "visits"
declare(
    SCHEDULES,
    IndexModel([("elder_id", ASCENDING), ("period", ASCENDING)], unique=True, name="elder_period_unique"),
    IndexModel([("period", ASCENDING), ("elder_id", ASCENDING)], name="period_elder"),
    IndexModel([("station_id", ASCENDING), ("visited", ASCENDING), ("period_end", ASCENDING)], name="station_due"),
    IndexModel([("period_end", ASCENDING), ("visited", ASCENDING), ("missed_event", ASCENDING)], name="closing"),
    IndexModel([("period_end", ASCENDING), ("township", ASCENDING)], name="period_township"),
)
declare(
    VISITS,
    IndexModel([("elder_id", ASCENDING), ("visited_at", DESCENDING)], name="elder_time"),
    IndexModel("corrects", unique=True, partialFilterExpression={"corrects": {"$type": "string"}}, name="corrects"),
)


def _visit_doc(v: Visit) -> dict[str, Any]:
    return {
        "_id": v.id,
        "elder_id": v.elder_id,
        "station_id": v.station_id,
        "township": v.township,
        "method": v.method,
        "visitor": v.visitor,
        "visited_at": v.visited_at,
        "reached": v.reached,
        "findings": v.findings,
        "needs": v.needs,
        "danger": v.danger,
        "summary": v.summary,
        "flags": v.flags,
        "corrects": v.corrects,
        "referrals": [
            {
                "kind": r.kind,
                "service_code": r.service_code,
                "source_key": r.source_key,
                "plan": r.plan,
                "case_id": r.case_id,
            }
            for r in v.referrals
        ],
        "recorded_by": v.recorded_by,
        "created_at": v.created_at,
    }


def _visit(d: dict[str, Any]) -> Visit:
    return Visit(
        id=str(d["_id"]),
        elder_id=d["elder_id"],
        station_id=d["station_id"],
        township=d.get("township", ""),
        method=d["method"],
        visitor=d["visitor"],
        visited_at=d["visited_at"],
        reached=bool(d["reached"]),
        recorded_by=d["recorded_by"],
        created_at=d["created_at"],
        findings=d.get("findings") or {},
        needs=d.get("needs") or [],
        danger=d.get("danger") or {"found": False},
        summary=d.get("summary"),
        flags=d.get("flags") or [],
        corrects=d.get("corrects"),
        referrals=tuple(
            Referral(
                kind=r["kind"],
                service_code=r["service_code"],
                source_key=r.get("source_key", ""),
                plan=r.get("plan") or {},
                case_id=r.get("case_id"),
            )
            for r in d.get("referrals") or []
        ),
    )


def _due_visit(d: dict[str, Any]) -> DueVisit:
    return DueVisit(
        id=str(d["_id"]),
        elder_id=d["elder_id"],
        station_id=d["station_id"],
        township=d["township"],
        tier=d["tier"],
        period=d["period"],
        period_start=d["period_start"],
        period_end=d["period_end"],
    )


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _from_due_cursor(query: dict[str, Any], cursor: str) -> dict[str, Any]:
    """``query`` limited to what follows the cursor (due date, period start, id), as one plain filter
    whose ``period_end`` range starts at the cursor's: the index range begins there on every server
    (the embedded one scans the whole collection for a top-level ``$and``)."""
    end, start, sid = decode_cursor(cursor, datetime, datetime, str)
    after = [
        {"period_end": {"$gt": end}},
        {"period_end": end, "period_start": {"$gt": start}},
        {"period_end": end, "period_start": start, "_id": {"$gt": sid}},
    ]
    bounds = dict(query.get("period_end") or {})
    low = bounds.get("$gte", bounds.get("$gt"))
    if low is None or _utc(end) >= _utc(low):
        bounds.pop("$gt", None)
        bounds["$gte"] = end
    return {**query, "period_end": bounds, "$or": after}


def _only_duplicates(exc: BulkWriteError) -> bool:
    return all(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))


class VisitSchedulesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[SCHEDULES]

    async def existing_ids(self, docs: list[dict[str, Any]]) -> set[str]:
        """Which of these schedules exist already.

        One index range per period over the batch's elder ids rather than a long ``$in``
        (which the embedded server answers an element at a time).
        """
        by_period: dict[str, list[str]] = {}
        for d in docs:
            by_period.setdefault(d["period"], []).append(d["elder_id"])
        found: set[str] = set()
        for period, elder_ids in by_period.items():
            q = {"period": period, "elder_id": {"$gte": min(elder_ids), "$lte": max(elder_ids)}}
            found |= {d["_id"] async for d in self.col.find(q, {"_id": 1})}
        return found

    async def insert_missing(self, docs: list[dict[str, Any]]) -> int:
        """Insert schedules, skipping any another process created first; returns how many were new."""
        if not docs:
            return 0
        try:
            result = await self.col.insert_many(docs, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise
            return int(exc.details.get("nInserted", 0))

    async def covering(self, elder_id: str, at: datetime) -> list[dict[str, Any]]:
        """The person's schedules whose period contains ``at``."""
        q = {"elder_id": elder_id, "period_start": {"$lte": at}, "period_end": {"$gt": at}}
        return await self.col.find(q).to_list()

    async def counted_by(self, elder_id: str, visit_ids: list[str]) -> dict[str, list[str]]:
        """The periods each of these records (of one person) counts for: the schedules it marked visited."""
        if not visit_ids:
            return {}
        out: dict[str, list[str]] = {}
        q = {"elder_id": elder_id, "visit_id": {"$in": visit_ids}}
        async for d in self.col.find(q, {"visit_id": 1, "period": 1}).sort("period_start", ASCENDING):
            out.setdefault(d["visit_id"], []).append(d["period"])
        return out

    async def mark_visited(self, schedule_id: str, visit: Visit) -> bool:
        """Mark a schedule visited by ``visit`` unless it already is; True if this call did."""
        result = await self.col.update_one(
            {"_id": schedule_id, "visited": False},
            {
                "$set": {
                    "visited": True,
                    "visit_id": visit.id,
                    "visited_at": visit.visited_at,
                    "method": visit.method,
                }
            },
        )
        return result.modified_count == 1

    async def mark_machine_reached(self, schedule_id: str, visit: Visit) -> bool:
        """Note that a machine (AI) call reached the person in this schedule's period (first call wins)."""
        result = await self.col.update_one(
            {"_id": schedule_id, "machine_reached": {"$ne": True}},
            {"$set": {"machine_reached": True, "machine_visit_id": visit.id, "machine_at": visit.visited_at}},
        )
        return result.modified_count == 1

    async def insert_one_new(self, doc: dict[str, Any]) -> bool:
        """Insert a schedule unless one with its id exists; True if this call created it."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def set_status(self, schedule_id: str, visit: Visit | None) -> None:
        """Set a schedule's visited status from the record that now counts (None: not visited)."""
        update: dict[str, Any]
        if visit is None:
            update = {"visited": False, "visit_id": None, "visited_at": None, "method": None}
        else:
            update = {"visited": True, "visit_id": visit.id, "visited_at": visit.visited_at, "method": visit.method}
        await self.col.update_one({"_id": schedule_id}, {"$set": update})

    async def withdraw_open(self, elder_id: str, *, at: datetime, reason: str) -> int:
        """Withdraw a person's unvisited schedules of periods not over at ``at`` (kept, marked); how many."""
        result = await self.col.update_many(
            {"elder_id": elder_id, "period_end": {"$gt": at}, "visited": False, "withdrawn": None},
            {"$set": {"withdrawn": {"at": at, "reason": reason}}},
        )
        return result.modified_count

    async def unvisited_closed(self, at: datetime, limit: int) -> list[dict[str, Any]]:
        """Schedules whose period ended by ``at`` unvisited, not withdrawn and not yet reported missed."""
        q = {"period_end": {"$lte": at}, "visited": False, "missed_event": False, "withdrawn": None}
        return await self.col.find(q).sort("period_end", ASCENDING).limit(limit).to_list()

    async def unvisited_ending(self, after: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
        """Open schedules whose period ends in ``(after, until]``, not withdrawn, not yet reported due."""
        q = {"period_end": {"$gt": after, "$lte": until}, "visited": False, "due_event": {"$ne": True}}
        q["withdrawn"] = None
        return await self.col.find(q).sort("period_end", ASCENDING).limit(limit).to_list()

    async def mark_due_reported(self, schedule_id: str) -> None:
        """Remember that this schedule's ``visit.due`` reminder was raised."""
        await self.col.update_one({"_id": schedule_id}, {"$set": {"due_event": True}})

    async def mark_missed_reported(self, schedule_id: str) -> None:
        """Remember that the miss of this schedule was raised as an event."""
        await self.col.update_one({"_id": schedule_id}, {"$set": {"missed_event": True}})

    async def due_page(
        self, scope: RegisterScope, window: DueWindow, *, limit: int, cursor: str | None
    ) -> Page[DueVisit]:
        """Unvisited, not withdrawn schedules of the people in ``scope`` within ``window``, soonest due
        first (then by period start and id), one page."""
        query = scope_filter(scope)
        if window.at is not None:
            query.update({"period_start": {"$lte": window.at}, "period_end": {"$gt": window.at}})
        else:
            query.update({"period_end": {"$gt": window.after, "$lte": window.until}})
        if cursor:
            query = _from_due_cursor(query, cursor)
        q = {**query, "visited": False, "withdrawn": None}
        found = self.col.find(q).sort([("period_end", ASCENDING), ("period_start", ASCENDING), ("_id", ASCENDING)])
        docs = await found.limit(limit + 1).to_list()
        page = [_due_visit(d) for d in docs[:limit]]
        last = page[-1] if len(docs) > limit and page else None
        return Page(
            items=page,
            next_cursor=encode_cursor(last.period_end, last.period_start, last.id) if last is not None else None,
        )


class VisitsRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[VISITS]

    @staticmethod
    def new_id() -> str:
        return new_id()

    async def insert(self, visit: Visit) -> Visit:
        """Append a record; correcting a record that was corrected already is a conflict."""
        try:
            await self.col.insert_one(_visit_doc(visit))
        except DuplicateKeyError:
            raise ConflictError(
                "visit_already_corrected", "That record was corrected already; correct the latest correction instead."
            ) from None
        return visit

    async def get(self, visit_id: str) -> Visit:
        """One record by id."""
        doc = await self.col.find_one({"_id": visit_id})
        if doc is None:
            raise NotFoundError("visit_not_found", f"There is no visit record {visit_id!r}.")
        return _visit(doc)

    async def set_case_id(self, visit_id: str, index: int, case_id: str) -> None:
        """Link the case opened for referral ``index`` of a record."""
        await self.col.update_one({"_id": visit_id}, {"$set": {f"referrals.{index}.case_id": case_id}})

    async def counting_in(self, elder_id: str, start: datetime, end: datetime) -> Visit | None:
        """The latest reached, not superseded record of a person in ``[start, end)``."""
        q = {"elder_id": elder_id, "visited_at": {"$gte": start, "$lt": end}}
        docs = await self.col.find(q).sort("visited_at", DESCENDING).to_list()
        superseded = {d["corrects"] for d in docs if d.get("corrects")}
        # A correction may move a record out of the window: consult the whole chain.
        if docs:
            ids = [d["_id"] for d in docs if d["_id"] not in superseded]
            superseded |= {d["corrects"] async for d in self.col.find({"corrects": {"$in": ids}}, {"corrects": 1})}
        for d in docs:
            # Machine calls are counted apart (``machine_reached``), never as a visitor's visit.
            if d["_id"] not in superseded and d["reached"] and d.get("method") != "ai_call":
                return _visit(d)
        return None

    async def list_for_elder(self, elder_id: str, limit: int) -> list[Visit]:
        """A person's records, newest first."""
        cursor = self.col.find({"elder_id": elder_id}).sort("visited_at", DESCENDING).limit(limit)
        return [_visit(d) async for d in cursor]

    async def with_unopened_referrals(self, before: datetime, limit: int) -> list[Visit]:
        """Records written before ``before`` with a referral whose case is not open yet."""
        query = {"referrals": {"$elemMatch": {"case_id": None}}, "created_at": {"$lt": before}}
        return [_visit(d) async for d in self.col.find(query).limit(limit)]
