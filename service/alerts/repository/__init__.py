"""Storage of the alerts area: the collections ``devices``, ``alerts``, ``rota`` and ``maintenance``.

Only this package opens them (``maintenance`` holds that collection's repository, ``filters``
builds the list filters). Documents become the dataclasses of ``service.alerts.models``
here; ids are the strings ``service.ids.new_id`` makes. Unique indexes carry the area's
promises: one device per vendor device id, one alert per vendor alert id, one open
maintenance item per device and kind; a device's open incident is claimed by one
conditional update, so of several alerts arriving together exactly one opens the case.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.alerts.models import (
    REFUSED,
    Alert,
    AlertScope,
    Device,
    Escalation,
    Incident,
    RotaEntry,
)
from service.alerts.repository.filters import scope_filter
from service.alerts.repository.maintenance import MaintenanceRepository as MaintenanceRepository
from service.common.errors import ConflictError, NotFoundError
from service.common.ids import new_id
from service.common.paging import newest_by_new_id, served_with_id_range, skipping
from service.storage.indexes import declare

DEVICES, ALERTS, ROTA = "devices", "alerts", "rota"

declare(
    DEVICES,
    IndexModel([("vendor_client_id", ASCENDING), ("vendor_device_id", ASCENDING)], unique=True, name="vendor_device"),
    IndexModel([("station_id", ASCENDING), ("_id", ASCENDING)], name="station"),
    IndexModel([("elder_id", ASCENDING)], name="elder"),
    IndexModel([("county_code", ASCENDING), ("_id", DESCENDING)], name="county_newest"),
)
declare(
    ALERTS,
    IndexModel([("client_id", ASCENDING), ("vendor_alert_id", ASCENDING)], unique=True, name="vendor_alert"),
    IndexModel([("escalation.done", ASCENDING), ("escalation.next_at", ASCENDING)], name="escalation_due"),
    IndexModel([("announced", ASCENDING), ("received_at", ASCENDING)], name="unannounced"),
    IndexModel([("station_id", ASCENDING), ("_id", DESCENDING)], name="station_newest"),
    IndexModel([("county_code", ASCENDING), ("_id", DESCENDING)], name="county_newest"),
    IndexModel([("client_id", ASCENDING), ("_id", DESCENDING)], name="client_newest"),
)
declare(ROTA, IndexModel([("station_id", ASCENDING), ("ends_at", ASCENDING)], name="station_ends"))

Db = AsyncDatabase[dict[str, Any]]


def _incident(raw: dict[str, Any] | None) -> Incident | None:
    if not raw:
        return None
    return Incident(alert_id=raw["alert_id"], case_id=raw.get("case_id"), opened_at=raw["opened_at"])


def _device(d: dict[str, Any]) -> Device:
    return Device(
        id=str(d["_id"]),
        elder_id=d["elder_id"],
        station_id=d["station_id"],
        township=d["township"],
        county_code=d["county_code"],
        type=d["type"],
        vendor_client_id=d["vendor_client_id"],
        vendor_device_id=d["vendor_device_id"],
        location_note=d.get("location_note"),
        installed_by=d.get("installed_by"),
        installed_at=d.get("installed_at"),
        active=bool(d.get("active", True)),
        created_at=d["created_at"],
        created_by=d["created_by"],
        open_incident=_incident(d.get("open_incident")),
    )


def _escalation(raw: dict[str, Any] | None) -> Escalation | None:
    if not raw:
        return None
    return Escalation(
        level=int(raw.get("level", 0)),
        next_at=raw.get("next_at"),
        done=bool(raw.get("done")),
        reason=raw.get("reason"),
        history=tuple(raw.get("history") or ()),
    )


def _alert(d: dict[str, Any]) -> Alert:
    return Alert(
        id=str(d["_id"]),
        client_id=d["client_id"],
        vendor_alert_id=d["vendor_alert_id"],
        type=d["type"],
        vendor_device_id=d["vendor_device_id"],
        occurred_at=d["occurred_at"],
        received_at=d["received_at"],
        details=d.get("details") or {},
        fingerprint=d["fingerprint"],
        outcome=d["outcome"],
        device_id=d.get("device_id"),
        elder_id=d.get("elder_id"),
        station_id=d.get("station_id"),
        township=d.get("township"),
        county_code=d.get("county_code"),
        case_id=d.get("case_id"),
        collapsed_into=d.get("collapsed_into"),
        checkup_id=d.get("checkup_id"),
        maintenance_id=d.get("maintenance_id"),
        repeats=int(d.get("repeats", 0)),
        last_repeat_at=d.get("last_repeat_at"),
        refusal=d.get("refusal"),
        escalation=_escalation(d.get("escalation")),
        announced=bool(d.get("announced")),
        notified=tuple(d.get("notified") or ()),
    )


def _rota(d: dict[str, Any]) -> RotaEntry:
    return RotaEntry(
        id=str(d["_id"]),
        station_id=d["station_id"],
        staff_id=d["staff_id"],
        phone=d["phone"],
        starts_at=d["starts_at"],
        ends_at=d["ends_at"],
        note=d.get("note"),
        created_by=d["created_by"],
        created_at=d["created_at"],
    )


class DevicesRepository:
    def __init__(self, db: Db) -> None:
        self.col = db[DEVICES]

    async def insert(self, doc: dict[str, Any]) -> Device:
        """Store a new device; a vendor device id already registered for that vendor is a conflict."""
        doc = {"_id": new_id(doc.get("created_at")), "open_incident": None, **doc}
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise ConflictError(
                "device_already_registered",
                "这个厂商设备编号已登记。This vendor's device id is already on the register.",
            ) from None
        return _device(doc)

    async def get(self, device_id: str) -> Device:
        """One device, or NotFoundError."""
        doc = await self.col.find_one({"_id": device_id})
        if doc is None:
            raise NotFoundError("device_not_found", f"There is no device {device_id!r}.")
        return _device(doc)

    async def find_by_vendor(self, vendor_client_id: str, vendor_device_id: str) -> Device | None:
        """The device a vendor reports under this id, if registered."""
        doc = await self.col.find_one({"vendor_client_id": vendor_client_id, "vendor_device_id": vendor_device_id})
        return _device(doc) if doc else None

    async def update(self, device_id: str, changes: dict[str, Any]) -> Device:
        """Change a device's fields; returns it as stored."""
        result = await self.col.update_one({"_id": device_id}, {"$set": changes})
        if result.matched_count == 0:
            raise NotFoundError("device_not_found", f"There is no device {device_id!r}.")
        return await self.get(device_id)

    async def page(
        self, scope: AlertScope, *, elder_id: str | None = None, before: str | None, limit: int, now: datetime
    ) -> list[Device]:
        """Devices of ``scope`` (of one person, if given), newest registered first, below the id ``before``,
        read in windows of time on the id (``newest_by_new_id``) when an index serves the filter with that range."""
        query = scope_filter(scope, elder_id=elder_id)

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", DESCENDING).limit(n).to_list()

        windows = served_with_id_range(query, ("station_id",), ("county_code",))
        docs = await newest_by_new_id(find, want=limit, now=now, before=before, windows=windows)
        return [_device(d) for d in docs]

    async def claim_incident(self, device_id: str, alert_id: str, now: datetime) -> bool:
        """Open an incident on the device for this alert unless one is open; True if this call did."""
        result = await self.col.update_one(
            {"_id": device_id, "open_incident": None},
            {"$set": {"open_incident": {"alert_id": alert_id, "case_id": None, "opened_at": now}}},
        )
        return result.modified_count == 1

    async def set_incident_case(self, device_id: str, alert_id: str, case_id: str) -> None:
        """Record the case the device's open incident opened."""
        await self.col.update_one(
            {"_id": device_id, "open_incident.alert_id": alert_id}, {"$set": {"open_incident.case_id": case_id}}
        )

    async def release_incident(self, device_id: str, alert_id: str) -> bool:
        """Close the device's incident if it is still this alert's; True if this call did."""
        result = await self.col.update_one(
            {"_id": device_id, "open_incident.alert_id": alert_id}, {"$set": {"open_incident": None}}
        )
        return result.modified_count == 1


