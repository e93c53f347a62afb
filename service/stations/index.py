"""The in-process index of stations that routing decides over, and the per-process copy kept fresh."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from service.common.context import Context
from service.common.geo import EARTH_RADIUS_KM, Point
from service.stations.models import CountyArea, IndexedStation

CELL_DEG = 0.2


TOP_CANDIDATES = 5


MAX_CANDIDATE_SEARCH_KM = 1000.0


# Station points closer than this are one place: distance cannot choose between them.
COINCIDE_KM = 0.05


STATION_SUFFIX = "社工站"


REFRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Candidate:
    station_id: str
    station_code: str
    station_name: str
    distance_km: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "station_code": self.station_code,
            "station_name": self.station_name,
            "distance_km": None if self.distance_km is None else round(self.distance_km, 3),
        }


@dataclass(frozen=True, slots=True)
class Township:
    """A township of a county's dispatch queue: what a resident or a supervisor picks from."""

    code: str
    name: str
    station_id: str
    station_name: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "station_id": self.station_id, "station_name": self.station_name}


def haversine_many(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Great-circle distances in km from one point to many (vectorised)."""
    p1 = math.radians(lat)
    p2 = np.radians(lats)
    dp = p2 - p1
    dl = np.radians(lons - lon)
    h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, h)))


class StationIndex:
    """Active stations and county polygons, arranged for fast routing decisions."""

    def __init__(
        self,
        stations: Sequence[IndexedStation],
        counties: Sequence[CountyArea] = (),
        *,
        version: int = 0,
        township_names: Mapping[str, str] | None = None,
    ) -> None:
        self.version = version
        self.stations: tuple[IndexedStation, ...] = tuple(stations)
        self.township_names = dict(township_names or {})
        n = len(self.stations)
        self.by_id = {s.id: i for i, s in enumerate(self.stations)}
        self.by_code: dict[str, list[int]] = {}
        by_county: dict[str, list[int]] = {}
        for i, s in enumerate(self.stations):
            self.by_code.setdefault(s.code, []).append(i)
            by_county.setdefault(s.county_code, []).append(i)
        self.by_county = {k: np.asarray(v, dtype=np.int64) for k, v in by_county.items()}
        self.lons = np.fromiter((s.lon for s in self.stations), dtype=np.float64, count=n)
        self.lats = np.fromiter((s.lat for s in self.stations), dtype=np.float64, count=n)
        order = sorted(range(n), key=lambda i: self.stations[i].code)
        self.code_rank = np.empty(n, dtype=np.int64)
        self.code_rank[order] = np.arange(n)
        self.at_capacity = np.fromiter((s.at_capacity for s in self.stations), dtype=bool, count=n)
        self.exact = np.fromiter((s.precision == "exact" for s in self.stations), dtype=bool, count=n)
        self.capped = {i: s.capacity for i, s in enumerate(self.stations) if s.capacity is not None}
        capabilities = sorted({c for s in self.stations for c in s.capabilities})
        if len(capabilities) > 63:
            raise ValueError("at most 63 distinct capabilities are supported")
        self.capability_bit = {c: 1 << k for k, c in enumerate(capabilities)}
        self.capability_mask = np.fromiter(
            (sum(self.capability_bit[c] for c in s.capabilities) for s in self.stations), dtype=np.int64, count=n
        )
        # The grid: stations sorted by cell id, so each grid row's cells form one slice.
        self.n_cols = round(360 / CELL_DEG)
        rows = np.clip(((self.lats + 90) // CELL_DEG).astype(np.int64), 0, int(180 / CELL_DEG) - 1)
        cols = np.clip(((self.lons + 180) // CELL_DEG).astype(np.int64), 0, self.n_cols - 1)
        cell = rows * self.n_cols + cols
        self.grid_order = np.argsort(cell, kind="stable")
        self.grid_cells = cell[self.grid_order]
        # Station jurisdictions and counties, with prepared geometries for point-in-polygon.
        own = [(i, shape(s.jurisdiction)) for i, s in enumerate(self.stations) if s.jurisdiction]
        self.jurisdiction_station = np.asarray([i for i, _ in own], dtype=np.int64)
        self.jurisdiction_geoms = np.asarray([g for _, g in own], dtype=object)
        shapely.prepare(self.jurisdiction_geoms)
        self.jurisdiction_tree = shapely.STRtree(self.jurisdiction_geoms)
        self.counties = tuple(counties)
        self.county_names = {c.code: c.name for c in self.counties}
        self.county_geoms = np.asarray([shape(c.geometry) for c in self.counties], dtype=object)
        shapely.prepare(self.county_geoms)
        self.county_tree = shapely.STRtree(self.county_geoms)
        self.known_counties = set(self.county_names) | set(self.by_county)
        self.queue_townships: dict[tuple[str, str], tuple[Township, ...]] = {}

    def update_loads(self, open_cases: dict[str, int]) -> None:
        """Take fresh open-case counts: which capped stations are full now (no rebuild needed)."""
        full = self.at_capacity.copy()
        for i, capacity in self.capped.items():
            full[i] = open_cases.get(self.stations[i].id, 0) >= capacity
        self.at_capacity = full

    def __len__(self) -> int:
        return len(self.stations)

    # ---------------------------------------------------------------- lookups

    def candidate_mask(self, capability: str, exclude: Iterable[str]) -> np.ndarray:
        """Stations offering ``capability`` and not excluded."""
        bit = self.capability_bit.get(capability, 0)
        mask = (self.capability_mask & bit) != 0
        for station_id in exclude:
            i = self.by_id.get(station_id)
            if i is not None:
                mask[i] = False
        return mask

    def county_at(self, point: Point) -> str | None:
        """The code of the county polygon holding the point (lowest code on a shared border)."""
        if not len(self.county_geoms):
            return None
        pt = shapely.Point(point.lon, point.lat)
        hits = self.county_tree.query(pt)
        inside = [self.counties[i].code for i in hits if self.county_geoms[i].intersects(pt)]
        return min(inside) if inside else None

    def jurisdictions_at(self, point: Point) -> np.ndarray:
        """Station positions whose own jurisdiction polygon holds the point."""
        if not len(self.jurisdiction_geoms):
            return np.empty(0, dtype=np.int64)
        pt = shapely.Point(point.lon, point.lat)
        hits = self.jurisdiction_tree.query(pt)
        inside = [self.jurisdiction_station[i] for i in hits if self.jurisdiction_geoms[i].intersects(pt)]
        return np.asarray(inside, dtype=np.int64)

    def within(self, point: Point, radius_km: float) -> np.ndarray:
        """Positions of stations in the grid cells covering a circle (a superset of the circle)."""
        if not len(self.stations):
            return np.empty(0, dtype=np.int64)
        dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
        lat0, lat1 = max(-90.0, point.lat - dlat), min(90.0, point.lat + dlat)
        widest = math.cos(math.radians(max(abs(lat0), abs(lat1))))
        if widest < 1e-6 or radius_km / (EARTH_RADIUS_KM * widest) >= math.pi:
            c0, c1 = 0, self.n_cols - 1
        else:
            dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * widest))
            if point.lon - dlon < -180 or point.lon + dlon > 180:
                c0, c1 = 0, self.n_cols - 1
            else:
                c0 = int((point.lon - dlon + 180) // CELL_DEG)
                c1 = min(self.n_cols - 1, int((point.lon + dlon + 180) // CELL_DEG))
        r0 = int((lat0 + 90) // CELL_DEG)
        r1 = min(int(180 / CELL_DEG) - 1, int((lat1 + 90) // CELL_DEG))
        rows = np.arange(r0, r1 + 1, dtype=np.int64)
        starts = np.searchsorted(self.grid_cells, rows * self.n_cols + c0, side="left")
        ends = np.searchsorted(self.grid_cells, rows * self.n_cols + c1, side="right")
        parts = [self.grid_order[s:e] for s, e in zip(starts, ends, strict=True) if e > s]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

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

    def top_candidates(
        self,
        point: Point | None,
        mask: np.ndarray,
        county: str | None,
        near: tuple[np.ndarray, np.ndarray, float] | None = None,
    ) -> list[Candidate]:
        """The nearest few candidates (or, without a point, the county's first by code).

        ``near`` is an already computed ``nearest()`` answer and its radius, reused when it holds enough.
        """
        if point is None:
            idx = self.by_county.get(county or "", np.empty(0, dtype=np.int64))
            idx, dist = self.ordered(idx[mask[idx]], None)
        elif near is not None and len(near[0]) >= TOP_CANDIDATES:
            idx, dist = near[0], near[1]
        else:
            radius = near[2] * 2 if near is not None else 50.0
            while True:
                idx, dist = self.nearest(point, mask, radius)
                if len(idx) >= TOP_CANDIDATES or radius >= MAX_CANDIDATE_SEARCH_KM:
                    break
                radius *= 2
        return [self.candidate(int(i), d) for i, d in zip(idx[:TOP_CANDIDATES], dist[:TOP_CANDIDATES], strict=True)]

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
        order = sorted((int(i) for i in idx), key=lambda i: self.stations[i].code)
        out = tuple(self.township(i) for i in order)
        if key is not None:
            self.queue_townships[key] = out
        return out

    def township(self, i: int) -> Township:
        s = self.stations[i]
        name = self.township_names.get(s.code) or s.name.removesuffix(STATION_SUFFIX) or s.name
        return Township(s.code, name, s.id, s.name)

    def candidate(self, i: int, distance: float | None) -> Candidate:
        s = self.stations[i]
        d = None if distance is None or math.isnan(distance) else float(distance)
        return Candidate(s.id, s.code, s.name, d)


@dataclass
class IndexHolder:
    """The current index of one process and when its version was last checked."""

    index: StationIndex | None = None
    checked_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def load_index(*, ctx: Context) -> StationIndex:
    """Build a fresh index from the stations and counties in MongoDB."""
    from service.stations.repository import CountiesRepository, StationsRepository, read_stations_version

    version = await read_stations_version(ctx.db)
    stations = await StationsRepository(ctx.db).list_for_index()
    counties = await CountiesRepository(ctx.db).list_all()
    from service.stations.divisions_data import division_table

    names = division_table().township_names()
    return await asyncio.to_thread(StationIndex, stations, counties, version=version, township_names=names)


async def current_index(*, ctx: Context) -> StationIndex:
    """This process's index, rebuilt when another write bumped the stations version."""
    from service.stations.repository import StationsRepository, read_stations_version

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
            holder.index = await load_index(ctx=ctx)
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
