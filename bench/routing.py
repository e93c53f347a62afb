"""Routing decisions per second and latency, against a brute-force scan and MongoDB's $geoNear.

For 1,523, 40,000 and 400,000 synthetic stations spread over China (70% in the populous
east, 30% anywhere in China's bounding box), it measures on the same stations and points:

- ``index``: :func:`service.stations.routing.decide` over :class:`StationIndex` (the production path:
  county polygons of Anhui, capability filter, capacity, grid nearest search);
- ``brute``: a brute-force great-circle scan, numpy-vectorised haversine over every station
  with the same capability filter and 50 km limit (the floor a plain implementation gets);
- ``$geoNear``: the aggregation stage on the same documents in a SecantusDB started here
  (2dsphere index, same filter and limit), for the sizes it answers in reasonable time.

Index and brute force are timed in alternating passes over the same points: the index decides
every point, then the floor scans for the same points, then the index again, then the floor again
(PASSES of each, A B A B), and each side's timings are pooled for its p50/p99: wall clock and
on-CPU time (``thread_time``: what the decision itself costs, without the time a loaded machine
keeps the process waiting). Passes, because a routing decision in production runs in a web
process among its own kind of work, never straight after a numpy scan of tens of MB: the floor's
scan touches every station (at 400,000 stations tens of MB with its temporaries) and empties the
CPU caches, so a decision timed right after one measures the scan's aftermath, not the
decision. Timed point by point in turns, every index figure would be that case; in blocks of
points (the previous design), one decision in each block would be, a few percent of them, enough
to set the p99. Alternating passes still give both sides the same points and, since each runs at
least twice with the other in between, the same drift of the machine's load (a load that rises
during the run lands on both, not on whichever ran last). At 400,000 stations the floor takes
13 ms a scan, so above 100,000 stations its passes cover only the first fifth of the points (400
of 2,000; ``--quick``: 100 of 300), the index's every point.

The cold case stays in sight on a line of its own: the index's p50/p99 on decisions made straight
after a brute-force scan of the same point (COLD_POINTS points, not in the main figures): what a
decision costs when something else in the process has just read a lot of memory. Under each size
a ``ways`` line breaks the index's (warm) timings down by the way each point was decided and its
candidate counts, and says which ways the slowest 2% took.

It prints p50/p99 of both next to each other and their ratios, the build time and memory of the
index, the time to take in one changed station (in place, against a fresh build), how the cost
grows with the station count, and checks that the three agree on the chosen station. It fails
(exit 1) if an answer differs, or if the index is slower than brute force at p50 or p99 (on-CPU)
at any size.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from service.common.geo import Point
from service.stations.index import StationIndex, haversine_many, quick_path, refresh_index
from service.stations.models import CountyArea, IndexedStation
from service.stations.routing import decide

SIZES = (1_523, 40_000, 400_000)
# Issue 18: the routing decision's p99 (on-CPU) at these sizes, ms; at every size never slower
# than the brute-force floor (p50 and p99).
TARGET_P99_MS = {40_000: 0.05, 400_000: 0.1}
MAX_KM = 50.0
CAPABILITIES = ("elderly_care", "child_protection", "social_aid", "funeral")
COUNTIES = Path(__file__).resolve().parents[1] / "data" / "anhui_counties.geojson"
TOWNSHIPS = COUNTIES.parent / "anhui_townships.csv"
# Index and brute force each run this many passes over the points, alternating (module docstring).
PASSES = 2
# Decisions timed straight after a brute-force scan of the same point (the cold figure).
COLD_POINTS = 200


def synthetic_stations(n: int, rng: random.Random) -> list[IndexedStation]:
    out = []
    for i in range(n):
        if rng.random() < 0.7:
            lon, lat = rng.uniform(105, 123), rng.uniform(21, 42)
        else:
            lon, lat = rng.uniform(73.5, 135), rng.uniform(18, 53.5)
        caps = frozenset(c for c in CAPABILITIES if rng.random() < 0.8) or frozenset(CAPABILITIES[:1])
        out.append(
            IndexedStation(
                id=f"s{i:07d}",
                code=f"{110000000 + i:09d}",
                name=f"站{i}",
                county_code=f"{110000 + i // 20:06d}",
                county_name="",
                lon=round(lon, 6),
                lat=round(lat, 6),
                capabilities=caps,
                capacity=rng.choice([None, None, None, 10]),
                open_cases=rng.randint(0, 12),
            )
        )
    return out


def query_points(n: int, rng: random.Random) -> list[Point]:
    return [Point(rng.uniform(105, 123), rng.uniform(21, 42)) for _ in range(n)]


def anhui_counties() -> list[CountyArea]:
    data = json.loads(COUNTIES.read_text(encoding="utf-8"))
    return [CountyArea(f["properties"]["code"], f["properties"]["name"], f["geometry"]) for f in data["features"]]


def timed(fn: Callable[[Point], Any], points: list[Point]) -> tuple[list[float], list[Any]]:
    latencies, answers = [], []
    for p in points:
        t = time.perf_counter()
        answers.append(fn(p))
        latencies.append(time.perf_counter() - t)
    return latencies, answers


def timed_in_turns(
    fns: list[Callable[[Point], Any]], points: list[Point]
) -> list[tuple[list[float], list[float], list[Any]]]:
    """Each function on each point in turn: wall-clock and on-CPU latencies, and the answers."""
    out: list[tuple[list[float], list[float], list[Any]]] = [([], [], []) for _ in fns]
    for p in points:
        for fn, (wall, cpu, answers) in zip(fns, out, strict=True):
            c = time.thread_time_ns()
            t = time.perf_counter_ns()
            answers.append(fn(p))
            wall.append((time.perf_counter_ns() - t) / 1e9)
            cpu.append((time.thread_time_ns() - c) / 1e9)
    return out


def timed_in_passes(
    index_fn: Callable[[Point], Any],
    floor_fn: Callable[[Point], Any],
    points: list[Point],
    floor_points: list[Point],
    passes: int = PASSES,
) -> tuple[list[tuple[list[float], list[float], list[Any]]], list[tuple[list[float], list[float], list[Any]]]]:
    """The index over every point, then the floor over ``floor_points``, ``passes`` times each
    (A B A B): per pass and side, wall-clock and on-CPU latencies and the answers."""
    index_passes, floor_passes = [], []
    for _ in range(passes):
        index_passes.append(timed_in_turns([index_fn], points)[0])
        floor_passes.append(timed_in_turns([floor_fn], floor_points)[0])
    return index_passes, floor_passes


def rss_mb() -> float:
    """This process's resident memory (Linux), MB."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
        "per_s": len(ordered) / sum(ordered),
    }


