"""Cases (collection ``cases``): insert, read, conditional transitions, listing, sweeps.

How a case document becomes a ``Case`` is ``repository.documents``; its list windows ``repository.listing``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import bson
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.cases.models import (
    Actor,
    Case,
    CaseListQuery,
    CaseNotice,
    CaseRef,
    CaseScope,
    CaseSearch,
    HistoryEntry,
    Parties,
)
from service.cases.repository import kpis, listing
from service.cases.repository.documents import actor_from, case_from_document, history_doc, ref_from
from service.cases.states import OPEN_STATES, STATES
from service.common.errors import ConflictError, NotFoundError
from service.common.memo import CASES_KEPT, VersionMemo
from service.storage.indexes import declare

COLLECTION = "cases"
# What notifications read of a case (see ``CaseNotice``).
NOTICE_FIELDS = (
    "number", "owner", "assignee_id", "station_name", "service.name_zh", "service.name_en", "service.urgent",
    "source.channel", "scheduled_at", "result",
)  # fmt: skip
# What the sweeps read of a case: ids, status, version and deadlines.
SWEEP_FIELDS = (
    "_id", "status", "version", "sign_due_at", "resolve_due_at", "number", "station_id", "division",
    "resolved_at", "overdue",
)  # fmt: skip

# Time keys after an equality are ascending, read backwards for newest first (see
# storage.migrations.DESCENDING_AFTER_EQUALITY: the embedded server drops a window's lower edge
# from a descending one).
declare(
    COLLECTION,
    IndexModel("number", unique=True),
    IndexModel([("owner", ASCENDING), ("created_at", ASCENDING)]),
    IndexModel([("created_by.subject", ASCENDING), ("created_at", ASCENDING)]),
    # A station's queue in some states, by due time: one equality prefix per state (see
    # service.cases.repository.listing.soonest_due_first), read in index order on every server.
    IndexModel([("station_id", ASCENDING), ("status", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    # A station's list in either order (newest, due) is read in index order, never sorted in memory.
    IndexModel([("station_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("station_id", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("division", ASCENDING), ("created_at", ASCENDING)]),
    # A county supervisor's lists (the scope read as county_code equality, see listing.scope_filter),
    # as a station's: newest first, and by due time per state.
    IndexModel([("county_code", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("county_code", ASCENDING), ("status", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("county_code", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("status", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    # Every scope's cases with a due time, by due time (admin, and a supervisor's windows).
    IndexModel([("next_due_at", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("status", ASCENDING), ("resolved_at", ASCENDING)]),
    IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
    IndexModel("photos", sparse=True),
    IndexModel("result_photos", sparse=True),
    IndexModel(
        [("source.visit_id", ASCENDING)], unique=True, partialFilterExpression={"source.visit_id": {"$exists": True}}
    ),
)


def _search_filter(search: CaseSearch) -> dict[str, Any]:
    """One plain filter, the time range first: a planner that serves one clause from an index
    (the embedded server does) reads the requested days, not every case the client filed."""
    filt: dict[str, Any] = {}
    created: dict[str, Any] = {}
    if search.created_from is not None:
        created["$gte"] = search.created_from
    if search.created_to is not None:
        created["$lte"] = search.created_to
    if created:
        filt["created_at"] = created
    filt["created_by.subject"] = search.created_by
    if search.ids:
        filt["_id"] = {"$in": list(search.ids)}
    if search.numbers:
        filt["number"] = {"$in": list(search.numbers)}
    if search.service_codes:
        filt["service.code"] = {"$in": list(search.service_codes)}
    if search.closed is not None:
        closed = sorted(frozenset(STATES) - OPEN_STATES)
        filt["status"] = {"$in": closed} if search.closed else {"$nin": closed}
    return filt


@dataclasses.dataclass(frozen=True, slots=True)
class SweepCandidate:
    """What a sweep reads of a case: which it is, its state and version, and its deadlines."""

    ref: CaseRef
    status: str
    version: int
    sign_due_at: datetime | None
    resolve_due_at: datetime | None


# Cases as lists read them (without their history), by id, version and last change: every write to
# a case raises its version and sets updated_at (``_update``), so a kept case is the one stored until
# it changes. Lists are read far more often than their cases change (a station's page at each look,
# a supervisor's at each refresh); a case read again costs a lookup, not a build. Cases are frozen.
LISTED_CASES: VersionMemo[Case] = VersionMemo(CASES_KEPT)


def _listed_case(doc: Mapping[str, Any]) -> Case:
    """The case a list's document (read without ``history``) holds, built once per version."""
    key = (doc["_id"], doc["version"], doc.get("updated_at"))
    case = LISTED_CASES.get(key)
    if case is None:
        case = LISTED_CASES.put(key, case_from_document(doc))
    return case


def _update(fields: dict[str, Any], increments: dict[str, int] | None, history: HistoryEntry | None) -> dict[str, Any]:
    update: dict[str, Any] = {"$set": dict(fields), "$inc": {**(increments or {}), "version": 1}}
    if history is not None:
        update["$push"] = {"history": history_doc(history)}
    return update


