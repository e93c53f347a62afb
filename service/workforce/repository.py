"""The collections the workforce area owns, and only those.

``workforce_people`` (the register; ID number stored encrypted, with a keyed hash for lookup
and a masked copy), ``workforce_history`` (one entry per change, never edited),
``training_programmes``, ``training_sessions``, ``training_records`` (enrolment,
attendance, completion) and ``reference_figures``. Every id is a string made by
:func:`service.ids.new_id`. The document builders here are the one shape these
collections hold; the benchmark loads its data through them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from service.common.errors import ConflictError, NotFoundError
from service.common.ids import is_id, new_id
from service.common.models import Page
from service.common.paging import decode_cursor, encode_cursor, paged
from service.storage.indexes import declare
from service.storage.transactions import run_transaction
from service.workforce.models import (
    Employer,
    HistoryEntry,
    Person,
    Programme,
    Qualification,
    ReferenceFigure,
    Session,
    TrainingRecord,
)

PEOPLE = "workforce_people"
HISTORY = "workforce_history"
PROGRAMMES = "training_programmes"
SESSIONS = "training_sessions"
RECORDS = "training_records"
FIGURES = "reference_figures"
CHUNK = 1000

declare(
    PEOPLE,
    IndexModel("id_card_hash", unique=True, name="id_card_hash_unique"),
    IndexModel("staff_id", unique=True, partialFilterExpression={"staff_id": {"$type": "string"}}, name="staff_id"),
    IndexModel([("county_code", ASCENDING), ("occupation", ASCENDING), ("start_date", ASCENDING)], name="county"),
    IndexModel([("city_code", ASCENDING), ("occupation", ASCENDING), ("start_date", ASCENDING)], name="city"),
    IndexModel([("province_code", ASCENDING), ("occupation", ASCENDING), ("start_date", ASCENDING)], name="province"),
    IndexModel([("division", ASCENDING), ("_id", ASCENDING)], name="division"),
    IndexModel([("employer.station_id", ASCENDING), ("_id", ASCENDING)], name="station"),
)
declare(HISTORY, IndexModel([("person_id", ASCENDING), ("at", ASCENDING)], name="person_at"))
declare(PROGRAMMES, IndexModel([("organiser_division", ASCENDING), ("_id", ASCENDING)], name="organiser"))
declare(SESSIONS, IndexModel([("programme_id", ASCENDING), ("starts_on", ASCENDING)], name="programme"))
declare(
    RECORDS,
    IndexModel([("session_id", ASCENDING), ("person_id", ASCENDING)], unique=True, name="session_person_unique"),
    IndexModel([("person_id", ASCENDING), ("_id", ASCENDING)], name="person"),
    IndexModel([("county_code", ASCENDING), ("status", ASCENDING), ("completed_on", ASCENDING)], name="county"),
    IndexModel([("city_code", ASCENDING), ("status", ASCENDING), ("completed_on", ASCENDING)], name="city"),
    IndexModel([("province_code", ASCENDING), ("status", ASCENDING), ("completed_on", ASCENDING)], name="province"),
)
declare(FIGURES, IndexModel([("division", ASCENDING), ("year", ASCENDING)], unique=True, name="division_year"))


# ---------------------------------------------------------------- documents <-> records


def person_document(
    *,
    fields: dict[str, Any],
    id_card_enc: str,
    id_card_hash: str,
    id_card_masked: str,
    birth_date: str,
    gender: str,
    employer_name: str,
    station_id: str | None,
    actor: dict[str, str],
    now: datetime,
) -> dict[str, Any]:
    """The stored shape of a new register entry (``fields`` as :func:`rules.check_person_fields` returns them)."""
    division = fields["division"]
    return {
        "name": fields["name"],
        "id_card_masked": id_card_masked,
        "id_card_enc": id_card_enc,
        "id_card_hash": id_card_hash,
        "birth_date": birth_date,
        "gender": gender,
        "phone": fields.get("phone"),
        "occupation": fields.get("occupation") or "social_work",
        "qualification": {
            "level": fields.get("qualification_level") or "none",
            "certificate_no": fields.get("certificate_no"),
            "year": fields.get("certificate_year"),
        },
        "employer": {"kind": fields["employer_kind"], "name": employer_name, "station_id": station_id},
        "division": division,
        "county_code": division[:6],
        "city_code": division[:4] + "00",
        "province_code": division[:2] + "0000",
        "post": fields.get("post"),
        "role": fields["role"],
        "status": fields.get("status") or "active",
        "start_date": fields["start_date"],
        "end_date": fields.get("end_date"),
        "staff_id": fields.get("staff_id"),
        "version": 1,
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }


def person_changes(flat: dict[str, Any]) -> dict[str, Any]:
    """The stored ``$set`` of changed flat register fields (nested and division fields placed)."""
    out: dict[str, Any] = {}
    nested = {
        "qualification_level": "qualification.level",
        "certificate_no": "qualification.certificate_no",
        "certificate_year": "qualification.year",
        "employer_kind": "employer.kind",
        "employer_name": "employer.name",
        "station_id": "employer.station_id",
    }
    for key, value in flat.items():
        out[nested.get(key, key)] = value
        if key == "division":
            out.update(county_code=value[:6], city_code=value[:4] + "00", province_code=value[:2] + "0000")
    return out


def flat_of(person: Person) -> dict[str, Any]:
    """A register entry as the flat fields a body or CSV row gives (for comparisons and history)."""
    return {
        "name": person.name,
        "phone": person.phone,
        "occupation": person.occupation,
        "qualification_level": person.qualification.level,
        "certificate_no": person.qualification.certificate_no,
        "certificate_year": person.qualification.year,
        "employer_kind": person.employer.kind,
        "employer_name": person.employer.name,
        "station_id": person.employer.station_id,
        "division": person.division,
        "post": person.post,
        "role": person.role,
        "status": person.status,
        "start_date": person.start_date,
        "end_date": person.end_date,
        "staff_id": person.staff_id,
    }


def person_from_doc(doc: dict[str, Any]) -> Person:
    q, e = doc.get("qualification") or {}, doc.get("employer") or {}
    return Person(
        id=str(doc["_id"]),
        name=doc["name"],
        id_card_masked=doc["id_card_masked"],
        gender=doc.get("gender") or "",
        birth_date=doc.get("birth_date") or "",
        phone=doc.get("phone"),
        occupation=doc.get("occupation") or "social_work",
        qualification=Qualification(
            level=q.get("level") or "none", certificate_no=q.get("certificate_no"), year=q.get("year")
        ),
        employer=Employer(kind=e.get("kind") or "", name=e.get("name") or "", station_id=e.get("station_id")),
        division=doc["division"],
        county_code=doc["county_code"],
        city_code=doc["city_code"],
        post=doc.get("post"),
        role=doc["role"],
        status=doc["status"],
        start_date=doc["start_date"],
        end_date=doc.get("end_date"),
        staff_id=doc.get("staff_id"),
        version=int(doc.get("version") or 1),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def history_document(
    person_id: str | tuple[str, int], *, action: str, actor: dict[str, str], changes: dict[str, Any], at: datetime
) -> dict[str, Any]:
    """The stored shape of one change of a register entry."""
    return {"person_id": person_id, "at": at, "actor": actor, "action": action, "changes": changes}


def record_document(
    *,
    person: dict[str, Any],
    session: Session,
    programme_name: str,
    fields: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The stored shape of a new training record; ``person`` holds id, name and division."""
    division = person["division"]
    return {
        "person_id": person["id"],
        "person_name": person["name"],
        "session_id": session.id,
        "programme_id": session.programme_id,
        "programme_name": programme_name,
        "category": session.category,
        "tier": session.tier,
        "division": division,
        "county_code": division[:6],
        "city_code": division[:4] + "00",
        "province_code": division[:2] + "0000",
        "status": fields.get("status") or "enrolled",
        "attended_hours": float(fields.get("attended_hours") or 0.0),
        "completed_on": fields.get("completed_on"),
        "certificate_no": fields.get("certificate_no"),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _record(doc: dict[str, Any]) -> TrainingRecord:
    return TrainingRecord(
        id=str(doc["_id"]),
        person_id=doc["person_id"],
        person_name=doc.get("person_name") or "",
        session_id=doc["session_id"],
        programme_id=doc["programme_id"],
        programme_name=doc.get("programme_name") or "",
        category=doc["category"],
        tier=doc["tier"],
        division=doc["division"],
        status=doc["status"],
        attended_hours=float(doc.get("attended_hours") or 0.0),
        completed_on=doc.get("completed_on"),
        certificate_no=doc.get("certificate_no"),
        version=int(doc.get("version") or 1),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _fields_of(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "id")


def _build(cls: Any, doc: dict[str, Any]) -> Any:
    return cls(id=str(doc["_id"]), **{k: doc.get(k) for k in _fields_of(cls)})


async def _page(col: Any, query: dict[str, Any], limit: int, cursor: str | None, build: Any) -> Page[Any]:
    q = dict(query)
    if cursor:
        [after] = decode_cursor(cursor, str, check=lambda values: is_id(values[0]))
        q["_id"] = {"$gt": after}
    docs = await col.find(q).sort("_id", ASCENDING).limit(limit + 1).to_list()
    items, next_cursor = paged([build(d) for d in docs], limit, lambda item: encode_cursor(item.id))
    return Page(items=items, next_cursor=next_cursor)


def _person_taken(exc: BaseException) -> ConflictError:
    text = str(exc)
    if "staff_id" in text:
        return ConflictError("staff_account_linked", "That staff account is linked to another person on the register.")
    return ConflictError("person_already_registered", "A person with this ID number is already on the register.")


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

    # -- register

    async def insert_person(self, doc: dict[str, Any], history: dict[str, Any]) -> Person:
        """Put one person on the register with their first history entry (together or not at all)."""
        doc = {**doc, "_id": new_id()}

        async def write(session: Any) -> None:
            try:
                await self.people.insert_one(doc, session=session)
            except DuplicateKeyError as exc:
                raise _person_taken(exc) from None
            await self.history.insert_one({**history, "_id": new_id(), "person_id": doc["_id"]}, session=session)

        await run_transaction(self.db, write)
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
                raise _person_taken(exc) from None
            if result.matched_count == 0:
                raise ConflictError("person_changed", "The entry was changed meanwhile; reload and retry.")
            await self.history.insert_one({**history, "_id": new_id()}, session=session)

        await self.get_person(person_id)
        await run_transaction(self.db, write)
        return await self.get_person(person_id)

    async def people_by_hash(self, hashes: Iterable[str]) -> dict[str, Person]:
        """Register entries by ID-number hash (unknown hashes left out)."""
        wanted = list(set(hashes))
        out: dict[str, Person] = {}
        for start in range(0, len(wanted), CHUNK):
            async for doc in self.people.find({"id_card_hash": {"$in": wanted[start : start + CHUNK]}}):
                out[doc["id_card_hash"]] = person_from_doc(doc)
        return out

    async def list_people(self, query: dict[str, Any], *, limit: int, cursor: str | None) -> Page[Person]:
        """Register entries matching ``query`` in registration order, one page."""
        return await _page(self.people, query, limit, cursor, person_from_doc)

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
        ids = [new_id() for _ in inserts]
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
                raise _person_taken(exc) from None
            for start in range(0, len(entries), CHUNK):
                await self.history.insert_many(entries[start : start + CHUNK], session=session)

        await run_transaction(self.db, write)

    async def person_history(self, person_id: str) -> list[HistoryEntry]:
        """Every change of one entry, oldest first."""
        docs = await self.history.find({"person_id": person_id}).sort([("at", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [_build(HistoryEntry, d) for d in docs]

    async def aggregate_people(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run an aggregation over the register."""
        return await (await self.people.aggregate(pipeline)).to_list()

    # -- training

    async def insert_programme(self, doc: dict[str, Any]) -> Programme:
        """Add a training programme."""
        doc = {**doc, "_id": new_id()}
        await self.programmes.insert_one(doc)
        return _build(Programme, doc)

    async def get_programme(self, programme_id: str) -> Programme:
        """One programme by id."""
        doc = await self.programmes.find_one({"_id": programme_id}) if is_id(programme_id) else None
        if doc is None:
            raise NotFoundError("programme_not_found", f"There is no training programme {programme_id!r}.")
        return _build(Programme, doc)

    async def list_programmes(self, query: dict[str, Any], *, limit: int, cursor: str | None) -> Page[Programme]:
        """Programmes matching ``query``, one page."""
        return await _page(self.programmes, query, limit, cursor, lambda d: _build(Programme, d))

    async def insert_session(self, doc: dict[str, Any]) -> Session:
        """Add a session of a programme."""
        doc = {**doc, "_id": new_id()}
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
                out[doc["person_id"]] = _record(doc)
        return out

    async def apply_records(
        self, inserts: list[dict[str, Any]], updates: list[tuple[str, int, dict[str, Any]]]
    ) -> None:
        """Write new training records and changes in one transaction: all or none."""
        docs = [{**d, "_id": new_id()} for d in inserts]

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

        await run_transaction(self.db, write)

    async def get_record(self, record_id: str) -> TrainingRecord:
        """One training record by id."""
        doc = await self.records.find_one({"_id": record_id}) if is_id(record_id) else None
        if doc is None:
            raise NotFoundError("record_not_found", f"There is no training record {record_id!r}.")
        return _record(doc)

    async def update_record(self, record_id: str, version: int, changes: dict[str, Any]) -> TrainingRecord:
        """Change a record still at ``version`` (409 ``record_changed``)."""
        result = await self.records.update_one(
            {"_id": record_id, "version": version}, {"$set": changes, "$inc": {"version": 1}}
        )
        if result.matched_count == 0:
            await self.get_record(record_id)
            raise ConflictError("record_changed", "The record was changed meanwhile; reload and retry.")
        return await self.get_record(record_id)

    async def insert_record(self, doc: dict[str, Any]) -> TrainingRecord:
        """Enrol one person in a session (409 ``already_enrolled``)."""
        doc = {**doc, "_id": new_id()}
        try:
            await self.records.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError("already_enrolled", "The person is already enrolled in this session.") from None
        return _record(doc)

    async def list_records(self, query: dict[str, Any], *, limit: int, cursor: str | None) -> Page[TrainingRecord]:
        """Training records matching ``query``, one page."""
        return await _page(self.records, query, limit, cursor, _record)

    async def aggregate_records(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run an aggregation over the training records."""
        return await (await self.records.aggregate(pipeline)).to_list()

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

    async def list_figures(self, query: dict[str, Any], *, limit: int, cursor: str | None) -> Page[ReferenceFigure]:
        """Reference figures matching ``query``, one page."""
        return await _page(self.figures, query, limit, cursor, lambda d: _build(ReferenceFigure, d))

    async def figures_under(self, prefix: str, year: int) -> list[ReferenceFigure]:
        """Every figure of ``year`` whose division starts with ``prefix``."""
        query = {"year": year, "division": {"$regex": "^" + prefix}} if prefix.isdigit() else {"_id": None}
        return [_build(ReferenceFigure, d) async for d in self.figures.find(query).sort("division", ASCENDING)]