class BruteForce:
    """Every station, every time: numpy haversine, capability mask, 50 km, nearest (ties by code)."""

    def __init__(self, stations: list[IndexedStation], capability: str) -> None:
        self.ids = [s.id for s in stations]
        self.lons = np.array([s.lon for s in stations])
        self.lats = np.array([s.lat for s in stations])
        self.ok = np.array([capability in s.capabilities for s in stations])
        self.full = np.array([s.at_capacity for s in stations])

    def __call__(self, p: Point) -> str | None:
        d = haversine_many(p.lon, p.lat, self.lons, self.lats)
        eligible = self.ok & (d <= MAX_KM)
        if not eligible.any():
            return None
        room = eligible & ~self.full
        pool = room if room.any() else eligible
        d = np.where(pool, d, np.inf)
        return self.ids[int(np.argmin(d))]  # codes increase with position, so argmin's first = lowest code


def geonear_bench(
    stations: list[IndexedStation], points: list[Point], capability: str
) -> tuple[list[float], list[Any], float]:
    from pymongo import InsertOne, MongoClient

    from service.storage.embedded import EmbeddedMongo

    server = EmbeddedMongo(":memory:", durable=False)
    uri = server.start()
    try:
        with MongoClient(uri) as client:
            col = client["bench"]["stations"]
            t = time.perf_counter()
            ops = [
                InsertOne(
                    {
                        "_id": s.id,
                        "code": s.code,
                        "location": {"type": "Point", "coordinates": [s.lon, s.lat]},
                        "capabilities": sorted(s.capabilities),
                        "active": True,
                    }
                )
                for s in stations
            ]
            for start in range(0, len(ops), 5000):
                col.bulk_write(ops[start : start + 5000], ordered=False)
            col.create_index([("location", "2dsphere")])
            load_s = time.perf_counter() - t

            def near(p: Point) -> str | None:
                pipeline = [
                    {
                        "$geoNear": {
                            "near": {"type": "Point", "coordinates": [p.lon, p.lat]},
                            "distanceField": "distance_m",
                            "maxDistance": MAX_KM * 1000,
                            "spherical": True,
                            "query": {"active": True, "capabilities": capability},
                        }
                    },
                    {"$limit": 5},
                ]
                docs = list(col.aggregate(pipeline))
                return docs[0]["_id"] if docs else None

            latencies, answers = timed(near, points)
            return latencies, answers, load_s
    finally:
        server.stop()


