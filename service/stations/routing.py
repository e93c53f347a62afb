"""Which station handles a request: a pure decision over an in-process index of stations.

The rules (DESIGN.md section 4), first match wins:

1. a division code that a candidate station holds -> that station (``division``);
2. a point inside a candidate's own jurisdiction polygon -> that station (``jurisdiction``);
3. a point inside a county polygon -> the nearest candidate of that county (``county``),
   because territorial responsibility (属地管理) beats a closer station across the line;
   but only as exact as the data: when the point cannot tell the county's candidates apart
   (a candidate's point is approximate, the nearest points coincide, or there is no point),
   no township is picked by tie-break: the request is ``unrouted`` for the county's dispatch
   queue (区县分中心派单) with ``needs_township`` and the county's candidate townships listed,
   unless the county has a single candidate;
4. the nearest candidate within ``max_km`` (``nearest``);
5. otherwise ``unrouted``, queued for the supervisor of the county holding the point; a
   point that no county holds (outside Anhui) and no station reaches is outside the
   service area (``in_service_area`` false), and filing refuses it.

Candidates are active stations offering the capability and not excluded. In steps 3 and 4
a station at capacity is passed over while another candidate remains; equal distances go
to the lower station code.

The index is built from MongoDB and kept per process; a version counter in MongoDB, bumped
on every station write, tells each process to take the changed stations in within about a
second. What does not depend on the request is precomputed: the county (and jurisdiction) of
each cell of a fixed grid, with polygon tests only for cells on a border, and per capability
the stations of each cell and each cell's pruned list (the stations that can be among its five
nearest), so a decision is a cell lookup, a dot product for each of about 20 listed stations and a
handful of exact distances,
certified against a scan of every station (docs/routing.md), never a database geo query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.common.context import Context
from service.common.errors import NotFoundError, ValidationFailedError
from service.common.geo import Point
from service.stations.index import (
    TOP_CANDIDATES,
    Candidate,
    StationIndex,
    Township,
    current_index,
    haversine_many,
    nearest_quick,
    search_nearest,
)

METHODS = ("division", "jurisdiction", "county", "nearest", "unrouted")
_DIVISION = re.compile(r"^\d{9}(\d{3})?$")


@dataclass(slots=True)
class RoutingDecision:
    """Where a request goes and why; stored on the case as ``to_dict()``.

    Read-only by use; not frozen because one is made per decision and a frozen dataclass's
    generated ``__init__`` (``object.__setattr__`` for each of its fields) costs a few microseconds.
    """

    method: str
    station_id: str | None
    station_code: str | None
    station_name: str | None
    county_code: str | None
    distance_km: float | None
    candidates: tuple[Candidate, ...]
    reason: str
    excluded: tuple[str, ...] = ()
    # True when the location could not tell the county's townships apart: the request waits in
    # the county's dispatch queue, and a client should ask the resident for one of ``townships``.
    needs_township: bool = False
    townships: tuple[Township, ...] = ()

    @property
    def routed(self) -> bool:
        return self.method != "unrouted"

    @property
    def in_service_area(self) -> bool:
        """False when no county polygon holds the place and no station is within reach:
        nobody would ever handle it, so filing refuses it (``outside_service_area``)."""
        return self.routed or self.county_code is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "station_id": self.station_id,
            "station_code": self.station_code,
            "station_name": self.station_name,
            "county_code": self.county_code,
            "distance_km": None if self.distance_km is None else round(self.distance_km, 3),
            "candidates": [c.to_dict() for c in self.candidates],
            "reason": self.reason,
            "excluded": list(self.excluded),
            "in_service_area": self.in_service_area,
            "needs_township": self.needs_township,
            "townships": [t.to_dict() for t in self.townships],
        }


def normalize_division_code(value: str) -> str:
    """A township code as 9 digits (12-digit codes lose their village part), or 422."""
    text = str(value).strip()
    if not _DIVISION.match(text):
        raise ValidationFailedError(
            "invalid_division_code",
            "A division code is 9 digits (township) or 12 digits (township + 000).",
            {"division_code": ["Must be 9 or 12 digits."]},
        )
    return text[:9]


def _pick(index: StationIndex, idx: np.ndarray, dist: np.ndarray) -> tuple[int, float, int] | None:
    """The first ordered candidate with room, else the first; with how many full ones were skipped."""
    if not len(idx):
        return None
    full = index.at_capacity
    for k, i in enumerate(idx.tolist()):
        if not full[i]:
            return i, float(dist[k]), k
    return int(idx[0]), float(dist[0]), 0


def _decision(
    index: StationIndex,
    method: str,
    chosen: tuple[int, float, int] | None,
    candidates: list[Candidate],
    exclude: frozenset[str],
    county: str | None,
    max_km: float,
) -> RoutingDecision:
    excluded = tuple(sorted(exclude)) if exclude else ()
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
    s = index.station(i)
    if dist == dist:  # not NaN
        d: float | None = dist
        km = f"{dist:.1f}"
        at, at_en = f"，距 {km} 公里", f", {km} km"
    else:
        d, at, at_en = None, "", ""
    full, full_en = (
        (f"；跳过满负荷站点 {skipped} 个", f"; {skipped} full station(s) passed over") if skipped else ("", "")
    )
    zh, en = _HEADS[method]
    if method == "nearest":
        # The same for every decision with this limit: formatted once.
        en = _NEAREST_EN.get(max_km) or _NEAREST_EN.setdefault(max_km, en.format(max_km=max_km))
    else:
        en = en.format(code=s.code, county=s.county_name, max_km=max_km)
    reason = f"{zh}{s.county_name} {s.name}{at}{full} ({en}{at_en}{full_en})"
    return RoutingDecision(method, s.id, s.code, s.name, s.county_code, d, tuple(candidates), reason, excluded)


# The reason's head per method: Chinese (followed by the station's county and name), English.
_HEADS = {
    "division": ("按行政区划代码派单：", "division: station of township {code}"),
    "jurisdiction": ("按社工站服务辖区派单：", "jurisdiction: inside the station's area"),
    "county": ("按所在县区就近派单：", "county: nearest station in {county}"),
    "nearest": ("按距离就近派单：", "nearest station within {max_km:g} km"),
}


# The English head of a nearest decision per limit (km), as formatted.
_NEAREST_EN: dict[float, str] = {}

_WHY = {
    "approx": ("社工站坐标为近似位置", "station points are approximate"),
    "coincide": ("多个社工站坐标重合", "station points coincide"),
    "no_point": ("未提供可用位置", "no usable location"),
}


def _county_queue(
    index: StationIndex, idx: np.ndarray, why: str, exclude: frozenset[str], county: str, capability: str
) -> RoutingDecision:
    """Unrouted for the county's dispatch queue, with its candidate townships to pick from."""
    county_name = index.county_names.get(county) or index.station(int(idx[0])).county_name or county
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


