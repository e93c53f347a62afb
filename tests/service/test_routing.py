"""The routing decision against a brute-force great-circle reference, on random station sets."""

from __future__ import annotations

import math

import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping, shape

from service.common.errors import ValidationFailedError
from service.common.geo import Point, haversine_km
from service.stations.index import StationIndex
from service.stations.models import CountyArea, IndexedStation
from service.stations.routing import decide

# Two adjacent county rectangles; stations of a third county (340103) have no polygon.
WEST = CountyArea("340101", "西县", mapping(box(116.0, 31.0, 117.0, 32.0)))
EAST = CountyArea("340102", "东县", mapping(box(117.0, 31.0, 118.0, 32.0)))
COUNTIES = (WEST, EAST)
COUNTY_CODES = ("340101", "340102", "340103")
CAPABILITIES = ("elderly_care", "funeral")


def reference(stations, counties, *, capability, point, division, exclude, max_km):
    """DESIGN.md section 4, written as plainly as possible over every station."""
    cands = [s for s in stations if capability in s.capabilities and s.id not in exclude]
    d9 = division[:9] if division else None
    county = None
    point_exact = True
    if point is None and d9:
        proxy = [s for s in stations if s.code == d9]
        point = Point(proxy[0].lon, proxy[0].lat) if proxy else None
        point_exact = not proxy or proxy[0].precision == "exact"
        county = d9[:6]
    elif point is not None:
        inside = [c.code for c in counties if shape(c.geometry).intersects(shapely.Point(point.lon, point.lat))]
        county = min(inside) if inside else (d9[:6] if d9 else None)

    def dist(s):
        return haversine_km(point.lon, point.lat, s.lon, s.lat) if point else math.nan

    def key(s):
        return (dist(s), s.code) if point else (0, s.code)

    def pick(group):
        ordered = sorted(group, key=key)
        free = [s for s in ordered if not s.at_capacity]
        return (free or ordered)[0]

    if d9:
        held = [s for s in cands if s.code == d9]
        if held:
            return "division", min(held, key=lambda s: s.code), county
    if point is not None:
        own = [
            s for s in cands if s.jurisdiction and shape(s.jurisdiction).intersects(shapely.Point(point.lon, point.lat))
        ]
        if own:
            return "jurisdiction", min(own, key=key), county
    if county is not None:
        members = [s for s in cands if s.county_code == county]
        if len(members) > 1:
            # Only as exact as the data: no pick by tie-break when the point cannot tell them apart.
            if point is None or not point_exact or any(s.precision != "exact" for s in members):
                return "queue", None, county
            first = min(members, key=key)
            if any(
                s is not first
                and abs(dist(s) - dist(first)) <= 0.05
                and haversine_km(s.lon, s.lat, first.lon, first.lat) <= 0.05
                for s in members
            ):
                return "queue", None, county
        if members:
            return "county", pick(members), county
    if point is not None:
        near = [s for s in cands if dist(s) <= max_km]
        if near:
            return "nearest", pick(near), county
    return "unrouted", None, county


@st.composite
def station_sets(draw):
    n = draw(st.integers(min_value=0, max_value=24))
    stations = []
    for i in range(n):
        county = draw(st.sampled_from(COUNTY_CODES))
        # Coarse coordinates so that equal distances (ties by code) really happen.
        lon = 115.6 + draw(st.integers(0, 28)) * 0.1
        lat = 30.6 + draw(st.integers(0, 18)) * 0.1
        jurisdiction = None
        if draw(st.integers(0, 3)) == 0:
            half = draw(st.sampled_from([0.05, 0.3, 0.6]))
            jurisdiction = mapping(box(lon - half, lat - half, lon + half, lat + half))
        capacity = draw(st.one_of(st.none(), st.integers(0, 2)))
        stations.append(
            IndexedStation(
                id=f"s{i:02d}",
                code=f"{county}{draw(st.integers(0, 999)):03d}",
                name=f"站{i}",
                county_code=county,
                county_name={"340101": "西县", "340102": "东县"}.get(county, "无界县"),
                lon=round(lon, 4),
                lat=round(lat, 4),
                capabilities=frozenset(
                    draw(st.sampled_from([(), CAPABILITIES[:1], CAPABILITIES[1:], CAPABILITIES, CAPABILITIES]))
                ),
                capacity=capacity,
                open_cases=draw(st.integers(0, 3)),
                jurisdiction=jurisdiction,
                precision=draw(st.sampled_from(["exact", "exact", "approx"])),
            )
        )
    unique = {s.code: s for s in stations}  # township codes are unique
    return list(unique.values())


