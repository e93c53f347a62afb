"""What callers give the alerts service: a device to register, a change to one, a shift on the rota.

The API's schemas build these (``@post_load``); a change names the fields given in ``fields_set``
(leaving one out differs from clearing it; see ``service.common.inputs``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceRegistration:
    """A device linked to a person on the visit register, reported by a vendor's client."""

    elder_id: str
    type: str
    vendor_client_id: str
    vendor_device_id: str
    location_note: str | None = None
    installed_by: str | None = None
    installed_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceChanges:
    """A change to a device (PATCH): where and by whom it was installed, or taking it off (active false)."""

    location_note: str | None = None
    installed_by: str | None = None
    installed_at: datetime | None = None
    active: bool | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class RotaShift:
    """A worker of the station on duty from ``starts_at`` to ``ends_at`` (phone: default the account's)."""

    staff_id: str
    starts_at: datetime
    ends_at: datetime
    phone: str | None = None
    note: str | None = None
