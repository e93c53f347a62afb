"""A service-layer context over the real stores, without the HTTP app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from config import Settings
from run import open_context
from service.common.context import Context


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Context]:
    """An open Context on the test's own database and Redis prefix (indexes created)."""
    context, close = await open_context(settings)
    try:
        yield context
    finally:
        await close()