def anhui_seed_stations() -> list[IndexedStation]:
    """The seed: one station per Anhui township at its county seat (``approx``), every capability."""
    with TOWNSHIPS.open(encoding="utf-8") as fh:
        return [
            IndexedStation(
                id=f"t{row['code']}",
                code=row["code"],
                name=f"{row['name']}社工站",
                county_code=row["county_code"],
                county_name=row["county_name"],
                lon=float(row["lon"]),
                lat=float(row["lat"]),
                capabilities=frozenset(CAPABILITIES),
                precision="approx",
            )
            for row in csv.DictReader(fh)
        ]


def anhui_seed_bench(counties: list[CountyArea], n_queries: int, rng: random.Random) -> None:
    """Decisions on the seeded stations for points inside Anhui: the county-queue path."""
    index = StationIndex(anhui_seed_stations(), counties)
    points: list[Point] = []
    while len(points) < n_queries:
        p = Point(rng.uniform(114.9, 119.7), rng.uniform(29.4, 34.7))
        if index.county_at(p) is not None:
            points.append(p)
    decisions: list[Any] = []

    def via_index(p: Point) -> str | None:
        d = decide(index, capability="elderly_care", point=p, max_km=MAX_KM)
        decisions.append(d)
        return d.station_id

    wall, cpu, _ = timed_in_turns([via_index], points)[0]
    s, c = summary(wall), summary(cpu)
    queued = sum(1 for d in decisions if d.needs_township)
    print(
        f"anhui seed, {len(index):,} approximate stations, {len(points):,} points inside Anhui's counties: "
        f"p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms (on-CPU {c['p50_ms']:.3f} / {c['p99_ms']:.3f}), "
        f"{s['per_s']:.0f}/s; "
        f"{queued:,} to a county queue (needs_township), "
        f"{sum(1 for d in decisions if d.station_id):,} to a station"
    )


def one_change(index: StationIndex, stations: list[IndexedStation], rng: random.Random) -> tuple[float, bool]:
    """Seconds to take in one moved station (diff of the re-read list, then in place)."""
    moved = list(stations)
    k = rng.randrange(len(moved))
    s = moved[k]
    moved[k] = dataclasses.replace(s, lon=round(s.lon + 0.01, 6), capabilities=frozenset(CAPABILITIES))
    t = time.perf_counter()
    fresh = refresh_index(index, moved, index.counties, version=index.version + 1, township_names={})
    return time.perf_counter() - t, fresh.county_grid is index.county_grid and len(fresh) == len(index) + 1


