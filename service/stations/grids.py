"""Fixed grids that answer "which polygons hold this point" and "which stations are near it"
from a cell lookup, and the great-circle distances they are measured with."""

from __future__ import annotations

import copy
import math
from array import array
from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry import shape

from service.common.geo import EARTH_RADIUS_KM
from service.stations.models import CountyArea

# The polygon grid (counties, jurisdictions): cells of this many degrees (about 2 km).
POLYGON_CELL_DEG = 0.02
CELLS_PER_POLYGON = 600
# Jurisdictions are township-sized and change with stations: a coarser grid, quick to rebuild.
CELLS_PER_JURISDICTION = 16
# The station grid: cells sized so that a station sees about this many others in its cell
# (about one of a capability offered by most stations: the search around a point reads the 5x5
# cells around it, about 25 stations, and that block holds the five nearest for all but a few
# tenths of a percent of points), clamped to these sides, never more than MAX_GRID_CELLS cells,
# and a margin around the stations so that points near (not only among) them are answered from
# the grid too.
STATIONS_PER_CELL = 1.1
MIN_CELL_DEG = 0.01
MAX_CELL_DEG = 2.0
MAX_GRID_CELLS = 4_000_000
GRID_MARGIN_DEG = 3.0


def haversine_many(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Great-circle distances in km from one point to many (vectorised)."""
    p1 = math.radians(lat)
    p2 = np.radians(lats)
    dp = p2 - p1
    dl = np.radians(lons - lon)
    h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, h)))


def haversine_prepared(
    lon: float, lat: float, lons: np.ndarray, rad_lats: np.ndarray, cos_lats: np.ndarray
) -> np.ndarray:
    """:func:`haversine_many` with the stations' radians and cosines of latitude computed once
    (the same operations in the same order, so the same distances to the last bit)."""
    p1 = math.radians(lat)
    dp = rad_lats - p1
    dl = np.radians(lons - lon)
    h = np.sin(dp / 2) ** 2 + math.cos(p1) * cos_lats * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, h)))


class PolygonGrid:
    """Which polygons hold a point, precomputed on a fixed grid.

    A cell that lies wholly inside one polygon and touches no other answers without any
    geometry; a cell on a border lists the few polygons touching it (in rank order), and only
    those are tested against the point. The answer equals ``geometry.intersects(point)`` over
    every polygon.
    """

    def __init__(
        self,
        geoms: np.ndarray,
        rank: Sequence[int],
        cell_deg: float = POLYGON_CELL_DEG,
        cells_per_polygon: int = CELLS_PER_POLYGON,
    ) -> None:
        self.geoms = geoms
        self.cell = cell_deg
        self.x0 = self.y0 = 0.0
        self.n_cols = self.n_rows = 0
        self.single: list[int] = []
        self.starts: list[int] = [0]
        self.entries: list[int] = []
        self.covered: list[bool] = []
        if not len(geoms):
            return
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
        # Fine enough that most cells lie inside one polygon, at most CELLS_PER_POLYGON per polygon.
        area = (maxx - minx + 2 * cell_deg) * (maxy - miny + 2 * cell_deg)
        cell_deg = max(cell_deg, math.sqrt(area / (cells_per_polygon * len(geoms))))
        self.cell = cell_deg
        self.x0 = math.floor(minx / cell_deg) * cell_deg - cell_deg
        self.y0 = math.floor(miny / cell_deg) * cell_deg - cell_deg
        self.n_cols = (math.ceil((maxx - self.x0) / cell_deg)) + 2
        self.n_rows = (math.ceil((maxy - self.y0) / cell_deg)) + 2
        n_cells = self.n_cols * self.n_rows
        cols = np.tile(np.arange(self.n_cols), self.n_rows)
        rows = np.repeat(np.arange(self.n_rows), self.n_cols)
        eps = 1e-9  # a point that rounding puts in a cell is inside its (slightly grown) box
        boxes = shapely.box(
            self.x0 + cols * cell_deg - eps,
            self.y0 + rows * cell_deg - eps,
            self.x0 + (cols + 1) * cell_deg + eps,
            self.y0 + (rows + 1) * cell_deg + eps,
        )
        cell_of, geom_of = shapely.STRtree(geoms).query(boxes, predicate="intersects")
        covered = shapely.covers(geoms[geom_of], boxes[cell_of])
        ranks = np.asarray(rank, dtype=np.int64)
        order = np.lexsort((ranks[geom_of], cell_of))
        cell_of, geom_of, covered = cell_of[order], geom_of[order], covered[order]
        starts = np.searchsorted(cell_of, np.arange(n_cells + 1), side="left")
        counts = np.diff(starts)
        single = np.full(n_cells, -2, dtype=np.int64)
        single[counts == 0] = -1
        one = np.nonzero(counts == 1)[0]
        first = starts[one]
        whole = covered[first]
        single[one[whole]] = geom_of[first[whole]]
        self.single = single.tolist()
        self.starts = starts.tolist()
        self.entries = geom_of.tolist()
        self.covered = covered.tolist()

    def _cell(self, lon: float, lat: float) -> int:
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return -1
        c = int((lon - self.x0) // self.cell)
        r = int((lat - self.y0) // self.cell)
        if 0 <= c < self.n_cols and 0 <= r < self.n_rows:
            return r * self.n_cols + c
        return -1

    def first(self, lon: float, lat: float) -> int | None:
        """The lowest-ranked polygon holding the point."""
        k = self._cell(lon, lat)
        if k < 0:
            return None
        one = self.single[k]
        if one != -2:
            return None if one < 0 else one
        for j in range(self.starts[k], self.starts[k + 1]):
            g = self.entries[j]
            if self.covered[j] or shapely.intersects_xy(self.geoms[g], lon, lat):
                return g
        return None

    def holding(self, lon: float, lat: float) -> list[int]:
        """Every polygon holding the point, in rank order."""
        k = self._cell(lon, lat)
        if k < 0:
            return []
        out = []
        for j in range(self.starts[k], self.starts[k + 1]):
            g = self.entries[j]
            if self.covered[j] or shapely.intersects_xy(self.geoms[g], lon, lat):
                out.append(g)
        return out


class StationGrid:
    """Active stations by capability and grid cell (row-major), so a row of cells is one slice."""

    def __init__(
        self, lons: np.ndarray, lats: np.ndarray, alive: np.ndarray, bits: Iterable[int], masks: np.ndarray
    ) -> None:
        live = np.nonzero(alive)[0]
        self.enabled = bool(len(live))
        self.cell = MAX_CELL_DEG
        self.x0 = self.y0 = 0.0
        self.n_cols = self.n_rows = 1
        self.starts: dict[int, np.ndarray] = {}
        self.entries: dict[int, np.ndarray] = {}
        # Per capability bit, what the per-decision search reads as plain arrays (a numpy slice and
        # its conversion cost several times more): the starts, the entries, and the entries' unit
        # vectors (x, y, z) in the same order, so a row of cells is one run of memory.
        self.plain: dict[int, tuple[array[int], array[int], array[float]]] = {}
        self.stale: set[int] = set()
        if not self.enabled:
            return
        x, y = lons[live], lats[live]
        minx, maxx, miny, maxy = float(x.min()), float(x.max()), float(y.min()), float(y.max())
        if maxx - minx > 170.0:
            # No wrap-around at 180 degrees in the grid: such an index answers by the general search.
            self.enabled = False
            return
        # The density a typical station sees: stations per square degree of its 1-degree cell.
        coarse = np.floor(y).astype(np.int64) * 1000 + np.floor(x).astype(np.int64)
        _, counts = np.unique(coarse, return_counts=True)
        weighted = np.sort(np.repeat(counts, counts))
        density = float(weighted[len(weighted) // 2])
        cell = min(MAX_CELL_DEG, max(MIN_CELL_DEG, math.sqrt(STATIONS_PER_CELL / density)))
        margin = GRID_MARGIN_DEG
        while True:
            x0 = math.floor((minx - margin) / cell) * cell
            y0 = math.floor((max(-90.0, miny - margin)) / cell) * cell
            n_cols = int((min(maxx + margin, 180.0) - x0) // cell) + 1
            n_rows = int((min(90.0, maxy + margin) - y0) // cell) + 1
            if n_cols * n_rows <= MAX_GRID_CELLS:
                break
            cell *= 1.5
        self.cell, self.x0, self.y0, self.n_cols, self.n_rows = cell, x0, y0, n_cols, n_rows
        for bit in (0, *bits):
            self.rebuild(bit, lons, lats, alive, masks)

    def copy(self) -> StationGrid:
        out = copy.copy(self)
        out.starts = {bit: starts.copy() for bit, starts in self.starts.items()}
        out.entries = dict(self.entries)
        out.plain = dict(self.plain)
        out.stale = set(self.stale)
        return out

    def settle(self, units: np.ndarray) -> None:
        """Bring the plain arrays up to date: for every capability bit built or changed since
        (:meth:`rebuild`, :meth:`add`, :meth:`remove`), with ``units`` the stations' unit vectors."""
        for bit in self.stale:
            if bit:
                starts, entries = self.starts[bit], self.entries[bit]
                self.plain[bit] = (
                    array("i", starts.astype(np.intc).tobytes()),
                    array("q", entries.astype(np.int64).tobytes()),
                    array("d", np.ascontiguousarray(units[entries], dtype=np.float64).tobytes()),
                )
        self.stale.clear()

    def cells(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        cols = ((lons - self.x0) // self.cell).astype(np.int64)
        rows = ((lats - self.y0) // self.cell).astype(np.int64)
        return rows * self.n_cols + cols

    def holds(self, lon: float, lat: float) -> bool:
        c = (lon - self.x0) // self.cell
        r = (lat - self.y0) // self.cell
        return self.enabled and 0 <= c < self.n_cols and 0 <= r < self.n_rows

    def rebuild(self, bit: int, lons: np.ndarray, lats: np.ndarray, alive: np.ndarray, masks: np.ndarray) -> None:
        # Key 0: every station, whatever it offers.
        pos = np.nonzero(alive & ((masks & bit) != 0))[0] if bit else np.nonzero(alive)[0]
        cells = self.cells(lons[pos], lats[pos])
        order = np.argsort(cells, kind="stable")
        self.entries[bit] = pos[order]
        counts = np.bincount(cells, minlength=self.n_cols * self.n_rows)
        self.starts[bit] = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
        self.stale.add(bit)

    def add(self, bit: int, i: int, cell: int) -> None:
        starts = self.starts[bit]
        self.entries[bit] = np.insert(self.entries[bit], starts[cell + 1], i)
        starts[cell + 1 :] += 1
        self.stale.add(bit)

    def remove(self, bit: int, i: int, cell: int) -> None:
        starts = self.starts[bit]
        lo, hi = int(starts[cell]), int(starts[cell + 1])
        hits = np.nonzero(self.entries[bit][lo:hi] == i)[0]
        if len(hits):
            self.entries[bit] = np.delete(self.entries[bit], lo + int(hits[0]))
            starts[cell + 1 :] -= 1
            self.stale.add(bit)


_COUNTY_GRIDS: dict[tuple[tuple[str, int], ...], tuple[tuple[CountyArea, ...], PolygonGrid]] = {}


def build_county_grid(counties: tuple[CountyArea, ...]) -> PolygonGrid:
    """The grid of these county polygons; the last few are kept (they do not change with stations)."""
    key = tuple((c.code, id(c.geometry)) for c in counties)
    hit = _COUNTY_GRIDS.get(key)
    if hit is not None:
        return hit[1]
    geoms = np.asarray([shape(c.geometry) for c in counties], dtype=object)
    shapely.prepare(geoms)
    codes = sorted(c.code for c in counties)
    grid = PolygonGrid(geoms, [codes.index(c.code) for c in counties])
    if len(_COUNTY_GRIDS) >= 4:
        _COUNTY_GRIDS.pop(next(iter(_COUNTY_GRIDS)))
    _COUNTY_GRIDS[key] = (counties, grid)  # the counties held, so their ids stay theirs
    return grid
