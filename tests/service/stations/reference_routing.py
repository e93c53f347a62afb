"""Routing as it was decided before the precomputed grids, kept as the reference the grid index
must equal decision for decision (``to_dict()``): an STRtree point-in-polygon test per request and
a vectorised haversine over the stations of the 0.2-degree grid rows around the point."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import shapely
from shapely.geometry import shape

from service.common.errors import ValidationFailedError
from service.common.geo import EARTH_RADIUS_KM, Point
from service.stations.index import (
    COINCIDE_KM,
    MAX_CANDIDATE_SEARCH_KM,
    STATION_SUFFIX,
    TOP_CANDIDATES,
    Candidate,
    Township,
    haversine_many,
)
from service.stations.models import CountyArea, IndexedStation
from service.stations.routing import RoutingDecision, normalize_division_code

CELL_DEG = 0.2


class ReferenceIndex:
    """The index before the precomputed grids: an STRtree per polygon set, a 0.2-degree sorted grid."""

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

    def station(self, i: int) -> IndexedStation:
        return self.stations[i]

    def township(self, i: int) -> Township:
        s = self.stations[i]
        name = self.township_names.get(s.code) or s.name.removesuffix(STATION_SUFFIX) or s.name
        return Township(s.code, name, s.id, s.name)

    def candidate(self, i: int, distance: float | None) -> Candidate:
        s = self.stations[i]
        d = None if distance is None or math.isnan(distance) else float(distance)
        return Candidate(s.id, s.code, s.name, d)


def _pick(index: ReferenceIndex, idx: np.ndarray, dist: np.ndarray) -> tuple[int, float, int] | None:
    """The first ordered candidate with room, else the first; with how many full ones were skipped."""
    if not len(idx):
        return None
    room = ~index.at_capacity[idx]
    k = int(np.argmax(room)) if room.any() else 0
    return int(idx[k]), float(dist[k]), k


def _km(d: float | None) -> str:
    return "" if d is None or math.isnan(d) else f"{d:.1f}"


def _decision(
    index: ReferenceIndex,
    method: str,
    chosen: tuple[int, float, int] | None,
    candidates: list[Candidate],
    exclude: frozenset[str],
    county: str | None,
    max_km: float,
) -> RoutingDecision:
    excluded = tuple(sorted(exclude))
    if chosen is None and county is None:
        reason = (
            f"该位置不在服务范围内（安徽省），{max_km:g} 公里内也无提供该服务的社工站，无法受理 "
            f"(outside the service area: no Anhui county holds this place and no station offers this service "
            f"within {max_km:g} km, so a request here is refused)"
        )
        return RoutingDecision("unrouted", None, None, None, None, None, tuple(candidates), reason, excluded)
    if chosen is None:
        county_name = index.county_names.get(county or "", "")
        where = f"{county_name}民政部门" if county_name else "民政部门"
        where_en = f"the {county_name} supervisor" if county_name else "a supervisor"
        reason = (
            f"{max_km:g} 公里内无提供该服务的社工站，转{where}人工派单 "
            f"(unrouted: no station offers this service within {max_km:g} km; queued for {where_en})"
        )
        return RoutingDecision("unrouted", None, None, None, county, None, tuple(candidates), reason, excluded)
    i, dist, skipped = chosen
    s = index.stations[i]
    d = None if math.isnan(dist) else dist
    km = _km(d)
    at = f"，距 {km} 公里" if km else ""
    at_en = f", {km} km" if km else ""
    full = f"；跳过满负荷站点 {skipped} 个" if skipped else ""
    full_en = f"; {skipped} full station(s) passed over" if skipped else ""
    head = {
        "division": (f"按行政区划代码派单：{s.county_name} {s.name}", f"division: station of township {s.code}"),
        "jurisdiction": (f"按社工站服务辖区派单：{s.county_name} {s.name}", "jurisdiction: inside the station's area"),
        "county": (f"按所在县区就近派单：{s.county_name} {s.name}", f"county: nearest station in {s.county_name}"),
        "nearest": (f"按距离就近派单：{s.county_name} {s.name}", f"nearest station within {max_km:g} km"),
    }[method]
    reason = f"{head[0]}{at}{full} ({head[1]}{at_en}{full_en})"
    return RoutingDecision(method, s.id, s.code, s.name, s.county_code, d, tuple(candidates), reason, excluded)


_WHY = {
    "approx": ("社工站坐标为近似位置", "station points are approximate"),
    "coincide": ("多个社工站坐标重合", "station points coincide"),
    "no_point": ("未提供可用位置", "no usable location"),
}


def _county_queue(
    index: ReferenceIndex, idx: np.ndarray, why: str, exclude: frozenset[str], county: str, capability: str
) -> RoutingDecision:
    """Unrouted for the county's dispatch queue, with its candidate townships to pick from."""
    county_name = index.county_names.get(county) or index.stations[int(idx[0])].county_name or county
    zh, en = _WHY[why]
    reason = (
        f"位置无法区分{county_name}各乡镇（{zh}），转{county_name}民政部门派单；"
        f"请选择所在乡镇(街道) (the location cannot tell {county_name}'s townships apart: {en}; "
        f"queued for the county's dispatch; name the township to route it directly)"
    )
    townships = index.townships(idx, None if exclude else (county, capability))
    return RoutingDecision(
        "unrouted",
        None,
        None,
        None,
        county,
        None,
        (),
        reason,
        tuple(sorted(exclude)),
        needs_township=True,
        townships=townships,
    )