class AlertsRepository:
    def __init__(self, db: Db) -> None:
        self.col = db[ALERTS]

    @staticmethod
    def new_id(at: datetime | None = None) -> str:
        return new_id(at)

    async def insert(self, doc: dict[str, Any]) -> Alert | None:
        """Store a new alert; None when the vendor's alert id is already stored (read it instead)."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return None
        return _alert(doc)

    async def find_by_vendor(self, client_id: str, vendor_alert_id: str) -> Alert | None:
        doc = await self.col.find_one({"client_id": client_id, "vendor_alert_id": vendor_alert_id})
        return _alert(doc) if doc else None

    async def get(self, alert_id: str) -> Alert:
        """One alert, or NotFoundError."""
        doc = await self.col.find_one({"_id": alert_id})
        if doc is None:
            raise NotFoundError("alert_not_found", f"There is no alert {alert_id!r}.")
        return _alert(doc)

    async def set(self, alert_id: str, changes: dict[str, Any]) -> Alert:
        """Set fields of an alert; returns it as stored."""
        await self.col.update_one({"_id": alert_id}, {"$set": changes})
        return await self.get(alert_id)

    async def settle(self, alert: Alert, changes: dict[str, Any]) -> Alert:
        """Set top-level fields of an alert this process holds; returns it with them (no read back)."""
        await self.col.update_one({"_id": alert.id}, {"$set": changes})
        return dataclasses.replace(alert, **changes)

    async def add_repeat(self, alert_id: str, at: datetime) -> None:
        """Count one more alert collapsed into this one."""
        await self.col.update_one({"_id": alert_id}, {"$inc": {"repeats": 1}, "$max": {"last_repeat_at": at}})

    async def escalation_due(self, now: datetime, limit: int) -> list[Alert]:
        """Urgent alerts whose next escalation step is due."""
        q = {"escalation.done": False, "escalation.next_at": {"$lte": now}}
        return [_alert(d) async for d in self.col.find(q).sort("escalation.next_at", ASCENDING).limit(limit)]

    async def advance(self, alert_id: str, *, from_level: int, changes: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Move an alert's escalation on from ``from_level``; True if this call did (one process wins)."""
        result = await self.col.update_one(
            {"_id": alert_id, "escalation.level": from_level, "escalation.done": False},
            {"$set": changes, "$push": {"escalation.history": entry}},
        )
        return result.modified_count == 1

    async def unannounced(self, before: datetime, limit: int) -> list[Alert]:
        """Alerts whose event was not written (a process stopped half-way), older than ``before``."""
        q = {"announced": False, "received_at": {"$lt": before}}
        return [_alert(d) async for d in self.col.find(q).limit(limit)]

    async def page(
        self,
        scope: AlertScope,
        *,
        client_id: str | None = None,
        outcome: str | None = None,
        type: str | None = None,
        before: str | None,
        limit: int,
        now: datetime,
        hide_refused: bool = False,
    ) -> list[Alert]:
        """Alerts of ``scope`` (of one client, outcome or type, if given; not refused, with
        ``hide_refused``), newest first, below the id ``before``; read in windows of time on the id
        (``newest_by_new_id``) when an index serves the filter with that range. Refused alerts are few,
        so they are left out here rather than by a condition that would keep the embedded server from
        reading only the window."""
        query = scope_filter(scope, client_id=client_id, outcome=outcome, type=type)

        async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
            q = {**query, "_id": id_range} if id_range else query
            return await self.col.find(q).sort("_id", DESCENDING).limit(n).to_list()

        read = skipping(find, lambda d: d.get("outcome") == REFUSED) if hide_refused else find
        windows = served_with_id_range(query, ("station_id",), ("county_code",), ("client_id",))
        docs = await newest_by_new_id(read, want=limit, now=now, before=before, windows=windows)
        return [_alert(d) for d in docs]


