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
# With edges (the county grid), each border cell is divided into SUB_CELLS x SUB_CELLS sub-cells;
# one that no polygon's edge meets has its answer precomputed (no test for a point there).
SUB_CELLS = 8
# A sub-cell's corner this close to an edge's line (degrees squared: the cross product, far above
# its rounding) counts as on the line, so the edge counts as meeting the sub-cell.
SIDE_TOLERANCE = 1e-13
# How many border cells' sub-cells are worked out at once (bounds the build's memory).
SUB_CHUNK = 512
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
# Per cell and capability, the stations that can be among the five nearest of any point in the
# cell (the decision's candidates): the cells within this many of it are searched for them, and a
# cell whose list those cells cannot certify (too few stations around it) has none.
LIST_REACH = 3
LIST_TOP = 5
# A cell those cells cannot certify is searched again within this many cells, when they hold at
# least WIDE_MIN_STATIONS of the capability (a quarter of what so many cells typically hold): a
# cell at the edge of where stations are, or in a local gap, then has a list too; a cell in a
# sparse region keeps none (its stations are few and the search around it is quick).
WIDE_REACH = 6
WIDE_MIN_STATIONS = 40
# How many cells' lists are computed at once (bounds the memory of the build).
LIST_CHUNK = 20_000


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


def _haversine_pairs(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distances in km between paired points (vectorised)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, h)))


# GEOS's error bound for the orientation of a point against a segment in double precision
# (``CGAlgorithmsDD::orientationIndexFilter``): a determinant this close to zero is undecided.
ORIENTATION_EPSILON = 1e-15


def ray_holds(edges: Sequence[float], x: float, y: float) -> bool | None:
    """Whether the point lies in the polygon or on its boundary, from the polygon's edges that a
    ray from the point eastwards can meet (flat: x1, y1, x2, y2, ...): GEOS's rule for a point
    in an area (``RayCrossingCounter``: crossings of that ray counted per edge, a vertex counted
    once by the half-open rule, a point on an edge on the boundary), so the same answer as
    ``shapely.intersects_xy`` over the whole polygon. ``None`` when an edge passes so close to the
    point that double precision cannot tell its side (GEOS then computes in higher precision:
    the caller asks GEOS)."""
    crossings = 0
    it = iter(edges)
    for x1, y1, x2, y2 in zip(it, it, it, it, strict=True):
        if x1 < x and x2 < x:
            continue  # wholly west of the point
        if x2 == x and y2 == y:
            return True  # a vertex
        if y1 == y and y2 == y:
            if x1 <= x <= x2 or x2 <= x <= x1:
                return True  # on a horizontal edge
            continue
        if (y1 > y) != (y2 > y):
            left = (x1 - x) * (y2 - y)
            right = (y1 - y) * (x2 - x)
            det = left - right
            if left > 0.0:
                if right > 0.0:
                    bound = ORIENTATION_EPSILON * (left + right)
                    if -bound < det < bound:
                        return None
            elif left < 0.0 and right < 0.0:
                bound = ORIENTATION_EPSILON * (-left - right)
                if -bound < det < bound:
                    return None
            if det == 0.0:
                return True  # on the edge
            if (det > 0.0) != (y2 < y1):
                crossings += 1
    return crossings % 2 == 1


