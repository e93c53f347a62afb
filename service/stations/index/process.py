"""The per-process copy of the index: read from MongoDB, checked against the stations version at
most once a second, and taken forward by the stations that changed rather than built anew."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from service.common.context import Context
from service.stations.divisions_data import division_table
from service.stations.index.changes import refresh_index
from service.stations.index.station_index import StationIndex
from service.stations.repository import CountiesRepository, StationsRepository, read_stations_version

REFRESH_SECONDS = 1.0


@dataclass
class IndexHolder:
    """The current index of one process and when its version was last checked."""

    index: StationIndex | None = None
    checked_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def load_index(*, ctx: Context, previous: StationIndex | None = None) -> StationIndex:
    """A fresh index of the stations and counties in MongoDB: ``previous`` with the stations that
    changed taken in when it can, else built anew (the county grid is kept while counties stay)."""
    version = await read_stations_version(ctx.db)
    stations = await StationsRepository(ctx.db).list_for_index()
    counties = await CountiesRepository(ctx.db).list_all()
    names = division_table().township_names()
    return await asyncio.to_thread(refresh_index, previous, stations, counties, version=version, township_names=names)


async def current_index(*, ctx: Context) -> StationIndex:
    """This process's index, rebuilt when another write bumped the stations version."""
    holder = ctx.process.station_index
    if holder is None:
        holder = ctx.process.station_index = IndexHolder()
    now = time.monotonic()
    if holder.index is not None and now - holder.checked_at < REFRESH_SECONDS:
        return holder.index
    async with holder.lock:
        if holder.index is not None and time.monotonic() - holder.checked_at < REFRESH_SECONDS:
            return holder.index
        version = await read_stations_version(ctx.db)
        if holder.index is None or holder.index.version != version:
            holder.index = await load_index(ctx=ctx, previous=holder.index)
        elif holder.index.capped:
            # Open-case counts change with every case; they are re-read here, cheaply, instead
            # of rebuilding the whole index on each change.
            holder.index.update_loads(await StationsRepository(ctx.db).loads())
        holder.checked_at = time.monotonic()
        return holder.index


def invalidate_index(*, ctx: Context) -> None:
    """Make this process re-check the version on its next use (after its own writes)."""
    holder = ctx.process.station_index
    if isinstance(holder, IndexHolder):
        holder.checked_at = 0.0
