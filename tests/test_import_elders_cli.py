from pymongo import MongoClient

from tests.factories import id_card
from tests.test_import_stations_cli import run_cli


def test_cli_import_elders_dry_run_reports_rows_then_applies(settings, tmp_path):
    stations = tmp_path / "stations.csv"
    stations.write_text(
        "code,name,county_code,county_name,city_name,lon,lat\n"
        "340102001,明光路街道社工站,340102,瑶海区,合肥市,117.304,31.860\n",
        encoding="utf-8",
    )
    assert run_cli(settings, str(stations)).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(f"name,id_card,township\n王秀英,{id_card()},340102001\n李四,123,340102001\n", encoding="utf-8")
    dry = run_cli(settings, str(bad), "--dry-run", command="import-elders")
    assert dry.returncode == 1 and "row 3: id_card" in dry.stdout
    good = tmp_path / "good.csv"
    good.write_text(f"name,id_card,township,flags\n王秀英,{id_card()},340102001,alone\n", encoding="utf-8")
    applied = run_cli(settings, str(good), command="import-elders")
    assert applied.returncode == 0, applied.stderr
    assert "registered 1" in applied.stdout
    with MongoClient(settings.mongodb_uri) as mongo:
        assert mongo[settings.mongodb_db]["elders"].count_documents({"active": True}) == 1