class PolygonGrid:
    """Which polygons hold a point, precomputed on a fixed grid.

    A cell that lies wholly inside one polygon and touches no other answers without any
    geometry; a cell on a border lists the few polygons touching it (in rank order), and only
    those are tested against the point. The answer equals ``geometry.intersects(point)`` over
    every polygon.

    With ``edges``, each (border cell, polygon) pair also keeps the polygon's edges that a
    horizontal ray from a point of the cell eastwards can meet (those spanning the cell's row and
    not wholly west of the cell), so the test is a ray cast over a handful of edges in plain
    Python (:func:`ray_holds`, GEOS's own point-in-area rule) instead of a call into GEOS over the
    whole polygon; the few points it cannot decide with certainty are tested by GEOS. Each border
    cell is then divided into :data:`SUB_CELLS` x :data:`SUB_CELLS` sub-cells, and a sub-cell
    that none of the cell's kept edges meets (so no polygon's boundary crosses it: each polygon
    holds all of it or none) keeps its answer, found by GEOS at its centre when the grid is built:
    a point there is answered by one more lookup, with no test.
    """

    def __init__(
        self,
        geoms: np.ndarray,
        rank: Sequence[int],
        cell_deg: float = POLYGON_CELL_DEG,
        cells_per_polygon: int = CELLS_PER_POLYGON,
        *,
        edges: bool = False,
    ) -> None:
        self.geoms = geoms
        self.cell = cell_deg
        self.x0 = self.y0 = 0.0
        self.n_cols = self.n_rows = 0
        self.single: list[int] = []
        self.starts: list[int] = [0]
        self.entries: list[int] = []
        self.covered: list[bool] = []
        # Per entry (a border cell's polygon), the edges a ray cast there reads, flat (x1, y1, x2,
        # y2, ...); None without ``edges`` (then GEOS tests the point against the whole polygon).
        self.edges: list[array[float]] | None = None
        # With ``edges``, per cell the start of its sub-cells' answers in ``sub`` (-1: none, not a
        # border cell), and per sub-cell (row-major in its cell) the lowest-ranked polygon holding
        # it, -1 for none, or -2 when an edge meets it (the point is tested).
        self.sub_of: list[int] = []
        self.sub: array[int] = array("h")
        self.sub_scale = 0.0
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
        if edges:
            self.edges = self._edge_lists(cell_of, geom_of, covered)
            self._sub_cells(cell_of, geom_of, covered)

    def _sub_cells(self, cell_of: np.ndarray, geom_of: np.ndarray, covered: np.ndarray) -> None:
        """The border cells' sub-cell answers (``sub_of``, ``sub``): a sub-cell (grown by a hair
        for rounding) that no kept edge meets lies wholly inside or wholly outside each of the
        cell's polygons, so GEOS's answer at its centre is the answer for any point of it. Every
        edge that can meet a sub-cell is among the kept ones: those span the cell's row and reach
        its west side, with a wider margin than the sub-cells' hair. An edge meets a sub-cell
        unless their boxes are apart or the sub-cell's four corners lie on one side of its line
        (with a tolerance: in doubt, it meets, and the point is tested)."""
        s, ss = SUB_CELLS, SUB_CELLS * SUB_CELLS
        n_cells = self.n_cols * self.n_rows
        single = np.asarray(self.single, dtype=np.int64)
        border = np.nonzero(single == -2)[0]
        ordinal = np.full(n_cells, -1, dtype=np.int64)
        ordinal[border] = np.arange(len(border))
        self.sub_scale = s / self.cell
        self.sub_of = (np.where(ordinal >= 0, ordinal * ss, -1)).tolist()
        if not len(border):
            return
        parts = [
            self._sub_answers(border, ordinal, b0, min(b0 + SUB_CHUNK, len(border)), cell_of, geom_of, covered)
            for b0 in range(0, len(border), SUB_CHUNK)
        ]
        self.sub = array("h", np.concatenate(parts).tobytes())

    def _sub_answers(
        self,
        border: np.ndarray,
        ordinal: np.ndarray,
        b0: int,
        b1: int,
        cell_of: np.ndarray,
        geom_of: np.ndarray,
        covered: np.ndarray,
    ) -> np.ndarray:
        """:meth:`_sub_cells` for the border cells ``border[b0:b1]``: their sub-cells' answers."""
        s, g, x0, y0 = SUB_CELLS, self.cell, self.x0, self.y0
        ss, sg, eps = s * s, g / s, 1e-9
        assert self.edges is not None
        lo_entry, hi_entry = self.starts[int(border[b0])], self.starts[int(border[b1 - 1]) + 1]
        ent = lo_entry + np.nonzero(ordinal[cell_of[lo_entry:hi_entry]] >= 0)[0]  # these border cells' entries
        n_border = b1 - b0
        local = ordinal - b0
        seg = np.frombuffer(b"".join(self.edges[j].tobytes() for j in ent.tolist()), dtype=np.float64).reshape(-1, 4)
        seg_b = np.repeat(local[cell_of[ent]], [len(self.edges[j]) // 4 for j in ent.tolist()])
        # Only the edges whose box meets their cell's can meet one of its sub-cells (most of those
        # kept for the ray lie east of the cell).
        br, bc = np.divmod(border[b0 + seg_b], self.n_cols)
        cx, cy = x0 + bc * g, y0 + br * g
        meet = (
            (np.minimum(seg[:, 0], seg[:, 2]) <= cx + g + eps)
            & (np.maximum(seg[:, 0], seg[:, 2]) >= cx - eps)
            & (np.minimum(seg[:, 1], seg[:, 3]) <= cy + g + eps)
            & (np.maximum(seg[:, 1], seg[:, 3]) >= cy - eps)
        )
        seg, seg_b = seg[meet], seg_b[meet]
        touched = np.zeros((n_border, ss), dtype=bool)
        steps = np.arange(s, dtype=np.float64) * sg
        for lo in range(0, len(seg), 1024):
            e, b = seg[lo : lo + 1024], seg_b[lo : lo + 1024]
            r, c = np.divmod(border[b0 + b], self.n_cols)
            west = (x0 + c * g)[:, None] + steps[None, :]  # [edge, sub-column]
            south = (y0 + r * g)[:, None] + steps[None, :]  # [edge, sub-row]
            ex0, ex1 = np.minimum(e[:, 0], e[:, 2])[:, None], np.maximum(e[:, 0], e[:, 2])[:, None]
            ey0, ey1 = np.minimum(e[:, 1], e[:, 3])[:, None], np.maximum(e[:, 1], e[:, 3])[:, None]
            cols = (ex0 <= west + sg + eps) & (ex1 >= west - eps)
            rows = (ey0 <= south + sg + eps) & (ey1 >= south - eps)
            near = rows[:, :, None] & cols[:, None, :]  # [edge, sub-row, sub-column]: boxes overlap
            dx, dy = (e[:, 2] - e[:, 0])[:, None, None], (e[:, 3] - e[:, 1])[:, None, None]
            at_x = np.stack((west - eps, west + sg + eps), axis=2)  # [edge, sub-column, west/east]
            at_y = np.stack((south - eps, south + sg + eps), axis=2)
            side_x = -dy * (at_x - e[:, 0, None, None])
            side_y = dx * (at_y - e[:, 1, None, None])
            sides = (side_y[:, :, None, :, None] + side_x[:, None, :, None, :]).reshape(len(e), s, s, 4)
            apart = (sides > SIDE_TOLERANCE).all(axis=3) | (sides < -SIDE_TOLERANCE).all(axis=3)
            np.logical_or.at(touched, b, (near & ~apart).reshape(len(e), ss))
        # GEOS at the centre of every free sub-cell, for each polygon of its cell; the first
        # polygon (lowest rank: entries are in rank order within a cell) holding it is the answer.
        fb, fs = np.nonzero(~touched)
        fstart = np.searchsorted(fb, np.arange(n_border + 1))
        eb = local[cell_of[ent]]
        n_e = fstart[eb + 1] - fstart[eb]
        pe = np.repeat(ent, n_e)
        at = np.repeat(fstart[eb], n_e) + (np.arange(int(n_e.sum())) - np.repeat(np.cumsum(n_e) - n_e, n_e))
        pb, ps = fb[at], fs[at]
        r, c = np.divmod(border[b0 + pb], self.n_cols)
        xs = x0 + c * g + (ps % s + 0.5) * sg
        ys = y0 + r * g + (ps // s + 0.5) * sg
        hit = covered[pe].copy()
        pg = geom_of[pe]
        for gi in np.unique(pg[~hit]).tolist():
            m = np.nonzero((pg == gi) & ~hit)[0]
            hit[m] = shapely.intersects_xy(self.geoms[gi], xs[m], ys[m])
        first = np.full(n_border * ss, len(geom_of), dtype=np.int64)
        np.minimum.at(first, (pb * ss + ps)[hit], pe[hit])
        answers = np.full(n_border * ss, -2, dtype=np.int16)
        free = (~touched).ravel()
        found = first[free]
        answers[free] = np.where(found < len(geom_of), geom_of[np.minimum(found, len(geom_of) - 1)], -1)
        return answers

    def _edge_lists(self, cell_of: np.ndarray, geom_of: np.ndarray, covered: np.ndarray) -> list[array[float]]:
        """Per entry, the edges of its polygon (every ring) that can count in :func:`ray_holds` for
        a point of its cell: spanning the cell's row (a margin for rounding) and reaching at least
        the cell's west side; none for a cell the polygon covers (it answers without a test)."""
        g, x0, y0 = self.cell, self.x0, self.y0
        margin = g * 1e-6
        out: list[array[float]] = [array("d")] * len(cell_of)
        tested = np.nonzero(~covered)[0]
        for geom_index in np.unique(geom_of[tested]).tolist():
            rings = shapely.get_rings(shapely.get_parts(self.geoms[geom_index]))
            segs = [
                np.concatenate((c[:-1], c[1:]), axis=1)
                for c in (shapely.get_coordinates(ring) for ring in rings)
                if len(c) > 1
            ]
            if not segs:
                continue
            seg = np.concatenate(segs)  # x1, y1, x2, y2
            lo_y, hi_y = np.minimum(seg[:, 1], seg[:, 3]), np.maximum(seg[:, 1], seg[:, 3])
            hi_x = np.maximum(seg[:, 0], seg[:, 2])
            first_row = np.floor((lo_y - margin - y0) / g).astype(np.int64)
            last_row = np.floor((hi_y + margin - y0) / g).astype(np.int64)
            mine = tested[geom_of[tested] == geom_index]
            rows, cols = np.divmod(cell_of[mine], self.n_cols)
            for j, row, col in zip(mine.tolist(), rows.tolist(), cols.tolist(), strict=True):
                pick = (first_row <= row) & (last_row >= row) & (hi_x >= x0 + col * g - margin)
                out[j] = array("d", seg[pick].tobytes())
        return out

    def _cell(self, lon: float, lat: float) -> int:
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return -1
        c = int((lon - self.x0) // self.cell)
        r = int((lat - self.y0) // self.cell)
        if 0 <= c < self.n_cols and 0 <= r < self.n_rows:
            return r * self.n_cols + c
        return -1

    def on_border(self, lon: float, lat: float) -> bool:
        """Whether the point's cell lies on a border (an answer there tests polygons)."""
        k = self._cell(lon, lat)
        return k >= 0 and self.single[k] == -2

    def first(self, lon: float, lat: float) -> int | None:
        """The lowest-ranked polygon holding the point."""
        # As _cell (inlined: a call costs more than the lookup, most of all with cold caches).
        c = (lon - self.x0) // self.cell
        r = (lat - self.y0) // self.cell
        if not (0 <= c < self.n_cols and 0 <= r < self.n_rows):  # also false for NaN and infinities
            return None
        k = int(r) * self.n_cols + int(c)
        one = self.single[k]
        if one != -2:
            return None if one < 0 else one
        edges = self.edges
        base = self.sub_of[k] if edges is not None else -1
        if base >= 0:
            # The point's sub-cell (clamped: rounding may put a point on a cell's side one over;
            # the sub-cells are grown by a hair for that).
            s = SUB_CELLS
            sc = int((lon - self.x0) * self.sub_scale) - int(c) * s
            sr = int((lat - self.y0) * self.sub_scale) - int(r) * s
            sc = 0 if sc < 0 else s - 1 if sc >= s else sc
            sr = 0 if sr < 0 else s - 1 if sr >= s else sr
            one = self.sub[base + sr * s + sc]
            if one != -2:
                return None if one < 0 else one
        for j in range(self.starts[k], self.starts[k + 1]):
            g = self.entries[j]
            if self.covered[j]:
                return g
            hit = None if edges is None else ray_holds(edges[j], lon, lat)
            if hit is None:
                hit = shapely.intersects_xy(self.geoms[g], lon, lat)
            if hit:
                return g
        return None

    def holding(self, lon: float, lat: float) -> list[int]:
        """Every polygon holding the point, in rank order."""
        k = self._cell(lon, lat)
        if k < 0:
            return []
        out = []
        edges = self.edges
        for j in range(self.starts[k], self.starts[k + 1]):
            g = self.entries[j]
            hit = self.covered[j] or (None if edges is None else ray_holds(edges[j], lon, lat))
            if hit is None:
                hit = shapely.intersects_xy(self.geoms[g], lon, lat)
            if hit:
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
        # Per capability bit, the pruned lists (:meth:`nearest_lists`) as plain arrays: starts per
        # cell and station positions; and the cells whose lists a change can affect.
        self.plain_lists: dict[int, tuple[array[int], array[int]]] = {}
        self.relist: dict[int, set[int]] = {}
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
        out.plain_lists = dict(self.plain_lists)
        out.relist = {bit: set(cells) for bit, cells in self.relist.items()}
        return out

    def settle(self, units: np.ndarray, lons: np.ndarray, lats: np.ndarray) -> None:
        """Bring the plain arrays and the pruned lists up to date: for every capability bit built
        or changed since (:meth:`rebuild`, :meth:`add`, :meth:`remove`), with ``units`` the
        stations' unit vectors; lists only for the cells a change can affect."""
        for bit in self.stale:
            if bit:
                starts, entries = self.starts[bit], self.entries[bit]
                self.plain[bit] = (
                    array("i", starts.astype(np.intc).tobytes()),
                    array("q", entries.astype(np.int64).tobytes()),
                    array("d", np.ascontiguousarray(units[entries], dtype=np.float64).tobytes()),
                )
                cells = self.relist.pop(bit, None)
                if bit not in self.plain_lists:
                    list_starts, ids = self.nearest_lists(bit, lons, lats, None)
                elif cells:
                    list_starts, ids = self.splice_lists(bit, lons, lats, cells)
                else:
                    continue
                self.plain_lists[bit] = (array("i", list_starts.tobytes()), array("i", ids.tobytes()))
        self.stale.clear()
        self.relist.clear()

    def nearest_lists(
        self, bit: int, lons: np.ndarray, lats: np.ndarray, cells: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per cell (every cell, or ``cells`` in order), the stations offering ``bit`` that can be
        among the :data:`LIST_TOP` nearest (ties included) of some point in the cell: starts per
        cell and station positions.

        From the cells within :data:`LIST_REACH` of it: ``T``, the fifth smallest upper bound on a
        station's distance to any point of the cell (its distance to the centre plus the centre's
        farthest corner), and every station whose lower bound (latitude, meridian and centre
        bounds) is at most ``T``. A station left out is farther than five others from every point
        of the cell. A cell near the grid's edge, with fewer than five such stations, or whose
        ``T`` the stations beyond those cells could undercut, gets no list from them; it is tried
        again from the cells within :data:`WIDE_REACH` when they hold at least
        :data:`WIDE_MIN_STATIONS` stations offering ``bit`` (the same rule over a wider area).
        """
        n_cells = self.n_cols * self.n_rows
        todo = np.arange(n_cells, dtype=np.int64) if cells is None else cells
        counts, ids = self._lists_chunked(bit, lons, lats, todo, LIST_REACH)
        unlisted = np.nonzero(counts == 0)[0]
        if len(unlisted):
            again = unlisted[self.block_counts(bit, todo[unlisted], WIDE_REACH) >= WIDE_MIN_STATIONS]
            wide_counts, wide_ids = self._lists_chunked(bit, lons, lats, todo[again], WIDE_REACH)
            if len(wide_ids):
                # Both passes' lists in the order of ``todo`` (each pass lists its cells in order).
                owner = np.concatenate((np.repeat(np.arange(len(todo)), counts), np.repeat(again, wide_counts)))
                ids = np.concatenate((ids, wide_ids))[np.argsort(owner, kind="stable")]
                counts[again] = wide_counts
        if cells is not None:
            return counts, ids
        return np.concatenate(([0], np.cumsum(counts))).astype(np.intc), ids

    def _lists_chunked(
        self, bit: int, lons: np.ndarray, lats: np.ndarray, cells: np.ndarray, reach: int
    ) -> tuple[np.ndarray, np.ndarray]:
        counts_all: list[np.ndarray] = []
        ids_all: list[np.ndarray] = []
        for k in range(0, len(cells), LIST_CHUNK):
            counts, ids = self._lists_of(bit, lons, lats, cells[k : k + LIST_CHUNK], reach)
            counts_all.append(counts)
            ids_all.append(ids)
        counts = np.concatenate(counts_all) if counts_all else np.zeros(0, dtype=np.int64)
        ids = np.concatenate(ids_all) if ids_all else np.zeros(0, dtype=np.intc)
        return counts, ids

    def block_counts(self, bit: int, cells: np.ndarray, reach: int) -> np.ndarray:
        """Per cell, how many stations offering ``bit`` the cells within ``reach`` of it hold."""
        starts, n_cols, n_rows = self.starts[bit], self.n_cols, self.n_rows
        rows, cols = cells // n_cols, cells % n_cols
        c0, c1 = np.maximum(cols - reach, 0), np.minimum(cols + reach, n_cols - 1) + 1
        if len(cells) * (2 * reach + 1) < n_cols * n_rows:
            # A few cells (a change): each block as its rows' runs of cells.
            total = np.zeros(len(cells), dtype=np.int64)
            for dr in range(-reach, reach + 1):
                row = rows + dr
                ok = (row >= 0) & (row < n_rows)
                base = np.where(ok, row, 0) * n_cols
                total += np.where(ok, starts[base + c1].astype(np.int64) - starts[base + c0], 0)
            return total
        # Many cells (a build): sums over blocks from the grid's summed-area table.
        table = np.zeros((n_rows + 1, n_cols + 1), dtype=np.int64)
        table[1:, 1:] = np.diff(starts).reshape(n_rows, n_cols).cumsum(axis=0).cumsum(axis=1)
        r0, r1 = np.maximum(rows - reach, 0), np.minimum(rows + reach, n_rows - 1) + 1
        return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]

    def _lists_of(
        self, bit: int, lons: np.ndarray, lats: np.ndarray, cells: np.ndarray, reach: int
    ) -> tuple[np.ndarray, np.ndarray]:
        g, n_cols, n_rows = self.cell, self.n_cols, self.n_rows
        starts, entries = self.starts[bit], self.entries[bit]
        rows, cols = cells // n_cols, cells % n_cols
        inner = (rows >= reach) & (rows < n_rows - reach) & (cols >= reach) & (cols < n_cols - reach)
        counts = np.zeros(len(cells), dtype=np.int64)
        where = np.nonzero(inner)[0]
        if not len(where):
            return counts, np.zeros(0, dtype=np.intc)
        r, c = rows[where], cols[where]
        los, his = [], []
        for dr in range(-reach, reach + 1):
            base = (r + dr) * n_cols
            los.append(starts[base + c - reach])
            his.append(starts[base + c + reach + 1])
        lo = np.stack(los, axis=1).astype(np.int64).ravel()
        n = np.stack(his, axis=1).astype(np.int64).ravel() - lo
        owner = np.repeat(np.repeat(np.arange(len(where)), 2 * reach + 1), n)
        offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        sid = entries[np.repeat(lo, n) + offsets].astype(np.int64)
        if not len(sid):
            return counts, np.zeros(0, dtype=np.intc)
        # The cells' boxes and centres, and the centre's farthest corner (the distance from the
        # centre over a small latitude-longitude box is largest at a corner).
        lon0 = self.x0 + c * g
        lat0 = self.y0 + r * g
        lonc, latc = lon0 + g / 2, lat0 + g / 2
        corner = np.maximum(_haversine_pairs(lonc, latc, lon0, lat0), _haversine_pairs(lonc, latc, lon0, lat0 + g))
        rho = corner * (1 + 1e-9) + 1e-6
        slon, slat = lons[sid], lats[sid]
        centre = _haversine_pairs(lonc[owner], latc[owner], slon, slat)
        upper = centre + rho[owner]
        b_lon0, b_lat0 = lon0[owner], lat0[owner]
        d_lat = np.maximum(0.0, np.maximum(b_lat0 - slat, slat - (b_lat0 + g)))
        d_lon = np.maximum(0.0, np.maximum(b_lon0 - slon, slon - (b_lon0 + g)))
        lower = np.maximum(
            np.radians(d_lat) * EARTH_RADIUS_KM,
            np.arcsin(np.minimum(1.0, np.cos(np.radians(slat)) * np.sin(np.radians(np.minimum(d_lon, 90.0)))))
            * EARTH_RADIUS_KM,
        )
        lower = np.maximum(lower, centre - rho[owner]) * (1 - 1e-9) - 1e-6
        # T per cell: the fifth smallest upper bound (sorted by one combined key, several times
        # quicker than a two-key sort; the largest of the first five is taken, so that T is
        # certainly an upper bound for five stations whatever the key's rounding).
        order = np.argsort(owner * (float(upper.max()) + 1.0) + upper)
        per = np.bincount(owner, minlength=len(where))
        first = np.concatenate(([0], np.cumsum(per)[:-1]))
        enough = per >= LIST_TOP
        t = np.full(len(where), -np.inf)
        heads = first[enough]
        t[enough] = np.max(np.stack([upper[order[heads + k]] for k in range(LIST_TOP)]), axis=0)
        # Every station beyond the searched cells is at least this far from every point of the cell.
        far_lat = np.maximum(np.abs(lat0), np.abs(lat0 + g))
        beyond = (
            np.minimum(
                np.radians(reach * g) * EARTH_RADIUS_KM,
                np.arcsin(np.cos(np.radians(np.minimum(far_lat, 90.0))) * math.sin(math.radians(min(reach * g, 90.0))))
                * EARTH_RADIUS_KM,
            )
            * (1 - 1e-9)
            - 1e-6
        )
        t[t >= beyond] = -np.inf
        keep = lower <= t[owner]
        kept_owner = owner[keep]
        counts[where] = np.bincount(kept_owner, minlength=len(where))
        return counts, sid[keep][np.argsort(kept_owner, kind="stable")].astype(np.intc)

    def splice_lists(
        self, bit: int, lons: np.ndarray, lats: np.ndarray, cells: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The lists with those of ``cells`` computed again (the rest kept as they are)."""
        plain_starts, plain_ids = self.plain_lists[bit]
        starts = np.frombuffer(plain_starts, dtype=np.intc)
        ids = np.frombuffer(plain_ids, dtype=np.intc)
        todo = np.asarray(sorted(cells), dtype=np.int64)
        counts, fresh = self.nearest_lists(bit, lons, lats, todo)
        old_counts = np.diff(starts)
        keep_cells = np.ones(len(old_counts), dtype=bool)
        keep_cells[todo] = False
        kept = ids[np.repeat(keep_cells, old_counts)]
        new_counts = old_counts.copy()
        new_counts[todo] = counts
        new_starts = np.concatenate(([0], np.cumsum(new_counts))).astype(np.intc)
        kept_before = np.concatenate(([0], np.cumsum(np.where(keep_cells, old_counts, 0))))
        at = np.repeat(kept_before[todo], counts)
        return new_starts, np.insert(kept, at, fresh).astype(np.intc)

    def touch_lists(self, bit: int, cell: int) -> None:
        """Mark the cells whose lists a station in ``cell`` can affect (those within WIDE_REACH)."""
        if not bit or bit not in self.plain_lists:
            return
        r, c = divmod(cell, self.n_cols)
        marked = self.relist.setdefault(bit, set())
        for row in range(max(0, r - WIDE_REACH), min(self.n_rows, r + WIDE_REACH + 1)):
            base = row * self.n_cols
            marked.update(range(base + max(0, c - WIDE_REACH), base + min(self.n_cols, c + WIDE_REACH + 1)))

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
        self.touch_lists(bit, cell)

    def remove(self, bit: int, i: int, cell: int) -> None:
        starts = self.starts[bit]
        lo, hi = int(starts[cell]), int(starts[cell + 1])
        hits = np.nonzero(self.entries[bit][lo:hi] == i)[0]
        if len(hits):
            self.entries[bit] = np.delete(self.entries[bit], lo + int(hits[0]))
            starts[cell + 1 :] -= 1
            self.stale.add(bit)
            self.touch_lists(bit, cell)


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
    grid = PolygonGrid(geoms, [codes.index(c.code) for c in counties], edges=True)
    if len(_COUNTY_GRIDS) >= 4:
        _COUNTY_GRIDS.pop(next(iter(_COUNTY_GRIDS)))
    _COUNTY_GRIDS[key] = (counties, grid)  # the counties held, so their ids stay theirs
    return grid
