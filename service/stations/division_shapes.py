"""Simplified outlines of Anhui's cities and counties for maps, built once per process from ``data/``.

The county polygons (``data/anhui_counties.geojson``, 104 counties, 11,000 points, 270 KB)
are drawn on screens a few hundred pixels wide: the province spans about 5 degrees, a city
about 1.5, so a pixel is 0.003 to 0.015 degrees. Each county is simplified (Douglas-Peucker,
topology preserved) to ``COUNTY_TOLERANCE``; a city's outline is the union of its
counties, simplified to ``CITY_TOLERANCE``. Each outline is projected here once onto a
plane (equirectangular, integer units of 0.001 degree) and written as an SVG path of
relative moves, so a browser draws it as is with no projection code, and a division's
``box`` is its SVG viewBox. The answer is one JSON document of about 60 KB, about 25 KB
gzipped. Townships have no polygons in the data, so a county's townships are not drawn.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from shapely import make_valid
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from service.stations.divisions_data import COUNTIES_GEOJSON, PROVINCE_CODE, division_table

COUNTY_TOLERANCE = 0.006
CITY_TOLERANCE = 0.008
MIN_RING_AREA = 1e-5  # square degrees (~0.1 km²): islets and slivers smaller than a pixel are dropped
# The plane: x east, y south, in units of 1/1000 degree of latitude (~111 m); longitude scaled
# by cos(32°), the province's middle latitude (an equirectangular projection, fine at this size).
WEST, NORTH, UNIT, LON_SCALE = 114.8, 34.7, 0.001, math.cos(math.radians(32.0))


@dataclass(frozen=True, slots=True)
class ShapesFile:
    """The outlines as served: JSON bytes, their gzip, and an entity tag."""

    body: bytes
    gzipped: bytes
    etag: str


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for part in getattr(geom, "geoms", ()) for g in _polygons(part)]


def project(lon: float, lat: float) -> tuple[int, int]:
    """Pure: a WGS-84 point on the map's plane (x east, y south, integer units)."""
    return round((lon - WEST) * LON_SCALE / UNIT), round((NORTH - lat) / UNIT)


def _ring_path(coords: Any, box: list[int]) -> str:
    points: list[tuple[int, int]] = []
    for lon, lat in coords:
        point = project(lon, lat)
        if not points or point != points[-1]:
            points.append(point)
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(points) < 3:
        return ""
    for x, y in points:
        box[0], box[1], box[2], box[3] = min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y)
    steps = " ".join(f"{x - px} {y - py}" for (px, py), (x, y) in itertools.pairwise(points))
    return f"M{points[0][0]} {points[0][1]}l{steps}z"


def outline(geom: BaseGeometry) -> tuple[str, list[int]]:
    """Pure: the SVG path of a (multi)polygon on the plane and its box [x, y, width, height]."""
    box = [10**9, 10**9, -(10**9), -(10**9)]
    parts = [p for p in _polygons(geom) if p.area >= MIN_RING_AREA] or [max(_polygons(geom), key=lambda p: p.area)]
    path = "".join(
        _ring_path(ring.coords, box)
        for polygon in parts
        for ring in (polygon.exterior, *polygon.interiors)
        if ring is polygon.exterior or Polygon(ring).area >= MIN_RING_AREA
    )
    return path, [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def build_shapes(source: dict[str, Any]) -> dict[str, Any]:
    """Pure: the simplified, projected city and county outlines of a county FeatureCollection."""
    table = division_table()
    by_city: dict[str, list[BaseGeometry]] = defaultdict(list)
    divisions = []
    for feature in source["features"]:
        code = feature["properties"]["code"]
        geom = make_valid(shape(feature["geometry"]))
        city = code[:4] + "00"
        by_city[city].append(geom)
        path, box = outline(geom.simplify(COUNTY_TOLERANCE, preserve_topology=True))
        divisions.append(
            {
                "code": code,
                "name": feature["properties"]["name"],
                "level": "county",
                "parent": city,
                "box": box,
                "d": path,
            }
        )
    for city, parts in sorted(by_city.items()):
        known = table.by_code.get(city)
        path, box = outline(unary_union(parts).simplify(CITY_TOLERANCE, preserve_topology=True))
        name = known.name if known else city
        divisions.append({"code": city, "name": name, "level": "city", "parent": PROVINCE_CODE, "box": box, "d": path})
    boxes = [d["box"] for d in divisions if d["level"] == "city"]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return {
        "projection": {
            "kind": "equirectangular",
            "west": WEST,
            "north": NORTH,
            "unit_degrees": UNIT,
            "lon_scale": round(LON_SCALE, 6),
            "note": "x = (lon - west) * lon_scale / unit, y = (north - lat) / unit; WGS-84/CGCS2000",
        },
        "province": {
            "code": PROVINCE_CODE,
            "name": table.by_code[PROVINCE_CODE].name,
            "box": [x0, y0, x1 - x0, y1 - y0],
        },
        "divisions": divisions,
    }


@functools.lru_cache(maxsize=1)
def division_shapes() -> ShapesFile:
    """The outlines of Anhui's cities and counties, simplified and projected, as served (built once)."""
    source = json.loads(COUNTIES_GEOJSON.read_text(encoding="utf-8"))
    body = json.dumps(build_shapes(source), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return ShapesFile(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
    )
