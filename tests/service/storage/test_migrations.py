"""Documents written before the id convention get their string ids at start-up, once."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from handlers.keys import CTX
from run import create_app
from service.identity.repository.residents import ResidentsRepository
from service.identity.repository.staff import StaffRepository
from service.storage.migrations import MIGRATIONS, STRING_IDS, rekey_object_ids
from tests.factories import make_staff, make_station
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
