"""The in-process index of stations that routing decides over, and the per-process copy kept fresh."""

from __future__ import annotations

import asyncio
import copy
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
from service.stations.grids import (
    CELLS_PER_JURISDICTION,
    PolygonGrid,
    StationGrid,
    build_county_grid,
    haversine_many,
    haversine_prepared,
)
from service.stations.models import CountyArea, IndexedStation

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


# More station changes than this share of the stations: build the index anew instead of in place.
INCREMENTAL_SHARE = 0.05
# A lower bound is shaved by this much (km) so that rounding never certifies a station too far.
CERTIFY_SLACK_KM = 1e-6


def _last_radius(max_km: float) -> float:
    """The widest radius the top-candidates search reaches (max_km doubled until >= 1000 km)."""
    radius = max_km * 2
    while radius < MAX_CANDIDATE_SEARCH_KM:
        radius *= 2
    return radius


def _code_keys(codes: Sequence[str]) -> np.ndarray | None:
    """Station codes as integers that sort as the codes do (9-digit codes), else ``None``."""
    if all(len(c) == 9 and c.isdigit() for c in codes):
        return np.fromiter((int(c) for c in codes), dtype=np.int64, count=len(codes))
    return None


def _routing_fields(s: IndexedStation) -> tuple[Any, ...]:
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


