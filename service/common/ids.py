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

from bson import ObjectId

_ID = re.compile(r"[0-9a-f]{24}")


def new_id() -> str:
    """A new time-ordered id (24 lower-case hex characters)."""
    return str(ObjectId())


def is_id(value: object) -> bool:
    """True for a string shaped like an id made by :func:`new_id`."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
