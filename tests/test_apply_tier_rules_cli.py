import os
import subprocess
import sys

from pymongo import MongoClient

from service.visits.tiers import DEFAULT_FILE
from tests.factories import age_born, id_card
from tests.test_import_stations_cli import ROOT, run_cli


def run(settings, *args, rules=None):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")},
        "HUIMIN_ENV": "test",
        "HUIMIN_MONGODB_URI": settings.mongodb_uri,
        "HUIMIN_MONGODB_DB": settings.mongodb_db,
        "HUIMIN_REDIS_URL": settings.redis_url,
        "HUIMIN_REDIS_PREFIX": settings.redis_prefix,
        "HUIMIN_LOG_LEVEL": "WARNING",
        **({"HUIMIN_VISIT_TIER_RULES_FILE": str(rules)} if rules else {}),
    }
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_lists_who_moves_to_a_changed_tier_table_then_moves_them(settings, tmp_path):
    stations = tmp_path / "stations.csv"
    stations.write_text(
        "code,name,county_code,county_name,city_name,lon,lat\n"
        "340102001,明光路街道社工站,340102,瑶海区,合肥市,117.304,31.860\n",
        encoding="utf-8",
    )
    assert run_cli(settings, str(stations)).returncode == 0
    old = tmp_path / "old.toml"
    old.write_text("[provinces.default]" + DEFAULT_FILE.read_text(encoding="utf-8").split("[provinces.default]")[-1])
    register = tmp_path / "register.csv"
    register.write_text(
        f"name,id_card,township,flags\n王秀英,{id_card(age_born(70))},340102001,alone\n", encoding="utf-8"
    )
    imported = run(settings, "import-elders", str(register), rules=old)
    assert imported.returncode == 0, imported.stderr
    with MongoClient(settings.mongodb_uri) as mongo:
        elders = mongo[settings.mongodb_db]["elders"]
        assert elders.find_one({})["tier"] == "key"
        dry = run(settings, "apply-tier-rules", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "王** 340102001: key -> high" in dry.stdout and "would move 1" in dry.stdout
        assert elders.find_one({})["tier"] == "key"
        applied = run(settings, "apply-tier-rules")
        assert applied.returncode == 0 and "moved 1" in applied.stdout, applied.stdout
        assert elders.find_one({})["tier"] == "high"


def test_a_bad_tier_table_stops_the_command_with_a_one_line_message(settings, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[provinces.default]\nrules = [{tier = "weekly", any_of = ["alone"]}]\n', encoding="utf-8")
    result = run(settings, "apply-tier-rules", "--dry-run", rules=bad)
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "tier must be one of" in result.stderr
