"""Values worked out from a versioned record, kept in the process for the next read of the same version.

A record whose every write raises its ``version`` (and sets ``updated_at``) is the same record as
long as ``(id, version, updated_at)`` is: what is worked out from it alone (a model built from its
document, the fields of its view, their JSON form) can be kept under that key and used again,
and a changed record simply misses, since its key is new. No invalidation is needed, and
processes need not share anything; ``updated_at`` in the key also tells apart two writes that
took the same version number (a write read before a replica set rolled it back, and the one
that replaced it).

The lookup sits on the per-item path of every list page, so it is a plain dict: a hit costs a
hash and a probe (about 0.1 µs), where a general-purpose cache with recency bookkeeping costs
some microseconds. When it is full, the oldest entries go first.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import islice
from typing import Generic, TypeVar

V = TypeVar("V")

# How many cases each of the case memos keeps (the case as a list reads it, its view's fields
# that are the same for every caller, and their JSON form): about 3, 2 and 5 kB a case, so some
# 40 MB a process when all are full. A county's open cases and its supervisors' first pages fit
# many times over; a case no longer kept costs what it cost with none kept.
CASES_KEPT = 4_096


class VersionMemo(Generic[V]):
    """At most ``size`` values by key; the entries put longest ago are dropped first once full."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._entries: dict[Hashable, V] = {}

    def get(self, key: Hashable) -> V | None:
        return self._entries.get(key)

    def put(self, key: Hashable, value: V) -> V:
        entries = self._entries
        if key not in entries and len(entries) >= self._size:
            # Dicts keep insertion order: the first keys are the oldest. A tenth goes at once so that
            # a full memo does not pay for an eviction on every put.
            for old in list(islice(entries, max(1, self._size // 10))):
                del entries[old]
        entries[key] = value
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
