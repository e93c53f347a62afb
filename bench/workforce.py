"""The plan's indicators for a province-sized workforce, against the same aggregations sent through the driver.

A synthetic register of 150,000 people (80% social workers, 20% elderly-care workers, in
every county of Anhui, about a tenth of them left) and 1,000,000 training records over the
2021-2025 plan period is loaded in bulk, in the document shape the repository writes
(:func:`service.workforce.repository.person_document` and ``record_document``), with the
repository's indexes built after the load. Then, for the province, a city and a county:

- ``cold``: :func:`service.workforce.plan.plan_indicators` for 2025, the whole answer (the
  register and training aggregations, the reference figures, station coverage through the
  stations service and the weekly visit rate through the visits service), with the stored
  register figures stale (the register's change counter moved on), so they are computed;
- ``warm``: the same answer while the stored figures are fresh (reused, see
  ``service.workforce.plan.register_figures.SNAPSHOT_RULE``), as every request but the first
  after a register change gets it;
- ``floor``: the same aggregations issued directly through pymongo: the people and
  training pipelines, the figures query twice, the active stations under the division, and
  the visit-rate pipeline.

It measures at growing sizes in one run: 15,000 people and 100,000 records, then the same
register grown to 150,000 and 1,000,000 (``--quick``: 1,500/10,000, then 15,000/100,000;
``BENCH_WORKFORCE_PEOPLE`` and ``BENCH_WORKFORCE_RECORDS`` set the largest size, a tenth of it
comes first). Each growth step loads through the driver in bulk: the secondary indexes are
dropped, the new documents go in with ``insert_many`` in batches of 10,000, and the indexes
are built again (the embedded server writes unindexed documents several times faster than
indexed ones, and builds an index over them faster still). The load's phases are timed. It
prints each ratio (ours / floor) and how both grow from one size to the next.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from config import load_settings
from service.common import pii
from service.common.context import Context
from service.common.ids import new_id
from service.common.models import SYSTEM
from service.stations.divisions_data import division_table
from service.storage.embedded import EmbeddedMongo
from service.storage.indexes import ensure_indexes
from service.visits.models import RateScope
from service.visits.periods import period_of
from service.visits.repository.rates import rate_pipeline
from service.visits.stats import rate_query
from service.workforce import rules
from service.workforce.models import RegisterWindow, Session
from service.workforce.plan import plan_indicators
from service.workforce.repository.indexes import META, PEOPLE, RECORDS
from service.workforce.repository.people import person_document
from service.workforce.repository.register_counts import people_pipeline, training_pipeline
from service.workforce.repository.training import record_document

PEOPLE_N = int(os.environ.get("BENCH_WORKFORCE_PEOPLE", "150000"))
RECORDS_N = int(os.environ.get("BENCH_WORKFORCE_RECORDS", "1000000"))
QUICK = (15_000, 100_000)
BATCH = 10_000
NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)  # 2025 is over: its figures are taken on 31 December
YEAR = 2025
ROUNDS = 7  # sessions a person can be in per category, at most
SCOPES = (("province", "340000"), ("city", "341000"), ("county", "341002"))
CATEGORIES = ("certified", "manager", "supervisor")


def people_docs(start: int, n: int, key: bytes) -> list[dict[str, Any]]:
    counties = sorted(c for c, d in division_table().by_code.items() if d.level == "county")
    kinds = ("station", "care_home", "child_welfare", "social_org", "station")
    actor = {"subject": "bench", "role": "admin"}
    docs = []
    for i in range(start, n):
        county = counties[i % len(counties)]
        elderly = i % 5 == 4
        kind = "care_home" if elderly else kinds[i % len(kinds)]
        left = i % 10 == 7
        # unique for up to 1,260,000 people: sequence, birth year and day taken from i
        number = f"{county}{1960 + (i // 1000) % 45}01{1 + (i // 45_000) % 28:02d}{i % 1000:03d}"
        number += pii.id_card_check_char(number)
        fields = {
            "name": f"社工{i}",
            "occupation": "elderly_care" if elderly else "social_work",
            "qualification_level": "none" if elderly else ("assistant", "intermediate", "senior", "none")[i % 4],
            "certificate_no": None if elderly or i % 4 == 3 else f"SW{i:07d}",
            "employer_kind": kind,
            "division": county,
            "role": ("frontline", "frontline", "manager", "supervisor")[i % 4],
            "status": "left" if left else "active",
            "start_date": f"{2015 + i % 11}-{1 + i % 12:02d}-01",
            "end_date": f"{2021 + i % 5}-06-30" if left else None,
            "phone": f"139{i:08d}",
        }
        doc = person_document(
            fields=fields,
            id_card_enc=pii.encrypt(key, number, aad="workforce.id_card"),
            id_card_hash=pii.lookup_hash(key, number),
            id_card_masked=pii.mask_id_card(number),
            birth_date=f"{number[6:10]}-01-01",
            gender="female",
            employer_name=f"单位{i % 500}",
            station_id=new_id() if kind == "station" else None,
            actor=actor,
            now=NOW,
        )
        docs.append({**doc, "_id": new_id()})
    return docs


def sessions_for() -> dict[str, list[Session]]:
    out: dict[str, list[Session]] = {}
    for category in (*CATEGORIES, "elderly_care"):
        out[category] = [
            Session(
                id=new_id(),
                programme_id=new_id(),
                category=category,
                tier=("beginner", "intermediate", "senior")[k % 3],
                organiser_division="340000",
                starts_on=f"{2021 + k % 5}-05-01",
                ends_on=f"{2021 + k % 5}-05-03",
                place="合肥",
                hours=24.0,
                trainer="王教授",
                created_at=NOW,
            )
            for k in range(ROUNDS * ROUNDS)
        ]
    return out


SESSIONS = sessions_for()


def record_docs(start: int, end: int, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records ``start`` to ``end``; person i appears once per round, in a session of a category fitting their
    occupation."""
    sessions = SESSIONS
    docs = []
    for i in range(start, end):
        p = people[i % len(people)]
        r = i // len(people)
        category = "elderly_care" if p["occupation"] == "elderly_care" else CATEGORIES[(r + i) % 3]
        session = sessions[category][(r * ROUNDS + i % ROUNDS) % len(sessions[category])]
        status = ("completed", "completed", "completed", "attended", "not_completed")[i % 5]
        fields = {
            "status": status,
            "attended_hours": 24.0 if status != "enrolled" else 0.0,
            "completed_on": session.ends_on if status == "completed" else None,
        }
        doc = record_document(
            person={"id": p["_id"], "name": p["name"], "division": p["division"]},
            session=session,
            programme_name=f"{category} 培训班",
            fields=fields,
            now=NOW,
        )
        docs.append({**doc, "_id": new_id()})
    return docs


