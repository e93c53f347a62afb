"""Typed records of the cases area that other modules and areas hold."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from service.common.geo import Point
from service.common.ids import new_id

CASE = "case"
# ``<prefix>:<id>`` was how events once keyed records that are not cases, in ``case_id``; the
# prefix is the kind, except that visit reminders and misses ("visit:<elder_id>") are about a person.
KEY_PREFIX = {"elder": "visit"}
KIND_OF_PREFIX = {prefix: kind for kind, prefix in KEY_PREFIX.items()}


# The division of a case for which no county could be found: the province.
DIVISION_PROVINCE = "340000"


def region_codes(division: str | None) -> dict[str, str | None]:
    """Pure: the city and province codes a case is listed under: its division's first four and two
    digits, padded to six (``341021100`` -> ``341000``, ``340000``; the province's own ``340000`` -> ``340000``).

    Stored beside ``division`` wherever it is set, so that a city's or the province's supervisor reads
    an equality (``city_code = <prefix>00``) that holds exactly the cases whose division starts with
    the prefix, where a range on ``division`` is not one index prefix.
    """
    code = division or ""
    return {
        "city_code": code[:4] + "00" if len(code) >= 4 else None,
        "province_code": code[:2] + "0000" if len(code) >= 2 else None,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about: a case, or a record of another area (``elder``, ``alert``, ``activity`` ...)."""

    kind: str
    id: str

    @property
    def key(self) -> str:
        """The one-string form webhook payloads carry as ``case_id``: the case id, or ``<prefix>:<id>``."""
        return self.id if self.kind == CASE else f"{KEY_PREFIX.get(self.kind, self.kind)}:{self.id}"

    @classmethod
    def from_key(cls, key: str) -> Subject:
        """The subject of a key in that one-string form (case ids never hold a colon)."""
        prefix, sep, rest = key.partition(":")
        return cls(KIND_OF_PREFIX.get(prefix, prefix), rest) if sep else cls(CASE, key)


@dataclasses.dataclass(frozen=True, slots=True)
class CaseEvent:
    """One event of the log: a change of a case (``subject`` is the case), or of another area's record.

    ``case_id`` is the case the event belongs to (None when there is none); ``subject``
    defaults to that case.
    """

    type: str
    case_id: str | None
    seq: int
    actor_subject: str
    actor_role: str
    time: datetime
    case_number: str | None = None
    station_id: str | None = None
    division: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: str = dataclasses.field(default_factory=new_id)
    created_at: datetime | None = None
    subject: Subject = None  # type: ignore[assignment]  # filled in from case_id below

    def __post_init__(self) -> None:
        if self.subject is None:
            if self.case_id is None:
                raise ValueError("an event needs a case_id or a subject")
            object.__setattr__(self, "subject", Subject(CASE, self.case_id))

    @property
    def key(self) -> str:
        """The one-string key webhook payloads and deliveries carry as ``case_id`` (see ``Subject.key``)."""
        if self.case_id is not None:
            return self.case_id
        return self.subject.key


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a case's own history (``cases.history``), written with the event it names."""

    event_id: str
    action: str
    actor_subject: str
    actor_role: str
    from_state: str | None
    to_state: str
    at: datetime
    note: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class CaseChange:
    """What one action changes on a case besides its status, version and history: its plan.

    ``fields`` are the case's fields to set (a dotted name sets a nested one), ``increments``
    its counters to raise, ``load`` the stations' open-case counts to move after the commit.
    ``to_state`` and ``event_type`` override what the lifecycle table says, where the plan
    decides (a return may leave the case unrouted; a rating is ``case.rated``).
    """

    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    increments: dict[str, int] = dataclasses.field(default_factory=dict)
    load: Sequence[tuple[str, int]] = ()
    note: str | None = None
    event_data: dict[str, Any] = dataclasses.field(default_factory=dict)
    to_state: str | None = None
    event_type: str | None = None


# ------------------------------------------------------------------ the case


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: an account's subject and role (``created_by``, history lines)."""

    subject: str | None
    role: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Placement:
    """Where a case sits: its station (None while unrouted) and the division that oversees it."""

    station_id: str | None = None
    station_code: str | None = None
    station_name: str | None = None
    division: str | None = None
    county_code: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceRef:
    """The service a case was filed for, as it was then (a later edit of the catalogue leaves it be).

    ``keys`` are the parts the case holds, in order: cases filed before a part existed lack it.
    """

    code: str
    version: int | None = None
    scenario: str | None = None
    name_zh: str | None = None
    name_en: str | None = None
    confidential: bool = False
    booking: bool = False
    urgent: bool = False
    clock: str | None = None
    keys: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    """Whom the station calls back. ``keys``: the parts the filer gave, in the order given."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    keys: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ServedPerson:
    """The person helped, if not the filer; an ID number is kept encrypted with a lookup hash and a masked copy.

    ``keys``: the parts the case holds, in order.
    """

    name: str | None = None
    relation: str | None = None
    phone: str | None = None
    address: str | None = None
    id_card_masked: str | None = None
    id_card_enc: str | None = None
    id_card_hash: str | None = None
    keys: tuple[str, ...] = ()


Part = ServiceRef | Contact | ServedPerson


def parts_of(record: Part) -> dict[str, Any]:
    """A record's parts as the case holds them: its ``keys``, in order."""
    return {key: getattr(record, key) for key in record.keys}


@dataclasses.dataclass(frozen=True, slots=True)
class Overdue:
    """Whether the case went past its time to sign for it, or to resolve it (flagged once each)."""

    sign: bool = False
    resolve: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Rating:
    """The filer's rating of a resolved case (1-5), which closes it."""

    score: int
    comment: str | None = None
    rated_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CaseRef:
    """What an event names of its case: id, number and where it sits."""

    id: str
    number: str
    station_id: str | None
    division: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Parties:
    """Who a case belongs to and who holds it: what decides a caller's relationship to it."""

    owner: str | None = None
    created_by: Actor | None = None
    station_id: str | None = None
    assignee_id: str | None = None
    division: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """One case (工单) with its history, as stored.

    ``fields_set`` names the fields the case holds, null ones included: a field appears once an
    action first sets it (``accepted_at`` after an acceptance, null again after a return), so
    "never set" and "cleared" stay apart, as the API shows them.
    """

    id: str
    number: str
    version: int
    status: str
    service: ServiceRef
    created_by: Actor
    created_at: datetime
    updated_at: datetime
    sign_due_at: datetime  # the time to sign for it, and to resolve it (an approved extension moves it)
    resolve_due_at: datetime
    placement: Placement = Placement()
    answers: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    answers_secure: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The personal fields of the form it was filed with; None for cases filed before forms carried marks.
    personal: Mapping[str, Mapping[str, Any]] | None = None
    description: str | None = None
    location: Point | None = None  # WGS-84
    location_input: Mapping[str, Any] | None = None  # as filed: {lon, lat, coord_system}
    division_code: str | None = None
    address: str | None = None
    contact: Contact | None = None
    served_person: ServedPerson | None = None
    preferred_window: Mapping[str, Any] | None = None
    anonymous: bool = False
    photos: tuple[str, ...] = ()
    owner: str | None = None
    source: Mapping[str, Any] | None = None
    routing: Mapping[str, Any] | None = None
    returned_by: tuple[str, ...] = ()
    return_count: int = 0
    assignee_id: str | None = None
    next_due_at: datetime | None = None
    overdue: Overdue = Overdue()
    urge_count: int = 0
    accepted_at: datetime | None = None
    signed_late: bool | None = None
    started_at: datetime | None = None
    scheduled_at: datetime | None = None
    # {status, extra_days, reason, requested_at, requested_by, decided_at}; requests stored before the
    # field took the API's name keep ``days``, so it stays as stored.
    extension: Mapping[str, Any] | None = None
    resolved_at: datetime | None = None
    result: str | None = None
    result_photos: tuple[str, ...] = ()
    resolved_late: bool | None = None
    reopened_at: datetime | None = None
    reopen_count: int = 0
    rating: Rating | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    rejected_at: datetime | None = None
    urged_at: datetime | None = None
    history: tuple[HistoryEntry, ...] = ()
    fields_set: frozenset[str] = frozenset()

    @property
    def ref(self) -> CaseRef:
        """What events name of this case."""
        return CaseRef(self.id, self.number, self.placement.station_id, self.placement.division)

    @property
    def parties(self) -> Parties:
        """Who this case belongs to and who holds it."""
        return Parties(
            owner=self.owner,
            created_by=self.created_by,
            station_id=self.placement.station_id,
            assignee_id=self.assignee_id,
            division=self.placement.division,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class CaseNotice:
    """What notifications read of a case: who to tell, and what the texts name."""

    number: str | None = None
    owner: str | None = None
    assignee_id: str | None = None
    station_name: str | None = None
    service_name_zh: str | None = None
    service_name_en: str | None = None
    urgent_service: bool = False  # the service is urgent: every notice goes out at once
    source_channel: str | None = None  # "visit": opened from a home visit
    scheduled_at: datetime | None = None
    result: str | None = None


# ------------------------------------------------------------------ lists of cases


@dataclasses.dataclass(frozen=True, slots=True)
class CaseScope:
    """Which cases a caller may list at all: a resident's own (``owner``), a client's (``creator``), a
    station's (``station_id``), a division's (``division_prefix``); with none of them, every case."""

    owner: str | None = None
    creator: str | None = None
    station_id: str | None = None
    division_prefix: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CaseListQuery:
    """One list of cases: the caller's scope, the filters asked for, and the order.

    ``created_from`` is inclusive and ``created_to`` exclusive; ``overdue`` True lists cases flagged
    overdue (either deadline), False those flagged neither.
    """

    scope: CaseScope
    sort: str = "newest"  # or "due"
    statuses: tuple[str, ...] = ()
    scenario: str | None = None
    service_code: str | None = None
    station_id: str | None = None
    assignee_id: str | None = None
    overdue: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CaseSearch:
    """The cases one client filed (``created_by``, a subject), newest first, at most ``limit``.

    Any ``ids`` or ``numbers`` given keep only those cases; ``service_codes`` those of these
    services; ``created_from`` and ``created_to`` are both inclusive; ``closed`` True keeps the
    cases no longer open (resolved ones included), False the open ones, None both.
    """

    created_by: str
    limit: int
    ids: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    closed: bool | None = None
