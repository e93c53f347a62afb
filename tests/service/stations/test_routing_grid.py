"""The grid index decides exactly as the reference (the index before the grids) did, also after
stations are created, changed and closed in place."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box, mapping

from service.common.errors import ValidationFailedError
from service.common.geo import Point
from service.stations.grids import LIST_REACH, WIDE_REACH
from service.stations.index import StationIndex, nearest_quick, quick_path, refresh_index, search_nearest
from service.stations.models import CountyArea, IndexedStation
from service.stations.routing import decide
from tests.service.stations import reference_routing as ref

CAPS = ("elderly_care", "funeral", "social_aid")
DATA = Path(__file__).resolve().parents[3] / "data"


def anhui_counties() -> list[CountyArea]:
    data = json.loads((DATA / "anhui_counties.geojson").read_text(encoding="utf-8"))
    return [CountyArea(f["properties"]["code"], f["properties"]["name"], f["geometry"]) for f in data["features"]]


COUNTIES = anhui_counties()


def make_stations(rng: random.Random, n: int, *, start: int = 0) -> list[IndexedStation]:
    """Stations in and around Anhui, of its counties and of none, some coinciding, some full."""
    out = []
    spots = [(rng.uniform(114.5, 120.0), rng.uniform(29.0, 35.0)) for _ in range(max(1, n // 4))]
    for k in range(start, start + n):
        county = rng.choice(COUNTIES)
        if rng.random() < 0.3:
            lon, lat = rng.choice(spots)  # shared points: coinciding stations, equal distances
        else:
            lon, lat = round(rng.uniform(114.5, 120.0), 3), round(rng.uniform(29.0, 35.0), 3)
        jurisdiction = None
        if rng.random() < 0.05:
            half = rng.choice([0.02, 0.1, 0.3])
            jurisdiction = mapping(box(lon - half, lat - half, lon + half, lat + half))
        out.append(
            IndexedStation(
                id=f"s{k:06d}",
                code=f"{county.code}{k % 1000:03d}" if rng.random() < 0.7 else f"{110000000 + k}",
                name=f"站{k}",
                county_code=county.code if rng.random() < 0.9 else "110101",
                county_name=county.name,
                lon=lon,
                lat=lat,
                capabilities=frozenset(c for c in CAPS if rng.random() < 0.7) or frozenset(CAPS[:1]),
                capacity=rng.choice([None, None, 0, 1, 5]),
                open_cases=rng.randint(0, 3),
                jurisdiction=jurisdiction,
                precision=rng.choice(["exact", "exact", "exact", "approx"]),
            )
        )
    return list({s.code: s for s in out}.values())


def request(rng: random.Random, stations: list[IndexedStation]) -> dict:
    point = None
    roll = rng.random()
    if roll < 0.6:
        point = Point(rng.uniform(113.5, 121.0), rng.uniform(28.5, 35.5))
    elif roll < 0.7:
        s = rng.choice(stations)
        point = Point(s.lon, s.lat)  # exactly on a station (and on coinciding ones)
    elif roll < 0.75:
        point = Point(rng.uniform(75.0, 130.0), rng.uniform(20.0, 50.0))  # far off the grid
    division = None
    if point is None or rng.random() < 0.2:
        division = rng.choice([s.code for s in stations] + ["340102999", "340104000"])
    exclude = frozenset(s.id for s in rng.sample(stations, k=min(len(stations), rng.choice([0, 0, 1, 3]))))
    return {
        "capability": rng.choice((*CAPS, "unknown")),
        "point": point,
        "division_code": division,
        "exclude": exclude,
        "max_km": rng.choice([10.0, 50.0, 50.0, 300.0]),
    }


def assert_same(index: StationIndex, reference: ref.ReferenceIndex, kwargs: dict) -> str | None:
    """The two decide alike; the method, or ``None`` when both refuse (with the same code)."""
    try:
        want = ref.decide(reference, **kwargs).to_dict()
    except ValidationFailedError as e:
        with pytest.raises(ValidationFailedError) as got:
            decide(index, **kwargs)
        assert got.value.code == e.code
        return None
    assert decide(index, **kwargs).to_dict() == want, kwargs
    return str(want["method"])


@pytest.mark.parametrize(("seed", "n"), [(1, 60), (2, 400), (3, 1500)])
def test_grid_decisions_equal_the_reference_decision_for_decision(seed, n):
    rng = random.Random(seed)
    stations = make_stations(rng, n)
    index = StationIndex(stations, COUNTIES)
    reference = ref.ReferenceIndex(stations, COUNTIES)
    methods = set()
    for _ in range(600):
        kwargs = request(rng, stations)
        methods.add(assert_same(index, reference, kwargs))
    assert {"division", "county", "nearest", "unrouted"} <= methods


def test_grid_decisions_equal_the_reference_at_many_stations_across_china():
    rng = random.Random(11)
    stations = [
        IndexedStation(
            id=f"c{i}",
            code=f"{110000000 + i}",
            name=f"站{i}",
            county_code=f"{110000 + i // 20}",
            county_name="",
            lon=rng.uniform(105, 123) if i % 10 < 7 else rng.uniform(73.5, 135),
            lat=rng.uniform(21, 42) if i % 10 < 7 else rng.uniform(18, 53.5),
            capabilities=frozenset(c for c in CAPS if rng.random() < 0.8) or frozenset(CAPS[:1]),
            capacity=rng.choice([None, None, 10]),
            open_cases=rng.randint(0, 12),
        )
        for i in range(20_000)
    ]
    index = StationIndex(stations, COUNTIES)
    reference = ref.ReferenceIndex(stations, COUNTIES)
    for _ in range(400):
        p = Point(rng.uniform(73.5, 135), rng.uniform(18, 53.5))
        exclude = frozenset(rng.sample([s.id for s in stations], k=rng.choice([0, 0, 2])))
        for max_km in (5.0, 50.0):
            assert_same(
                index, reference, {"capability": rng.choice(CAPS), "point": p, "exclude": exclude, "max_km": max_km}
            )


def test_quick_search_answers_as_the_full_search_or_hands_over():
    """The per-decision search (ranked by dot product, a few measured exactly) gives the full
    search's top candidates, distances to the last bit and pick, or hands over to it."""
    rng = random.Random(5)
    stations = [
        IndexedStation(
            id=f"q{i}",
            code=f"{120000000 + i}",
            name=f"站{i}",
            county_code="120000",
            county_name="",
            lon=round(rng.uniform(115, 119), 3),
            lat=round(rng.uniform(29, 34), 3),
            capabilities=frozenset(c for c in CAPS if rng.random() < 0.7) or frozenset(CAPS[:1]),
            capacity=rng.choice([None, None, 0, 1]),
            open_cases=rng.randint(0, 1),
        )
        for i in range(3000)
    ]
    index = StationIndex(stations)
    answered = 0
    for _ in range(1500):
        p = Point(rng.uniform(114, 120), rng.uniform(28, 35))
        bit = index.capability_bit[rng.choice(CAPS)]
        excluded = frozenset(rng.sample(range(len(stations)), k=rng.choice([0, 0, 3])))
        max_km = rng.choice([0.5, 5.0, 50.0])
        quick = nearest_quick(index, p.lon, p.lat, bit, excluded, max_km)
        idx, dist, top = search_nearest(index, p, bit, excluded, max_km)
        if quick is None:
            continue
        answered += 1
        assert [(index.labels[i][0], d) for i, d in quick[0]] == [(c.station_id, c.distance_km) for c in top]
        room = [k for k, i in enumerate(idx.tolist()) if not index.at_capacity[i]]
        if not len(idx):
            assert quick[1] is None
        else:
            k = room[0] if room else 0
            assert quick[1] == (int(idx[k]), float(dist[k]), k if room else 0)
    assert answered > 1300