async def insert_batch(col: Any, docs: list[dict[str, Any]]) -> None:
    """insert_many, where a duplicate ``_id`` can only be the driver's retry of a batch the server already wrote
    (a slow server under load): those are taken as written, anything else is raised."""
    try:
        await col.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not all(e.get("code") == 11000 and "_id" in (e.get("keyPattern") or {}) for e in errors):
            raise RuntimeError(f"bulk insert failed: {errors[:1]}") from None


async def insert_chunks(col: Any, docs: list[dict[str, Any]], size: int = BATCH) -> None:
    for k in range(0, len(docs), size):
        await insert_batch(col, docs[k : k + size])


async def grow(
    db: Any, people: list[dict[str, Any]], n_people: int, have_records: int, n_records: int, key: bytes
) -> dict[str, float]:
    """Grow the register to ``n_people`` and the records to ``n_records`` in bulk; the phases' seconds."""
    phases: dict[str, float] = {}
    t = time.perf_counter()
    for name in (PEOPLE, RECORDS):
        await db[name].drop_indexes()
    phases["drop_indexes"] = time.perf_counter() - t
    t = time.perf_counter()
    new_people = people_docs(len(people), n_people, key)
    people.extend(new_people)
    phases["build_people"] = time.perf_counter() - t
    t = time.perf_counter()
    await insert_chunks(db[PEOPLE], new_people)
    phases["insert_people"] = time.perf_counter() - t
    build = insert = 0.0
    for k in range(have_records, n_records, BATCH):
        t = time.perf_counter()
        batch = record_docs(k, min(k + BATCH, n_records), people)
        build += time.perf_counter() - t
        t = time.perf_counter()
        await insert_batch(db[RECORDS], batch)
        insert += time.perf_counter() - t
    phases["build_records"], phases["insert_records"] = build, insert
    t = time.perf_counter()
    await ensure_indexes(db)  # the repository's own index set, one build per index
    phases["build_indexes"] = time.perf_counter() - t
    return phases


async def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


async def floor(db: Any, code: str) -> dict[str, Any]:
    """The same aggregations and reads the plan makes, issued directly through pymongo."""
    prefix = rules.prefix_of(code)
    window = RegisterWindow(
        prefix=prefix,
        as_of=date(YEAR, 12, 31),
        before=date(YEAR - 1, 12, 31),
        year_start=date(YEAR, 1, 1),
        period_start=date(2021, 1, 1),
    )
    [people] = await (await db[PEOPLE].aggregate(people_pipeline(window))).to_list()
    [trained] = await (await db[RECORDS].aggregate(training_pipeline(window))).to_list()
    for _ in range(2):  # older population, care-home beds
        await db["reference_figures"].find({"year": YEAR, "division": {"$regex": "^" + prefix}}).to_list()
    stations_query: dict[str, Any] = {"active": True}
    if len(prefix) == 4:
        stations_query["city_code"] = code
    elif len(prefix) >= 6:
        stations_query["county_code"] = prefix[:6]
    await db["stations"].find(stations_query).sort("code", 1).to_list()
    week = period_of("week", datetime(YEAR, 12, 28, 12, tzinfo=UTC))
    await (
        await db["visit_schedules"].aggregate(
            # the schedules of the division, as the visits service matches them for an admin
            rate_pipeline(rate_query(RateScope(township_prefix=prefix), week, "station", 1))
        )
    ).to_list()
    return {"people": people, "trained": trained}


