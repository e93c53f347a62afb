"""The nearest-stations search: the grid cells around a point, widened until the answer is certain.

The answer equals a scan of every station (the reference routing in the tests checks that), but
reads only the cells a lower bound on the distance to the stations outside them does not rule out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from service.common.geo import EARTH_RADIUS_KM, Point
from service.stations.grids import haversine_prepared
from service.stations.index.candidates import MAX_CANDIDATE_SEARCH_KM, TOP_CANDIDATES, Candidate

if TYPE_CHECKING:  # the index calls nothing here; routing passes it in
    from service.stations.index.station_index import StationIndex

# A lower bound is shaved by this much (km) so that rounding never certifies a station too far.
CERTIFY_SLACK_KM = 1e-6


def last_radius(max_km: float) -> float:
    """The widest radius the top-candidates search reaches (max_km doubled until >= 1000 km)."""
    radius = max_km * 2
    while radius < MAX_CANDIDATE_SEARCH_KM:
        radius *= 2
    return radius


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
    reach = 1
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
        # A lower bound on the distance to any station outside the cells read (none lies
        # beyond the grid's edges): latitude alone, and the distance to the meridian past which
        # the longitude differs more than the cells cover.
        d_lat = min(
            lat - (y0 + r0 * g) if r0 > 0 else math.inf, y0 + (r1 + 1) * g - lat if r1 < n_rows - 1 else math.inf
        )
        d_lon = min(
            lon - (x0 + c0 * g) if c0 > 0 else math.inf, x0 + (c1 + 1) * g - lon if c1 < n_cols - 1 else math.inf
        )
        bound = math.inf
        if d_lat < math.inf:
            bound = math.radians(d_lat) * EARTH_RADIUS_KM
        if d_lon < math.inf:
            s = min(1.0, max(0.0, cos_lat) * math.sin(math.radians(min(d_lon, 90.0))))
            bound = min(bound, math.asin(s) * EARTH_RADIUS_KM)
        everything = bound == math.inf
        cert = bound * (1 - 1e-9) - CERTIFY_SLACK_KM
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
