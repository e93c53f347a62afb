"""Documents written before the id convention get their string ids at start-up, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient

from handlers.keys import CTX
from run import create_app
from service.cases.models import Subject
from service.cases.repository.events import EventsRepository
from service.common.context import Context
from service.identity.repository.residents import ResidentsRepository
from service.identity.repository.staff import StaffRepository
from service.storage.migrations import (
    EVENT_SUBJECTS,
    MIGRATIONS,
    OLD_EVENT_KEY_INDEX,
    STRING_IDS,
    drop_case_idempotency_index,
    drop_descending_time_indexes,
    give_events_subjects,
    rekey_object_ids,
)
from tests.factories import make_case, make_staff, make_station, make_wechat_resident
from tests.handlers.test_uploads import png


async def test_object_id_documents_are_rekeyed_and_found_by_their_string_id(aiohttp_client: Any, settings: Any) -> None:
    client = await aiohttp_client(create_app(settings))
    db = client.app[CTX].db
    station = await make_station(client.app[CTX])
    await db[MIGRATIONS].delete_many({})  # this database is older than the convention
    # The shapes an older release wrote: the driver chose ObjectId _ids; references held strings.
    legacy_staff, legacy_resident = ObjectId(), ObjectId()
    await db["staff"].insert_one(
        {
            "_id": legacy_staff,
            "username": "old.worker",
            "name": "老员工",
            "role": "worker",
            "station_id": station.id,
            "active": True,
            "password_hash": "x",
            "failed_logins": 0,
            "created_at": station.created_at,
        }
    )
    await db["residents"].insert_one({"_id": legacy_resident, "phone": "13900000001", "created_at": station.created_at})
    await db["uploads.files"].insert_one(
        {
            "_id": (file_id := ObjectId()),
            "length": 3,
            "chunkSize": 255 * 1024,
            "uploadDate": station.created_at,
            "filename": "a.png",
            "metadata": {},
        }
    )
    await db["uploads.chunks"].insert_one({"files_id": file_id, "n": 0, "data": png()[:3]})

    moved = await rekey_object_ids(db)
    assert moved["staff"] == 1 and moved["residents"] == 1 and moved["uploads.files"] == 1
    assert (await StaffRepository(db).get(str(legacy_staff))).username == "old.worker"
    assert (await ResidentsRepository(db).get(str(legacy_resident))).phone == "13900000001"
    assert await db["uploads.chunks"].find_one({"files_id": str(file_id)}) is not None
    assert await db["staff"].count_documents({"_id": {"$type": "objectId"}}) == 0
    assert await db[MIGRATIONS].find_one({"_id": STRING_IDS}) is not None
    # Once recorded, a start does not walk the collections again.
    assert await rekey_object_ids(db) == {}


async def test_a_new_database_records_the_migration_at_first_start(aiohttp_client: Any, settings: Any) -> None:
    client = await aiohttp_client(create_app(settings))
    db = client.app[CTX].db
    member = await make_staff(client.app[CTX], role="admin")
    assert isinstance((await db["staff"].find_one({"username": member.username}))["_id"], str)
    assert await db[MIGRATIONS].find_one({"_id": STRING_IDS}) is not None


async def test_events_keyed_by_made_up_case_ids_get_subjects_once(ctx: Context) -> None:
    db = ctx.db
    station = await make_station(ctx)
    case = await make_case(ctx, await make_wechat_resident(ctx))
    await db[MIGRATIONS].delete_many({"_id": EVENT_SUBJECTS})  # this database is older than subjects
    await db["events"].create_index([("case_id", 1), ("seq", 1), ("type", 1)], unique=True, name="case_seq_type")
    at = datetime(2026, 3, 9, tzinfo=UTC)
    # The shapes an older release wrote: everything keyed by case_id, made up for what is not a case.
    common = {"actor": {"subject": "system", "role": "system"}, "time": at, "created_at": at, "division": station.code}
    old = [
        {"_id": "e-miss-1", "case_id": "visit:elder-1", "seq": 2026110, "type": "visit.missed", "data": {}},
        {"_id": "e-miss-2", "case_id": "visit:elder-2", "seq": 2026110, "type": "visit.missed", "data": {}},
        {"_id": "e-alert-1", "case_id": "alert:al-1", "seq": 1, "type": "alert.received", "data": {"alert_id": "al-1"}},
        {"_id": "e-alert-2", "case_id": case["id"], "seq": 1, "type": "alert.received", "data": {"alert_id": "al-2"}},
        {"_id": "e-cert", "case_id": "certificate:c-1", "seq": 1, "type": "certificate.issued", "data": {}},
    ]
    await db["events"].delete_many({"_id": {"$in": [d["_id"] for d in old]}})
    await db["events"].update_many({"case_id": case["id"]}, {"$unset": {"subject": ""}})
    await db["events"].insert_many([{**common, **d} for d in old])

    assert await give_events_subjects(db) == len(old) + 1  # and the case's own case.created
    stored = {d["_id"]: d async for d in db["events"].find({"_id": {"$in": [d["_id"] for d in old]}})}
    assert stored["e-miss-1"]["subject"] == {"kind": "elder", "id": "elder-1"} and "case_id" not in stored["e-miss-1"]
    assert stored["e-alert-1"]["subject"] == {"kind": "alert", "id": "al-1"} and "case_id" not in stored["e-alert-1"]
    assert stored["e-alert-2"]["subject"] == {"kind": "alert", "id": "al-2"}
    assert stored["e-alert-2"]["case_id"] == case["id"]
    assert stored["e-cert"]["subject"] == {"kind": "certificate", "id": "c-1"}
    created = await db["events"].find_one({"case_id": case["id"], "type": "case.created"})
    assert created is not None and created["subject"] == {"kind": "case", "id": case["id"]}
    assert OLD_EVENT_KEY_INDEX not in await db["events"].index_information()
    # Read back, the events carry their subjects; consumers still see the one-string key.
    read = await EventsRepository(db).by_ids(["e-miss-1", "e-alert-2"])
    assert read["e-miss-1"].case_id is None and read["e-miss-1"].key == "visit:elder-1"
    assert read["e-alert-2"].subject == Subject("alert", "al-2") and read["e-alert-2"].key == case["id"]
    # Recorded: a later start does nothing; and two people's misses of one period both fit the new key.
    assert await give_events_subjects(db) == 0
    assert await db["events"].count_documents({"type": "visit.missed", "seq": 2026110}) == 2


async def test_an_event_not_yet_given_its_subject_is_read_with_one(ctx: Context) -> None:
    # Written by a process of the older release still running beside an upgraded one.
    at = datetime(2026, 3, 9, tzinfo=UTC)
    doc = {"_id": "e-old", "case_id": "visit:elder-9", "seq": 1, "type": "visit.due", "time": at, "created_at": at}
    await ctx.db["events"].insert_one({**doc, "actor": {"subject": "system", "role": "system"}, "data": {}})
    [event] = (await EventsRepository(ctx.db).by_ids(["e-old"])).values()
    assert event.subject == Subject("elder", "elder-9") and event.case_id is None and event.key == "visit:elder-9"


async def test_the_old_case_idempotency_index_is_dropped_at_start_and_a_second_start_does_nothing(
    aiohttp_client: Any, settings: Any
) -> None:
    # A database an older release made: the cases' unique partial index on idempotency_id.
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        await mongo[settings.mongodb_db]["cases"].create_index(
            "idempotency_id", unique=True, partialFilterExpression={"idempotency_id": {"$exists": True}}
        )
        assert "idempotency_id_1" in await mongo[settings.mongodb_db]["cases"].index_information()
    finally:
        await mongo.close()
    first = await aiohttp_client(create_app(settings))
    db = first.app[CTX].db
    after_first = await db["cases"].index_information()
    assert not [n for n, spec in after_first.items() if [k for k, _ in spec["key"]] == ["idempotency_id"]]
    assert await drop_case_idempotency_index(db) == []
    second = await aiohttp_client(create_app(settings))
    assert await second.app[CTX].db["cases"].index_information() == after_first


async def test_descending_time_indexes_are_dropped_at_start_and_their_ascending_ones_serve_the_windows(
    aiohttp_client: Any, settings: Any
) -> None:
    # A database an older release made: a station's newest-first index with the time descending.
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        await mongo[settings.mongodb_db]["cases"].create_index([("station_id", 1), ("created_at", -1), ("_id", -1)])
        await mongo[settings.mongodb_db]["webhook_deliveries"].create_index(
            [("subscription_id", 1), ("created_at", -1), ("_id", -1)]
        )
    finally:
        await mongo.close()
    first = await aiohttp_client(create_app(settings))
    db = first.app[CTX].db
    for collection in ("cases", "webhook_deliveries"):
        keys = [[(k, int(d)) for k, d in spec["key"]] for spec in (await db[collection].index_information()).values()]
        assert not [k for k in keys if len(k) > 1 and k[1] == ("created_at", -1)], collection
        assert [k for k in keys if len(k) > 1 and k[1] == ("created_at", 1)], collection
    assert await drop_descending_time_indexes(db) == []

    # What the descending key got wrong: records made exactly at a window's lower edge.
    station = await make_station(first.app[CTX])
    resident = await make_wechat_resident(first.app[CTX])
    at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    made = []
    for minutes in (0, 0, 5, 5, 10):
        first.app[CTX].clock = lambda m=minutes: at + timedelta(minutes=m)
        made.append((await make_case(first.app[CTX], resident))["id"])
    window = {
        "station_id": station.id,
        "created_at": {"$gte": at + timedelta(minutes=5), "$lt": at + timedelta(minutes=10)},
    }
    found = [d["_id"] async for d in db["cases"].find(window).sort([("created_at", -1), ("_id", -1)])]
    assert sorted(found) == sorted(made[2:4])