def test_equal_distances_go_to_the_lower_code_in_the_quick_search():
    # Longitudes 1/8 degree either side of the point: exactly the same distance.
    stations = [
        IndexedStation("far-code", "340000009", "乙", "", "", 117.125, 31.0, frozenset(CAPS)),
        IndexedStation("low-code", "340000001", "甲", "", "", 116.875, 31.0, frozenset(CAPS)),
        *(
            IndexedStation(f"o{k}", f"34000010{k}", f"丙{k}", "", "", 117.0 + 0.2 * k, 31.5, frozenset(CAPS))
            for k in range(6)
        ),
    ]
    decision = decide(StationIndex(stations), capability="funeral", point=Point(117.0, 31.0))
    assert decision.method == "nearest"
    assert decision.station_id == "low-code"
    assert [c.station_id for c in decision.candidates[:2]] == ["low-code", "far-code"]
    assert decision.candidates[0].distance_km == decision.candidates[1].distance_km


def test_station_changes_are_taken_in_place_and_decide_as_a_fresh_build():
    rng = random.Random(5)
    stations = make_stations(rng, 600)
    index = refresh_index(None, stations, COUNTIES, version=1, township_names={})
    for round_ in range(6):
        # create a few, move and re-equip a few, close a few, change some loads
        current = {s.id: s for s in stations}
        for s in rng.sample(list(current.values()), k=4):
            del current[s.id]
        for s in rng.sample(list(current.values()), k=4):
            moved = rng.choice(stations)
            current[s.id] = IndexedStation(
                **{
                    **{f: getattr(s, f) for f in s.__dataclass_fields__},
                    "lon": moved.lon,
                    "lat": moved.lat,
                    "capabilities": frozenset(rng.sample(CAPS, k=rng.randint(1, 3))),
                    "precision": rng.choice(["exact", "approx"]),
                    "capacity": rng.choice([None, 1]),
                }
            )
        codes = {s.code for s in current.values()}
        for s in make_stations(rng, 4, start=10_000 + 10 * round_):
            if s.code not in codes:
                current[s.id] = s
        stations = list(current.values())
        previous = index
        index = refresh_index(previous, stations, COUNTIES, version=round_ + 2, township_names={})
        # taken in place: the county grid and the positions of unchanged stations are kept
        assert index is not previous and index.version == round_ + 2
        assert index.county_grid is previous.county_grid
        assert len(index) > len(previous)
        assert previous.version == round_ + 1  # the index in use is left as it was
        reference = ref.ReferenceIndex(stations, COUNTIES)
        fresh = StationIndex(stations, COUNTIES)
        # only the cells a change can affect got new pruned lists, and all are as if built anew
        for bit, (starts, ids) in index.grid.plain_lists.items():
            again = index.grid.nearest_lists(bit, index.lons, index.lats, None)
            assert (list(starts), list(ids)) == (again[0].tolist(), again[1].tolist())
        for _ in range(300):
            kwargs = request(rng, stations)
            assert_same(index, reference, kwargs)
            assert_same(fresh, reference, kwargs)