_NO_IDS: frozenset[str] = frozenset()
_NO_POSITIONS: frozenset[int] = frozenset()
_Near = tuple[list[Candidate], tuple[int, float, int] | None]


def _near(index: StationIndex, point: Point, bit: int, excluded: frozenset[int], max_km: float) -> _Near:
    """The top candidates around the point, and the station the nearest rule picks (first with
    room within ``max_km``, else the first within it, else None)."""
    quick = nearest_quick(index, point.lon, point.lat, bit, excluded, max_km)
    if quick is not None:
        top, pick = quick
        labels = index.labels
        return [Candidate(*labels[i], d) for i, d in top], pick
    near_idx, near_dist, candidates = search_nearest(index, point, bit, excluded, max_km)
    return candidates, _pick(index, near_idx, near_dist)


def decide(
    index: StationIndex,
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
    if exclude:
        exclude = frozenset(exclude)
        excluded = index.positions(exclude)
    else:
        exclude, excluded = _NO_IDS, _NO_POSITIONS
    bit = index.capability_bit.get(capability, 0)
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
            s = index.station(holders[0])
            point = Point(s.lon, s.lat)
            point_exact = s.precision == "exact"
        county = division[:6]
    elif point is not None:
        county = index.county_at(point) or (division[:6] if division else None)
    # The candidates a decision lists (and the station the nearest rule picks) are searched
    # for only when the decision lists them (a county's dispatch queue lists none).
    if point is None:
        members, _ = index.county_members(county or "", bit, excluded)
        listed: _Near = ([index.candidate(int(i), None) for i in members[:TOP_CANDIDATES]], None)

    # 1. the township's own station
    if division is not None:
        held = [i for i in index.by_code.get(division, []) if index.capability_mask[i] & bit and i not in excluded]
        if held:
            i = min(held, key=lambda k: index.code_rank[k])
            d = (
                float("nan")
                if given_point is None
                else float(haversine_many(given_point.lon, given_point.lat, index.lons[[i]], index.lats[[i]])[0])
            )
            if point is not None:
                listed = _near(index, point, bit, excluded, max_km)
            return _decision(index, "division", (i, d, 0), listed[0], exclude, county, max_km)
    # 2. a station whose own jurisdiction holds the point (no capacity rule: it is theirs)
    if point is not None and len(index.jurisdiction_geoms):
        inside = index.jurisdictions_at(point)
        if len(inside):
            inside = np.asarray(
                [i for i in inside.tolist() if index.capability_mask[i] & bit and i not in excluded], dtype=np.int64
            )
        if len(inside):
            idx, dist = index.ordered(inside, point)
            listed = _near(index, point, bit, excluded, max_km)
            return _decision(
                index, "jurisdiction", (int(idx[0]), float(dist[0]), 0), listed[0], exclude, county, max_km
            )
    # 3. the county holding the point (or named by the division code)
    if county is not None:
        members, all_exact = index.county_members(county, bit, excluded)
        if len(members) > 1 and county in index.county_names and (point is None or not point_exact or not all_exact):
            # The point cannot tell them apart whatever the distances: no need to measure them.
            blind = "no_point" if point is None else "approx"
            return _county_queue(index, members, blind, exclude, county, capability)
        if len(members):
            idx, dist = index.ordered(members, point)
            why = index.indistinct(idx, dist, point, point_exact)
            if why is not None:
                return _county_queue(index, idx, why, exclude, county, capability)
            if point is not None:
                listed = _near(index, point, bit, excluded, max_km)
            return _decision(index, "county", _pick(index, idx, dist), listed[0], exclude, county, max_km)
    # 4. the nearest within reach
    if point is not None:
        listed = _near(index, point, bit, excluded, max_km)
    if listed[1] is not None:
        return _decision(index, "nearest", listed[1], listed[0], exclude, county, max_km)
    return _decision(index, "unrouted", None, listed[0], exclude, county, max_km)


# ---------------------------------------------------------------- the per-process index


async def route_request(
    *,
    ctx: Context,
    service_code: str | None = None,
    capability: str | None = None,
    location: dict[str, Any] | Point | None = None,
    division_code: str | None = None,
    exclude: frozenset[str] = frozenset(),
) -> RoutingDecision:
    """Route a request for a service (or a capability) at a location and/or division code.

    ``location`` is a WGS-84 :class:`Point` or ``{lon, lat, coord_system}``.
    """
    from service.catalog.service import get_service
    from service.common.geo import to_wgs84

    if capability is None:
        if service_code is None:
            raise ValidationFailedError(
                "service_required", "Name a service.", {"service_code": ["A service code is required."]}
            )
        try:
            service = await get_service(ctx=ctx, code=service_code)
        except NotFoundError:
            raise ValidationFailedError(
                "unknown_service",
                f"There is no service with code {service_code!r}.",
                {"service_code": ["Unknown service code."]},
            ) from None
        if service.retired:
            raise ValidationFailedError(
                "service_retired",
                f"Service {service_code!r} is no longer offered.",
                {"service_code": ["This service is retired."]},
            )
        capability = service.capability
    point: Point | None
    if location is None or isinstance(location, Point):
        point = location
    else:
        point = to_wgs84(location.get("lon"), location.get("lat"), location.get("coord_system") or "wgs84")  # type: ignore[arg-type]
    index = await current_index(ctx=ctx)
    return decide(
        index,
        capability=capability,
        point=point,
        division_code=division_code,
        exclude=frozenset(exclude),
        max_km=ctx.settings.routing_max_km,
    )
