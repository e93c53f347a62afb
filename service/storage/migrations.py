"""Start-up migrations of stored data (idempotent, cheap when there is nothing to do).

Ids: documents written before the id convention of ``service.common.ids`` had BSON ObjectId
``_id`` values in the collections listed in ``REKEYED``, while every reference to them was
stored as a string, so lookups by a stored reference found nothing. Each such document is
re-keyed to the string form of its id: deleted and inserted again in one transaction (an
``_id`` cannot be updated in place, and the unique indexes of these collections would refuse
a copy made before the delete). References need no change: they already hold the string.
Uploaded files are stored in GridFS, whose chunks point at their file by ``files_id``; both
move together.

Event subjects: events of records that are not cases (visit reminders and misses, alerts,
volunteer service) were keyed by a made-up ``case_id`` (``visit:<elder_id>``,
``alert:<id>`` ...), unique with ``seq`` and ``type`` (index ``case_seq_type``). Each event
now has a ``subject`` ({kind, id}), and ``case_id`` only when it belongs to a case; the
unique key is the subject's (``subject_seq_type``). The old index is dropped first (with
``case_id`` absent, two people's misses of one period would collide in it), then every event
without a subject is given one. Readers also accept an event without one, as written by a
process not yet upgraded.

Case idempotency: cases filed with an Idempotency-Key once carried an ``idempotency_id``
under a unique partial index; the key's own record now names the case it creates, so the
field is no longer written and its index is dropped wherever it is still present. Looking at
the cases' index list is one command, so every start checks (an older process starting beside
an upgraded one during a rolling upgrade may have made the index again).

Descending time keys after an equality: the embedded server reads ``{"station_id": s,
"created_at": {"$gte": t}}`` from an index ``(station_id, created_at desc, _id desc)`` as if
the bound were ``$gt``, so a newest-first window dropped the records made exactly at its lower
edge (measured on SecantusDB 0.7.0b3; an ascending key, read backwards, is right on every
server). Those indexes are declared ascending now; the descending ones are dropped at start.

List marks' time: where each case list began (``case_list_marks``) carry ``left_at``,
the time they were last left, under a TTL index, so the marks of a list nobody reads any more go
away. Marks left before carry none; each start gives them the time of that start (once: then
they all carry one), so they go away too if they never move again.

Cases' city and province codes: a city's or the province's supervisor lists the cases whose
``division`` starts with the prefix, which is now read as an equality on ``city_code`` (the
division's first four digits and ``00``) or ``province_code`` (its first two and ``0000``), stored
wherever the division is set. Cases written before are given both once, from their division,
and for a day after that each start gives them to the cases filed meanwhile by processes of the
older release (a rolling upgrade).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from service.storage.transactions import run_transaction

log = logging.getLogger("huimin.migrations")

# Named here, not imported from the areas that own them: storage sits below every area, and a
# migration describes the data as it was stored, which does not follow later renames.
REKEYED = ("staff", "residents", "stations", "elders", "service_types")
GRIDFS_BUCKETS = ("uploads",)
OBJECT_ID = {"$type": "objectId"}
# One document per finished migration, so a start after it reads one document, not every collection.
MIGRATIONS = "migrations"
STRING_IDS = "string_ids"
EVENT_SUBJECTS = "event_subjects"
EVENTS = "events"
OLD_EVENT_KEY_INDEX = "case_seq_type"
# The prefixes of the made-up case ids, and the kind of record each stood for ("visit:" keyed a person).
EVENT_KEY_KINDS = {
    "visit": "elder",
    "alert": "alert",
    "activity": "activity",
    "certificate": "certificate",
    "attendance": "attendance",
    "volunteer": "volunteer",
}
BATCH = 500
CASES = "cases"
CASE_REGIONS = "case_regions"
LIST_MARKS = "case_list_marks"
# How long after the codes were first given each start also looks at the cases filed since.
ROLLING_UPGRADE_WINDOW = timedelta(days=1)
OLD_CASE_IDEMPOTENCY_FIELD = "idempotency_id"
# Index keys superseded by the same keys with the time ascending (see the module's docstring).
DESCENDING_AFTER_EQUALITY: dict[str, tuple[tuple[tuple[str, int], ...], ...]] = {
    CASES: (
        (("owner", 1), ("created_at", -1)),
        (("created_by.subject", 1), ("created_at", -1)),
        (("station_id", 1), ("created_at", -1), ("_id", -1)),
        (("county_code", 1), ("created_at", -1), ("_id", -1)),
        (("division", 1), ("created_at", -1)),
    ),
    "webhook_subscriptions": ((("client_id", 1), ("created_at", -1), ("_id", -1)),),
    "webhook_deliveries": ((("subscription_id", 1), ("created_at", -1), ("_id", -1)),),
}


async def _rekey(db: AsyncDatabase[dict[str, Any]], name: str) -> int:
    col = db[name]
    moved = 0
    async for doc in col.find({"_id": OBJECT_ID}):

        async def move(session: Any, doc: dict[str, Any] = doc) -> None:
            await col.delete_one({"_id": doc["_id"]}, session=session)
            await col.insert_one({**doc, "_id": str(doc["_id"])}, session=session)

        await run_transaction(db, move)
        moved += 1
    return moved


async def _rekey_gridfs(db: AsyncDatabase[dict[str, Any]], bucket: str) -> int:
    files, chunks = db[f"{bucket}.files"], db[f"{bucket}.chunks"]
    moved = 0
    async for doc in files.find({"_id": OBJECT_ID}):

        async def move(session: Any, doc: dict[str, Any] = doc) -> None:
            new = str(doc["_id"])
            await chunks.update_many({"files_id": doc["_id"]}, {"$set": {"files_id": new}}, session=session)
            await files.delete_one({"_id": doc["_id"]}, session=session)
            await files.insert_one({**doc, "_id": new}, session=session)

        await run_transaction(db, move)
        moved += 1
    return moved


async def rekey_object_ids(db: AsyncDatabase[dict[str, Any]]) -> dict[str, int]:
    """Give every document that still has an ObjectId ``_id`` its string id; returns counts moved."""
    if await db[MIGRATIONS].find_one({"_id": STRING_IDS}) is not None:
        return {}
    moved: dict[str, int] = {}
    for name in REKEYED:
        moved[name] = await _rekey(db, name)
    for bucket in GRIDFS_BUCKETS:
        moved[f"{bucket}.files"] = await _rekey_gridfs(db, bucket)
    done = {k: v for k, v in moved.items() if v}
    if done:
        log.info("re-keyed documents to string ids", extra={"moved": done})
    await db[MIGRATIONS].update_one({"_id": STRING_IDS}, {"$set": {"moved": moved}}, upsert=True)
    return moved


def event_subject_update(doc: dict[str, Any]) -> dict[str, Any]:
    """The update that gives one stored event its subject (and drops a made-up ``case_id``)."""
    key = str(doc.get("case_id") or "")
    prefix, sep, rest = key.partition(":")
    stored = doc.get("data")
    data = stored if isinstance(stored, dict) else {}
    if sep and prefix in EVENT_KEY_KINDS:
        return {"$set": {"subject": {"kind": EVENT_KEY_KINDS[prefix], "id": rest}}, "$unset": {"case_id": ""}}
    if str(doc.get("type", "")).startswith("alert.") and data.get("alert_id"):
        # An alert that opened a case was keyed by that case: the alert is the subject, the case stays.
        return {"$set": {"subject": {"kind": "alert", "id": str(data["alert_id"])}}}
    return {"$set": {"subject": {"kind": "case", "id": key}}}


async def give_events_subjects(db: AsyncDatabase[dict[str, Any]]) -> int:
    """Give every event written before subjects its subject, once; returns how many were changed."""
    if await db[MIGRATIONS].find_one({"_id": EVENT_SUBJECTS}) is not None:
        return 0
    events = db[EVENTS]
    with contextlib.suppress(OperationFailure):  # a database made after the change never had it
        await events.drop_index(OLD_EVENT_KEY_INDEX)
    changed = 0
    while True:
        projection = {"case_id": 1, "type": 1, "data.alert_id": 1}
        batch = await events.find({"subject": {"$exists": False}}, projection).to_list(BATCH)
        if not batch:
            break
        ops = [UpdateOne({"_id": d["_id"], "subject": {"$exists": False}}, event_subject_update(d)) for d in batch]
        result = await events.bulk_write(ops, ordered=False)
        changed += result.modified_count
    if changed:
        log.info("gave events their subjects", extra={"events": changed})
    await db[MIGRATIONS].update_one({"_id": EVENT_SUBJECTS}, {"$set": {"changed": changed}}, upsert=True)
    return changed


async def drop_case_idempotency_index(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    """Drop the cases' old ``idempotency_id`` index wherever it is present; returns the names dropped."""
    info = await db[CASES].index_information()
    old = [name for name, spec in info.items() if [k for k, _ in spec["key"]] == [OLD_CASE_IDEMPOTENCY_FIELD]]
    for name in old:
        with contextlib.suppress(OperationFailure):  # another process starting at once dropped it first
            await db[CASES].drop_index(name)
    if old:
        log.info("dropped the cases' old idempotency index", extra={"indexes": old})
    return old


