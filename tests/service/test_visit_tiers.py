from pathlib import Path

import pytest

from config import ConfigError
from service.visits.tiers import DEFAULT_FILE, parse_tier_table, tier_table

ANHUI = "340102001"
JIANGSU = "320102001"


@pytest.fixture
def table(settings):
    return tier_table(settings)


@pytest.mark.parametrize(
    ("flags", "tier"),
    [
        (["very_old"], "high"),
        (["alone"], "high"),
        (["disabled"], "high"),
        (["dementia"], "high"),
        (["alone", "very_old"], "high"),
        (["extreme_poverty"], "key"),
        (["left_behind"], "key"),
        (["empty_nest"], "key"),
        ([], "general"),
    ],
)
def test_anhui_puts_everyone_very_old_alone_or_unable_to_care_on_the_weekly_tier(table, flags, tier):
    assert table.suggest(flags, ANHUI) == tier


@pytest.mark.parametrize(
    ("flags", "tier"),
    [
        (["disabled"], "high"),
        (["alone", "very_old"], "high"),
        (["alone", "extreme_poverty"], "high"),
        (["alone"], "key"),
        (["very_old"], "key"),
        (["left_behind"], "key"),
        (["empty_nest"], "general"),
        ([], "general"),
    ],
)
def test_a_province_without_its_own_table_uses_the_default_rules(table, flags, tier):
    assert table.suggest(flags, JIANGSU) == tier


def test_the_shipped_table_is_the_default_file(settings):
    assert tier_table(settings).source == DEFAULT_FILE.name == "visit_tiers.toml"


def test_an_edited_table_file_is_read_again_without_a_restart(settings, tmp_path: Path):
    path = tmp_path / "tiers.toml"
    path.write_text('[provinces.default]\ndefault = "general"\nrules = []\n', encoding="utf-8")
    local = settings.replace(visit_tier_rules_file=str(path))
    assert tier_table(local).suggest(["alone"], ANHUI) == "general"
    path.write_text(
        '[provinces.default]\ndefault = "general"\nrules = [{tier = "key", any_of = ["alone"]}]\n', encoding="utf-8"
    )
    import os

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert tier_table(local).suggest(["alone"], ANHUI) == "key"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "provinces.default"),
        ({"provinces": {"default": {"rules": [{"tier": "weekly", "any_of": ["alone"]}]}}}, "tier must be one of"),
        ({"provinces": {"default": {"rules": [{"tier": "high", "any_of": ["lonely"]}]}}}, "unknown flag 'lonely'"),
        ({"provinces": {"default": {"rules": [{"tier": "high"}]}}}, "give any_of or all_of"),
        ({"provinces": {"default": {}, "anhui": {}}}, "two-digit"),
    ],
)
def test_a_bad_table_is_refused_naming_the_problem(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_tier_table(data, "t.toml")