class StationIndex:
    """Active stations and county polygons, arranged for fast routing decisions.

    Positions are stable: a closed or changed station leaves a hole (``alive`` false) and its new
    state is appended, so a change touches only what it changes (:meth:`apply`).
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
        self.stations: list[IndexedStation | None] = list(stations)
        live: list[IndexedStation] = [s for s in self.stations if s is not None]
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
        keys = _code_keys([s.code for s in live])
        self.numeric_codes = keys is not None
        if keys is None:
            order = sorted(range(n), key=lambda i: live[i].code)
            keys = np.empty(n, dtype=np.int64)
            keys[order] = np.arange(n)
        self.code_rank = keys
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
            self._set_county(code, np.asarray(members, dtype=np.int64))
        self.grid = StationGrid(self.lons, self.lats, self.alive, self.capability_bit.values(), self.capability_mask)
        self._build_jurisdictions()
        self.counties = tuple(counties)
        self.county_names = {c.code: c.name for c in self.counties}
        if county_grid is None:
            county_grid = build_county_grid(self.counties)
        self.county_grid = county_grid
        self.county_geoms = county_grid.geoms
        self.known_counties = set(self.county_names) | set(self.by_county)
        self.queue_townships: dict[tuple[str, str], tuple[Township, ...]] = {}
        self.members_cache: dict[tuple[str, int], tuple[np.ndarray, bool]] = {}

    def _set_county(self, code: str, members: np.ndarray) -> None:
        if len(members):
            self.by_county[code] = members[np.argsort(self.code_rank[members], kind="stable")]
        else:
            self.by_county.pop(code, None)

    def _build_jurisdictions(self) -> None:
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

    # ---------------------------------------------------------------- keeping it current

    def update_loads(self, open_cases: dict[str, int]) -> None:
        """Take fresh open-case counts: which capped stations are full now (no rebuild needed)."""
        full = self.at_capacity.copy()
        for i, capacity in self.capped.items():
            s = self.stations[i]
            if s is not None:
                full[i] = open_cases.get(s.id, 0) >= capacity
        self.at_capacity = full

    def changes(self, stations: Sequence[IndexedStation]) -> tuple[list[IndexedStation], list[str]] | None:
        """What differs between this index and ``stations`` (changed or new, and closed ids);
        ``None`` when so much differs that building anew is cheaper. Reads only."""
        fresh = {s.id: s for s in stations}
        closed = [sid for sid in self.by_id if sid not in fresh]
        changed = []
        limit = max(16, int(INCREMENTAL_SHARE * max(len(self.by_id), len(fresh))))
        for s in stations:
            i = self.by_id.get(s.id)
            old = self.stations[i] if i is not None else None
            if old is None or _routing_fields(old) != _routing_fields(s):
                changed.append(s)
                if len(changed) + len(closed) > limit:
                    return None
        if len(changed) + len(closed) > limit:
            return None
        return changed, closed

    def updated(self, changed: Sequence[IndexedStation], closed: Iterable[str], *, version: int) -> StationIndex | None:
        """A copy of this index with station changes taken in: only the touched cells, counties
        and lists change (this index, still in use, is left as it is).

        ``None`` when the changes cannot be taken in place (a new capability, a station off the
        grid): build anew then.
        """
        closed = [sid for sid in closed if sid in self.by_id]
        if any(c not in self.capability_bit for s in changed for c in s.capabilities):
            return None
        if not self.numeric_codes or _code_keys([s.code for s in changed]) is None:
            return None
        if not self.grid.enabled or not all(self.grid.holds(s.lon, s.lat) for s in changed):
            return None
        out = copy.copy(self)
        out.stations = list(self.stations)
        out.by_id = dict(self.by_id)
        out.by_code = dict(self.by_code)
        out.by_county = dict(self.by_county)
        out.capped = dict(self.capped)
        out.grid = self.grid.copy()
        out.apply(changed, closed, version=version)
        return out

    def apply(self, changed: Sequence[IndexedStation], closed: Sequence[str], *, version: int) -> None:
        """Take station changes (checked by :meth:`updated`) into this index, in place."""
        gone = [self.by_id[sid] for sid in closed] + [self.by_id[s.id] for s in changed if s.id in self.by_id]
        touched: set[str] = set()
        jurisdictions = False
        bits = [0, *self.capability_bit.values()]
        alive = self.alive.copy()
        for i in gone:
            s = self.stations[i]
            assert s is not None
            del self.by_id[s.id]
            holders = [h for h in self.by_code[s.code] if h != i]
            if holders:
                self.by_code[s.code] = holders
            else:
                del self.by_code[s.code]
            touched.add(s.county_code)
            jurisdictions = jurisdictions or bool(s.jurisdiction)
            self.capped.pop(i, None)
            cell = int(self.grid.cells(self.lons[i : i + 1], self.lats[i : i + 1])[0]) if self.grid.enabled else -1
            for bit in bits if self.grid.enabled else ():
                if bit == 0 or self.capability_mask[i] & bit:
                    self.grid.remove(bit, i, cell)
            self.stations[i] = None
            alive[i] = False
        n0, k = len(self.stations), len(changed)
        if k:
            bit_of = self.capability_bit
            self.lons = np.concatenate((self.lons, [s.lon for s in changed]))
            self.lats = np.concatenate((self.lats, [s.lat for s in changed]))
            self.rad_lats = np.radians(self.lats)
            self.cos_lats = np.cos(self.rad_lats)
            self.labels = [*self.labels, *((s.id, s.code, s.name) for s in changed)]
            keys = _code_keys([s.code for s in changed])
            assert keys is not None
            self.code_rank = np.concatenate((self.code_rank, keys))
            self.at_capacity = np.concatenate((self.at_capacity, [s.at_capacity for s in changed]))
            self.exact = np.concatenate((self.exact, [s.precision == "exact" for s in changed]))
            masks = np.asarray([sum(bit_of[c] for c in s.capabilities) for s in changed], dtype=np.int64)
            self.capability_mask = np.concatenate((self.capability_mask, masks))
            alive = np.concatenate((alive, np.ones(k, dtype=bool)))
            cells = self.grid.cells(self.lons[n0:], self.lats[n0:])
            for j, s in enumerate(changed):
                i = n0 + j
                self.stations.append(s)
                self.by_id[s.id] = i
                self.by_code[s.code] = [*self.by_code.get(s.code, ()), i]
                touched.add(s.county_code)
                jurisdictions = jurisdictions or bool(s.jurisdiction)
                if s.capacity is not None:
                    self.capped[i] = s.capacity
                for bit in bits:
                    if bit == 0 or masks[j] & bit:
                        self.grid.add(bit, i, int(cells[j]))
        self.alive = alive
        for code in touched:
            members = self.by_county.get(code, np.empty(0, dtype=np.int64))
            members = members[self.alive[members]] if len(members) else members
            added = [n0 + j for j, s in enumerate(changed) if s.county_code == code]
            self._set_county(code, np.concatenate((members, np.asarray(added, dtype=np.int64))))
        if jurisdictions:
            self._build_jurisdictions()
        self.known_counties = set(self.county_names) | set(self.by_county)
        self.queue_townships = {}
        self.members_cache = {}
        self.version = version

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

    def search(
        self, point: Point, bit: int, exclude: frozenset[int], max_km: float
    ) -> tuple[np.ndarray, np.ndarray, list[Candidate]]:
        """Candidates within ``max_km`` nearest first (ties by code) with distances, as far as the
        choice among them needs (at least up to the first with room), and the top candidates.

        From the grid: the cells around the point, widened until a lower bound on the distance to
        every station outside them certifies the answer, so it equals a scan of every station.
        """
        r_last = _last_radius(max_km)
        grid = self.grid
        starts = grid.starts.get(bit)
        lon, lat = point.lon, point.lat
        if not bit:
            return np.empty(0, dtype=np.int64), np.empty(0), []
        if starts is None or not grid.holds(lon, lat):
            return self._search_all(point, bit, exclude, max_km)
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
            dist = haversine_prepared(lon, lat, self.lons[idx], self.rad_lats[idx], self.cos_lats[idx])
            order = np.lexsort((self.code_rank[idx], dist))
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
                    done = bool(m) and not bool(self.at_capacity[idx[:m]].all())
            if done:
                break
            reach *= 2
        head = dist[:n_cert]
        n_near = int(head.searchsorted(max_km, side="right"))
        n_top = min(TOP_CANDIDATES, int(head.searchsorted(r_last, side="right")))
        labels = self.labels
        top = [
            Candidate(labels[i][0], labels[i][1], labels[i][2], d)
            for i, d in zip(idx[:n_top].tolist(), dist[:n_top].tolist(), strict=True)
        ]
        return idx[:n_near], dist[:n_near], top

    def _search_all(
        self, point: Point, bit: int, exclude: frozenset[int], max_km: float
    ) -> tuple[np.ndarray, np.ndarray, list[Candidate]]:
        """:meth:`search` over every station (points off the grid)."""
        mask = ((self.capability_mask & bit) != 0) & self.alive
        for i in exclude:
            mask[i] = False
        idx = np.nonzero(mask)[0]
        idx, dist = self.ordered(idx, point)
        n_near = int(np.searchsorted(dist, max_km, side="right"))
        n_top = min(TOP_CANDIDATES, int(np.searchsorted(dist, _last_radius(max_km), side="right")))
        top = [self.candidate(int(i), d) for i, d in zip(idx[:n_top].tolist(), dist[:n_top].tolist(), strict=True)]
        return idx[:n_near], dist[:n_near], top

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


@dataclass
class IndexHolder:
    """The current index of one process and when its version was last checked."""

    index: StationIndex | None = None
    checked_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def load_index(*, ctx: Context, previous: StationIndex | None = None) -> StationIndex:
    """A fresh index of the stations and counties in MongoDB: ``previous`` with the stations that
    changed taken in when it can, else built anew (the county grid is kept while counties stay)."""
    from service.stations.repository import CountiesRepository, StationsRepository, read_stations_version

    version = await read_stations_version(ctx.db)
    stations = await StationsRepository(ctx.db).list_for_index()
    counties = await CountiesRepository(ctx.db).list_all()
    from service.stations.divisions_data import division_table

    names = division_table().township_names()
    return await asyncio.to_thread(refresh_index, previous, stations, counties, version=version, township_names=names)


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
            diff = previous.changes(stations)
            fresh = previous.updated(*diff, version=version) if diff is not None else None
            if fresh is not None:
                fresh.update_loads({s.id: s.open_cases for s in stations})
                return fresh
    return StationIndex(stations, counties, version=version, township_names=township_names, county_grid=county_grid)


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