def decide(
    index: ReferenceIndex,
    *,
    capability: str,
    point: Point | None = None,
    division_code: str | None = None,
    exclude: frozenset[str] = frozenset(),
    max_km: float = 50.0,
) -> RoutingDecision:
    """The routing decision for a request; pure (no I/O), deterministic."""
    if point is None and division_code is None:
        raise ValidationFailedError(
            "location_required",
            "Give a location or a township division code.",
            {"location": ["A location or a division code is required."]},
        )
    exclude = frozenset(exclude)
    mask = index.candidate_mask(capability, exclude)
    division = normalize_division_code(division_code) if division_code is not None else None
    if division is not None and division not in index.by_code and division[:6] not in index.known_counties:
        raise ValidationFailedError(
            "invalid_division_code",
            f"No township or county is known for division code {division_code}.",
            {"division_code": ["Unknown division code."]},
        )
    county: str | None = None
    given_point = point
    point_exact = True  # a location given with the request is taken as it is
    if point is None and division is not None:
        # Without a location, the township's own station stands in for the point.
        holders = index.by_code.get(division, [])
        if holders:
            s = index.stations[holders[0]]
            point = Point(s.lon, s.lat)
            point_exact = s.precision == "exact"
        county = division[:6]
    elif point is not None:
        county = index.county_at(point) or (division[:6] if division else None)
    near = (*index.nearest(point, mask, max_km), max_km) if point is not None else None
    candidates = index.top_candidates(point, mask, county, near)

    # 1. the township's own station
    if division is not None:
        held = [i for i in index.by_code.get(division, []) if mask[i]]
        if held:
            i = min(held, key=lambda k: index.code_rank[k])
            d = (
                float("nan")
                if given_point is None
                else float(haversine_many(given_point.lon, given_point.lat, index.lons[[i]], index.lats[[i]])[0])
            )
            return _decision(index, "division", (i, d, 0), candidates, exclude, county, max_km)
    # 2. a station whose own jurisdiction holds the point (no capacity rule: it is theirs)
    if point is not None:
        inside = index.jurisdictions_at(point)
        inside = inside[mask[inside]] if len(inside) else inside
        if len(inside):
            idx, dist = index.ordered(inside, point)
            return _decision(
                index, "jurisdiction", (int(idx[0]), float(dist[0]), 0), candidates, exclude, county, max_km
            )
    # 3. the county holding the point (or named by the division code)
    if county is not None:
        members = index.by_county.get(county, np.empty(0, dtype=np.int64))
        members = members[mask[members]]
        if len(members):
            idx, dist = index.ordered(members, point)
            why = index.indistinct(idx, dist, point, point_exact)
            if why is not None:
                return _county_queue(index, idx, why, exclude, county, capability)
            return _decision(index, "county", _pick(index, idx, dist), candidates, exclude, county, max_km)
    # 4. the nearest within reach
    if near is not None:
        chosen = _pick(index, near[0], near[1])
        if chosen is not None:
            return _decision(index, "nearest", chosen, candidates, exclude, county, max_km)
    return _decision(index, "unrouted", None, candidates, exclude, county, max_km)
