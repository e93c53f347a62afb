"""The nearest-stations search: the grid cells around a point, widened until the answer is certain.

The answer equals a scan of every station (the reference routing in the tests checks that), but
reads only the cells a lower bound on the distance to the stations outside them does not rule out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from math import cos, radians, sin, sqrt
from typing import TYPE_CHECKING

import numpy as np
from numpy import arcsin

from service.common.geo import EARTH_RADIUS_KM, Point
from service.stations.grids import StationGrid, haversine_prepared
from service.stations.index.candidates import MAX_CANDIDATE_SEARCH_KM, TOP_CANDIDATES, Candidate

if TYPE_CHECKING:  # the index calls nothing here; routing passes it in
    from service.stations.index.station_index import StationIndex

# A lower bound is shaved by this much (km) so that rounding never certifies a station too far.
CERTIFY_SLACK_KM = 1e-6
# The quick search ranks stations by the dot product of unit vectors (three multiplications,
# the same order as the great-circle distance) and measures exactly every station within this
# much of the fifth (about 6 mm at 6 km): far more than the rounding of either, so the stations it
# leaves out are certainly farther than the ones it measures.
DOT_SLACK = 1e-12
# The quick search starts from the 5x5 cells around the point's cell.
QUICK_REACH = 2
TWO_R = 2 * EARTH_RADIUS_KM
DEGREE = math.pi / 180  # what math.radians and numpy.radians multiply by

# What the quick search answers: the top candidates as (position, km), and the station the
# rules pick (position, km, full stations passed over) or None.
Pick = tuple[int, float, int]
Nearest = tuple[list[tuple[int, float]], Pick | None]


@functools.cache
def last_radius(max_km: float) -> float:
    """The widest radius the top-candidates search reaches (max_km doubled until >= 1000 km)."""
    radius = max_km * 2
    while radius < MAX_CANDIDATE_SEARCH_KM:
        radius *= 2
    return radius


def _outside_bound(
    lat: float, lon: float, cos_lat: float, r0: int, r1: int, c0: int, c1: int, grid: StationGrid
) -> float:
    """A lower bound (km) on the distance from the point to any station outside the cells
    ``r0..r1`` x ``c0..c1`` (none lies beyond the grid's edges), shaved for rounding: latitude
    alone, and the distance to the meridian past which the longitude differs more than the cells
    cover. ``inf`` when the cells are the whole grid."""
    g, x0, y0, n_cols, n_rows = grid.cell, grid.x0, grid.y0, grid.n_cols, grid.n_rows
    d_lat = min(lat - (y0 + r0 * g) if r0 > 0 else math.inf, y0 + (r1 + 1) * g - lat if r1 < n_rows - 1 else math.inf)
    d_lon = min(lon - (x0 + c0 * g) if c0 > 0 else math.inf, x0 + (c1 + 1) * g - lon if c1 < n_cols - 1 else math.inf)
    bound = math.inf
    if d_lat < math.inf:
        bound = math.radians(d_lat) * EARTH_RADIUS_KM
    if d_lon < math.inf:
        s = min(1.0, max(0.0, cos_lat) * math.sin(math.radians(min(d_lon, 90.0))))
        bound = min(bound, math.asin(s) * EARTH_RADIUS_KM)
    if bound == math.inf:
        return bound
    return bound * (1 - 1e-9) - CERTIFY_SLACK_KM


def nearest_quick(
    index: StationIndex, lon: float, lat: float, bit: int, exclude: frozenset[int], max_km: float
) -> Nearest | None:
    """What :func:`search_nearest` answers, for the common case, in plain Python: the top
    candidates nearest first (ties by code) with distances, and the first with room within
    ``max_km`` (else the first within it, else None) with how many full ones were passed over.

    The stations of the 5x5 cells around the point are ranked by the dot product of unit vectors
    (three multiplications each), only the handful that can be among the top candidates are
    measured exactly (the same operations as :func:`haversine_prepared`, so the same distances to
    the last bit), and the same lower bound as :func:`search_nearest` certifies them. ``None`` when it cannot answer
    from those few (the grid does not hold the point, or every candidate within ``max_km``
    among them is full): :func:`search_nearest` then answers.
    """
    grid = index.grid
    plain = grid.plain.get(bit) if bit else None  # bit 0 (every station) is not a capability
    if plain is None:
        return None
    starts, entries, units = plain
    g, n_cols, n_rows = grid.cell, grid.n_cols, grid.n_rows
    col, row_ = (lon - grid.x0) // g, (lat - grid.y0) // g
    if not (0 <= col < n_cols and 0 <= row_ < n_rows):  # also false for NaN
        return None
    c, r = int(col), int(row_)
    p1 = radians(lat)
    cos_lat = cos(p1)
    rad_lon = radians(lon)
    px, py, pz = cos_lat * cos(rad_lon), cos_lat * sin(rad_lon), sin(p1)
    r_last = last_radius(max_km)
    listed = grid.plain_lists.get(bit)
    if listed is not None and not exclude:
        cell = r * n_cols + c
        list_starts, list_ids = listed
        lo, hi = list_starts[cell], list_starts[cell + 1]
        if lo < hi:
            answer = _from_list(index, list_ids[lo:hi], lon, p1, cos_lat, px, py, pz, max_km, r_last)
            if answer is not None:
                return answer
    reach = QUICK_REACH
    while True:
        r0, r1 = max(0, r - reach), min(n_rows - 1, r + reach)
        c0, c1 = max(0, c - reach), min(n_cols - 1, c + reach)
        ids: list[int] = []
        dots: list[float] = []
        for row in range(r0, r1 + 1):
            lo, hi = starts[row * n_cols + c0], starts[row * n_cols + c1 + 1]
            if lo < hi:
                ids += entries[lo:hi]
                run = iter(units[3 * lo : 3 * hi])
                dots += [x * px + y * py + z * pz for x, y, z in zip(run, run, run, strict=True)]
        whole = r0 == 0 and c0 == 0 and r1 == n_rows - 1 and c1 == n_cols - 1
        if len(ids) < TOP_CANDIDATES and not whole:
            reach += 1  # too few to answer from: widen before measuring anything
            continue
        if exclude:
            keep = [k for k, i in enumerate(ids) if i not in exclude]
            ids, dots = [ids[k] for k in keep], [dots[k] for k in keep]
        if len(ids) > TOP_CANDIDATES:
            cut = sorted(dots)[-TOP_CANDIDATES] - DOT_SLACK
            few = [i for i, v in zip(ids, dots, strict=True) if v >= cut]
        else:
            few = ids
        ordered = _measured(index, few, lon, p1, cos_lat)
        cert = _outside_bound(lat, lon, cos_lat, r0, r1, c0, c1, grid)
        n_cert = 0
        for d, _, _ in ordered:
            if d > cert:
                break
            n_cert += 1
        if n_cert >= TOP_CANDIDATES or cert >= r_last:
            full = index.full_of
            within = 0
            for k, (d, _, i) in enumerate(ordered[:n_cert]):
                if d > max_km:
                    break
                within += 1
                if not full[i]:
                    return _top(ordered, n_cert, r_last), (i, d, k)
            if cert >= max_km:
                # Every station within max_km is among the measured ones unless the last measured
                # is itself within reach (then more may be, all full so far: the full search decides).
                if len(few) < len(ids) and ordered[-1][0] <= max_km:
                    return None
                first = (ordered[0][2], ordered[0][0], 0) if within else None
                return _top(ordered, n_cert, r_last), first
        reach = reach + 1 if reach < 2 * QUICK_REACH else reach * 2


def quick_path(index: StationIndex, lon: float, lat: float, bit: int, exclude: frozenset[int], max_km: float) -> str:
    """Which way the search answers for this point (for measurement): ``list`` (the cell's pruned
    list), ``ring`` (the cells around the point, widened until certain) or ``full``
    (:func:`nearest_quick` hands over to :func:`search_nearest`)."""
    if nearest_quick(index, lon, lat, bit, exclude, max_km) is None:
        return "full"
    grid = index.grid
    listed = grid.plain_lists.get(bit)
    if listed is None or exclude:
        return "ring"
    cell = int((lat - grid.y0) // grid.cell) * grid.n_cols + int((lon - grid.x0) // grid.cell)
    list_starts, list_ids = listed
    lo, hi = list_starts[cell], list_starts[cell + 1]
    if lo == hi:
        return "ring"
    p1 = radians(lat)
    cos_lat = cos(p1)
    rad_lon = radians(lon)
    px, py, pz = cos_lat * cos(rad_lon), cos_lat * sin(rad_lon), sin(p1)
    answer = _from_list(index, list_ids[lo:hi], lon, p1, cos_lat, px, py, pz, max_km, last_radius(max_km))
    return "ring" if answer is None else "list"


def _from_list(
    index: StationIndex,
    ids: Sequence[int],
    lon: float,
    p1: float,
    cos_lat: float,
    px: float,
    py: float,
    pz: float,
    max_km: float,
    r_last: float,
) -> Nearest | None:
    """:func:`nearest_quick`'s answer from the cell's pruned list (every station that can be among
    the five nearest of a point in the cell, :meth:`StationGrid.nearest_lists`): no bound to prove,
    nothing to widen. ``None`` when the five nearest within ``max_km`` are all full.

    One pass ranks the list by dot product, one measures the few that can be among the five (as
    :func:`_measured` does, inlined: this is the path of nearly every decision), both plain loops
    (quicker here than comprehensions and the intermediate lists they need)."""
    u = index.unit_of
    dots = []
    for i in ids:  # a plain loop: quicker here than a comprehension (no inner function, no offsets list)
        k = 3 * i
        dots.append(u[k] * px + u[k + 1] * py + u[k + 2] * pz)
    cut = sorted(dots)[-TOP_CANDIDATES] - DOT_SLACK
    g, ranks = index.place_of, index.rank_of
    roots: list[float] = []
    few: list[int] = []
    few_ranks: list[int] = []
    for i, v in zip(ids, dots, strict=True):
        if v < cut:
            continue
        k = 3 * i
        a = sin((g[k + 1] - p1) / 2)
        b = sin((g[k] - lon) * DEGREE / 2)
        h = a * a + cos_lat * g[k + 2] * (b * b)
        roots.append(sqrt(h if h < 1.0 else 1.0))
        few.append(i)
        few_ranks.append(ranks[i])
    ordered = sorted(zip([TWO_R * a for a in arcsin(roots).tolist()], few_ranks, few, strict=True))
    del ordered[TOP_CANDIDATES:]
    full = index.full_of
    within = 0
    for k, (d, _, i) in enumerate(ordered):
        if d > max_km:
            break
        within += 1
        if not full[i]:
            return [(i, d) for d, _, i in ordered if d <= r_last], (i, d, k)
    if within == TOP_CANDIDATES:
        return None  # more within reach may be beyond the five, all full so far
    first = (ordered[0][2], ordered[0][0], 0) if within else None
    return [(i, d) for d, _, i in ordered if d <= r_last], first


def _measured(
    index: StationIndex, few: list[int], lon: float, p1: float, cos_p1: float
) -> list[tuple[float, int, int]]:
    """``few`` as (km, code rank, position), nearest first then by code: exactly the distances of
    :func:`haversine_prepared` (numpy's ``arcsin`` differs from ``math.asin`` in the last bit, so
    that one step is numpy's)."""
    g, ranks = index.place_of, index.rank_of
    roots = []
    for i in few:
        k = 3 * i
        a = sin((g[k + 1] - p1) / 2)
        b = sin((g[k] - lon) * DEGREE / 2)
        h = a * a + cos_p1 * g[k + 2] * (b * b)
        roots.append(sqrt(h if h < 1.0 else 1.0))
    arcs: list[float] = np.arcsin(roots).tolist()
    return sorted(zip([TWO_R * a for a in arcs], [ranks[i] for i in few], few, strict=True))


def _top(ordered: list[tuple[float, int, int]], n_cert: int, r_last: float) -> list[tuple[int, float]]:
    out = []
    for d, _, i in ordered[: min(n_cert, TOP_CANDIDATES)]:
        if d > r_last:
            break
        out.append((i, d))
    return out


def search_nearest(
    index: StationIndex, point: Point, bit: int, exclude: frozenset[int], max_km: float
) -> tuple[np.ndarray, np.ndarray, list[Candidate]]:
    """Candidates within ``max_km`` nearest first (ties by code) with distances, as far as the
    choice among them needs (at least up to the first with room), and the top candidates.

    From the grid: the cells around the point, widened until a lower bound on the distance to
    every station outside them certifies the answer, so it equals a scan of every station.
    """
    r_last = last_radius(max_km)
    grid = index.grid
    starts = grid.starts.get(bit)
    lon, lat = point.lon, point.lat
    if not bit:
        return np.empty(0, dtype=np.int64), np.empty(0), []
    if starts is None or not grid.holds(lon, lat):
        return _search_all(index, point, bit, exclude, max_km)
    entries = grid.entries[bit]
    g, x0, y0, n_cols, n_rows = grid.cell, grid.x0, grid.y0, grid.n_cols, grid.n_rows
    c = int((lon - x0) // g)
    r = int((lat - y0) // g)
    cos_lat = math.cos(math.radians(lat))
    reach = QUICK_REACH
    while True:
        r0, r1 = max(0, r - reach), min(n_rows - 1, r + reach)
        c0, c1 = max(0, c - reach), min(n_cols - 1, c + reach)
        parts = [entries[starts[row * n_cols + c0] : starts[row * n_cols + c1 + 1]] for row in range(r0, r1 + 1)]
        if sum(len(part) for part in parts) < TOP_CANDIDATES and not (
            r0 == 0 and c0 == 0 and r1 == n_rows - 1 and c1 == n_cols - 1
        ):
            reach *= 2  # too few to answer from: widen before measuring anything
            continue
        idx = np.concatenate(parts)
        if exclude:
            idx = idx[~np.isin(idx, np.fromiter(exclude, dtype=np.int64))]
        dist = haversine_prepared(lon, lat, index.lons[idx], index.rad_lats[idx], index.cos_lats[idx])
        order = np.lexsort((index.code_rank[idx], dist))
        idx, dist = idx[order], dist[order]
        cert = _outside_bound(lat, lon, cos_lat, r0, r1, c0, c1, grid)
        everything = cert == math.inf
        n_cert = len(dist) if everything else int(dist.searchsorted(cert, side="right"))
        done = everything
        if not done and (n_cert >= TOP_CANDIDATES or cert >= r_last):
            if cert >= max_km:
                done = True
            else:
                m = int(dist[:n_cert].searchsorted(max_km, side="right"))
                done = bool(m) and not bool(index.at_capacity[idx[:m]].all())
        if done:
            break
        reach *= 2
    head = dist[:n_cert]
    n_near = int(head.searchsorted(max_km, side="right"))
    n_top = min(TOP_CANDIDATES, int(head.searchsorted(r_last, side="right")))
    labels = index.labels
    top = [
        Candidate(labels[i][0], labels[i][1], labels[i][2], d)
        for i, d in zip(idx[:n_top].tolist(), dist[:n_top].tolist(), strict=True)
    ]
    return idx[:n_near], dist[:n_near], top


def _search_all(
    index: StationIndex, point: Point, bit: int, exclude: frozenset[int], max_km: float
) -> tuple[np.ndarray, np.ndarray, list[Candidate]]:
    """:func:`search_nearest` over every station (points off the grid)."""
    mask = ((index.capability_mask & bit) != 0) & index.alive
    for i in exclude:
        mask[i] = False
    idx = np.nonzero(mask)[0]
    idx, dist = index.ordered(idx, point)
    n_near = int(np.searchsorted(dist, max_km, side="right"))
    n_top = min(TOP_CANDIDATES, int(np.searchsorted(dist, last_radius(max_km), side="right")))
    top = [index.candidate(int(i), d) for i, d in zip(idx[:n_top].tolist(), dist[:n_top].tolist(), strict=True)]
    return idx[:n_near], dist[:n_near], top