points = st.one_of(
    st.builds(Point, lon=st.floats(115.3, 118.7), lat=st.floats(30.3, 32.7)),
    # south of both county polygons: only the nearest rule can route here
    st.builds(Point, lon=st.floats(115.3, 118.7), lat=st.floats(30.3, 30.99)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stations=station_sets(),
    point=st.one_of(st.none(), points),
    data=st.data(),
    capability=st.sampled_from(CAPABILITIES),
    max_km=st.sampled_from([10.0, 50.0, 100.0]),
)
def test_decision_equals_brute_force_reference(stations, point, data, capability, max_km):
    codes = [s.code for s in stations]
    division_choices = [None] + codes + [c + "000" for c in codes] + ["340101999", "340102999000"]
    division = data.draw(st.sampled_from(division_choices)) if data.draw(st.booleans()) else None
    if point is None and division is None:
        point = Point(117.0, 31.5)
    ids = [s.id for s in stations]
    exclude = frozenset(data.draw(st.sets(st.sampled_from(ids), max_size=3)) if ids else ())
    index = StationIndex(stations, COUNTIES)
    got = decide(index, capability=capability, point=point, division_code=division, exclude=exclude, max_km=max_km)
    method, station, county = reference(
        stations, COUNTIES, capability=capability, point=point, division=division, exclude=exclude, max_km=max_km
    )
    event(f"method={method}")
    if method == "queue":
        assert (got.method, got.station_id, got.needs_township) == ("unrouted", None, True)
        assert got.county_code == county and not got.candidates
        wanted = sorted(s.code for s in stations if s.county_code == county and capability in s.capabilities)
        assert [t.code for t in got.townships] == [
            c for c in wanted if c not in {s.code for s in stations if s.id in exclude}
        ]
        assert "无法区分" in got.reason
        return
    assert not got.needs_township and not got.townships
    assert got.method == method
    assert got.station_id == (station.id if station else None)
    if method == "unrouted":
        assert got.county_code == county
    else:
        assert got.county_code == station.county_code
    assert got.excluded == tuple(sorted(exclude))
    assert not exclude & {c.station_id for c in got.candidates}
    assert len(got.candidates) <= 5
    assert got.reason


def st_(
    i: int, county: str, lon: float, lat: float, *, code: str | None = None, caps=("elderly_care",), **kw
) -> IndexedStation:
    return IndexedStation(
        id=f"id{i}",
        code=code or f"{county}{i:03d}",
        name=f"站{i}",
        county_code=county,
        county_name={"340101": "西县", "340102": "东县"}.get(county, ""),
        lon=lon,
        lat=lat,
        capabilities=frozenset(caps),
        **kw,
    )


def test_point_in_a_county_goes_to_that_countys_station_even_when_another_is_closer():
    near_other_side = st_(1, "340102", 117.01, 31.5)  # 1 km away, across the county line
    own = st_(2, "340101", 116.5, 31.5)  # ~47 km away, same county
    d = decide(StationIndex([near_other_side, own], COUNTIES), capability="elderly_care", point=Point(116.99, 31.5))
    assert (d.method, d.station_id) == ("county", "id2")
    assert d.reason.startswith("按所在县区就近派单：西县 站2")
    assert [c.station_id for c in d.candidates] == ["id1", "id2"]


def test_station_at_capacity_is_passed_over_while_another_remains():
    full = st_(1, "340101", 116.5, 31.5, capacity=2, open_cases=2)
    room = st_(2, "340101", 116.6, 31.5)
    index = StationIndex([full, room], COUNTIES)
    d = decide(index, capability="elderly_care", point=Point(116.5, 31.5))
    assert (d.method, d.station_id) == ("county", "id2")
    assert "跳过满负荷站点 1 个" in d.reason
    only_full = decide(StationIndex([full], COUNTIES), capability="elderly_care", point=Point(116.5, 31.5))
    assert only_full.station_id == "id1"


def test_equal_distances_go_to_the_lower_station_code():
    a = st_(1, "340103", 119.0, 31.0, code="340103200")
    b = st_(2, "340103", 119.0, 31.0, code="340103100")
    d = decide(StationIndex([a, b], COUNTIES), capability="elderly_care", point=Point(119.1, 31.0))
    assert (d.method, d.station_code) == ("nearest", "340103100")


@pytest.mark.parametrize("division", ["340103007", "340103007000"])
def test_division_code_of_9_or_12_digits_picks_the_township_station(division):
    mine = st_(7, "340103", 119.5, 31.0)
    closer = st_(8, "340101", 116.5, 31.5)
    d = decide(
        StationIndex([mine, closer], COUNTIES),
        capability="elderly_care",
        point=Point(116.5, 31.5),
        division_code=division,
    )
    assert (d.method, d.station_id) == ("division", "id7")


@pytest.mark.parametrize("division", ["34010", "3401010010", "34010300a", "340103007001x"])
def test_malformed_division_code_is_refused(division):
    with pytest.raises(ValidationFailedError) as info:
        decide(StationIndex([], COUNTIES), capability="elderly_care", point=Point(116.5, 31.5), division_code=division)
    assert info.value.code == "invalid_division_code"


def test_unknown_division_code_is_refused():
    with pytest.raises(ValidationFailedError) as info:
        decide(StationIndex([], COUNTIES), capability="elderly_care", division_code="469999001")
    assert info.value.code == "invalid_division_code"


def test_station_without_the_capability_is_not_a_candidate():
    funeral_only = st_(1, "340103", 119.0, 31.0, caps=("funeral",))
    d = decide(StationIndex([funeral_only], COUNTIES), capability="elderly_care", point=Point(119.0, 31.0))
    assert d.method == "unrouted"


def test_own_jurisdiction_beats_the_county_rule():
    area = mapping(box(116.9, 31.4, 117.1, 31.6))
    east = st_(1, "340102", 117.05, 31.5, jurisdiction=area)
    west = st_(2, "340101", 116.95, 31.5)
    d = decide(StationIndex([east, west], COUNTIES), capability="elderly_care", point=Point(116.95, 31.5))
    assert (d.method, d.station_id) == ("jurisdiction", "id1")


def test_excluded_station_is_skipped_and_listed():
    a = st_(1, "340101", 116.5, 31.5)
    b = st_(2, "340101", 116.7, 31.5)
    d = decide(
        StationIndex([a, b], COUNTIES), capability="elderly_care", point=Point(116.5, 31.5), exclude=frozenset({"id1"})
    )
    assert d.station_id == "id2" and d.excluded == ("id1",)


def test_beyond_the_limit_is_unrouted_for_the_county_supervisor():
    far = st_(1, "340103", 119.5, 31.5)  # ~240 km east, no polygon
    index = StationIndex([far], COUNTIES)
    d = decide(index, capability="elderly_care", point=Point(120.0, 31.5), max_km=50)
    assert (d.method, d.station_id) == ("nearest", "id1")
    d = decide(index, capability="elderly_care", point=Point(121.0, 31.5), max_km=50)
    assert d.method == "unrouted" and d.county_code is None
    d = decide(StationIndex([far], COUNTIES), capability="funeral", point=Point(116.5, 31.5))
    assert (d.method, d.county_code) == ("unrouted", "340101")
    assert "西县" in d.reason


def test_nearest_search_matches_a_full_scan_on_many_stations():
    import random

    rng = random.Random(7)
    stations = [
        st_(i, "110000", rng.uniform(73, 135), rng.uniform(18, 53), code=f"{110000000 + i}") for i in range(3000)
    ]
    index = StationIndex(stations, ())
    for _ in range(200):
        p = Point(rng.uniform(73, 135), rng.uniform(18, 53))
        d = decide(index, capability="elderly_care", point=p, max_km=200)
        within = sorted(
            (haversine_km(p.lon, p.lat, s.lon, s.lat), s.code, s.id)
            for s in stations
            if haversine_km(p.lon, p.lat, s.lon, s.lat) <= 200
        )
        assert d.station_id == (within[0][2] if within else None)


# ---------------------------------------------------------------- only as exact as the data


def test_approximate_points_in_a_county_go_to_its_dispatch_queue_with_its_townships():
    a = st_(1, "340101", 116.5, 31.5, precision="approx")
    b = st_(2, "340101", 116.5, 31.5, precision="approx")
    c = st_(3, "340101", 116.6, 31.6, caps=("funeral",), precision="approx")
    other = st_(4, "340102", 117.5, 31.5, precision="approx")
    index = StationIndex([b, a, c, other], COUNTIES, township_names={"340101001": "甲镇"})
    d = decide(index, capability="elderly_care", point=Point(116.2, 31.2))
    assert (d.method, d.station_id, d.county_code, d.needs_township) == ("unrouted", None, "340101", True)
    assert [(t.code, t.name, t.station_id) for t in d.townships] == [
        ("340101001", "甲镇", "id1"),
        ("340101002", "站2", "id2"),
    ]
    assert d.reason.startswith("位置无法区分西县各乡镇（社工站坐标为近似位置）")
    assert "approximate" in d.reason and not d.candidates
    assert d.to_dict()["townships"][0] == {
        "code": "340101001",
        "name": "甲镇",
        "station_id": "id1",
        "station_name": "站1",
    }


def test_one_approximate_station_among_exact_ones_still_sends_the_county_to_its_queue():
    exact = st_(1, "340101", 116.2, 31.2)
    approx = st_(2, "340101", 116.5, 31.5, precision="approx")
    d = decide(StationIndex([exact, approx], COUNTIES), capability="elderly_care", point=Point(116.2, 31.2))
    assert (d.method, d.needs_township) == ("unrouted", True)


def test_coinciding_exact_points_cannot_pick_a_township():
    a = st_(1, "340101", 116.5, 31.5)
    b = st_(2, "340101", 116.5002, 31.5)  # ~20 m apart: one place
    d = decide(StationIndex([a, b], COUNTIES), capability="elderly_care", point=Point(116.3, 31.4))
    assert d.needs_township and "station points coincide" in d.reason


def test_precise_points_route_to_the_nearest_station_of_the_county():
    a = st_(1, "340101", 116.2, 31.2)
    b = st_(2, "340101", 116.8, 31.8)
    d = decide(StationIndex([a, b], COUNTIES), capability="elderly_care", point=Point(116.7, 31.7))
    assert (d.method, d.station_id, d.needs_township) == ("county", "id2", False)
    assert d.to_dict()["townships"] == []


def test_the_only_candidate_of_a_county_takes_the_case_whatever_its_precision():
    only = st_(1, "340101", 116.5, 31.5, precision="approx")
    funeral = st_(2, "340101", 116.5, 31.5, caps=("funeral",), precision="approx")
    d = decide(StationIndex([only, funeral], COUNTIES), capability="elderly_care", point=Point(116.2, 31.2))
    assert (d.method, d.station_id, d.needs_township) == ("county", "id1", False)


def test_a_named_township_routes_by_division_even_when_points_are_approximate():
    a = st_(1, "340101", 116.5, 31.5, precision="approx")
    b = st_(2, "340101", 116.5, 31.5, precision="approx")
    d = decide(
        StationIndex([a, b], COUNTIES), capability="elderly_care", point=Point(116.2, 31.2), division_code="340101002"
    )
    assert (d.method, d.station_id, d.needs_township) == ("division", "id2", False)


def test_a_jurisdiction_polygon_tells_townships_apart_where_points_cannot():
    area = mapping(box(116.1, 31.1, 116.3, 31.3))
    a = st_(1, "340101", 116.5, 31.5, precision="approx")
    b = st_(2, "340101", 116.5, 31.5, precision="approx", jurisdiction=area)
    index = StationIndex([a, b], COUNTIES)
    assert decide(index, capability="elderly_care", point=Point(116.2, 31.2)).station_id == "id2"
    assert decide(index, capability="elderly_care", point=Point(116.6, 31.6)).needs_township


def test_a_township_without_the_service_falls_back_to_the_county_queue_when_points_are_approximate():
    mine = st_(1, "340101", 116.5, 31.5, caps=("funeral",), precision="approx")
    a = st_(2, "340101", 116.5, 31.5, precision="approx")
    b = st_(3, "340101", 116.5, 31.5, precision="approx")
    d = decide(StationIndex([mine, a, b], COUNTIES), capability="elderly_care", division_code="340101001")
    assert d.needs_township and [t.station_id for t in d.townships] == ["id2", "id3"]
