"""The in-process index of stations that routing decides over: arrays of the active stations,
their grids and the county polygons, and the lookups a routing decision is made of."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import shapely
from shapely.geometry import shape

from service.common.geo import EARTH_RADIUS_KM, Point
from service.stations.grids import (
    CELLS_PER_JURISDICTION,
    PolygonGrid,
    StationGrid,
    build_county_grid,
    haversine_many,
)
from service.stations.index.candidates import COINCIDE_KM, STATION_SUFFIX, Candidate, Township
from service.stations.models import CountyArea, IndexedStation


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """The low 16 bits of each value spread to the even bits (for a Morton key)."""
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    return (v | (v << 1)) & 0x55555555


def nearness_order(stations: Sequence[IndexedStation]) -> list[int]:
    """The stations in Morton (Z) order of their points (ties in their given order): stations
    near one another are then near one another in every per-station array, so a decision, which
    reads the few stations around a point, reads a few runs of memory instead of scattered
    elements (at 400,000 stations, cache misses are most of a decision's cost)."""
    n = len(stations)
    lons = np.nan_to_num(np.fromiter((s.lon for s in stations), dtype=np.float64, count=n))
    lats = np.nan_to_num(np.fromiter((s.lat for s in stations), dtype=np.float64, count=n))
    x = np.clip((lons + 180.0) * (65535 / 360.0), 0, 65535).astype(np.int64)
    y = np.clip((lats + 90.0) * (65535 / 180.0), 0, 65535).astype(np.int64)
    key = _spread_bits(x) | (_spread_bits(y) << 1)
    return np.argsort(key, kind="stable").tolist()


def code_keys(codes: Sequence[str]) -> np.ndarray | None:
    """Station codes as integers that sort as the codes do (9-digit codes), else ``None``."""
    if all(len(c) == 9 and c.isdigit() for c in codes):
        return np.fromiter((int(c) for c in codes), dtype=np.int64, count=len(codes))
    return None


class StationIndex:
    """Active stations and county polygons, arranged for fast routing decisions.

    A build places the stations in the Morton order of their points (:func:`nearness_order`).
    Positions are stable from then on: a closed or changed station leaves a hole (``alive`` false)
    and its new state is appended, so a change touches only what it changes
    (:mod:`service.stations.index.changes`).
    """

    def __init__(
        self,
        stations: Sequence[IndexedStation],
        counties: Sequence[CountyArea] = (),
        *,
        version: int = 0,
        township_names: Mapping[str, str] | None = None,
        county_grid: PolygonGrid | None = None,
    ) -> None:
        self.version = version
        given = [s for s in stations if s is not None]
        live: list[IndexedStation] = [given[k] for k in nearness_order(given)]
        self.stations: list[IndexedStation | None] = list(live)
        self.township_names = dict(township_names or {})
        n = len(live)
        self.by_id = {s.id: i for i, s in enumerate(live)}
        self.by_code: dict[str, list[int]] = {}
        for i, s in enumerate(live):
            self.by_code.setdefault(s.code, []).append(i)
        self.lons = np.fromiter((s.lon for s in live), dtype=np.float64, count=n)
        self.lats = np.fromiter((s.lat for s in live), dtype=np.float64, count=n)
        self.rad_lats = np.radians(self.lats)
        self.cos_lats = np.cos(self.rad_lats)
        self.labels: list[tuple[str, str, str]] = [(s.id, s.code, s.name) for s in live]
        keys = code_keys([s.code for s in live])
        self.numeric_codes = keys is not None
        if keys is None:
            order = sorted(range(n), key=lambda i: live[i].code)
            keys = np.empty(n, dtype=np.int64)
            keys[order] = np.arange(n)
        self.code_rank = keys
        self.set_scalars()
        self.alive = np.ones(n, dtype=bool)
        self.at_capacity = np.fromiter((s.at_capacity for s in live), dtype=bool, count=n)
        self.exact = np.fromiter((s.precision == "exact" for s in live), dtype=bool, count=n)
        self.capped = {i: s.capacity for i, s in enumerate(live) if s.capacity is not None}
        capabilities = sorted({c for s in live for c in s.capabilities})
        if len(capabilities) > 63:
            raise ValueError("at most 63 distinct capabilities are supported")
        self.capability_bit = {c: 1 << k for k, c in enumerate(capabilities)}
        bit = self.capability_bit
        self.capability_mask = np.fromiter((sum(bit[c] for c in s.capabilities) for s in live), dtype=np.int64, count=n)
        self.by_county: dict[str, np.ndarray] = {}
        by_county: dict[str, list[int]] = {}
        for i, s in enumerate(live):
            by_county.setdefault(s.county_code, []).append(i)
        for code, members in by_county.items():
            self.set_county(code, np.asarray(members, dtype=np.int64))
        self.grid = StationGrid(self.lons, self.lats, self.alive, self.capability_bit.values(), self.capability_mask)
        self.grid.settle(self.units, self.lons, self.lats)
        self.build_jurisdictions()
        self.counties = tuple(counties)
        self.county_names = {c.code: c.name for c in self.counties}
        if county_grid is None:
            county_grid = build_county_grid(self.counties)
        self.county_grid = county_grid
        self.county_geoms = county_grid.geoms
        self.known_counties = set(self.county_names) | set(self.by_county)
        self.queue_townships: dict[tuple[str, str], tuple[Township, ...]] = {}
        self.members_cache: dict[tuple[str, int], tuple[np.ndarray, bool]] = {}
        self.warm_counties()

    def set_scalars(self) -> None:
        """Per-station values the quick search reads one station at a time, as compact arrays
        (reading single numpy elements costs more than the arithmetic done with them): what the
        exact distance is measured from; and the unit vectors the grid keeps per cell for ranking
        by nearness."""
        rad_lons = np.radians(self.lons)
        self.units = np.column_stack(
            (self.cos_lats * np.cos(rad_lons), self.cos_lats * np.sin(rad_lons), np.sin(self.rad_lats))
        )
        self.rank_of = array("q", self.code_rank.astype(np.int64).tobytes())
        # Interleaved per station, so the few values a decision reads of one station are one run of
        # memory (after other work has emptied the CPU caches, each run read is a wait): its unit
        # vector (x, y, z) at 3 * position; and its longitude, radians and cosine of latitude.
        self.unit_of = array("d", np.ascontiguousarray(self.units, dtype=np.float64).tobytes())
        self.place_of = array(
            "d", np.column_stack((self.lons.astype(np.float64), self.rad_lats, self.cos_lats)).tobytes()
        )

    def warm_counties(self) -> None:
        """For every county polygon and capability, its candidates and their townships, computed
        now rather than by the first request there (a county queue decision is then lookups only)."""
        self.queue_townships = {}
        self.members_cache = {}
        for capability, bit in self.capability_bit.items():
            for code in self.county_names:
                members, _ = self.county_members(code, bit, frozenset())
                if len(members) > 1:
                    self.townships(members, (code, capability))

    def set_county(self, code: str, members: np.ndarray) -> None:
        """Make ``members`` the county's stations, in code order (none: forget the county)."""
        if len(members):
            self.by_county[code] = members[np.argsort(self.code_rank[members], kind="stable")]
        else:
            self.by_county.pop(code, None)

    def build_jurisdictions(self) -> None:
        """The own jurisdiction polygons of the live stations, prepared and gridded."""
        own = [
            (i, shape(s.jurisdiction))
            for i, s in enumerate(self.stations)
            if s is not None and s.jurisdiction and self.alive[i]
        ]
        self.jurisdiction_station = np.asarray([i for i, _ in own], dtype=np.int64)
        self.jurisdiction_geoms = np.asarray([g for _, g in own], dtype=object)
        shapely.prepare(self.jurisdiction_geoms)
        self.jurisdiction_grid = PolygonGrid(
            self.jurisdiction_geoms, range(len(own)), cells_per_polygon=CELLS_PER_JURISDICTION
        )

    # ---------------------------------------------------------------- loads

    def update_loads(self, open_cases: dict[str, int]) -> None:
        """Take fresh open-case counts: which capped stations are full now (no rebuild needed)."""
        full = self.at_capacity.copy()
        for i, capacity in self.capped.items():
            s = self.stations[i]
            if s is not None:
                full[i] = open_cases.get(s.id, 0) >= capacity
        self.at_capacity = full

    @property
    def at_capacity(self) -> np.ndarray:
        """Per position, whether the station is full (a capped station with as many open cases)."""
        return self._at_capacity

    @at_capacity.setter
    def at_capacity(self, full: np.ndarray) -> None:
        self._at_capacity = full
        # The same as bytes (0 or 1 each) for the per-decision search: a numpy element costs more.
        self.full_of = full.tobytes()

    def __len__(self) -> int:
        return len(self.stations)

    # ---------------------------------------------------------------- lookups

    def candidate_mask(self, capability: str, exclude: Iterable[str]) -> np.ndarray:
        """Stations offering ``capability`` and not excluded."""
        bit = self.capability_bit.get(capability, 0)
        mask = ((self.capability_mask & bit) != 0) & self.alive
        for station_id in exclude:
            i = self.by_id.get(station_id)
            if i is not None:
                mask[i] = False
        return mask

    def positions(self, station_ids: Iterable[str]) -> frozenset[int]:
        """Positions of the (active) stations among ``station_ids``."""
        return frozenset(i for sid in station_ids if (i := self.by_id.get(sid)) is not None)

    def county_at(self, point: Point) -> str | None:
        """The code of the county polygon holding the point (lowest code on a shared border)."""
        g = self.county_grid.first(point.lon, point.lat)
        return None if g is None else self.counties[g].code

    def jurisdictions_at(self, point: Point) -> np.ndarray:
        """Station positions whose own jurisdiction polygon holds the point."""
        if not len(self.jurisdiction_geoms):
            return np.empty(0, dtype=np.int64)
        hits = self.jurisdiction_grid.holding(point.lon, point.lat)
        return self.jurisdiction_station[hits] if hits else np.empty(0, dtype=np.int64)

    def county_members(self, county: str, bit: int, exclude: frozenset[int]) -> tuple[np.ndarray, bool]:
        """A county's candidates by code, and whether all their points are exact."""
        key = (county, bit)
        hit = self.members_cache.get(key)
        if hit is None:
            members = self.by_county.get(county, np.empty(0, dtype=np.int64))
            members = members[(self.capability_mask[members] & bit) != 0] if bit else members[:0]
            hit = self.members_cache[key] = (members, bool(self.exact[members].all()))
        if exclude and len(hit[0]):
            members = np.asarray([i for i in hit[0].tolist() if i not in exclude], dtype=np.int64)
            return members, bool(self.exact[members].all())
        return hit

    def within(self, point: Point, radius_km: float) -> np.ndarray:
        """Positions of stations in the grid cells covering a circle (a superset of the circle)."""
        grid = self.grid
        if not grid.enabled or not (math.isfinite(point.lon) and math.isfinite(point.lat)):
            live = np.nonzero(self.alive)[0]
            if not len(live):
                return live
            dist = haversine_many(point.lon, point.lat, self.lons[live], self.lats[live])
            return live[~(dist > radius_km)]
        g, n_cols, n_rows = grid.cell, grid.n_cols, grid.n_rows
        dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
        lat0, lat1 = max(-90.0, point.lat - dlat), min(90.0, point.lat + dlat)
        widest = math.cos(math.radians(max(abs(lat0), abs(lat1))))
        if widest < 1e-6 or radius_km / (EARTH_RADIUS_KM * widest) >= math.pi:
            c0, c1 = 0, n_cols - 1
        else:
            dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * widest))
            if point.lon - dlon < -180 or point.lon + dlon > 180:
                c0, c1 = 0, n_cols - 1
            else:
                c0 = max(0, int((point.lon - dlon - grid.x0) // g))
                c1 = min(n_cols - 1, int((point.lon + dlon - grid.x0) // g))
        r0 = max(0, int((lat0 - grid.y0) // g))
        r1 = min(n_rows - 1, int((lat1 - grid.y0) // g))
        if c0 > c1 or r0 > r1:
            return np.empty(0, dtype=np.int64)
        starts, entries = grid.starts[0], grid.entries[0]
        parts = [entries[starts[row * n_cols + c0] : starts[row * n_cols + c1 + 1]] for row in range(r0, r1 + 1)]
        return np.concatenate(parts).astype(np.int64)

    def ordered(self, idx: np.ndarray, point: Point | None) -> tuple[np.ndarray, np.ndarray]:
        """``idx`` sorted by distance from the point, then station code; with the distances."""
        if point is None:
            dist = np.full(len(idx), np.nan)
            order = np.argsort(self.code_rank[idx], kind="stable")
        else:
            dist = haversine_many(point.lon, point.lat, self.lons[idx], self.lats[idx])
            order = np.lexsort((self.code_rank[idx], dist))
        return idx[order], dist[order]

    def nearest(self, point: Point, mask: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
        """Candidates within ``radius_km``, nearest first (ties by code), with distances."""
        idx = self.within(point, radius_km)
        idx = idx[mask[idx]]
        idx, dist = self.ordered(idx, point)
        keep = dist <= radius_km
        return idx[keep], dist[keep]

    def indistinct(self, idx: np.ndarray, dist: np.ndarray, point: Point | None, point_exact: bool) -> str | None:
        """Why the point cannot tell these ordered candidates apart (``None`` when it can).

        ``approx``: a candidate's point (or the point standing in for the request) is approximate,
        so the nearest one may not be the nearest at all; ``coincide``: the nearest points are one
        place; ``no_point``: there is no point to measure from.
        """
        if len(idx) < 2:
            return None
        if point is None:
            return "no_point"
        if not point_exact or not bool(self.exact[idx].all()):
            return "approx"
        first = int(idx[0])
        tied = idx[1:][dist[1:] - dist[0] <= COINCIDE_KM]
        if len(tied):
            apart = haversine_many(self.lons[first], self.lats[first], self.lons[tied], self.lats[tied])
            if bool((apart <= COINCIDE_KM).any()):
                return "coincide"
        return None

    def townships(self, idx: np.ndarray, key: tuple[str, str] | None) -> tuple[Township, ...]:
        """The townships of these stations by code; remembered under ``key`` (county, capability)."""
        if key is not None and (hit := self.queue_townships.get(key)) is not None:
            return hit
        order = sorted((int(i) for i in idx), key=lambda i: int(self.code_rank[i]))
        out = tuple(self.township(i) for i in order)
        if key is not None:
            self.queue_townships[key] = out
        return out

    def station(self, i: int) -> IndexedStation:
        s = self.stations[i]
        assert s is not None
        return s

    def township(self, i: int) -> Township:
        s = self.station(i)
        name = self.township_names.get(s.code) or s.name.removesuffix(STATION_SUFFIX) or s.name
        return Township(s.code, name, s.id, s.name)

    def candidate(self, i: int, distance: float | None) -> Candidate:
        s = self.station(i)
        d = None if distance is None or math.isnan(distance) else float(distance)
        return Candidate(s.id, s.code, s.name, d)