async def drop_descending_time_indexes(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    """Drop the indexes of :data:`DESCENDING_AFTER_EQUALITY` wherever present; returns their names."""
    dropped = []
    for collection, superseded in DESCENDING_AFTER_EQUALITY.items():
        info = await db[collection].index_information()
        for name, spec in info.items():
            key = tuple((k, d) for k, d in spec["key"])
            if all(isinstance(d, int | float) for _, d in key) and tuple((k, int(d)) for k, d in key) in superseded:
                with contextlib.suppress(OperationFailure):  # another process starting at once dropped it first
                    await db[collection].drop_index(name)
                dropped.append(f"{collection}.{name}")
    if dropped:
        log.info("dropped descending time indexes superseded by ascending ones", extra={"indexes": dropped})
    return dropped


def case_region_codes(division: Any) -> dict[str, str | None]:
    """The ``city_code`` and ``province_code`` of a case with this ``division`` (as the cases area writes them)."""
    digits = division if isinstance(division, str) else ""
    return {
        "city_code": digits[:4] + "00" if len(digits) >= 4 else None,
        "province_code": digits[:2] + "0000" if len(digits) >= 2 else None,
    }


async def give_cases_regions(db: AsyncDatabase[dict[str, Any]], *, now: datetime | None = None) -> int:
    """Give every case written without city and province codes both; returns how many were changed.

    The whole collection once; then, for a day after that, at every start the cases filed since an
    hour before it (a process of the older release still serving during a rolling upgrade files
    cases without the codes; the last process restarted runs this after the last of them stopped).
    """
    now = now or datetime.now(UTC)
    done = await db[MIGRATIONS].find_one({"_id": CASE_REGIONS})
    if done is not None:
        first_run = done.get("at")
        if not isinstance(first_run, datetime):
            return 0
        first_run = first_run if first_run.tzinfo else first_run.replace(tzinfo=UTC)
        if now - first_run > ROLLING_UPGRADE_WINDOW:
            return 0
        missing: dict[str, Any] = {
            "created_at": {"$gte": first_run - timedelta(hours=1)},
            "province_code": {"$exists": False},
        }
    else:
        missing = {"province_code": {"$exists": False}}
    cases = db[CASES]
    changed, ops = 0, []
    # One pass over the cases lacking the codes (a find per batch would scan the collection each time
    # on a server that reads a filter with no index whole).
    async for doc in cases.find(missing, {"division": 1}):
        ops.append(UpdateOne({"_id": doc["_id"]}, {"$set": case_region_codes(doc.get("division"))}))
        if len(ops) >= BATCH:
            changed += (await cases.bulk_write(ops, ordered=False)).modified_count
            ops = []
    if ops:
        changed += (await cases.bulk_write(ops, ordered=False)).modified_count
    if changed:
        log.info("gave cases their city and province codes", extra={"cases": changed})
    if done is None:
        await db[MIGRATIONS].update_one({"_id": CASE_REGIONS}, {"$set": {"changed": changed, "at": now}}, upsert=True)
    return changed


async def date_list_marks(db: AsyncDatabase[dict[str, Any]], *, now: datetime | None = None) -> int:
    """Give list marks left without ``left_at`` the time of this start; returns how many were changed."""
    result = await db[LIST_MARKS].update_many(
        {"left_at": {"$exists": False}}, {"$set": {"left_at": now or datetime.now(UTC)}}
    )
    return result.modified_count
