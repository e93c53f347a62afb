"""Keeping an index current: station changes taken into a copy of the index in use, in place where
they can be, else the index built anew.

Positions are stable: a closed or changed station leaves a hole (``alive`` false) and its new
state is appended, so a change touches only the cells, counties and lists it changes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from service.stations.index.station_index import StationIndex, code_keys
from service.stations.models import CountyArea, IndexedStation

# More station changes than this share of the stations: build the index anew instead of in place.
INCREMENTAL_SHARE = 0.05


def routing_fields(s: IndexedStation) -> tuple[Any, ...]:
    """What an index holds of a station, except its open-case count (re-read without a rebuild)."""
    return (
        s.code,
        s.name,
        s.county_code,
        s.county_name,
        s.lon,
        s.lat,
        s.capabilities,
        s.capacity,
        s.jurisdiction,
        s.precision,
    )


def station_changes(
    index: StationIndex, stations: Sequence[IndexedStation]
) -> tuple[list[IndexedStation], list[str]] | None:
    """What differs between ``index`` and ``stations`` (changed or new, and closed ids);
    ``None`` when so much differs that building anew is cheaper. Reads only."""
    fresh = {s.id: s for s in stations}
    closed = [sid for sid in index.by_id if sid not in fresh]
    changed = []
    limit = max(16, int(INCREMENTAL_SHARE * max(len(index.by_id), len(fresh))))
    for s in stations:
        i = index.by_id.get(s.id)
        old = index.stations[i] if i is not None else None
        if old is None or routing_fields(old) != routing_fields(s):
            changed.append(s)
            if len(changed) + len(closed) > limit:
                return None
    if len(changed) + len(closed) > limit:
        return None
    return changed, closed


def updated_index(
    index: StationIndex, changed: Sequence[IndexedStation], closed: Iterable[str], *, version: int
) -> StationIndex | None:
    """A copy of ``index`` with station changes taken in: only the touched cells, counties and
    lists change (``index``, still in use, is left as it is).

    ``None`` when the changes cannot be taken in place (a new capability, a station off the
    grid): build anew then.
    """
    closed = [sid for sid in closed if sid in index.by_id]
    if any(c not in index.capability_bit for s in changed for c in s.capabilities):
        return None
    if not index.numeric_codes or code_keys([s.code for s in changed]) is None:
        return None
    if not index.grid.enabled or not all(index.grid.holds(s.lon, s.lat) for s in changed):
        return None
    out = copy.copy(index)
    out.stations = list(index.stations)
    out.by_id = dict(index.by_id)
    out.by_code = dict(index.by_code)
    out.by_county = dict(index.by_county)
    out.capped = dict(index.capped)
    out.grid = index.grid.copy()
    _apply(out, changed, closed, version=version)
    return out


def _apply(index: StationIndex, changed: Sequence[IndexedStation], closed: Sequence[str], *, version: int) -> None:
    """Take station changes (checked by :func:`updated_index`) into a copy of an index, in place."""
    gone = [index.by_id[sid] for sid in closed] + [index.by_id[s.id] for s in changed if s.id in index.by_id]
    touched: set[str] = set()
    jurisdictions = False
    grid = index.grid
    bits = [0, *index.capability_bit.values()]
    alive = index.alive.copy()
    for i in gone:
        s = index.stations[i]
        assert s is not None
        del index.by_id[s.id]
        holders = [h for h in index.by_code[s.code] if h != i]
        if holders:
            index.by_code[s.code] = holders
        else:
            del index.by_code[s.code]
        touched.add(s.county_code)
        jurisdictions = jurisdictions or bool(s.jurisdiction)
        index.capped.pop(i, None)
        cell = int(grid.cells(index.lons[i : i + 1], index.lats[i : i + 1])[0]) if grid.enabled else -1
        for bit in bits if grid.enabled else ():
            if bit == 0 or index.capability_mask[i] & bit:
                grid.remove(bit, i, cell)
        index.stations[i] = None
        alive[i] = False
    n0, k = len(index.stations), len(changed)
    if k:
        bit_of = index.capability_bit
        index.lons = np.concatenate((index.lons, [s.lon for s in changed]))
        index.lats = np.concatenate((index.lats, [s.lat for s in changed]))
        index.rad_lats = np.radians(index.lats)
        index.cos_lats = np.cos(index.rad_lats)
        index.labels = [*index.labels, *((s.id, s.code, s.name) for s in changed)]
        keys = code_keys([s.code for s in changed])
        assert keys is not None
        index.code_rank = np.concatenate((index.code_rank, keys))
        index.set_scalars()
        index.at_capacity = np.concatenate((index.at_capacity, [s.at_capacity for s in changed]))
        index.exact = np.concatenate((index.exact, [s.precision == "exact" for s in changed]))
        masks = np.asarray([sum(bit_of[c] for c in s.capabilities) for s in changed], dtype=np.int64)
        index.capability_mask = np.concatenate((index.capability_mask, masks))
        alive = np.concatenate((alive, np.ones(k, dtype=bool)))
        cells = grid.cells(index.lons[n0:], index.lats[n0:])
        for j, s in enumerate(changed):
            i = n0 + j
            index.stations.append(s)
            index.by_id[s.id] = i
            index.by_code[s.code] = [*index.by_code.get(s.code, ()), i]
            touched.add(s.county_code)
            jurisdictions = jurisdictions or bool(s.jurisdiction)
            if s.capacity is not None:
                index.capped[i] = s.capacity
            for bit in bits:
                if bit == 0 or masks[j] & bit:
                    grid.add(bit, i, int(cells[j]))
    index.alive = alive
    grid.settle(index.units, index.lons, index.lats)
    for code in touched:
        members = index.by_county.get(code, np.empty(0, dtype=np.int64))
        members = members[index.alive[members]] if len(members) else members
        added = [n0 + j for j, s in enumerate(changed) if s.county_code == code]
        index.set_county(code, np.concatenate((members, np.asarray(added, dtype=np.int64))))
    if jurisdictions:
        index.build_jurisdictions()
    index.known_counties = set(index.county_names) | set(index.by_county)
    index.warm_counties()
    index.version = version


def refresh_index(
    previous: StationIndex | None,
    stations: Sequence[IndexedStation],
    counties: Sequence[CountyArea],
    *,
    version: int,
    township_names: Mapping[str, str],
) -> StationIndex:
    """The index of ``stations``: ``previous`` changed where the stations changed, when it can."""
    county_grid = None
    if previous is not None and tuple(counties) == previous.counties:
        county_grid = previous.county_grid
        if dict(township_names) == previous.township_names:
            diff = station_changes(previous, stations)
            fresh = updated_index(previous, *diff, version=version) if diff is not None else None
            if fresh is not None:
                fresh.update_loads({s.id: s.open_cases for s in stations})
                return fresh
    return StationIndex(stations, counties, version=version, township_names=township_names, county_grid=county_grid)