def _updated_copy(doc: Mapping[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """What ``update`` (``$set`` and ``$inc`` with plain or dotted paths, ``$push`` of one value)
    makes of ``doc``, without touching ``doc``: changed keys keep their place, new ones go last,
    as the server orders them."""
    out = dict(doc)

    def parent(path: str) -> tuple[dict[str, Any], str]:
        # Each sub-document on the way is copied before it is changed: ``doc`` stays as it was.
        *heads, last = path.split(".")
        node = out
        for head in heads:
            inner = node.get(head, {})
            if not isinstance(inner, Mapping):
                raise ValueError(f"cannot set {path!r} inside a {type(inner).__name__}")
            node[head] = node = dict(inner)
        return node, last

    for path, value in update.get("$set", {}).items():
        node, key = parent(path)
        node[key] = value
    for path, step in update.get("$inc", {}).items():
        node, key = parent(path)
        node[key] = node.get(key, 0) + step
    for path, value in update.get("$push", {}).items():
        node, key = parent(path)
        node[key] = [*node.get(key, ()), value]
    return out


class CasesRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[COLLECTION]
        # The documents ``get`` read, by case id: ``apply_to_read`` takes a change forward from them.
        self._read: dict[str, Mapping[str, Any]] = {}

    async def insert(self, doc: dict[str, Any], *, session: AsyncClientSession | None = None) -> None:
        """Insert a new case document."""
        try:
            await self.col.insert_one(doc, session=session)
        except DuplicateKeyError as exc:
            raise ConflictError("case_exists", "A case with this number or source already exists.") from exc

    async def get(self, case_id: str, *, session: AsyncClientSession | None = None) -> Case:
        """The case, or NotFoundError."""
        doc = await self.col.find_one({"_id": case_id}, session=session) if isinstance(case_id, str) else None
        if doc is None:
            raise NotFoundError("case_not_found", f"No case with id {case_id!r}.")
        self._read[case_id] = doc
        return case_from_document(doc)

    async def get_if_any(self, case_id: str) -> Case | None:
        """The case, or None when there is no such case."""
        doc = await self.col.find_one({"_id": case_id})
        return case_from_document(doc) if doc is not None else None

    async def for_notice(self, case_id: str) -> CaseNotice | None:
        """What notifications read of one case (None when there is no such case)."""
        doc = await self.col.find_one({"_id": case_id}, dict.fromkeys(NOTICE_FIELDS, 1))
        if doc is None:
            return None
        service = doc.get("service") or {}
        return CaseNotice(
            number=doc.get("number"),
            owner=doc.get("owner"),
            assignee_id=doc.get("assignee_id"),
            station_name=doc.get("station_name"),
            service_name_zh=service.get("name_zh"),
            service_name_en=service.get("name_en"),
            urgent_service=bool(service.get("urgent")),
            source_channel=(doc.get("source") or {}).get("channel"),
            scheduled_at=doc.get("scheduled_at"),
            result=doc.get("result"),
        )

    async def creators(self, case_ids: Iterable[str]) -> dict[str, Actor]:
        """Who created each of these cases that records it (``created_by``), by case id."""
        wanted = {c for c in case_ids if c}
        if not wanted:
            return {}
        cursor = self.col.find({"_id": {"$in": list(wanted)}}, {"created_by": 1})
        return {str(d["_id"]): actor async for d in cursor if (actor := actor_from(d.get("created_by"))) is not None}

    async def find_by_source(self, key: str, value: str) -> Case | None:
        """A case created from another record (e.g. a visit), if one exists."""
        doc = await self.col.find_one({f"source.{key}": value})
        return case_from_document(doc) if doc is not None else None

    async def apply(
        self,
        case_id: str,
        *,
        expected_version: int,
        expected_status: str,
        fields: dict[str, Any],
        increments: dict[str, int] | None = None,
        history: HistoryEntry | None = None,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Set ``fields``, raise ``increments`` and append ``history``, only if the case is still at
        that version and status (optimistic lock); the version goes up by one."""
        result = await self.col.update_one(
            {"_id": case_id, "version": expected_version, "status": expected_status},
            _update(fields, increments, history),
            session=session,
        )
        return result.modified_count == 1

    async def apply_to_read(
        self,
        case: Case,
        *,
        fields: dict[str, Any],
        increments: dict[str, int] | None = None,
        history: HistoryEntry | None = None,
        session: AsyncClientSession | None = None,
    ) -> Case | None:
        """``apply`` to a case this repository's ``get`` read, at the version and status read; the case
        as the change leaves it, or None when it changed meanwhile (nothing written then).

        The result is the document read with the same update, sent through BSON as the server
        stores it (times to the millisecond, in UTC), applied here, so it equals what reading the
        case back would give without that round trip (``tests/service/cases`` compares both).
        """
        doc = self._read.get(case.id)
        if doc is None:
            raise ValueError(f"case {case.id!r} was not read by this repository")
        update = _update(fields, increments, history)
        result = await self.col.update_one(
            {"_id": case.id, "version": case.version, "status": case.status}, update, session=session
        )
        if result.modified_count != 1:
            return None
        options = self.col.codec_options
        # The document read is as the server stores it; only the change goes through BSON here
        # (times to the millisecond, in UTC) before it is applied to a copy of it. (The read copy
        # stays as read: a transaction retried calls this again from it.)
        stored = bson.decode(bson.encode(update, codec_options=options), codec_options=options)
        return case_from_document(_updated_copy(doc, stored))

    async def flag_overdue(
        self,
        case_id: str,
        *,
        kind: str,
        status: str,
        now: datetime,
        history: HistoryEntry,
        session: AsyncClientSession | None = None,
    ) -> bool:
        """Flag a case overdue (``kind``: sign or resolve) once, while it is in ``status``; True if this call did."""
        result = await self.col.update_one(
            {"_id": case_id, "status": status, f"overdue.{kind}": False},
            _update({f"overdue.{kind}": True, "overdue_flagged_at": now}, None, history),
            session=session,
        )
        return result.modified_count == 1

    async def _listed(self, query: dict[str, Any], sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        return [doc async for doc in self.col.find(query, {"history": 0}).sort(sort).limit(limit)]

    async def listed(
        self,
        query: CaseListQuery,
        *,
        limit: int,
        now: datetime,
        after: tuple[datetime | None, str] | None = None,
        width: timedelta | None = None,
    ) -> tuple[list[Case], timedelta | None]:
        """Up to ``limit`` cases of a list (without their history), in its order, after the position
        ``after`` (the sort value and id of the last case of the page before).

        Newest-first lists are read in time windows, starting as wide as ``width`` (the last window
        of the page before); the width of this page's last window comes back with the cases.
        """
        marks = listing.ListMarks(self.col.database)
        docs, last = await listing.read_list(
            self._listed, query, want=limit, now=now, after=after, width=width, marks=marks
        )
        return [_listed_case(doc) for doc in docs], last

    async def search(self, search: CaseSearch) -> list[Case]:
        """The cases ``search`` asks for, newest first (history included)."""
        return [
            case_from_document(doc)
            async for doc in self.col.find(_search_filter(search))
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .limit(search.limit)
        ]

    async def _sweep_candidates(self, query: dict[str, Any], limit: int) -> list[SweepCandidate]:
        projection = dict.fromkeys(SWEEP_FIELDS, 1)
        return [
            SweepCandidate(ref_from(d), d["status"], d["version"], d.get("sign_due_at"), d.get("resolve_due_at"))
            async for d in self.col.find(query, projection).limit(limit)
        ]

    async def overdue_unflagged(self, kind: str, now: datetime, *, limit: int) -> list[SweepCandidate]:
        """Open cases past their sign-for (``kind`` sign) or resolve deadline, not yet flagged (sweep fields)."""
        if kind == "sign":
            query = {"status": "dispatched", "overdue.sign": False, "sign_due_at": {"$lt": now}}
        else:
            query = {
                "status": {"$in": ["accepted", "in_progress"]},
                "overdue.resolve": False,
                "resolve_due_at": {"$lt": now},
            }
        return await self._sweep_candidates(query, limit)

    async def resolved_before(self, cutoff: datetime, *, limit: int) -> list[SweepCandidate]:
        """Cases still resolved (not rated, so not closed) that were resolved before ``cutoff`` (sweep fields only)."""
        return await self._sweep_candidates({"status": "resolved", "resolved_at": {"$lt": cutoff}}, limit)

    async def with_photo(self, upload_id: str, limit: int = 20) -> list[Parties]:
        """The parties of cases with an upload among their photos or their resolution's (who may see
        them is the caller's call)."""
        projection = {"owner": 1, "created_by": 1, "station_id": 1, "assignee_id": 1, "division": 1}
        query = {"$or": [{"photos": upload_id}, {"result_photos": upload_id}]}
        return [
            Parties(
                owner=d.get("owner"),
                created_by=actor_from(d.get("created_by")),
                station_id=d.get("station_id"),
                assignee_id=d.get("assignee_id"),
                division=d.get("division"),
            )
            async for d in self.col.find(query, projection).limit(limit)
        ]

    async def kpi_facets(
        self,
        scope: CaseScope,
        *,
        division: str | None,
        date_from: datetime | None,
        date_to: datetime | None,
        group_by: str | None,
    ) -> dict[str, list[dict[str, Any]]]:
        """The KPI facets (``totals``, ``by_status``, ``by_scenario``) of the cases in ``scope``
        (see ``repository.kpis.kpi_pipeline``)."""
        pipeline = kpis.kpi_pipeline(scope, division=division, date_from=date_from, date_to=date_to, group_by=group_by)
        cursor = await self.col.aggregate(pipeline)
        rows = [doc async for doc in cursor]
        return rows[0] if rows else kpis.NO_FACETS
