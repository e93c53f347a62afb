"""Transactions give up on a document held by another transaction instead of waiting minutes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ExecutionTimeout

from service.common.context import Context
from service.common.errors import UnavailableError
from service.storage.errors import translate_error
from service.storage.transactions import run_transaction
from tests.factories import make_case, make_station, make_wechat_resident


async def test_a_document_held_by_an_abandoned_transaction_is_503_within_the_bound(ctx: Context) -> None:
    # A process that died between its write and its commit leaves the transaction open on the
    # server; here another session plays that process and simply never commits. The
    # document both want is a case filed through the service (a supervisor urging it).
    await make_station(ctx)
    case = await make_case(ctx, await make_wechat_resident(ctx))
    col = ctx.db["cases"]
    hot = {"_id": case["id"]}
    client: Any = ctx.db.client
    abandoned = client.start_session()
    await abandoned.start_transaction()
    await col.update_one(hot, {"$inc": {"urge_count": 1}}, session=abandoned)

    async def bump(session: AsyncClientSession) -> None:
        await col.update_one(hot, {"$inc": {"urge_count": 1}}, session=session)

    start = time.monotonic()
    with pytest.raises(ExecutionTimeout) as caught:
        await run_transaction(ctx.db, bump, timeout=1.0)
    assert time.monotonic() - start < 5.0
    problem = translate_error(caught.value)
    assert isinstance(problem, UnavailableError) and problem.code == "database_busy"

    await abandoned.abort_transaction()
    await abandoned.end_session()
    await run_transaction(ctx.db, bump, timeout=1.0)
    assert (await col.find_one(hot))["urge_count"] == 1
