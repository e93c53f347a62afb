"""The plan's targets per plan period, read from ``config/plan_targets.toml`` (never written in code).

Parsing is pure (:func:`parse_targets`); :func:`plan_targets` reads the file again when its
modification time changes, so a new period or a published figure needs no code change.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tomllib
from pathlib import Path
from typing import Any

from config.settings import DEFAULT_TOML

DEFAULT_FILE = DEFAULT_TOML.with_name("plan_targets.toml")
INDICATOR_CODES = (
    "social_workers_total",
    "social_workers_growth",
    "trained_certified",
    "trained_managers",
    "trained_supervisors",
    "trained_elderly_care",
    "social_workers_per_1000_older",
    "social_workers_per_100_beds",
    "station_coverage",
    "six_haves_compliance",
    "weekly_visit_rate",
)
APPLIES_TO = ("province", "every")


class TargetsError(ValueError):
    """The target table is not valid; the message names the first problem."""


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    value: float | None
    applies_to: str
    note: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class PlanPeriod:
    id: str
    name: str
    basis: str | None
    start_year: int
    end_year: int
    targets: dict[str, Target]
    divisions: dict[str, dict[str, Target]]

    def target_for(self, code: str, division: str, level: str) -> tuple[float | None, str | None]:
        """(target, note) of indicator ``code`` for a division: its own figure, the plan's, or none."""
        own = self.divisions.get(division, {}).get(code)
        if own is not None:
            return own.value, own.note
        target = self.targets.get(code)
        if target is None or target.value is None:
            return None, "本规划期未设定目标 no target set for this plan period"
        if target.applies_to == "province" and level != "province":
            return None, f"省级总量目标 province-wide target ({target.value:g}); no figure set for this division"
        return target.value, target.note


@dataclasses.dataclass(frozen=True, slots=True)
class TargetTable:
    source: str
    periods: tuple[PlanPeriod, ...]

    def period_of(self, year: int) -> PlanPeriod | None:
        return next((p for p in self.periods if p.start_year <= year <= p.end_year), None)


def _target(where: str, raw: Any, *, division: bool) -> Target:
    if not isinstance(raw, dict):
        raise TargetsError(f"{where}: expected {{ value = ..., applies_to = ..., note = ... }}")
    unknown = sorted(set(raw) - {"value", "applies_to", "note"})
    if unknown:
        raise TargetsError(f"{where}: unknown key {unknown[0]!r}")
    value = raw.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
        raise TargetsError(f"{where}: value must be a number of 0 or more")
    applies_to = raw.get("applies_to", "every" if division else None)
    if applies_to not in APPLIES_TO:
        raise TargetsError(f"{where}: applies_to must be one of {', '.join(APPLIES_TO)}")
    note = raw.get("note")
    if note is not None and not isinstance(note, str):
        raise TargetsError(f"{where}: note must be text")
    return Target(float(value) if value is not None else None, applies_to, note)


def _targets(where: str, raw: Any, *, division: bool) -> dict[str, Target]:
    if not isinstance(raw, dict):
        raise TargetsError(f"{where}: expected a table of indicator targets")
    out = {}
    for code, item in raw.items():
        if code not in INDICATOR_CODES:
            raise TargetsError(f"{where}: unknown indicator {code!r}")
        out[code] = _target(f"{where}.{code}", item, division=division)
    return out


def parse_targets(text: str, source: str) -> TargetTable:
    """The target table of a TOML text; TargetsError naming the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetsError(f"not valid TOML: {exc}") from None
    periods = []
    for pid, table in (raw.get("periods") or {}).items():
        where = f"periods.{pid}"
        if not isinstance(table, dict):
            raise TargetsError(f"{where}: expected a table")
        start, end = table.get("start_year"), table.get("end_year")
        if not isinstance(start, int) or not isinstance(end, int) or not 2000 <= start <= end <= 2100:
            raise TargetsError(f"{where}: start_year and end_year must be years, start <= end")
        if pid != f"{start}-{end}":
            raise TargetsError(f"{where}: the period id must be {start}-{end}")
        divisions = {}
        for code, targets in (table.get("divisions") or {}).items():
            if not (code.isdigit() and len(code) in (6, 9)):
                raise TargetsError(f"{where}.divisions.{code}: a division is a 6- or 9-digit code")
            divisions[code] = _targets(f"{where}.divisions.{code}", targets, division=True)
        periods.append(
            PlanPeriod(
                id=pid,
                name=str(table.get("name") or pid),
                basis=table.get("basis"),
                start_year=start,
                end_year=end,
                targets=_targets(f"{where}.targets", table.get("targets") or {}, division=False),
                divisions=divisions,
            )
        )
    periods.sort(key=lambda p: p.start_year)
    for a, b in itertools.pairwise(periods):
        if b.start_year <= a.end_year:
            raise TargetsError(f"periods {a.id} and {b.id} overlap")
    return TargetTable(source=source, periods=tuple(periods))


_cache: dict[str, tuple[float, TargetTable]] = {}


def plan_targets(path: Path = DEFAULT_FILE) -> TargetTable:
    """The target table of ``path``, read again when the file changes."""
    mtime = os.stat(path).st_mtime
    held = _cache.get(str(path))
    if held is not None and held[0] == mtime:
        return held[1]
    table = parse_targets(path.read_text(encoding="utf-8"), source=str(path.name))
    _cache[str(path)] = (mtime, table)
    return table
