"""Multi-document transactions: a state change and its event are written together or not at all.

Production runs MongoDB 7+ as a replica set, where transactions are available; the embedded
SecantusDB reports itself as a one-node replica set and supports them too. The cases
service writes the conditional case update and the event document inside one call:

    async def write(session):
        result = await cases.col.update_one({"_id": id, "state": s, "version": v}, update, session=session)
        if result.modified_count != 1:
            raise ConflictError(...)            # aborts: no event is written
        await events.append(event, session=session)

    await in_transaction(ctx, write)

An exception from the callback aborts the transaction and propagates. Transient errors
(write conflicts, a primary stepping down: label TransientTransactionError) and unknown
commit results are retried by pymongo's ``with_transaction`` until it succeeds or
``TRANSACTION_TIMEOUT_SECONDS`` pass; ``in_transaction`` adds a bounded outer retry for a
transient error raised while starting the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pymongo
from pymongo import ReadPreference
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from service.common.context import Context

T = TypeVar("T")
OUTER_ATTEMPTS = 3
# pymongo retries a conflicting transaction for up to 120 s. A transaction left open by a
# process that died holds its documents until the server's transaction lifetime runs out
# (60 s by default), so a hot document (a case-number counter) would hold every request
# that writes it that long. Past this bound the caller gets 503 and retries instead.
TRANSACTION_TIMEOUT_SECONDS = 10.0


async def in_transaction(ctx: Context, fn: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """Run ``fn(session)`` inside a transaction, retrying transient failures; returns its result."""
    return await run_transaction(ctx.db, fn)


async def run_transaction(
    db: AsyncDatabase[Any],
    fn: Callable[[AsyncClientSession], Awaitable[T]],
    *,
    timeout: float = TRANSACTION_TIMEOUT_SECONDS,
) -> T:
    """:func:`in_transaction` for repositories that hold a database rather than a context.

    Gives up after ``timeout`` seconds of retries with ``ExecutionTimeout`` (answered 503).
    """
    client: Any = db.client
    for attempt in range(OUTER_ATTEMPTS):
        try:
            async with client.start_session() as session:
                with pymongo.timeout(timeout):
                    return await session.with_transaction(
                        fn,
                        read_concern=ReadConcern("snapshot"),
                        write_concern=WriteConcern("majority"),
                        read_preference=ReadPreference.PRIMARY,
                    )
        except PyMongoError as exc:
            timed_out = isinstance(exc, ExecutionTimeout)
            if timed_out or not exc.has_error_label("TransientTransactionError") or attempt == OUTER_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