class RotaRepository:
    def __init__(self, db: Db) -> None:
        self.col = db[ROTA]

    async def insert(self, doc: dict[str, Any]) -> RotaEntry:
        doc = {"_id": new_id(), **doc}
        await self.col.insert_one(doc)
        return _rota(doc)

    async def get(self, entry_id: str) -> RotaEntry:
        doc = await self.col.find_one({"_id": entry_id})
        if doc is None:
            raise NotFoundError("rota_entry_not_found", f"There is no rota entry {entry_id!r}.")
        return _rota(doc)

    async def delete(self, entry_id: str) -> None:
        await self.col.delete_one({"_id": entry_id})

    async def covering(self, station_id: str, at: datetime) -> list[RotaEntry]:
        """Entries of a station whose shift holds ``at``."""
        q = {"station_id": station_id, "ends_at": {"$gt": at}, "starts_at": {"$lte": at}}
        return [_rota(d) async for d in self.col.find(q)]

    async def ending_after(self, station_id: str, at: datetime, limit: int) -> list[RotaEntry]:
        """A station's entries not over by ``at``, soonest first."""
        q = {"station_id": station_id, "ends_at": {"$gt": at}}
        return [_rota(d) async for d in self.col.find(q).sort("starts_at", ASCENDING).limit(limit)]
