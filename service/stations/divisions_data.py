"""Anhui's administrative divisions from the vendored NBS lists: province, cities, counties, townships.

Pure data, read once per process from ``data/`` (see data/PROVENANCE.md):

- ``anhui_townships.csv``: the 1,523 townships (乡/镇/街道) with their county and city;
- ``anhui_township_like_units.csv``: 162 development zones, farms and placeholders at township
  level (类似乡级单位); they are listed only where a station holds their code;
- ``anhui_counties.geojson``: the 104 counties (区/县/县级市) with names.

County-level development zones (codes ``xxxx7x``, 类似县级单位) hold some townships but are
not counties; they are their own level, ``development_zone``, so that a picker reaches their
townships and the county count stays the province's 104.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from pypinyin import Style, pinyin

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
TOWNSHIPS_CSV = DATA_DIR / "anhui_townships.csv"
TOWNSHIP_LIKE_CSV = DATA_DIR / "anhui_township_like_units.csv"
COUNTIES_GEOJSON = DATA_DIR / "anhui_counties.geojson"

PROVINCE_CODE = "340000"
PROVINCE_NAME = "安徽省"
LEVELS = ("province", "city", "county", "development_zone", "township")


@dataclass(frozen=True, slots=True)
class Division:
    """One division: NBS code (6 digits above township, 9 at township), name, level and parent."""

    code: str
    name: str
    level: str
    parent: str | None
    kind: str  # street | town | township | development_zone | farm | other | city | county | province


def _township_kind(name: str) -> str:
    if name.endswith("街道"):
        return "street"
    if name.endswith("镇"):
        return "town"
    if name.endswith("乡"):
        return "township"
    return "other"


def _like_kind(name: str) -> str:
    if "农场" in name or "茶场" in name or "林场" in name or "渔场" in name:
        return "farm"
    if "开发区" in name or "园区" in name or "工业区" in name or "示范区" in name or "产业园" in name:
        return "development_zone"
    return "other"


MAX_READINGS = 32


def _readings(name: str, style: Style) -> tuple[str, ...]:
    """Every reading of a name in one pinyin style (place names keep old readings: 长丰 is changfeng,
    六安 lu'an), as lower-case strings without tones; at most ``MAX_READINGS``."""
    out = [""]
    for options in pinyin(name, style=style, heteronym=True, errors="ignore"):
        variants = sorted({o.lower() for o in options if o}) or [""]
        out = [p + v for p in out for v in variants][:MAX_READINGS]
    return tuple(dict.fromkeys(out))


def pinyin_keys(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(initials, full pinyin) readings of a name: 合肥市 -> (("hfs",), ("hefeishi",))."""
    return _readings(name, Style.FIRST_LETTER), _readings(name, Style.NORMAL)


@dataclass(frozen=True, slots=True)
class DivisionTable:
    """Every division known from the data files, by code."""

    by_code: dict[str, Division]
    township_like: dict[str, Division]  # listed only when a station holds the code

    def township_names(self) -> dict[str, str]:
        """Township code -> name, township-like units included."""
        names = {c: d.name for c, d in self.township_like.items()}
        names.update({c: d.name for c, d in self.by_code.items() if d.level == "township"})
        return names


@functools.lru_cache(maxsize=1)
def division_table() -> DivisionTable:
    """The divisions of the data files (read once per process)."""
    counties = {
        f["properties"]["code"]: f["properties"]["name"]
        for f in json.loads(COUNTIES_GEOJSON.read_text(encoding="utf-8"))["features"]
    }
    by_code: dict[str, Division] = {PROVINCE_CODE: Division(PROVINCE_CODE, PROVINCE_NAME, "province", None, "province")}

    def add_parents(county_code: str, county_name: str, city_name: str) -> None:
        city = county_code[:4] + "00"
        if city not in by_code:
            by_code[city] = Division(city, city_name, "city", PROVINCE_CODE, "city")
        if county_code not in by_code:
            if county_code in counties:
                by_code[county_code] = Division(county_code, counties[county_code], "county", city, "county")
            else:
                by_code[county_code] = Division(county_code, county_name, "development_zone", city, "development_zone")

    with TOWNSHIPS_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            add_parents(row["county_code"], row["county_name"], row["city_name"])
            by_code[row["code"]] = Division(
                row["code"], row["name"], "township", row["county_code"], _township_kind(row["name"])
            )
    like: dict[str, Division] = {}
    with TOWNSHIP_LIKE_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["code"] in by_code:
                continue
            like[row["code"]] = Division(
                row["code"], row["name"], "township", row["county_code"], _like_kind(row["name"])
            )
    return DivisionTable(by_code=by_code, township_like=like)
