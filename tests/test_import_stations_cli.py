import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(settings, *args, command="import-stations"):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")},
        "HUIMIN_ENV": "test",
        "HUIMIN_MONGODB_URI": settings.mongodb_uri,
        "HUIMIN_MONGODB_DB": settings.mongodb_db,
        "HUIMIN_REDIS_URL": settings.redis_url,
        "HUIMIN_REDIS_PREFIX": settings.redis_prefix,
        "HUIMIN_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "run.py", command, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_import_dry_run_then_apply(settings, tmp_path):
    good = tmp_path / "stations.csv"
    good.write_text(
        "code,name,county_code,county_name,city_name,lon,lat\n"
        "340102001,明光路街道社工站,340102,瑶海区,合肥市,117.304,31.860\n",
        encoding="utf-8",
    )
    dry = run_cli(settings, str(good), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create 1" in dry.stdout
    applied = run_cli(settings, str(good))
    assert applied.returncode == 0, applied.stderr
    assert "created 1" in applied.stdout


def test_cli_import_reports_bad_rows_and_fails(settings, tmp_path):
    bad = tmp_path / "stations.csv"
    bad.write_text(
        "code,name,county_code,county_name,city_name,lon,lat\n340102001,x,340102,瑶海区,合肥市,999,31.86\n",
        encoding="utf-8",
    )
    result = run_cli(settings, str(bad))
    assert result.returncode == 1
    assert "row 2: lon" in result.stderr
