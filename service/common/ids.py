"""Identifiers: one convention for every document and every reference to it.

An id is a 24-character lower-case hex string with ObjectId's layout (a 4-byte time, then
random and counter bytes), made by :func:`new_id` when the document is created. It is stored
as that *string* in the document's own ``_id`` and as the same string wherever another
document refers to it (``cases.owner``, ``staff.station_id``, ``notifications.recipient``
after its ``resident:``/``staff:`` prefix, ...). No document holds a BSON ObjectId, so a
stored reference always equals the ``_id`` it points to and a lookup with it finds the
document on every path (repositories, aggregations, readers of another area's port).

Ids are time-ordered like ObjectIds, so ``_id`` order is creation order and cursors built
on it keep working. Documents written before this convention had ObjectId ``_id`` values;
``service.storage.migrations`` re-keys them once at start-up.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bson import ObjectId

_ID = re.compile(r"[0-9a-f]{24}")
_MAX_SECONDS = 0xFFFFFFFF


def new_id(at: datetime | None = None) -> str:
    """A new time-ordered id (24 lower-case hex characters), made at ``at`` (default: now).

    ``at`` is the creation time the service already holds (its clock), so the id's time agrees
    with the document's own ``created_at``; the other 8 bytes are ObjectId's (per-process random
    and a counter), which keep ids made in the same second unique and in creation order.
    """
    oid = str(ObjectId())
    if at is None:
        return oid
    return f"{min(max(int(at.timestamp()), 0), _MAX_SECONDS):08x}" + oid[8:]


def id_at(at: datetime) -> str:
    """The smallest id made at ``at`` (its second): the time, then zeros; a range bound on ``_id``."""
    return f"{min(max(int(at.timestamp()), 0), _MAX_SECONDS):08x}" + "0" * 16


def id_time(value: str) -> datetime | None:
    """When an id was made (to the second), or None for a value not shaped like an id."""
    if not is_id(value):
        return None
    return datetime.fromtimestamp(int(value[:8], 16), UTC)


def is_id(value: object) -> bool:
    """True for a string shaped like an id made by :func:`new_id`."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
