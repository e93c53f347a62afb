"""Index declarations gathered from every area's repository modules, created at start."""

from __future__ import annotations

import importlib
import pkgutil

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

_DECLARED: dict[str, list[IndexModel]] = {}


def declare(collection: str, *indexes: IndexModel) -> None:
    """Record indexes for a collection; repository modules call this at import."""
    _DECLARED.setdefault(collection, []).extend(indexes)


def _import_repositories() -> None:
    """Import every ``service.<area>.repository`` module or package (each declares its indexes)."""
    import service as package

    for info in pkgutil.walk_packages(package.__path__, prefix="service."):
        if ".repository" in info.name:
            importlib.import_module(info.name)


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Create every declared index (idempotent)."""
    _import_repositories()
    for collection, indexes in _DECLARED.items():
        if indexes:
            await db[collection].create_indexes(indexes)