def pruned_lists(index: StationIndex) -> dict[tuple[int, int], set[str]]:
    """Per (capability bit, cell) with a list, the ids of the stations on it."""
    out = {}
    for bit, (starts, ids) in index.grid.plain_lists.items():
        for cell in range(len(starts) - 1):
            if starts[cell] < starts[cell + 1]:
                out[bit, cell] = {index.labels[i][0] for i in ids[starts[cell] : starts[cell + 1]]}
    return out


def test_pruned_lists_hold_every_station_that_can_be_among_a_cells_five_nearest():
    rng = random.Random(7)
    index = StationIndex(make_stations(rng, 800), COUNTIES)
    grid = index.grid
    lists = pruned_lists(index)
    assert len(lists) > 100
    for (bit, cell), listed in rng.sample(sorted(lists.items()), k=60):
        row, col = divmod(cell, grid.n_cols)
        mask = index.candidate_mask(next(c for c, b in index.capability_bit.items() if b == bit), ())
        for _ in range(5):
            p = Point(grid.x0 + (col + rng.random()) * grid.cell, grid.y0 + (row + rng.random()) * grid.cell)
            idx, dist = index.ordered(mask.nonzero()[0], p)
            fifth = dist[4]
            # every station as near as the fifth nearest (ties included) is on the cell's list
            assert {index.labels[i][0] for i in idx[dist <= fifth].tolist()} <= listed


def test_many_changes_build_anew():
    rng = random.Random(6)
    stations = make_stations(rng, 200)
    index = refresh_index(None, stations, COUNTIES, version=1, township_names={})
    again = refresh_index(index, stations[:100], COUNTIES, version=2, township_names={})
    assert len(again) == len(again.by_id) == 100  # no holes: built anew
    assert again.county_grid is index.county_grid