def point_ways(index: StationIndex, points: list[Point], capability: str) -> list[tuple[str, int, int]]:
    """Per point, the way it is decided (the search's way, ``+county`` inside a county polygon,
    ``+county polygon test`` in a county-grid cell on a border), the length of its cell's pruned
    list (0: none) and how many county polygons its county cell lists (tested on a border)."""
    bit = index.capability_bit.get(capability, 0)
    grid, counties = index.grid, index.county_grid
    listed = grid.plain_lists.get(bit)
    out = []
    for p in points:
        way = quick_path(index, p.lon, p.lat, bit, frozenset(), MAX_KM)
        n_list = 0
        if listed is not None and grid.holds(p.lon, p.lat):
            cell = int((p.lat - grid.y0) // grid.cell) * grid.n_cols + int((p.lon - grid.x0) // grid.cell)
            n_list = listed[0][cell + 1] - listed[0][cell]
        n_polygons = 0
        if counties.on_border(p.lon, p.lat):
            way += "+county polygon test"
            k = counties._cell(p.lon, p.lat)
            n_polygons = counties.starts[k + 1] - counties.starts[k]
        elif index.county_at(p) is not None:
            way += "+county"
        out.append((way, n_list, n_polygons))
    return out


def _p(ts: list[float]) -> str:
    s = summary(ts)
    return f"{s['p50_ms']:.3f}/{s['p99_ms']:.3f}/{max(ts) * 1000:.3f}"


def ways_lines(ways: list[tuple[str, int, int]], passes: list[list[float]], cold: list[float]) -> str:
    """The index's warm on-CPU timings (every pass pooled) by way and by list length, p50/p99/max;
    which ways and list lengths the slowest 2% took and how many of those points were among the
    slowest 2% in another pass too (the same point slow again: its own work, not the machine); the
    per-pass p50/p99 (a drift in load shows as passes that differ); the cold figure."""
    pooled = [t for ts in passes for t in ts]
    facts = ways * len(passes)
    by_way: dict[str, list[float]] = {}
    by_len: dict[str, list[float]] = {}

    def bucket(n: int) -> str:
        return "none" if n == 0 else "<=15" if n <= 15 else "16-25" if n <= 25 else "26-35" if n <= 35 else ">35"

    for (way, n_list, _), t in zip(facts, pooled, strict=True):
        by_way.setdefault(way, []).append(t)
        by_len.setdefault(bucket(n_list), []).append(t)
    cut = sorted(pooled)[min(len(pooled) - 1, math.ceil(0.98 * len(pooled)) - 1)]
    slow_way: dict[str, int] = {}
    slow_len: dict[str, int] = {}
    slow_points: list[set[int]] = []
    for ts in passes:
        slow_points.append({k for k, t in enumerate(ts) if t >= cut})
        for k in slow_points[-1]:
            way, n_list, _ = ways[k]
            slow_way[way] = slow_way.get(way, 0) + 1
            slow_len[bucket(n_list)] = slow_len.get(bucket(n_list), 0) + 1
    again = sum(
        1 for k, ks in enumerate(slow_points) for j in ks if any(j in o for m, o in enumerate(slow_points) if m != k)
    )
    n_slow = sum(len(ks) for ks in slow_points)
    border = [n for w, _, n in ways if w.endswith("polygon test")]
    order = ("none", "<=15", "16-25", "26-35", ">35")
    lines = [
        "          ways (index on-CPU p50/p99/max ms, every pass): "
        + ", ".join(
            f"{w} {len(ts) // len(passes)} ({_p(ts)})" for w, ts in sorted(by_way.items(), key=lambda kv: -len(kv[1]))
        )
        + (f"; polygons listed per border cell: {min(border)} to {max(border)}" if border else ""),
        "          by the cell's list length: "
        + ", ".join(f"{b} {len(by_len[b]) // len(passes)} ({_p(by_len[b])})" for b in order if b in by_len),
        f"          slowest 2% (>= {cut * 1000:.3f} ms, {n_slow} decisions, {again} of them a point slow in another "
        "pass too): "
        + ", ".join(f"{w} {k}" for w, k in sorted(slow_way.items(), key=lambda kv: -kv[1]))
        + "; lists "
        + ", ".join(f"{b} {slow_len[b]}" for b in order if b in slow_len),
        "          per pass (index on-CPU p50/p99 ms): "
        + ", ".join(f"{summary(ts)['p50_ms']:.3f}/{summary(ts)['p99_ms']:.3f}" for ts in passes),
    ]
    if cold:
        c = summary(cold)
        lines.append(
            f"          cold: index on-CPU p50/p99 ms {c['p50_ms']:.3f}/{c['p99_ms']:.3f} on {len(cold)} decisions "
            "each made straight after a brute-force scan of the same point (not in the figures above)"
        )
    return "\n".join(lines)


def targets_table(rows: list[tuple[Any, ...]]) -> str:
    """Per size, the index's on-CPU p50/p99 against issue 18's targets: met or not met."""
    lines = [
        "\nissue 18 targets (on-CPU, ms): p99 <= target, and never slower than the brute-force floor",
        f"{'stations':>9} | {'p50':>6} {'p99':>6} | {'p99 target':>10} {'':>7} | "
        f"{'floor p50':>9} {'p99':>6} | {'not slower':>10}",
    ]
    for n, _, _, _, ic, bc in rows:
        target = TARGET_P99_MS.get(n)
        met = "-" if target is None else ("met" if ic["p99_ms"] <= target else "NOT met")
        floor = ic["p50_ms"] <= bc["p50_ms"] and ic["p99_ms"] <= bc["p99_ms"]
        lines.append(
            f"{n:>9,} | {ic['p50_ms']:>6.3f} {ic['p99_ms']:>6.3f} | "
            f"{'-' if target is None else f'{target:.3f}':>10} {met:>7} | "
            f"{bc['p50_ms']:>9.3f} {bc['p99_ms']:>6.3f} | {'met' if floor else 'NOT met':>10}"
        )
    return "\n".join(lines)


def run(quick: bool = False) -> int:
    rng = random.Random(20261128)
    counties = anhui_counties()
    capability = "elderly_care"
    n_queries = 300 if quick else 2000
    geonear_plan = {1_523: 10 if quick else 30, 40_000: 0 if quick else 5}
    rows = []
    disagreements = 0
    slower: list[str] = []
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print(
        f"{'stations':>9} | {'build s':>7} {'MB':>5} {'1 change s':>10} | "
        f"{'index p50/p99 ms':>17} {'on-CPU':>13} | {'brute p50/p99 ms':>17} {'on-CPU':>15} | "
        f"{'x p50':>6} {'x p99':>6} (on-CPU) | {'$geoNear p50 ms':>15} {'x':>8}"
    )
    for n in SIZES:
        stations = synthetic_stations(n, rng)
        before = rss_mb()
        t = time.perf_counter()
        index = StationIndex(stations, counties)
        build_s = time.perf_counter() - t
        memory = rss_mb() - before
        change_s, in_place = one_change(index, stations, rng)
        points = query_points(n_queries, rng)

        def via_index(p: Point, index: StationIndex = index) -> str | None:
            return decide(index, capability=capability, point=p, max_km=MAX_KM).station_id

        brute = BruteForce(stations, capability)
        brute_points = points if n < 100_000 else points[: max(100, n_queries // 5)]
        # Index and floor in alternating passes over the same points (A B A B), each side's timings
        # pooled; then, on their own, decisions straight after a scan (the cold figure).
        index_passes, floor_passes = timed_in_passes(via_index, brute, points, brute_points)
        cold = timed_in_turns([brute, via_index], brute_points[: COLD_POINTS // (2 if quick else 1)])[1][1]
        i_wall = [t for w, _, _ in index_passes for t in w]
        i_cpu = [t for _, c, _ in index_passes for t in c]
        b_wall = [t for w, _, _ in floor_passes for t in w]
        b_cpu = [t for _, c, _ in floor_passes for t in c]
        idx_ans, brute_ans = index_passes[0][2], floor_passes[0][2]
        # Every pass must answer alike.
        disagreements += sum(
            a != b for ps in (index_passes, floor_passes) for q in ps[1:] for a, b in zip(ps[0][2], q[2], strict=True)
        )
        # The brute-force reference mirrors the nearest rule, which applies outside Anhui's counties.
        for p, a, b in zip(brute_points, idx_ans, brute_ans, strict=False):
            if index.county_at(p) is None and a != b:
                disagreements += 1
        i, b = summary(i_wall), summary(b_wall)
        ic, bc = summary(i_cpu), summary(b_cpu)
        if ic["p50_ms"] > bc["p50_ms"] or ic["p99_ms"] > bc["p99_ms"]:
            slower.append(f"{n:,}")
        g_text = "-"
        g: dict[str, float] | None = None
        k = geonear_plan.get(n, 0)
        if k:
            g_lat, g_ans, load_s = geonear_bench(stations, points[:k], capability)
            g = summary(g_lat)
            # $geoNear has no capacity rule: compare only where the nearest station has room.
            for p, a, c in zip(points[:k], idx_ans, g_ans, strict=False):
                if index.county_at(p) is None and c is not None and not stations[int(c[1:])].at_capacity and a != c:
                    disagreements += 1
            g_text = f"{g['p50_ms']:>15.1f} {g['p50_ms'] / i['p50_ms']:>7.0f}x"
            print(f"          (loaded {n:,} documents into SecantusDB in {load_s:.1f} s; {k} $geoNear queries)")
        rows.append((n, i, b, g, ic, bc))
        print(
            f"{n:>9,} | {build_s:>7.2f} {memory:>5.0f} {change_s:>9.2f}{'' if in_place else '*'} | "
            f"{i['p50_ms']:>8.3f} {i['p99_ms']:>8.3f} {ic['p50_ms']:>6.3f} {ic['p99_ms']:>6.3f} | "
            f"{b['p50_ms']:>8.3f} {b['p99_ms']:>8.3f} {bc['p50_ms']:>7.3f} {bc['p99_ms']:>7.3f} | "
            f"{bc['p50_ms'] / ic['p50_ms']:>5.1f}x {bc['p99_ms'] / ic['p99_ms']:>5.1f}x          | {g_text}",
            flush=True,
        )
        print(ways_lines(point_ways(index, points, capability), [c for _, c, _ in index_passes], cold), flush=True)
    first, last = rows[0], rows[-1]
    growth_n = last[0] / first[0]
    print(
        f"\ncost growth from {first[0]:,} to {last[0]:,} stations ({growth_n:.0f}x more): "
        f"index p50 x{last[4]['p50_ms'] / first[4]['p50_ms']:.1f} (on-CPU), "
        f"brute force p50 x{last[5]['p50_ms'] / first[5]['p50_ms']:.1f} (on-CPU)"
    )
    geo = [(row[0], row[3]) for row in rows if row[3]]
    if len(geo) >= 2:
        (n0, g0), (n1, g1) = geo[0], geo[-1]
        print(f"$geoNear p50 from {n0:,} to {n1:,} stations ({n1 / n0:.0f}x more): x{g1['p50_ms'] / g0['p50_ms']:.1f}")
    print(
        "x = brute force / index (on-CPU). brute force = numpy-vectorised haversine over every station, "
        f"timed in {PASSES} passes alternating with the index's {PASSES} over the same points (above 100,000 "
        "stations on the first fifth of them).\n"
        "build s / MB: building the index (resident memory it added); 1 change s: re-reading one moved "
        "station into the index in place (* = it was built anew)."
    )
    anhui_seed_bench(counties, n_queries, rng)
    print(targets_table(rows))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"answers that differ from the references (outside county polygons): {disagreements}")
    if slower:
        print(f"index slower than brute force (on-CPU p50 or p99) at: {', '.join(slower)} stations")
    return 1 if disagreements or slower else 0


if __name__ == "__main__":
    raise SystemExit(run())
