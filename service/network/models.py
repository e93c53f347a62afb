"""The station network against the plan: construction status, the six haves, verification, coverage."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

# Construction status of a station (建设状态), in the order a station passes through them.
STATUSES = ("planned", "built", "operating", "model")
STATUS_NAMES = {"planned": "规划中", "built": "已建成", "operating": "运营中", "model": "示范站"}
# A township counts as covered when its station is at least operating (a model station operates).
COVERING = frozenset({"operating", "model"})
# Stations nobody has reported on yet are counted under this key, not guessed into a status.
UNREPORTED = "unreported"
STATUS_NAMES[UNREPORTED] = "未填报"

# The six haves (六有): 有场地、有设备、有人员、有服务功能、有工作流程、有规章制度.
HAVES = ("site", "equipment", "staff", "services", "workflows", "rules")
HAVE_NAMES = {
    "site": "有场地",
    "equipment": "有设备",
    "staff": "有人员",
    "services": "有服务功能",
    "workflows": "有工作流程",
    "rules": "有规章制度",
}
OUTCOMES = ("approved", "returned")
GROUPINGS = ("city", "county")
TARGET_PCT = 100.0  # 乡镇(街道)社会工作站建设全覆盖: every township, every station up to standard


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: the staff account and the role it acted in."""

    subject: str
    role: str


@dataclasses.dataclass(frozen=True, slots=True)
class Site:
    """有场地: where the station works."""

    address: str | None = None
    floor_area_m2: float | None = None
    photos: tuple[str, ...] = ()  # upload ids (images through the uploads service)


@dataclasses.dataclass(frozen=True, slots=True)
class EquipmentItem:
    name: str
    quantity: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """A workflow or rule document (工作流程, 规章制度): its title, the date it took effect, scans."""

    title: str
    issued_on: date
    uploads: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkRecord:
    """What a station keeps about its own construction (collection ``station_network``)."""

    station_id: str
    status: str | None = None
    dates: dict[str, date] = dataclasses.field(default_factory=dict)  # status -> the day it was reached
    site: Site = Site()
    equipment: tuple[EquipmentItem, ...] = ()
    workflows: tuple[Document, ...] = ()
    rules: tuple[Document, ...] = ()
    revision: int = 0  # 0: nothing recorded yet; every change adds one
    updated_at: datetime | None = None
    updated_by: Actor | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Verification:
    """A supervisor's sign-off (or return) of one revision of a record; never changed afterwards."""

    id: str
    station_id: str
    revision: int
    outcome: str  # approved | returned
    note: str | None
    by: Actor
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Staffing:
    """有人员: the people a station has, and where the figure comes from."""

    staff_accounts: int  # active worker and station-head accounts of the station
    register: int | None = None  # the social-worker register, once it exists (None: not consulted)
    sources: tuple[str, ...] = ("staff_accounts",)

    @property
    def people(self) -> int:
        return max(self.staff_accounts, self.register or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class StationRef:
    """What the network needs to know about a station (read through the stations service)."""

    id: str
    code: str
    name: str
    county_code: str
    county_name: str
    city_code: str
    city_name: str
    capabilities: tuple[str, ...]
    active: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class HaveCheck:
    """One line of the six-haves checklist: met or not, and what is missing."""

    have: str
    met: bool
    missing: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return HAVE_NAMES[self.have]


@dataclasses.dataclass(frozen=True, slots=True)
class StationNetwork:
    """A station's place in the network: its record, checklist and latest verification."""

    station: StationRef
    record: NetworkRecord
    staffing: Staffing
    checklist: tuple[HaveCheck, ...]
    compliant: bool  # all six haves met, as recorded
    verification: Verification | None  # the latest one
    verified: bool  # compliant, and the latest verification approved this very revision

    @property
    def status(self) -> str:
        return self.record.status or UNREPORTED

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "未填报")


@dataclasses.dataclass(frozen=True, slots=True)
class DivisionFigures:
    """Coverage and six-haves compliance of one division against the 100% target."""

    code: str
    name: str
    level: str
    townships: int
    covered_townships: int
    coverage_pct: float
    stations: int
    by_status: dict[str, int]
    model_stations: int
    compliant: int  # stations meeting all six haves as recorded
    verified: int  # of those, signed off by a supervisor at their current revision
    compliance_pct: float  # verified / stations
    reported_compliance_pct: float  # compliant / stations
    target_pct: float = TARGET_PCT

    @property
    def coverage_gap_pct(self) -> float:
        return round(max(0.0, self.target_pct - self.coverage_pct), 1)

    @property
    def compliance_gap_pct(self) -> float:
        return round(max(0.0, self.target_pct - self.compliance_pct), 1)


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkStats:
    """The figures of a division, and of its cities or counties when grouped."""

    division: DivisionFigures
    group_by: str | None
    groups: tuple[DivisionFigures, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkImportReport:
    dry_run: bool
    total: int
    to_create: int
    to_update: int
    written: bool
    errors: tuple[Any, ...] = ()  # service.imports.RowError
