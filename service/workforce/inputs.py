"""What callers give the workforce service: register entries, programmes, sessions and training records.

The API's schemas build these (``@post_load``). A registration or a change names the fields given
in ``fields_set`` (leaving one out differs from clearing it; see ``service.common.inputs``).
"""

from __future__ import annotations

import dataclasses
from datetime import date


@dataclasses.dataclass(frozen=True, slots=True)
class PersonRegistration:
    """A social worker (or elderly-care worker) put on the register by hand."""

    name: str
    id_card: str
    employer_kind: str
    division: str
    role: str
    start_date: date
    phone: str | None = None
    occupation: str | None = None
    qualification_level: str | None = None
    certificate_no: str | None = None
    certificate_year: int | None = None
    employer_name: str | None = None
    station_id: str | None = None
    post: str | None = None
    status: str | None = None
    end_date: date | None = None
    staff_id: str | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class PersonChanges:
    """A change to a register entry (PATCH): only the fields in ``fields_set`` change."""

    name: str | None = None
    phone: str | None = None
    occupation: str | None = None
    qualification_level: str | None = None
    certificate_no: str | None = None
    certificate_year: int | None = None
    employer_kind: str | None = None
    employer_name: str | None = None
    station_id: str | None = None
    division: str | None = None
    post: str | None = None
    role: str | None = None
    status: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    staff_id: str | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class ProgrammeInput:
    """A training programme; ``organiser_division`` defaults to the caller's division."""

    name: str
    category: str
    tier: str
    organiser_division: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionInput:
    """One session of a programme."""

    starts_on: date
    ends_on: date
    place: str
    hours: float
    trainer: str


@dataclasses.dataclass(frozen=True, slots=True)
class RecordFields:
    """A training record's attendance and results, as given (an enrolment's or a PATCH's)."""

    status: str | None = None
    attended_hours: float | None = None
    completed_on: date | None = None
    certificate_no: str | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class Enrolment:
    """A person enrolled in a session, with attendance or results recorded at once if given."""

    person_id: str
    record: RecordFields = RecordFields()