async def main(sizes: list[tuple[int, int]], repeat: int) -> None:
    # On disk in a temporary directory, not ":memory:": an in-memory server holds the whole
    # data set in its cache (1 GB), which a million training records outgrow; the server's
    # log is kept beside the data (``secantusdb.log``) and printed if the run fails.
    workdir = tempfile.mkdtemp(prefix="bench-workforce-")
    server = EmbeddedMongo(os.path.join(workdir, "data"), durable=False)
    uri = await asyncio.to_thread(server.start)
    name = "bench_workforce"
    settings = load_settings(
        {}, env="test", mongodb_uri=uri, mongodb_db=name, redis_url="redis://127.0.0.1:1/0", log_level="WARNING"
    )
    client: Any = AsyncMongoClient(uri, tz_aware=True, socketTimeoutMS=1_800_000)
    try:
        db = client[name]
        ctx = Context(settings=settings, db=db, redis=None, clock=lambda: NOW)
        people: list[dict[str, Any]] = []
        have_records = 0
        previous: dict[str, tuple[float, float]] = {}
        for size_people, size_records in sizes:
            t = time.perf_counter()
            phases = await grow(db, people, size_people, have_records, size_records, settings.data_key_bytes)
            have_records = size_records
            load_s = time.perf_counter() - t
            print(
                f"\nregister {size_people:,} people, {size_records:,} training records: "
                f"grown in bulk in {load_s:.0f} s ("
                + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
                + f"); load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            print(
                f"{'scope':>8} | {'cold ms':>9} {'warm ms':>9} {'floor ms':>9} {'cold/fl':>7} {'warm/fl':>7} | "
                f"{'growth cold':>11} {'floor':>6} | "
                "workers trained(certified)"
            )
            for label, code in SCOPES:
                await floor(db, code)  # warm the server's cache once

                async def ours(code: str = code) -> Any:
                    return await plan_indicators(ctx=ctx, principal=SYSTEM, division=code, year=YEAR)

                # cold: the register's counter moved on, so the stored figures are stale and computed again
                await db[META].update_one({"_id": "register"}, {"$inc": {"version": 1}}, upsert=True)
                cold_s, report = await timed(ours, 1)
                rounds = repeat if size_records <= 10_000 else 1  # a round of the province takes minutes here
                floor_s, raw = await timed(lambda code=code: floor(db, code), rounds)
                warm_s, warm = await timed(ours, repeat)  # warm: the stored figures, the counter unchanged
                figures = {i.code: i.actual for i in report.indicators}
                expected_total = sum(r["n"] for r in raw["people"]["now"])
                assert figures["social_workers_total"] == expected_total, (figures, expected_total)
                assert {i.code: i.actual for i in warm.indicators} == figures
                assert next(i for i in warm.indicators if i.code == "social_workers_total").computation["snapshot"][
                    "reused"
                ]
                before = previous.get(label)
                growth = f"{cold_s / before[0]:>10.1f}x {floor_s / before[1]:>5.1f}x" if before else f"{'':>11} {'':>6}"
                previous[label] = (cold_s, floor_s)
                print(
                    f"{label:>8} | {cold_s * 1000:>9.0f} {warm_s * 1000:>9.0f} {floor_s * 1000:>9.0f} "
                    f"{cold_s / floor_s:>6.2f}x {warm_s / floor_s:>6.3f}x | {growth} | "
                    f"{figures['social_workers_total']:,.0f} {figures['trained_certified']:,.0f}",
                    file=sys.stdout,
                    flush=True,
                )
        print(
            "cold = the whole plan answer with its stored figures stale (computed again); warm = the same with "
            "them fresh (reused); floor = the same aggregations issued directly through pymongo; "
            "growth = time at this size / time at the size before."
        )
    except Exception:
        log = os.path.join(workdir, "secantusdb.log")
        if os.path.exists(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                print("-- the server's log, last lines --\n" + "".join(f.readlines()[-40:]), file=sys.stderr)
        raise
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)
        shutil.rmtree(workdir, ignore_errors=True)


def run(quick: bool = False) -> int:
    n_people, n_records = QUICK if quick else (PEOPLE_N, RECORDS_N)
    asyncio.run(main([(n_people // 10, n_records // 10), (n_people, n_records)], 3))
    return 0
