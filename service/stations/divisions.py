"""Divisions for address pickers: province -> city -> county -> township, with each township's station.

The names and codes come from the vendored NBS lists (:mod:`service.stations.divisions_data`); which
township has an active station, and its id, comes from this process's routing index, so a
listing changes exactly when the stations do (its ``version`` is the stations version).
Township-like units (development zones, farms, 类似乡级单位) and stations under codes the
lists do not know appear only where an active station holds the code.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from service.common.context import Context
from service.common.errors import NotFoundError, ValidationFailedError
from service.stations.divisions_data import LEVELS, PROVINCE_CODE, Division, division_table, pinyin_keys
from service.stations.index import STATION_SUFFIX, StationIndex, current_index

DATA_VERSION = "nbs2022-1"  # bump when the files under data/ change
MAX_QUERY = 20


@dataclass(frozen=True, slots=True)
class DivisionItem:
    """One division as a picker shows it."""

    code: str
    name: str
    level: str
    kind: str
    parent: str | None
    station_id: str | None
    has_children: bool


@dataclass(frozen=True, slots=True)
class DivisionListing:
    items: tuple[DivisionItem, ...]
    version: str  # changes whenever the answer to the same query may change


@dataclass(frozen=True, slots=True)
class DivisionTree:
    """The divisions with stations of one index version, arranged by parent."""

    version: int
    by_code: dict[str, Division]
    children: dict[str, tuple[str, ...]]
    station_of: dict[str, str]


def _tree(index: StationIndex) -> DivisionTree:
    table = division_table()
    by_code = dict(table.by_code)
    station_of: dict[str, str] = {}
    for code, positions in index.by_code.items():
        station_of[code] = index.station(positions[0]).id
        if code in by_code:
            continue
        like = table.township_like.get(code)
        if like is not None and like.parent in by_code:
            by_code[code] = like
        elif len(code) == 9 and code[:6] in by_code:
            s = index.station(positions[0])
            name = s.name.removesuffix(STATION_SUFFIX) or s.name
            by_code[code] = Division(code, name, "township", code[:6], "other")
    children: dict[str, list[str]] = {}
    for d in by_code.values():
        if d.parent is not None:
            children.setdefault(d.parent, []).append(d.code)
    return DivisionTree(index.version, by_code, {k: tuple(sorted(v)) for k, v in children.items()}, station_of)


@functools.lru_cache(maxsize=1)
def _pinyin_index() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Pinyin readings of every name the data files know (about a second to build, once)."""
    table = division_table()
    names = {d.name for d in table.by_code.values()} | {d.name for d in table.township_like.values()}
    return {name: pinyin_keys(name) for name in names}


async def _current_tree(ctx: Context) -> DivisionTree:
    index = await current_index(ctx=ctx)
    held = ctx.process.division_tree
    if held is not None and held.version == index.version:
        return held
    tree = await asyncio.to_thread(_tree, index)
    ctx.process.division_tree = tree
    return tree


def _item(tree: DivisionTree, d: Division) -> DivisionItem:
    return DivisionItem(
        code=d.code,
        name=d.name,
        level=d.level,
        kind=d.kind,
        parent=d.parent,
        station_id=tree.station_of.get(d.code) if d.level == "township" else None,
        has_children=bool(tree.children.get(d.code)),
    )


def _scope_prefix(code: str) -> str:
    """The code prefix every descendant of a division shares."""
    if code == PROVINCE_CODE:
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def _matches(query: str, name: str, pinyin: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> bool:
    if not query.isascii():
        return query in name
    keys = pinyin.get(name) or pinyin_keys(name)
    return any(k.startswith(query) for k in keys[0]) or any(k.startswith(query) for k in keys[1])


async def list_divisions(
    *, ctx: Context, parent: str | None = None, q: str | None = None, level: str | None = None, limit: int = 50
) -> DivisionListing:
    """The children of ``parent`` (the province without one), or with ``q`` the divisions under it
    whose name contains ``q`` (Chinese) or whose pinyin or pinyin initials start with it."""
    tree = await _current_tree(ctx)
    if parent is not None and parent not in tree.by_code:
        raise NotFoundError("division_not_found", f"No division has code {parent}.")
    if level is not None and level not in LEVELS:
        raise ValidationFailedError("invalid_level", "Unknown level.", {"level": [f"One of {', '.join(LEVELS)}."]})
    version = f"{DATA_VERSION}.{tree.version}"
    if q is None:
        codes = tree.children.get(parent, ()) if parent is not None else (PROVINCE_CODE,)
        found = [tree.by_code[c] for c in codes]
        if level is not None:
            found = [d for d in found if d.level == level]
        return DivisionListing(tuple(_item(tree, d) for d in found[:limit]), version)
    query = q.strip().lower().replace(" ", "").replace("'", "")
    if not query or len(query) > MAX_QUERY:
        raise ValidationFailedError(
            "invalid_query", f"Search with 1 to {MAX_QUERY} characters.", {"q": [f"1 to {MAX_QUERY} characters."]}
        )
    pinyin = await asyncio.to_thread(_pinyin_index) if query.isascii() else {}
    prefix = _scope_prefix(parent) if parent is not None else ""
    rank = {name: i for i, name in enumerate(LEVELS)}
    hits = sorted(
        (
            d
            for d in tree.by_code.values()
            if d.code.startswith(prefix)
            and d.code != parent
            and (level is None or d.level == level)
            and _matches(query, d.name, pinyin)
        ),
        key=lambda d: (rank[d.level], d.code),
    )
    return DivisionListing(tuple(_item(tree, d) for d in hits[:limit]), version)
