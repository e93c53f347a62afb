"""Helpers for background loops (sweeps, deliveries, schedulers)."""

from __future__ import annotations

import asyncio


async def pause(seconds: float) -> None:
    """Sleep between passes, but stop if this task was asked to stop.

    A driver can swallow a cancellation that lands mid-operation (Python 3.11's timeout
    race); the request still shows in ``Task.cancelling()``, so honour it here rather
    than loop on and hang shutdown.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    await asyncio.sleep(seconds)
