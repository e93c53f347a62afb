"""The county grid's border cells test a point by a ray cast over the few edges kept for the cell,
and answer exactly as GEOS does over the whole polygons: inside, outside, on an edge or a vertex,
in a hole, on an island in a hole, on a border two polygons share."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from service.common.geo import Point
from service.stations.grids import SUB_CELLS, PolygonGrid, build_county_grid, ray_holds
from service.stations.index import StationIndex, refresh_index
from service.stations.models import CountyArea, IndexedStation

DATA = Path(__file__).resolve().parents[3] / "data"


def anhui_counties() -> tuple[CountyArea, ...]:
    data = json.loads((DATA / "anhui_counties.geojson").read_text(encoding="utf-8"))
    return tuple(CountyArea(f["properties"]["code"], f["properties"]["name"], f["geometry"]) for f in data["features"])


def geos_holding(geoms: np.ndarray, rank: list[int], x: float, y: float) -> list[int]:
    """Every polygon holding the point by GEOS over the whole polygon, in rank order."""
    return sorted((g for g in range(len(geoms)) if shapely.intersects_xy(geoms[g], x, y)), key=lambda g: rank[g])


def tricky_points(geoms: np.ndarray, rng: random.Random, per_ring: int) -> list[tuple[float, float]]:
    """Points on vertices, on edges (midpoints, anywhere along them), level with vertices, a hair
    beside a vertex, and at the corner made of one vertex's x and the next one's y."""
    out = []
    for geom in geoms:
        for ring in shapely.get_rings(shapely.get_parts(geom)):
            c = shapely.get_coordinates(ring)
            for k in rng.sample(range(len(c) - 1), min(per_ring, len(c) - 1)):
                (ax, ay), (bx, by) = c[k], c[k + 1]
                t = rng.random()
                out += [
                    (float(ax), float(ay)),
                    ((ax + bx) / 2, (ay + by) / 2),
                    (float(ax + (bx - ax) * t), float(ay + (by - ay) * t)),
                    (float(ax) - rng.uniform(0, 0.01), float(ay)),
                    (float(ax) + 1e-12, float(ay)),
                    (float(ax), float(by)),
                ]
    return out


def assert_as_geos(grid: PolygonGrid, rank: list[int], points: list[tuple[float, float]]) -> None:
    for x, y in points:
        want = geos_holding(grid.geoms, rank, x, y)
        assert grid.holding(x, y) == want, (x, y)
        assert grid.first(x, y) == (want[0] if want else None), (x, y)


def test_county_border_cells_answer_as_geos_over_the_whole_polygons():
    counties = anhui_counties()
    grid = build_county_grid(counties)
    codes = sorted(c.code for c in counties)
    rank = [codes.index(c.code) for c in counties]
    rng = random.Random(18)
    points = [(rng.uniform(114.7, 119.8), rng.uniform(29.3, 34.8)) for _ in range(6000)]
    # Points in cells on a border, where the answer is a test and not a lookup.
    border = [(x, y) for x, y in points if grid.on_border(x, y)]
    assert len(border) > 300
    points += tricky_points(grid.geoms, rng, per_ring=15)
    assert_as_geos(grid, rank, points)
    # The ray cast decided them (GEOS asked only where double precision cannot tell a side).
    decided = 0
    for x, y in border:
        k = grid._cell(x, y)
        for j in range(grid.starts[k], grid.starts[k + 1]):
            if not grid.covered[j]:
                assert grid.edges is not None
                hit = ray_holds(grid.edges[j], x, y)
                decided += hit is not None
                if hit is not None:
                    assert hit == shapely.intersects_xy(grid.geoms[grid.entries[j]], x, y), (x, y)
    assert decided > 300


def test_most_points_of_a_border_cell_are_answered_by_its_sub_cell_as_geos_would():
    counties = anhui_counties()
    grid = build_county_grid(counties)
    codes = sorted(c.code for c in counties)
    rank = [codes.index(c.code) for c in counties]
    border = [k for k, one in enumerate(grid.single) if one == -2]
    sub = np.frombuffer(grid.sub, dtype=np.int16)
    assert len(sub) == len(border) * SUB_CELLS**2
    assert (sub != -2).mean() > 0.8  # an edge meets about one sub-cell in seven
    rng = random.Random(19)
    g, sg = grid.cell, grid.cell / SUB_CELLS
    points = []
    for k in rng.sample(border, 500):
        r, c = divmod(k, grid.n_cols)
        base = grid.sub_of[k]
        answered = [t for t in range(SUB_CELLS**2) if grid.sub[base + t] != -2]
        for t in rng.sample(answered, min(4, len(answered))):
            x0, y0 = grid.x0 + c * g + (t % SUB_CELLS) * sg, grid.y0 + r * g + (t // SUB_CELLS) * sg
            x, y = x0 + rng.random() * sg, y0 + rng.random() * sg
            want = geos_holding(grid.geoms, rank, x, y)
            assert grid.sub[base + t] == (want[0] if want else -1), (x, y)
            # Anywhere in it, on its sides and corners, and a hair inside or outside them.
            points += [(x, y), (x0, y0), (x0 + sg, y), (x, y0 + sg), (x0 + 1e-12, y0 + sg - 1e-12), (x0 - 1e-12, y)]
    assert_as_geos(grid, rank, points)


def test_holes_islands_in_holes_and_shared_borders_answer_as_geos():
    ring = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (3, 1), (3, 3), (1, 3)]])
    island = Polygon([(1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 2.5)])
    holed_with_island = MultiPolygon([ring, island])  # a part inside the other part's hole
    neighbour = Polygon([(4, 0), (6, 0.5), (6, 3.5), (4, 4)])  # shares the edge x = 4
    triangle = Polygon([(0, 4), (6, 4), (3, 6.25)])  # slanted edges; shares y = 4 with the others
    two_parts = MultiPolygon([Polygon([(7, 0), (8, 0), (8, 1), (7, 1)]), Polygon([(7, 2), (8, 2), (8, 3), (7, 3)])])
    geoms = np.asarray([triangle, holed_with_island, two_parts, neighbour], dtype=object)
    shapely.prepare(geoms)
    rank = [2, 0, 3, 1]
    grid = PolygonGrid(geoms, rank, cell_deg=0.25, cells_per_polygon=4, edges=True)
    rng = random.Random(7)
    points = [(rng.uniform(-0.5, 8.5), rng.uniform(-0.5, 6.5)) for _ in range(4000)]
    # Exactly on the lattice of the vertices and cell sides: vertices, edges, shared borders.
    points += [(x / 8, y / 8) for x in range(-2, 70) for y in range(-2, 54)]
    points += tricky_points(geoms, rng, per_ring=10)
    assert_as_geos(grid, rank, points)
    assert grid.first(2.0, 2.0) == 1  # the island in the hole
    assert grid.first(1.2, 2.0) is None  # the hole
    assert grid.first(4.0, 2.0) == 1  # the shared edge: the lower rank
    assert grid.holding(4.0, 2.0) == [1, 3]
    assert grid.first(7.5, 1.5) is None  # between the two parts


def test_ray_holds_counts_like_geos_and_leaves_a_point_on_the_line_undecided_only_when_it_must():
    square = (0.0, 0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0, 0.0)
    assert ray_holds(square, 1.0, 1.0) is True
    assert ray_holds(square, 3.0, 1.0) is False
    assert ray_holds(square, -1.0, 1.0) is False  # crosses twice
    assert ray_holds(square, 2.0, 1.0) is True  # on an edge
    assert ray_holds(square, 1.0, 0.0) is True  # on a horizontal edge
    assert ray_holds(square, 2.0, 2.0) is True  # a vertex
    assert ray_holds(square, 1.0, 2.0) is True
    assert ray_holds(square, -1.0, 2.0) is False  # level with the top edge, outside
    slant = (0.0, 0.0, 3.0, 1.0)
    # A point a rounding error beside a long slanted edge: double precision cannot tell the side.
    assert ray_holds(slant, 0.1 * 3, 0.1) is None
    assert ray_holds(slant, 0.29, 0.1) is True  # clearly west of it: one crossing


def test_a_station_change_keeps_the_county_grid_and_its_edges():
    counties = anhui_counties()
    stations = [
        IndexedStation(
            id=f"s{k}",
            code=f"{340102000 + k}",
            name=f"站{k}",
            county_code="340102",
            county_name="",
            lon=117.0 + k * 0.01,
            lat=31.8,
            capabilities=frozenset({"elderly_care"}),
        )
        for k in range(40)
    ]
    index = StationIndex(stations, counties)
    moved = [dataclasses.replace(stations[0], lon=117.5), *stations[1:]]
    fresh = refresh_index(index, moved, counties, version=1, township_names={})
    assert fresh.county_grid is index.county_grid
    assert fresh.county_grid.edges is index.county_grid.edges
    point = Point(117.25, 31.82)
    assert fresh.county_at(point) == index.county_at(point) is not None
