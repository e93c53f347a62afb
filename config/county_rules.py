"""Per-county rules of the alerts area, read from ``config/county_rules.toml``.

Pure apart from reading the file; the file is read again when its modification time
changes, so a county's escalation steps change without a restart.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("county_rules.toml")
TARGETS = ("station_head", "county")


@dataclasses.dataclass(frozen=True, slots=True)
class EscalationStep:
    after_minutes: float
    to: str  # station_head | county


@dataclasses.dataclass(frozen=True, slots=True)
class CountyRule:
    county: str  # six digits, or "default"
    name: str
    machine_calls_count: bool
    escalation: tuple[EscalationStep, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class CountyRules:
    source: str
    counties: dict[str, CountyRule]

    def for_county(self, code: str | None) -> CountyRule:
        """The rule of a county (by its six-digit code, or any longer division code), else the default."""
        return self.counties.get((code or "")[:6]) or self.counties["default"]

    def machine_counting_counties(self) -> list[str]:
        """Counties with their own section that count machine calls (and "default" if it does)."""
        return sorted(c for c, r in self.counties.items() if r.machine_calls_count)


def _rule(key: str, raw: Any) -> CountyRule:
    if key != "default" and not (len(key) == 6 and key.isdigit()):
        raise ValueError(f"counties.{key}: a county is a six-digit code or 'default'")
    if not isinstance(raw, dict):
        raise ValueError(f"counties.{key}: expected a table")
    unknown = set(raw) - {"name", "machine_calls_count", "escalation"}
    if unknown:
        raise ValueError(f"counties.{key}: unknown key {sorted(unknown)[0]!r}")
    count = raw.get("machine_calls_count", False)
    if not isinstance(count, bool):
        raise ValueError(f"counties.{key}.machine_calls_count: expected true or false")
    steps: list[EscalationStep] = []
    for i, step in enumerate(raw.get("escalation") or []):
        where = f"counties.{key}.escalation[{i}]"
        if not isinstance(step, dict) or set(step) != {"after_minutes", "to"}:
            raise ValueError(f'{where}: expected {{ after_minutes = N, to = "station_head" | "county" }}')
        minutes = step["after_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise ValueError(f"{where}.after_minutes: expected a positive number")
        if step["to"] not in TARGETS:
            raise ValueError(f"{where}.to: expected one of {', '.join(TARGETS)}")
        if steps and minutes <= steps[-1].after_minutes:
            raise ValueError(f"{where}.after_minutes: must be later than the step before")
        steps.append(EscalationStep(after_minutes=float(minutes), to=step["to"]))
    return CountyRule(county=key, name=str(raw.get("name") or key), machine_calls_count=count, escalation=tuple(steps))


def parse_county_rules(text: str, source: str = "<text>") -> CountyRules:
    """The rules in a TOML text; ValueError naming the bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: {exc}") from None
    counties = data.get("counties")
    if not isinstance(counties, dict) or "default" not in counties:
        raise ValueError(f"{source}: needs a [counties.default] table")
    return CountyRules(source=source, counties={k: _rule(k, v) for k, v in counties.items()})


_cache: dict[str, tuple[float, CountyRules]] = {}


def load_county_rules(path: str = "") -> CountyRules:
    """The rules of the file ``path`` (empty: the shipped table), re-read when the file changes."""
    file = Path(path) if path else DEFAULT_FILE
    mtime = os.stat(file).st_mtime
    key = str(file)
    cached = _cache.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    rules = parse_county_rules(file.read_text(encoding="utf-8"), source=key)
    _cache[key] = (mtime, rules)
    return rules
