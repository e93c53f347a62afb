"""What callers give the identity service beyond keyword arguments: a change to a staff account.

The API's schema builds it (``@post_load``); it names the fields given in ``fields_set`` (leaving one
out differs from clearing it; see ``service.common.inputs``).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class StaffChanges:
    """A change to a staff account (PATCH): name, role and assignment, active flag, phone, a new password."""

    name: str | None = None
    role: str | None = None
    station_id: str | None = None
    division_prefix: str | None = None
    active: bool | None = None
    phone: str | None = None
    password: str | None = None
    fields_set: frozenset[str] = frozenset()
