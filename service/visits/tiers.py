"""The default visit tier of a person: a per-province table of rules, read from configuration.

Pure apart from reading the table file. The table lives in ``config/visit_tiers.toml`` (or
the file ``settings.visit_tier_rules_file`` names); a province is the first two digits of
the township code, and a province without its own table uses ``default``. Each process
reads the file again when its modification time changes, so the table changes without a
code change; ``service.visits.elders.apply_tier_rules`` then moves the register to it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from config import ConfigError, Settings
from config.settings import DEFAULT_TOML
from service.visits.models import FLAGS
from service.visits.periods import TIERS

DEFAULT_FILE = DEFAULT_TOML.with_name("visit_tiers.toml")
# Higher number: more frequent visits.
TIER_RANK = {"general": 0, "key": 1, "high": 2}


@dataclasses.dataclass(frozen=True, slots=True)
class TierRule:
    tier: str
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    note: str | None = None

    def matches(self, flags: set[str]) -> bool:
        return set(self.all_of) <= flags and (not self.any_of or bool(flags & set(self.any_of)))


@dataclasses.dataclass(frozen=True, slots=True)
class ProvinceTiers:
    province: str  # two digits, or "default"
    name: str
    basis: str | None
    default: str
    rules: tuple[TierRule, ...]

    def suggest(self, flags: set[str] | list[str] | tuple[str, ...]) -> str:
        f = set(flags)
        return next((r.tier for r in self.rules if r.matches(f)), self.default)


@dataclasses.dataclass(frozen=True, slots=True)
class TierTable:
    source: str
    provinces: dict[str, ProvinceTiers]

    @property
    def province_list(self) -> list[ProvinceTiers]:
        return list(self.provinces.values())

    def for_township(self, township: str) -> ProvinceTiers:
        return self.provinces.get(str(township)[:2]) or self.provinces["default"]

    def suggest(self, flags: set[str] | list[str] | tuple[str, ...], township: str) -> str:
        """The tier the rules of the township's province give these flags."""
        return self.for_township(township).suggest(flags)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of flags")
    bad = [v for v in value if v not in FLAGS]
    if bad:
        raise ConfigError(f"{where}: unknown flag {bad[0]!r}; use {', '.join(FLAGS)}")
    return tuple(value)


def _tier(value: Any, where: str) -> str:
    if value not in TIERS:
        raise ConfigError(f"{where}: tier must be one of {', '.join(TIERS)}, got {value!r}")
    return str(value)


def parse_tier_table(data: dict[str, Any], source: str) -> TierTable:
    """A tier table from its parsed TOML; ConfigError naming the place of the first problem."""
    provinces = data.get("provinces")
    if not isinstance(provinces, dict) or "default" not in provinces:
        raise ConfigError(f"{source}: needs [provinces.<code>] tables and a [provinces.default] table")
    out: dict[str, ProvinceTiers] = {}
    for code, table in provinces.items():
        where = f"{source}: provinces.{code}"
        if code != "default" and not (len(code) == 2 and code.isdigit()):
            raise ConfigError(f"{where}: a province is the two-digit start of a division code")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown = set(table) - {"name", "basis", "default", "rules"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        rules = []
        for i, rule in enumerate(table.get("rules") or []):
            at = f"{where}.rules[{i}]"
            if not isinstance(rule, dict) or set(rule) - {"tier", "any_of", "all_of", "note"}:
                raise ConfigError(f"{at}: use tier, any_of, all_of and note")
            if not rule.get("any_of") and not rule.get("all_of"):
                raise ConfigError(f"{at}: give any_of or all_of")
            rules.append(
                TierRule(
                    tier=_tier(rule.get("tier"), at),
                    any_of=_names(rule.get("any_of", []), f"{at}.any_of"),
                    all_of=_names(rule.get("all_of", []), f"{at}.all_of"),
                    note=rule.get("note"),
                )
            )
        out[code] = ProvinceTiers(
            province=code,
            name=str(table.get("name") or code),
            basis=table.get("basis"),
            default=_tier(table.get("default", "general"), f"{where}.default"),
            rules=tuple(rules),
        )
    return TierTable(source=source, provinces=out)


_cache: dict[str, tuple[float, TierTable]] = {}


def rules_path(settings: Settings) -> Path:
    return Path(settings.visit_tier_rules_file) if settings.visit_tier_rules_file else DEFAULT_FILE


def tier_table(settings: Settings) -> TierTable:
    """The tier table in force: read again whenever the file changes; ConfigError if it is not valid."""
    path = rules_path(settings)
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        raise ConfigError(f"HUIMIN_VISIT_TIER_RULES_FILE: no such file: {path}") from None
    key = str(path)
    cached = _cache.get(key)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    table = parse_tier_table(data, path.name)
    _cache[key] = (mtime, table)
    return table
