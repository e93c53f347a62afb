"""This process's copy of the current service types, for the hot path of filing.

A per-process copy needs a rule for when it is stale across processes: every catalogue write
bumps the catalogue's version (``ServiceTypesRepository``), and the copy is dropped when the
version moved, which is read at most once a second.
"""

from __future__ import annotations

import dataclasses
import time

from service.catalog.models import ServiceType
from service.catalog.repository import ServiceTypesRepository
from service.common.context import Context

# How often a process asks whether the catalogue changed (its copy of service types is good till then).
CATALOG_CHECK_SECONDS = 1.0


@dataclasses.dataclass
class ServiceTypeCache:
    """This process's copy of current service types, good while the catalogue's version stays."""

    version: int | None = None
    checked_at: float = float("-inf")
    services: dict[str, ServiceType] = dataclasses.field(default_factory=dict)
    # Bumped whenever the copy is dropped: a read begun before that is not kept.
    generation: int = 0

    def drop(self) -> None:
        self.services.clear()
        self.generation += 1


def _cache(ctx: Context) -> ServiceTypeCache:
    cache = ctx.process.service_types
    if cache is None:
        cache = ctx.process.service_types = ServiceTypeCache()
    return cache


def forget_service_types(ctx: Context) -> None:
    """Drop this process's copy (after its own catalogue writes): the next use reads the version again."""
    cache = _cache(ctx)
    cache.drop()
    cache.checked_at = float("-inf")


async def current_service(*, ctx: Context, code: str) -> ServiceType:
    """The current version of a service type as filing needs it, from this process's copy.

    Every catalogue write bumps the catalogue's version (``ServiceTypesRepository``); the copy is
    dropped when the version moved, which is read at most once a second. So a change counts in
    the process that made it at once and in every other within about a second (as station
    changes do for routing); ``get_service`` always reads MongoDB.
    """
    cache = _cache(ctx)
    if time.monotonic() - cache.checked_at >= CATALOG_CHECK_SECONDS:
        version = await ServiceTypesRepository(ctx.db).read_version()
        if version != cache.version:
            cache.drop()
            cache.version = version
        cache.checked_at = time.monotonic()
    service = cache.services.get(code)
    if service is None:
        generation = cache.generation
        service = await ServiceTypesRepository(ctx.db).get(code)
        if cache.generation == generation:  # nothing was dropped meanwhile: not older than the copy
            cache.services[code] = service
    return service
