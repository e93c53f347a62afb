"""The names of the collections the workforce area owns, and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from service.storage.indexes import declare

PEOPLE = "workforce_people"
HISTORY = "workforce_history"
PROGRAMMES = "training_programmes"
SESSIONS = "training_sessions"
RECORDS = "training_records"
FIGURES = "reference_figures"
# The register's change counter and the plan figures computed at one counter value (see plan.py).
META = "workforce_meta"
SNAPSHOTS = "plan_snapshots"


declare(
    PEOPLE,
    IndexModel("id_card_hash", unique=True, name="id_card_hash_unique"),
    IndexModel("staff_id", unique=True, partialFilterExpression={"staff_id": {"$type": "string"}}, name="staff_id"),
    IndexModel([("county_code", ASCENDING), ("occupation", ASCENDING), ("start_date", ASCENDING)], name="county"),
    IndexModel([("city_code", ASCENDING), ("occupation", ASCENDING), ("start_date", ASCENDING)], name="city"),
    IndexModel([("province_code", ASCENDING), ("occupation", ASCENDING), ("start_date", ASCENDING)], name="province"),
    IndexModel([("division", ASCENDING), ("_id", ASCENDING)], name="division"),
    IndexModel([("employer.station_id", ASCENDING), ("_id", ASCENDING)], name="station"),
    # A county's register, newest first: read in windows of time on the id.
    IndexModel([("county_code", ASCENDING), ("_id", DESCENDING)], name="county_newest"),
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
    IndexModel([("county_code", ASCENDING), ("_id", DESCENDING)], name="county_newest"),
)
declare(FIGURES, IndexModel([("division", ASCENDING), ("year", ASCENDING)], unique=True, name="division_year"))
