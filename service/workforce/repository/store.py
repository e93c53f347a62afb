"""Reading and writing the workforce collections: the register, its history, training and reference figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import is_id, new_id
from service.common.models import Page
from service.common.paging import (
    decode_cursor,
    decode_newest_cursor,
    encode_cursor,
    encode_newest_cursor,
    newest_by_new_id,
    paged,
    served_with_id_range,
)
from service.storage.transactions import run_transaction
from service.workforce.models import (
    FigureFilter,
    HistoryEntry,
    PeopleFilter,
    Person,
    Programme,
    RecordFilter,
    ReferenceFigure,
    Session,
    TrainingRecord,
)
from service.workforce.repository.filters import figures_query, people_query, records_query
from service.workforce.repository.indexes import (
    FIGURES,
    HISTORY,
    META,
    PEOPLE,
    PROGRAMMES,
    RECORDS,
    SESSIONS,
)
from service.workforce.repository.people import person_from_doc, person_taken
from service.workforce.repository.training import record_from

CHUNK = 1000


def _fields_of(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "id")


def _build(cls: Any, doc: dict[str, Any]) -> Any:
    return cls(id=str(doc["_id"]), **{k: doc.get(k) for k in _fields_of(cls)})


async def _newest_page(
    col: Any,
    query: dict[str, Any],
    limit: int,
    cursor: str | None,
    build: Any,
    *,
    now: datetime,
    prefixes: tuple[tuple[str, ...], ...],
) -> Page[Any]:
    """Documents matching ``query``, newest first, one page; read in windows of time on the id
    (``newest_by_new_id``) when one of the indexes ``prefixes`` + ``_id`` serves ``query``."""

    async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
        q = {**query, "_id": id_range} if id_range else query
        return await col.find(q).sort("_id", DESCENDING).limit(n).to_list()

    windows = served_with_id_range(query, *prefixes)
    docs = await newest_by_new_id(find, want=limit + 1, now=now, before=decode_newest_cursor(cursor), windows=windows)
    items, next_cursor = paged([build(d) for d in docs], limit, lambda item: encode_newest_cursor(item.id))
    return Page(items=items, next_cursor=next_cursor)


async def _page(col: Any, query: dict[str, Any], limit: int, cursor: str | None, build: Any) -> Page[Any]:
    q = dict(query)
    if cursor:
        [after] = decode_cursor(cursor, str, check=lambda values: is_id(values[0]))
        q["_id"] = {"$gt": after}
    docs = await col.find(q).sort("_id", ASCENDING).limit(limit + 1).to_list()
    items, next_cursor = paged([build(d) for d in docs], limit, lambda item: encode_cursor(item.id))
    return Page(items=items, next_cursor=next_cursor)


# ---------------------------------------------------------------- the repository


class WorkforceRepository:
    """The register, its history, training and reference figures."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.people = db[PEOPLE]
        self.history = db[HISTORY]
        self.programmes = db[PROGRAMMES]
        self.sessions = db[SESSIONS]
        self.records = db[RECORDS]
        self.figures = db[FIGURES]
        self.meta = db[META]

    # -- the register's change counter: every write to people or training records moves it on
    # in the write's own transaction, so the count and the records change together: a figure
    # computed at an earlier count is never taken for a later one, even when a process stops
    # between a write and what would follow it.

    async def _counted(self, write: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``write`` and move the counter on in one transaction (neither without the other)."""

        async def with_counter(session: Any) -> None:
            await write(session)
            await self.meta.update_one({"_id": "register"}, {"$inc": {"version": 1}}, upsert=True, session=session)

        await run_transaction(self.db, with_counter)

    async def register_version(self) -> int:
        """How many times the register and training records have been written to (0: never)."""
        doc = await self.meta.find_one({"_id": "register"})
        return int(doc["version"]) if doc else 0

    # -- register

    async def insert_person(self, doc: dict[str, Any], history: dict[str, Any]) -> Person:
        """Put one person on the register with their first history entry (together or not at all)."""
        doc = {**doc, "_id": new_id(doc.get("created_at"))}

        async def write(session: Any) -> None:
            try:
                await self.people.insert_one(doc, session=session)
            except DuplicateKeyError as exc:
                raise person_taken(exc) from None
            await self.history.insert_one({**history, "_id": new_id(), "person_id": doc["_id"]}, session=session)

        await self._counted(write)
        return person_from_doc(doc)

    async def get_person(self, person_id: str) -> Person:
        """One register entry by id."""
        doc = await self.people.find_one({"_id": person_id}) if is_id(person_id) else None
        if doc is None:
            raise NotFoundError("person_not_found", f"There is no person {person_id!r} on the register.")
        return person_from_doc(doc)

    async def update_person(
        self, person_id: str, version: int, changes: dict[str, Any], history: dict[str, Any]
    ) -> Person:
        """Apply stored changes if the entry is still at ``version`` (else 409 ``person_changed``), with history."""

        async def write(session: Any) -> None:
            try:
                result = await self.people.update_one(
                    {"_id": person_id, "version": version}, {"$set": changes, "$inc": {"version": 1}}, session=session
                )
            except DuplicateKeyError as exc:
                raise person_taken(exc) from None
            if result.matched_count == 0:
                raise ConflictError("person_changed", "The entry was changed meanwhile; reload and retry.")
            await self.history.insert_one({**history, "_id": new_id()}, session=session)

        await self.get_person(person_id)
        await self._counted(write)
        return await self.get_person(person_id)

    async def people_by_hash(self, hashes: Iterable[str]) -> dict[str, Person]:
        """Register entries by ID-number hash (unknown hashes left out)."""
        wanted = list(set(hashes))
        out: dict[str, Person] = {}
        for start in range(0, len(wanted), CHUNK):
            async for doc in self.people.find({"id_card_hash": {"$in": wanted[start : start + CHUNK]}}):
                out[doc["id_card_hash"]] = person_from_doc(doc)
        return out

    async def list_people(self, f: PeopleFilter, *, limit: int, cursor: str | None, now: datetime) -> Page[Person]:
        """Register entries of ``f``, newest registered first, one page."""
        query = people_query(f)
        prefixes = (("employer.station_id",), ("division",), ("county_code",))
        return await _newest_page(self.people, query, limit, cursor, person_from_doc, now=now, prefixes=prefixes)

    async def apply_people_import(
        self,
        inserts: list[dict[str, Any]],
        updates: list[tuple[str, int, dict[str, Any]]],
        history: list[dict[str, Any]],
    ) -> None:
        """Write an import's new entries, changes and history entries in one transaction: all or none.

        ``history`` entries of new people carry the index of their document in ``inserts``
        under ``person_id`` as ``("new", i)``; the id is filled in here.
        """
        ids = [new_id(d.get("created_at")) for d in inserts]
        docs = [{**d, "_id": i} for d, i in zip(inserts, ids, strict=True)]
        entries = []
        for h in history:
            pid = h["person_id"]
            entries.append({**h, "_id": new_id(), "person_id": ids[pid[1]] if isinstance(pid, tuple) else pid})

        async def write(session: Any) -> None:
            try:
                for start in range(0, len(docs), CHUNK):
                    await self.people.bulk_write([InsertOne(d) for d in docs[start : start + CHUNK]], session=session)
                for person_id, version, changes in updates:
                    result = await self.people.update_one(
                        {"_id": person_id, "version": version},
                        {"$set": changes, "$inc": {"version": 1}},
                        session=session,
                    )
                    if result.matched_count == 0:
                        raise ConflictError("person_changed", "An entry was changed during the import; run it again.")
            except (BulkWriteError, DuplicateKeyError) as exc:
                raise person_taken(exc) from None
            for start in range(0, len(entries), CHUNK):
                await self.history.insert_many(entries[start : start + CHUNK], session=session)

        await self._counted(write)

    async def person_history(self, person_id: str) -> list[HistoryEntry]:
        """Every change of one entry, oldest first."""
        docs = await self.history.find({"person_id": person_id}).sort([("at", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [_build(HistoryEntry, d) for d in docs]

    # -- training

    async def insert_programme(self, doc: dict[str, Any]) -> Programme:
        """Add a training programme."""
        doc = {**doc, "_id": new_id(doc.get("created_at"))}
        await self.programmes.insert_one(doc)
        return _build(Programme, doc)

    async def get_programme(self, programme_id: str) -> Programme:
        """One programme by id."""
        doc = await self.programmes.find_one({"_id": programme_id}) if is_id(programme_id) else None
        if doc is None:
            raise NotFoundError("programme_not_found", f"There is no training programme {programme_id!r}.")
        return _build(Programme, doc)

    async def list_programmes(
        self, query: dict[str, Any], *, limit: int, cursor: str | None, now: datetime
    ) -> Page[Programme]:
        """Programmes matching ``query``, newest first, one page."""
        return await _newest_page(
            self.programmes, query, limit, cursor, lambda d: _build(Programme, d), now=now, prefixes=()
        )

    async def insert_session(self, doc: dict[str, Any]) -> Session:
        """Add a session of a programme."""
        doc = {**doc, "_id": new_id(doc.get("created_at"))}
        await self.sessions.insert_one(doc)
        return _build(Session, doc)

    async def get_session(self, session_id: str) -> Session:
        """One session by id."""
        doc = await self.sessions.find_one({"_id": session_id}) if is_id(session_id) else None
        if doc is None:
            raise NotFoundError("session_not_found", f"There is no training session {session_id!r}.")
        return _build(Session, doc)

    async def sessions_of(self, programme_id: str) -> list[Session]:
        """The sessions of one programme by start date."""
        docs = await self.sessions.find({"programme_id": programme_id}).sort("starts_on", ASCENDING).to_list()
        return [_build(Session, d) for d in docs]

    async def records_of_session(self, session_id: str, person_ids: Iterable[str]) -> dict[str, TrainingRecord]:
        """The records of a session for these people, by person id."""
        ids = list(set(person_ids))
        out: dict[str, TrainingRecord] = {}
        for start in range(0, len(ids), CHUNK):
            query = {"session_id": session_id, "person_id": {"$in": ids[start : start + CHUNK]}}
            async for doc in self.records.find(query):
                out[doc["person_id"]] = record_from(doc)
        return out

    async def apply_records(
        self, inserts: list[dict[str, Any]], updates: list[tuple[str, int, dict[str, Any]]]
    ) -> None:
        """Write new training records and changes in one transaction: all or none."""
        docs = [{**d, "_id": new_id(d.get("created_at"))} for d in inserts]

        async def write(session: Any) -> None:
            try:
                for start in range(0, len(docs), CHUNK):
                    await self.records.bulk_write([InsertOne(d) for d in docs[start : start + CHUNK]], session=session)
            except (BulkWriteError, DuplicateKeyError):
                raise ConflictError(
                    "already_enrolled", "A person in the file was enrolled meanwhile; run it again."
                ) from None
            for start in range(0, len(updates), CHUNK):
                ops = [
                    UpdateOne({"_id": rid, "version": v}, {"$set": changes, "$inc": {"version": 1}})
                    for rid, v, changes in updates[start : start + CHUNK]
                ]
                result = await self.records.bulk_write(ops, session=session)  # type: ignore[arg-type]
                if result.matched_count != len(ops):
                    raise ConflictError("record_changed", "A record was changed during the import; run it again.")

        await self._counted(write)

    async def get_record(self, record_id: str) -> TrainingRecord:
        """One training record by id."""
        doc = await self.records.find_one({"_id": record_id}) if is_id(record_id) else None
        if doc is None:
            raise NotFoundError("record_not_found", f"There is no training record {record_id!r}.")
        return record_from(doc)

    async def update_record(self, record_id: str, version: int, changes: dict[str, Any]) -> TrainingRecord:
        """Change a record still at ``version`` (409 ``record_changed``)."""

        async def write(session: Any) -> None:
            result = await self.records.update_one(
                {"_id": record_id, "version": version}, {"$set": changes, "$inc": {"version": 1}}, session=session
            )
            if result.matched_count == 0:
                raise ConflictError("record_changed", "The record was changed meanwhile; reload and retry.")

        try:
            await self._counted(write)
        except ConflictError:
            await self.get_record(record_id)  # 404 for a record that is not there at all
            raise
        return await self.get_record(record_id)

    async def insert_record(self, doc: dict[str, Any]) -> TrainingRecord:
        """Enrol one person in a session (409 ``already_enrolled``)."""
        doc = {**doc, "_id": new_id(doc.get("created_at"))}

        async def write(session: Any) -> None:
            try:
                await self.records.insert_one(doc, session=session)
            except DuplicateKeyError:
                raise ConflictError("already_enrolled", "The person is already enrolled in this session.") from None

        await self._counted(write)
        return record_from(doc)

    async def list_records(
        self, f: RecordFilter, *, limit: int, cursor: str | None, now: datetime
    ) -> Page[TrainingRecord]:
        """Training records of ``f``, newest first, one page."""
        query = records_query(f)
        prefixes = (("person_id",), ("county_code",))
        return await _newest_page(self.records, query, limit, cursor, record_from, now=now, prefixes=prefixes)

    # -- reference figures

    async def figures_for(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], ReferenceFigure]:
        """Stored figures by (division, year)."""
        wanted = list(set(keys))
        out: dict[tuple[str, int], ReferenceFigure] = {}
        for start in range(0, len(wanted), CHUNK):
            ors = [{"division": d, "year": y} for d, y in wanted[start : start + CHUNK]]
            async for doc in self.figures.find({"$or": ors}):
                out[(doc["division"], doc["year"])] = _build(ReferenceFigure, doc)
        return out

    async def apply_figures(self, docs: list[dict[str, Any]]) -> None:
        """Write imported figures (one per division and year, replacing the earlier one) in one transaction."""

        async def write(session: Any) -> None:
            for start in range(0, len(docs), CHUNK):
                ops = [
                    UpdateOne(
                        {"division": d["division"], "year": d["year"]},
                        {"$set": d, "$setOnInsert": {"_id": new_id()}},
                        upsert=True,
                    )
                    for d in docs[start : start + CHUNK]
                ]
                await self.figures.bulk_write(ops, session=session)

        await run_transaction(self.db, write)

    async def list_figures(self, f: FigureFilter, *, limit: int, cursor: str | None) -> Page[ReferenceFigure]:
        """Reference figures of ``f``, one page."""
        return await _page(self.figures, figures_query(f), limit, cursor, lambda d: _build(ReferenceFigure, d))

    async def figures_under(self, prefix: str, year: int) -> list[ReferenceFigure]:
        """Every figure of ``year`` whose division starts with ``prefix``."""
        query = {"year": year, "division": {"$regex": "^" + prefix}} if prefix.isdigit() else {"_id": None}
        return [_build(ReferenceFigure, d) async for d in self.figures.find(query).sort("division", ASCENDING)]
