"""Settings: defaults, typed environment overrides, and fail-fast errors naming the variable."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings
from config.settings import DEFAULT_TOML, DEV_DATA_KEY

ROOT = Path(__file__).resolve().parents[2]
REAL_SECRET = "k" * 40
REAL_KEY = base64.urlsafe_b64encode(b"\x01" * 32).decode().rstrip("=")


def test_defaults_load_from_default_toml() -> None:
    s = load_settings({})
    assert s.env == "development"
    assert s.port == 8080
    assert s.mongodb_uri == "" and s.redis_url == ""
    assert s.max_json_bytes == 1048576
    assert s.background_tasks is True
    assert s.routing_max_km == 50.0
    assert len(s.data_key_bytes) == 32


def test_every_setting_has_a_default_in_default_toml() -> None:
    import tomllib

    values = tomllib.loads(DEFAULT_TOML.read_text())
    assert set(values) == {f.name for f in dataclasses.fields(Settings)}


def test_environment_overrides_are_typed() -> None:
    s = load_settings(
        {
            "HUIMIN_PORT": "9000",
            "HUIMIN_BACKGROUND_TASKS": "false",
            "HUIMIN_ROUTING_MAX_KM": "12.5",
            "HUIMIN_STORE_TIMEOUT_SECONDS": "1",
            "HUIMIN_MONGODB_URI": "mongodb://db1:27017,db2:27017/?replicaSet=rs0",
            "HUIMIN_LOG_LEVEL": "DEBUG",
        }
    )
    assert s.port == 9000 and isinstance(s.port, int)
    assert s.background_tasks is False
    assert s.routing_max_km == 12.5 and isinstance(s.routing_max_km, float)
    assert s.store_timeout_seconds == 1.0
    assert s.mongodb_uri.startswith("mongodb://db1")
    assert s.log_level == "DEBUG"


def test_the_request_deadline_follows_the_store_timeout_unless_set() -> None:
    assert load_settings({}).request_deadline == 12.0  # 4 x 3 s
    assert load_settings({"HUIMIN_STORE_TIMEOUT_SECONDS": "1"}).request_deadline == 10.0  # at least 10 s
    assert load_settings({"HUIMIN_REQUEST_DEADLINE_SECONDS": "4.5"}).request_deadline == 4.5


def test_settings_are_frozen() -> None:
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    assert s.replace(port=1).port == 1 and s.port == 8080


def _production(**env: str) -> dict[str, str]:
    return {"HUIMIN_ENV": "production", "HUIMIN_JWT_SECRET": REAL_SECRET, "HUIMIN_DATA_KEY": REAL_KEY, **env}


def test_production_with_real_secrets_loads() -> None:
    s = load_settings(_production())
    assert s.env == "production"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HUIMIN_PORT": "eighty"}, "HUIMIN_PORT"),
        ({"HUIMIN_PORT": "70000"}, "HUIMIN_PORT"),
        ({"HUIMIN_ENV": "staging"}, "HUIMIN_ENV"),
        ({"HUIMIN_LOG_LEVEL": "LOUD"}, "HUIMIN_LOG_LEVEL"),
        ({"HUIMIN_BACKGROUND_TASKS": "maybe"}, "HUIMIN_BACKGROUND_TASKS"),
        ({"HUIMIN_ROUTING_MAX_KM": "far"}, "HUIMIN_ROUTING_MAX_KM"),
        ({"HUIMIN_MONGODB_URI": "http://localhost:27017"}, "HUIMIN_MONGODB_URI"),
        ({"HUIMIN_MONGODB_DB": "bad.name"}, "HUIMIN_MONGODB_DB"),
        ({"HUIMIN_REDIS_URL": "localhost:6379"}, "HUIMIN_REDIS_URL"),
        ({"HUIMIN_JWT_SECRET": "too-short"}, "HUIMIN_JWT_SECRET"),
        ({"HUIMIN_DATA_KEY": "c2hvcnQ"}, "HUIMIN_DATA_KEY"),
        ({"HUIMIN_DATA_KEY": "not base64!"}, "HUIMIN_DATA_KEY"),
        ({"HUIMIN_MAX_JSON_BYTES": "0"}, "HUIMIN_MAX_JSON_BYTES"),
        ({"HUIMIN_STORE_TIMEOUT_SECONDS": "-1"}, "HUIMIN_STORE_TIMEOUT_SECONDS"),
        ({"HUIMIN_BODY_READ_TIMEOUT_SECONDS": "0"}, "HUIMIN_BODY_READ_TIMEOUT_SECONDS"),
        ({"HUIMIN_KEEPALIVE_TIMEOUT_SECONDS": "-5"}, "HUIMIN_KEEPALIVE_TIMEOUT_SECONDS"),
        ({"HUIMIN_REQUEST_DEADLINE_SECONDS": "-1"}, "HUIMIN_REQUEST_DEADLINE_SECONDS"),
        (
            {"HUIMIN_REQUEST_DEADLINE_SECONDS": "2", "HUIMIN_STORE_TIMEOUT_SECONDS": "3"},
            "HUIMIN_REQUEST_DEADLINE_SECONDS",
        ),
        ({"HUIMIN_LONG_REQUEST_DEADLINE_SECONDS": "5"}, "HUIMIN_LONG_REQUEST_DEADLINE_SECONDS"),
        ({"HUIMIN_BACKGROUND_PASS_DEADLINE_SECONDS": "0"}, "HUIMIN_BACKGROUND_PASS_DEADLINE_SECONDS"),
        ({"HUIMIN_SMS_SENDER": "pigeon"}, "HUIMIN_SMS_SENDER"),
        ({"HUIMIN_SMS_SENDER": "http"}, "HUIMIN_SMS_API_BASE"),
        ({"HUIMIN_JWT_PRIVATE_KEY_FILE": "/nonexistent.pem"}, "HUIMIN_JWT_PRIVATE_KEY_FILE"),
        ({"HUIMIN_WECHAT_API_BASE": "ftp://x"}, "HUIMIN_WECHAT_API_BASE"),
        ({"HUIMIN_COLOUR": "blue"}, "HUIMIN_COLOUR"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(variable + ":"), message
    assert "\n" not in message


def test_placeholder_secret_is_refused_in_production() -> None:
    env = _production()
    del env["HUIMIN_JWT_SECRET"]
    with pytest.raises(ConfigError, match=r"^HUIMIN_JWT_SECRET: .*placeholder"):
        load_settings(env)


def test_placeholder_data_key_is_refused_in_production() -> None:
    with pytest.raises(ConfigError, match=r"^HUIMIN_DATA_KEY: .*placeholder"):
        load_settings(_production(HUIMIN_DATA_KEY=DEV_DATA_KEY))


def test_placeholders_are_accepted_in_development() -> None:
    s = load_settings({"HUIMIN_ENV": "development"})
    assert "dev-only" in s.jwt_secret and s.data_key == DEV_DATA_KEY


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "custom.toml"
    toml.write_text(DEFAULT_TOML.read_text() + '\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_settings({}, toml_path=toml)


def _run_py(env_changes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "run.py", "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HUIMIN_PORT": "not-a-port"}, "HUIMIN_PORT"),
        ({"HUIMIN_ENV": "production"}, "HUIMIN_JWT_SECRET"),
        ({"HUIMIN_TYPO": "1"}, "HUIMIN_TYPO"),
    ],
)
def test_run_py_with_bad_value_exits_2_with_one_line(env: dict[str, str], variable: str) -> None:
    result = _run_py(env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert result.stdout == ""


def test_a_holidays_file_that_cannot_be_used_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^HUIMIN_HOLIDAYS_FILE: cannot read"):
        load_settings({"HUIMIN_HOLIDAYS_FILE": str(tmp_path / "missing.toml")})
    bad = tmp_path / "holidays.toml"
    bad.write_text('[2027]\nholidays = ["2027-13-01"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^HUIMIN_HOLIDAYS_FILE: \[2027\] holidays: '2027-13-01' is not a date"):
        load_settings({"HUIMIN_HOLIDAYS_FILE": str(bad)})
    bad.write_text('[2027]\nholidays = ["2027-01-01"]\n', encoding="utf-8")
    assert load_settings({"HUIMIN_HOLIDAYS_FILE": str(bad)}).holidays_file == str(bad)
