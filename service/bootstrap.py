"""What runs at start, what `seed` loads, and which background loops a process runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from config.holidays import load_holidays
from service.alerts.escalation import escalation_loop
from service.cases import sweeps as case_sweeps
from service.catalog import service as catalog
from service.common import worktime
from service.common.context import Context
from service.identity.staff import ensure_first_admin
from service.notify import delivery
from service.notify import service as notify
from service.stations import imports as station_imports
from service.storage.migrations import (
    date_list_marks,
    drop_case_idempotency_index,
    drop_descending_time_indexes,
    give_cases_regions,
    give_events_subjects,
    rekey_object_ids,
)
from service.visits import records as visits
from service.webhooks.delivery import run_delivery_loop

log = logging.getLogger("huimin")

StartupHook = Callable[[Context], Awaitable[None]]
Seeder = Callable[[Context], Awaitable[str]]
Loop = Callable[[Context], Awaitable[None]]


async def install_holiday_calendar(ctx: Context) -> None:
    """Put the deployment's holiday years in place, and say loudly when next year is missing."""
    worktime.install_overrides(load_holidays(ctx.settings.holidays_file))
    today = ctx.now().astimezone(worktime.TZ).date()
    warning = worktime.calendar_warning(today)
    if warning:
        log.warning(warning, extra={"holiday_calendar_last_year": worktime.last_covered_year(today)})
    else:
        log.info("holiday calendar known up to %s", worktime.last_covered_year(today))


async def _string_ids(ctx: Context) -> None:
    await rekey_object_ids(ctx.db)


async def _event_subjects(ctx: Context) -> None:
    await give_events_subjects(ctx.db)


async def _case_idempotency_index(ctx: Context) -> None:
    await drop_case_idempotency_index(ctx.db)


async def _descending_time_indexes(ctx: Context) -> None:
    await drop_descending_time_indexes(ctx.db)


async def _case_regions(ctx: Context) -> None:
    await give_cases_regions(ctx.db)


async def _list_marks_time(ctx: Context) -> None:
    await date_list_marks(ctx.db)


# Run at every start, in order, after indexes exist (cheap and idempotent).
STARTUP_HOOKS: list[tuple[str, StartupHook]] = [
    ("holiday calendar", install_holiday_calendar),
    ("string ids", _string_ids),
    ("event subjects", _event_subjects),
    ("case idempotency index", _case_idempotency_index),
    ("descending time indexes", _descending_time_indexes),
    ("case city and province codes", _case_regions),
    ("list marks' time", _list_marks_time),
    ("first admin", ensure_first_admin),
]
# Run by `run.py seed` and by `make run` before serving (idempotent).
SEEDERS: list[tuple[str, Seeder]] = [
    ("catalog", catalog.seed_catalog),
    ("stations", station_imports.seed_stations),
]
# Long-running loops, coordinated through the databases so several processes may run them.
BACKGROUND_LOOPS: list[tuple[str, Loop]] = [
    ("case-sweep", case_sweeps.sweep_loop),
    ("notify-events", notify.events_loop),
    ("notify-deliveries", delivery.deliveries_loop),
    ("webhook-delivery", run_delivery_loop),
    ("visits", visits.visits_loop),
    ("alert-escalation", escalation_loop),
]


async def on_start(*, ctx: Context) -> None:
    """Run the start-up hooks."""
    for name, hook in STARTUP_HOOKS:
        log.debug("start-up hook %s", name)
        await hook(ctx)


async def seed(*, ctx: Context) -> list[str]:
    """Run every seeder; one report line each."""
    return [f"{name}: {await seeder(ctx)}" for name, seeder in SEEDERS]


async def _supervised(name: str, loop: Loop, ctx: Context) -> None:
    """Keep a loop alive: a failure that escapes its own pass guard restarts it after a back-off."""
    while True:
        try:
            await loop(ctx)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted and logged by the loop health
            await asyncio.sleep(ctx.loops.failed(name, exc, base_backoff=2.0))


def start_background(*, ctx: Context) -> list[asyncio.Task[None]]:
    """Start every background loop as a task."""
    return [asyncio.create_task(_supervised(name, loop, ctx), name=name) for name, loop in BACKGROUND_LOOPS]


async def stop_background(tasks: list[asyncio.Task[None]], *, timeout: float = 10.0) -> None:
    """Cancel the loops and wait for them, but never let one stuck in a driver call hang shutdown."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        log.warning("background loop %s did not stop within %.0f s; leaving it", task.get_name(), timeout)