def test_cells_at_the_edge_of_the_stations_get_lists_from_a_wider_area():
    """A cell whose nearby cells cannot certify its list (the edge of where stations are) gets one
    from the cells within WIDE_REACH; it holds every station as near as the fifth nearest of any
    point in the cell, decisions there equal the reference, and a change near it is taken in as
    a fresh build would list it."""
    rng = random.Random(12)
    stations = [
        IndexedStation(
            id=f"w{i}",
            code=f"{130000000 + i}",
            name=f"站{i}",
            county_code="130000",
            county_name="",
            lon=round(rng.uniform(116.0, 118.0), 4),
            lat=round(rng.uniform(30.0, 32.0), 4),
            capabilities=frozenset(CAPS),
            capacity=rng.choice([None, None, 1]),
            open_cases=rng.randint(0, 1),
        )
        for i in range(4000)
    ]
    index = StationIndex(stations)
    grid = index.grid
    bit = index.capability_bit["funeral"]
    n_cells = grid.n_cols * grid.n_rows
    near, _ = grid._lists_chunked(bit, index.lons, index.lats, np.arange(n_cells), LIST_REACH)
    starts, ids = grid.plain_lists[bit]
    wide = [k for k in range(n_cells) if near[k] == 0 and starts[k] < starts[k + 1]]
    assert len(wide) > 20
    mask = index.candidate_mask("funeral", ())
    reference = ref.ReferenceIndex(stations, ())
    for cell in rng.sample(wide, k=20):
        row, col = divmod(cell, grid.n_cols)
        listed = {index.labels[i][0] for i in ids[starts[cell] : starts[cell + 1]]}
        for _ in range(5):
            p = Point(grid.x0 + (col + rng.random()) * grid.cell, grid.y0 + (row + rng.random()) * grid.cell)
            idx, dist = index.ordered(mask.nonzero()[0], p)
            assert {index.labels[i][0] for i in idx[dist <= dist[4]].tolist()} <= listed
            assert quick_path(index, p.lon, p.lat, bit, frozenset(), 50.0) == "list"
            assert_same(index, reference, {"capability": "funeral", "point": p, "max_km": 50.0})
    # Stations moved to cells beyond LIST_REACH (within WIDE_REACH) of wide-listed cells: every
    # list as a fresh build makes it.
    moved = list(stations)
    for k, cell in enumerate(rng.sample(wide, k=6)):
        row, col = divmod(cell, grid.n_cols)
        moved[k] = dataclasses.replace(
            moved[k], lon=grid.x0 + (col + LIST_REACH + 1.5) * grid.cell, lat=grid.y0 + (row + 0.5) * grid.cell
        )
    again = refresh_index(index, moved, (), version=1, township_names={})
    assert len(again) > len(index)  # taken in place
    for b, (s, i) in again.grid.plain_lists.items():
        fresh = again.grid.nearest_lists(b, again.lons, again.lats, None)
        assert (list(s), list(i)) == (fresh[0].tolist(), fresh[1].tolist())


def test_block_counts_equal_a_count_of_every_cell_in_the_block():
    rng = random.Random(13)
    index = StationIndex(make_stations(rng, 1500), COUNTIES)
    grid = index.grid
    bit = index.capability_bit["funeral"]
    per_cell = np.diff(np.asarray(grid.starts[bit])).reshape(grid.n_rows, grid.n_cols)
    n_cells = grid.n_cols * grid.n_rows
    every = grid.block_counts(bit, np.arange(n_cells), WIDE_REACH)  # the summed-area table
    few = np.asarray([*sorted(rng.sample(range(n_cells), k=20)), 0, n_cells - 1])
    by_runs = grid.block_counts(bit, few, WIDE_REACH)  # row runs, for a few cells
    for k, cell in enumerate(few.tolist()):
        r, c = divmod(cell, grid.n_cols)
        block = per_cell[max(0, r - WIDE_REACH) : r + WIDE_REACH + 1, max(0, c - WIDE_REACH) : c + WIDE_REACH + 1]
        assert every[cell] == by_runs[k] == int(block.sum())
    assert int(every.max()) > 0
