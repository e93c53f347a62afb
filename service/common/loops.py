"""Background loops (sweeps, deliveries, schedulers): pausing, and how their health is kept.

Every pass of a loop runs inside :meth:`LoopHealth.guard`. A pass that raises is counted
by loop and failure class, logged with its traceback the first time that failure is seen
(afterwards only counted, so a loop failing every pass writes one line, not one per pass),
and followed by a back-off that doubles up to ``MAX_BACKOFF_SECONDS``. After
``DEGRADED_AFTER`` failures in a row the loop reports ``degraded`` (``/readyz`` and the
``huimin_background_loop_degraded`` metric) until a pass succeeds again, which is logged once.

Each pass also runs under a deadline (``HUIMIN_BACKGROUND_PASS_DEADLINE_SECONDS``, one
``asyncio.timeout``): a store that hangs without closing its connections would otherwise
hold a loop for ever, since the drivers have no per-operation socket timeout. A pass cut at
its deadline is logged in one line (no traceback), counted as a failure, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from service.common.models import utcnow

log = logging.getLogger("huimin.loops")

DEGRADED_AFTER = 3
MAX_BACKOFF_SECONDS = 60.0


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


def failure_class(exc: BaseException) -> str:
    """The label a failure is counted under: the exception's qualified class name."""
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _signature(exc: BaseException) -> str:
    """Where and what: the class and the innermost frame, so one bug is one signature."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{failure_class(exc)}@{where}"


@dataclass
class LoopState:
    """What one process knows about one of its loops."""

    consecutive_failures: int = 0
    passes: int = 0
    parked: int = 0  # items given up on and set aside for an admin (dead letters)
    failures: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    last_error: str | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None

    @property
    def degraded(self) -> bool:
        return self.consecutive_failures >= DEGRADED_AFTER


class _Guard:
    def __init__(self, health: LoopHealth, name: str, base_backoff: float) -> None:
        self.health, self.name, self.base_backoff = health, name, base_backoff
        self.deadline = asyncio.timeout(health.pass_deadline)

    async def __aenter__(self) -> None:
        await self.deadline.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            # Turns the deadline's cancellation into TimeoutError (and leaves any other alone).
            await self.deadline.__aexit__(kind, exc, tb)
        except TimeoutError:
            delay = self.health.cut(self.name, self.health.pass_deadline or 0.0, base_backoff=self.base_backoff)
            await asyncio.sleep(delay)
            return True
        if exc is None:
            self.health.succeeded(self.name)
            return False
        if not isinstance(exc, Exception):  # cancellation and exit pass through
            return False
        delay = self.health.failed(self.name, exc, base_backoff=self.base_backoff)
        await asyncio.sleep(delay)
        return True


class LoopHealth:
    """The health of this process's background loops, by name."""

    def __init__(self, pass_deadline: float | None = None) -> None:
        self.loops: dict[str, LoopState] = {}
        # Seconds one pass may take (None: no limit); the Context sets it from the settings.
        self.pass_deadline = pass_deadline

    def state(self, name: str) -> LoopState:
        return self.loops.setdefault(name, LoopState())

    def guard(self, name: str, *, base_backoff: float = 1.0) -> _Guard:
        """``async with health.guard(name):`` around one pass: records it, swallows and backs off on failure."""
        return _Guard(self, name, base_backoff)

    def succeeded(self, name: str) -> None:
        """Record a finished pass (and say so once when a failing loop recovers)."""
        state = self.state(name)
        if state.consecutive_failures:
            log.warning("background loop %s recovered after %d failed passes", name, state.consecutive_failures)
        state.consecutive_failures = 0
        state.passes += 1
        state.last_success_at = utcnow()

    def failed(self, name: str, exc: Exception, *, base_backoff: float = 1.0) -> float:
        """Record a failed pass; returns how long to wait before the next one."""
        state = self.state(name)
        label = failure_class(exc)
        state.failures[label] += 1
        state.consecutive_failures += 1
        state.last_error = f"{label}: {exc}"[:500]
        state.last_failure_at = utcnow()
        signature = _signature(exc)
        if signature not in state.seen:
            state.seen.add(signature)
            log.error("background loop %s failed: %s", name, state.last_error, exc_info=exc)
        elif state.consecutive_failures == DEGRADED_AFTER:
            log.error("background loop %s degraded: %d failed passes in a row", name, state.consecutive_failures)
        return min(MAX_BACKOFF_SECONDS, base_backoff * 2 ** (state.consecutive_failures - 1))

    def cut(self, name: str, seconds: float, *, base_backoff: float = 1.0) -> float:
        """Record a pass cut at its deadline (one log line, no traceback); returns the back-off."""
        state = self.state(name)
        label = "deadline"
        state.failures[label] += 1
        state.consecutive_failures += 1
        state.last_error = f"pass cut at its {seconds:g} s deadline (a store did not answer)"
        state.last_failure_at = utcnow()
        log.error("background loop %s: %s", name, state.last_error)
        return min(MAX_BACKOFF_SECONDS, base_backoff * 2 ** (state.consecutive_failures - 1))

    def parked(self, name: str) -> None:
        """Count one item the loop gave up on and set aside (it keeps running for the rest)."""
        self.state(name).parked += 1

    def report(self) -> dict[str, str]:
        """``{loop: "ok" | "degraded"}`` for every loop that has run a pass."""
        return {name: "degraded" if s.degraded else "ok" for name, s in sorted(self.loops.items())}

    @property
    def degraded(self) -> bool:
        return any(s.degraded for s in self.loops.values())
