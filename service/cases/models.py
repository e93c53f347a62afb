"""Typed records of the cases area that other modules and areas hold."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.common.ids import new_id

CASE = "case"
# ``<prefix>:<id>`` was how events once keyed records that are not cases, in ``case_id``; the
# prefix is the kind, except that visit reminders and misses ("visit:<elder_id>") are about a person.
KEY_PREFIX = {"elder": "visit"}
KIND_OF_PREFIX = {prefix: kind for kind, prefix in KEY_PREFIX.items()}


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
