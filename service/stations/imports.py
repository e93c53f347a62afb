"""Bulk import and seeding of stations: CSV and GeoJSON rows, township and county reference data."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

from service.common.context import Context
from service.common.errors import (
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.common.geo import check_lon_lat
from service.common.imports import RowError, csv_rows, decode_upload, refuse_if_errors
from service.common.models import Principal, require_role
from service.common.text import load_json_text
from service.stations.fields import check_station_fields, complete_station, kind_from_name
from service.stations.index import invalidate_index
from service.stations.repository import CountiesRepository, StationsRepository, bump_stations_version
from service.stations.service import ADMIN_ONLY

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


TOWNSHIPS_CSV = DATA_DIR / "anhui_townships.csv"


COUNTIES_GEOJSON = DATA_DIR / "anhui_counties.geojson"


CSV_COLUMNS = ("code", "name", "county_code", "county_name", "city_name", "lon", "lat")


CSV_OPTIONAL = (
    "coord_source",
    "capabilities",
    "capacity",
    "active",
    "precision",
    "kind",
    "contact_phone",
    "opening_hours",
)


IMPORT_FIELDS = (*CSV_COLUMNS, *CSV_OPTIONAL, "jurisdiction")


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    dry_run: bool
    total: int
    to_create: int
    to_update: int
    written: bool
    errors: tuple[RowError, ...] = ()


def _rows_from_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    return csv_rows(text, required=CSV_COLUMNS, optional=CSV_OPTIONAL, what="stations")


def _rows_from_geojson(data: Any) -> list[tuple[int, dict[str, Any]]]:
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise ValidationFailedError(
            "invalid_import",
            "A GeoJSON import must be a FeatureCollection with a features list.",
            {"type": ["Must be FeatureCollection."]},
        )
    rows = []
    for n, feature in enumerate(data["features"], start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            rows.append((n, {"__error__": "Not a GeoJSON Feature."}))
            continue
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        if not isinstance(props, dict) or not isinstance(geometry, dict) or geometry.get("type") != "Point":
            rows.append((n, {"__error__": "A station feature needs a Point geometry and a properties object."}))
            continue
        coords = geometry.get("coordinates") or [None, None]
        row = dict(props)
        row["lon"], row["lat"] = [*coords, None, None][:2] if isinstance(coords, list) else (None, None)
        rows.append((n, row))
    return rows


def _row_fields(row: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Station fields from one import row, with (field, message) problems."""
    problems: list[tuple[str, str]] = []
    unknown = sorted(k for k in row if k not in IMPORT_FIELDS)
    for k in unknown:
        problems.append((k, "Unknown field."))
    data = {k: v for k, v in row.items() if k in IMPORT_FIELDS and k not in ("lon", "lat", "coord_source")}
    for name in CSV_COLUMNS:
        if row.get(name) in (None, ""):
            problems.append((name, "Required."))
    try:
        lon, lat = check_lon_lat(row.get("lon"), row.get("lat"))
        data["location"] = {"type": "Point", "coordinates": [lon, lat]}
    except ValidationFailedError as exc:
        for key, msgs in exc.errors.items():
            problems.append((key.split(".")[-1], msgs[0]))
    if "precision" not in data:
        data["precision"] = "approx" if "approx" in str(row.get("coord_source", "")) else "exact"
    fields, errors = check_station_fields(data, partial=False)
    for key, msgs in errors.items():
        if key == "location" and any(f in ("lon", "lat") for f, _ in problems):
            continue
        if msgs == ["Required."] and any(f == key for f, _ in problems):
            continue
        problems += [(key, m) for m in msgs]
    return fields, problems


async def import_stations(
    *,
    ctx: Context,
    principal: Principal,
    body: bytes,
    content_type: str,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate every row of a CSV or GeoJSON station file; unless a dry run, write all or nothing."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    text = decode_upload(body)
    if content_type == "text/csv":
        rows = _rows_from_csv(text)
    elif content_type in ("application/geo+json", "application/json"):
        rows = _rows_from_geojson(load_json_text(text, what="GeoJSON"))
    else:
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", "Send text/csv, application/geo+json or application/json."
        )
    errors: list[RowError] = []
    docs: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        fields, problems = _row_fields(row)
        errors += [RowError(line, f, m) for f, m in problems]
        if problems:
            continue
        if fields["code"] in docs:
            errors.append(RowError(line, "code", f"Code {fields['code']} appears twice in the file."))
            continue
        docs[fields["code"]] = fields
    repo = StationsRepository(ctx.db)
    existing = await repo.codes(docs) if docs else {}
    now = ctx.now()
    inserts = [complete_station(f, now) for code, f in docs.items() if code not in existing]
    updates = [(code, {**f, "updated_at": now}) for code, f in docs.items() if code in existing]
    report = ImportReport(
        dry_run=dry_run,
        total=len(rows),
        to_create=len(inserts),
        to_update=len(updates),
        written=False,
        errors=tuple(errors),
    )
    if not dry_run:
        refuse_if_errors(errors)
    if dry_run or not rows:
        return report
    if on_total:
        on_total(len(inserts) + len(updates))
    await repo.apply_import(inserts, updates, progress)
    invalidate_index(ctx=ctx)
    return dataclasses.replace(report, written=True)


def township_station_docs(now: Any) -> list[dict[str, Any]]:
    """One station document per township of the vendored division list (approximate points)."""
    docs = []
    with TOWNSHIPS_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            code = row["code"]
            doc = complete_station(
                {
                    "code": code,
                    "name": f"{row['name']}社工站",
                    "county_code": row["county_code"],
                    "county_name": row["county_name"],
                    "city_name": row["city_name"],
                    "location": {"type": "Point", "coordinates": [float(row["lon"]), float(row["lat"])]},
                    "precision": "approx",
                },
                now,
            )
            doc["kind"] = kind_from_name(row["name"])
            docs.append(doc)
    return docs


def county_docs() -> list[dict[str, Any]]:
    """The vendored county polygons as documents (polygons checked with shapely, repaired if needed)."""
    data = json.loads(COUNTIES_GEOJSON.read_text(encoding="utf-8"))
    out = []
    for feature in data["features"]:
        geom = feature["geometry"]
        shp = shape(geom)
        if not shp.is_valid:
            shp = shapely.make_valid(shp)
            geom = shapely.geometry.mapping(shp)
        code = feature["properties"]["code"]
        out.append(
            {
                "code": code,
                "name": feature["properties"]["name"],
                "city_code": code[:4] + "00",
                "geometry": json.loads(json.dumps(geom)),
            }
        )
    return out


async def seed_stations(ctx: Context) -> str:
    """Seed the county polygons and one station per township (only what is missing)."""
    counties = await CountiesRepository(ctx.db).upsert_many(county_docs())
    stations = await StationsRepository(ctx.db).insert_missing(township_station_docs(ctx.now()))
    if counties and not stations:
        await bump_stations_version(ctx.db)
    invalidate_index(ctx=ctx)
    return f"{counties} county polygons and {stations} township stations added"
