"""Frozen settings, read once at start from default.toml and HUIMIN_* variables."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.county_rules import load_county_rules
from config.holidays import load_holidays

DEFAULT_TOML = Path(__file__).with_name("default.toml")
ENV_PREFIX = "HUIMIN_"
PLACEHOLDER_MARK = "dev-only"
DEV_DATA_KEY = "ZGV2LW9ubHktZGF0YS1rZXktMzItYnl0ZXMtbG9uZyE"
# HUIMIN_* variables that CLI commands read themselves; they are not settings.
COMMAND_ENV_VARS = frozenset({"HUIMIN_NEW_STAFF_PASSWORD"})
ENVIRONMENTS = ("development", "test", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    env: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    mongodb_uri: str = ""
    mongodb_db: str = "huimin"
    redis_url: str = ""
    redis_prefix: str = "huimin:"
    data_dir: str = "./var"
    store_timeout_seconds: float = 3.0
    request_deadline_seconds: float = 0.0  # 0: max(4 x store_timeout_seconds, 10 s)
    long_request_deadline_seconds: float = 600.0
    background_pass_deadline_seconds: float = 300.0
    jwt_secret: str = ""
    jwt_private_key_file: str = ""
    jwt_public_key_file: str = ""
    jwt_issuer: str = "huimin"
    jwt_audience: str = "huimin-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 2592000
    otp_ttl_seconds: int = 300
    data_key: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_appid: str = ""
    wechat_secret: str = ""
    admin_password: str = ""
    max_json_bytes: int = 1048576
    max_upload_bytes: int = 5242880
    body_read_timeout_seconds: float = 10.0
    keepalive_timeout_seconds: float = 30.0
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    background_tasks: bool = True
    sms_sender: str = "console"
    sms_api_base: str = ""
    routing_max_km: float = 50.0
    case_sweep_seconds: float = 30.0
    holidays_file: str = ""
    wechat_templates: str = ""
    wechat_miniprogram_state: str = "formal"
    notify_poll_seconds: float = 1.0
    notify_batch_size: int = 200
    notify_send_attempts: int = 4
    notify_retry_base_seconds: float = 2.0
    notify_claim_stale_seconds: float = 120.0
    quiet_hours: str = "21:00-08:00"
    stream_heartbeat_seconds: float = 15.0
    stream_queue_size: int = 256
    stream_write_timeout_seconds: float = 10.0
    webhook_allowed_hosts: str = ""
    webhook_retry_hours: float = 24.0
    webhook_connect_timeout_seconds: float = 3.0
    webhook_timeout_seconds: float = 10.0
    webhook_poll_seconds: float = 1.0
    webhook_concurrency: int = 16
    webhook_lease_seconds: float = 60.0
    webhook_backoff_base_seconds: float = 10.0
    webhook_backoff_cap_seconds: float = 3600.0
    webhook_fanout_overlap_seconds: float = 30.0
    visit_tier_rules_file: str = ""
    public_base_url: str = ""
    volunteer_checkin_code_seconds: int = 60
    county_rules_file: str = ""
    alert_sweep_seconds: float = 10.0

    @property
    def data_key_bytes(self) -> bytes:
        """The 32-byte field-encryption key."""
        return _b64(self.data_key)

    @property
    def request_deadline(self) -> float:
        """Seconds a request may wait on the stores before it is answered 503 (see README)."""
        return self.request_deadline_seconds or max(4 * self.store_timeout_seconds, 10.0)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (tests and the CLI use this)."""
        return dataclasses.replace(self, **changes)


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _coerce(field: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    kind = field.type
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(str(raw).strip())
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(str(raw).strip())
        return str(raw)
    except ValueError:
        expected = {"bool": "true or false", "int": "an integer", "float": "a number"}[str(kind)]
        raise ConfigError(f"{source}: expected {expected}, got {raw!r}") from None


def _validate(s: Settings) -> None:
    def bad(field: str, message: str) -> ConfigError:
        return ConfigError(f"{_env_name(field)}: {message}")

    if s.env not in ENVIRONMENTS:
        raise bad("env", f"must be one of {', '.join(ENVIRONMENTS)}, got {s.env!r}")
    if s.log_level.upper() not in LOG_LEVELS:
        raise bad("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    if not 0 <= s.port <= 65535:
        raise bad("port", f"must be between 0 and 65535, got {s.port}")
    if s.mongodb_uri and not s.mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
        raise bad("mongodb_uri", "must start with mongodb:// or mongodb+srv://")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise bad("redis_url", "must start with redis://, rediss:// or unix://")
    if not s.mongodb_db or any(c in s.mongodb_db for c in '/\\. "$'):
        raise bad("mongodb_db", f"not a valid database name: {s.mongodb_db!r}")
    if not s.wechat_api_base.startswith(("http://", "https://")):
        raise bad("wechat_api_base", "must be an http:// or https:// URL")
    for name in (
        "access_token_ttl_seconds",
        "refresh_token_ttl_seconds",
        "otp_ttl_seconds",
        "max_json_bytes",
        "max_upload_bytes",
        "login_max_failures",
        "login_lockout_seconds",
    ):
        if getattr(s, name) <= 0:
            raise bad(name, f"must be positive, got {getattr(s, name)}")
    if s.admin_password and len(s.admin_password) < 10:
        raise bad("admin_password", "must be at least 10 characters")
    for name in ("body_read_timeout_seconds", "keepalive_timeout_seconds"):
        if getattr(s, name) <= 0:
            raise bad(name, f"must be positive, got {getattr(s, name)}")
    if s.store_timeout_seconds <= 0:
        raise bad("store_timeout_seconds", "must be positive")
    if s.request_deadline_seconds < 0:
        raise bad("request_deadline_seconds", "must not be negative (0 derives it from the store timeout)")
    if s.request_deadline_seconds and s.request_deadline_seconds < s.store_timeout_seconds:
        # shorter, and an outage the drivers would report as such is cut as a hang instead
        raise bad("request_deadline_seconds", "must not be shorter than HUIMIN_STORE_TIMEOUT_SECONDS")
    if s.long_request_deadline_seconds < s.request_deadline:
        raise bad("long_request_deadline_seconds", "must not be shorter than the request deadline")
    if s.background_pass_deadline_seconds <= 0:
        raise bad("background_pass_deadline_seconds", "must be positive")
    if s.case_sweep_seconds <= 0:
        raise bad("case_sweep_seconds", "must be positive")
    if s.routing_max_km <= 0:
        raise bad("routing_max_km", "must be positive")
    try:
        load_holidays(s.holidays_file)
    except ValueError as exc:
        raise bad("holidays_file", str(exc)) from None
    for name in (
        "webhook_retry_hours",
        "webhook_connect_timeout_seconds",
        "webhook_timeout_seconds",
        "webhook_poll_seconds",
        "webhook_concurrency",
        "webhook_lease_seconds",
        "webhook_backoff_base_seconds",
        "webhook_backoff_cap_seconds",
    ):
        if getattr(s, name) <= 0:
            raise bad(name, f"must be positive, got {getattr(s, name)}")
    if s.webhook_fanout_overlap_seconds < 0:
        raise bad("webhook_fanout_overlap_seconds", "must not be negative")
    if s.webhook_lease_seconds <= s.webhook_timeout_seconds:
        raise bad("webhook_lease_seconds", "must be longer than HUIMIN_WEBHOOK_TIMEOUT_SECONDS")
    if s.sms_sender not in ("console", "http"):
        raise bad("sms_sender", f"must be console or http, got {s.sms_sender!r}")
    if s.sms_sender == "http" and not s.sms_api_base:
        raise bad("sms_api_base", "is required when HUIMIN_SMS_SENDER=http")
    _validate_notify(s, bad)
    if s.public_base_url and not re.match(r"^https?://[^/\s]+$", s.public_base_url):
        raise bad("public_base_url", "must be http(s)://host[:port] without a path or trailing slash")
    if not 10 <= s.volunteer_checkin_code_seconds <= 600:
        raise bad("volunteer_checkin_code_seconds", "must be from 10 to 600 seconds")
    if s.visit_tier_rules_file and not Path(s.visit_tier_rules_file).is_file():
        raise bad("visit_tier_rules_file", f"no such file: {s.visit_tier_rules_file}")
    if s.alert_sweep_seconds <= 0:
        raise bad("alert_sweep_seconds", "must be positive")
    try:
        load_county_rules(s.county_rules_file)
    except (OSError, ValueError) as exc:
        raise bad("county_rules_file", str(exc)) from None
    if bool(s.jwt_private_key_file) != bool(s.jwt_public_key_file):
        raise bad("jwt_private_key_file", "set it together with HUIMIN_JWT_PUBLIC_KEY_FILE, or neither")
    for name in ("jwt_private_key_file", "jwt_public_key_file"):
        path = getattr(s, name)
        if path and not Path(path).is_file():
            raise bad(name, f"no such file: {path}")
    if not s.jwt_private_key_file and len(s.jwt_secret) < 32:
        raise bad("jwt_secret", "must be at least 32 characters")
    try:
        key = s.data_key_bytes
    except (binascii.Error, ValueError):
        raise bad("data_key", "must be base64url") from None
    if len(key) != 32:
        raise bad("data_key", f"must decode to 32 bytes, got {len(key)}")
    if s.env == "production":
        if not s.jwt_private_key_file and PLACEHOLDER_MARK in s.jwt_secret:
            raise bad("jwt_secret", "is the development placeholder; set a real secret in production")
        if s.data_key == DEV_DATA_KEY:
            raise bad("data_key", "is the development placeholder; set a real key in production")


def _validate_notify(s: Settings, bad: Any) -> None:
    import json
    import re

    if s.wechat_miniprogram_state not in ("formal", "trial", "developer"):
        raise bad("wechat_miniprogram_state", f"must be formal, trial or developer, got {s.wechat_miniprogram_state!r}")
    if s.wechat_templates:
        try:
            table = json.loads(s.wechat_templates)
        except ValueError:
            raise bad("wechat_templates", "must be a JSON object of template key -> WeChat template id") from None
        if not isinstance(table, dict) or not all(isinstance(v, str) and v for v in table.values()):
            raise bad("wechat_templates", "must be a JSON object of template key -> WeChat template id")
    if s.quiet_hours and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", s.quiet_hours):
        raise bad("quiet_hours", f"must look like 21:00-08:00 (Asia/Shanghai) or be empty, got {s.quiet_hours!r}")
    for name in (
        "notify_poll_seconds",
        "notify_retry_base_seconds",
        "notify_claim_stale_seconds",
        "stream_heartbeat_seconds",
        "stream_write_timeout_seconds",
    ):
        if getattr(s, name) <= 0:
            raise bad(name, "must be positive")
    for name in ("notify_batch_size", "notify_send_attempts", "stream_queue_size"):
        if getattr(s, name) < 1:
            raise bad(name, "must be at least 1")


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    toml_path: Path = DEFAULT_TOML,
    **overrides: Any,
) -> Settings:
    """Read default.toml, overlay HUIMIN_* variables and overrides, validate, freeze."""
    environ = os.environ if environ is None else environ
    with toml_path.open("rb") as fh:
        file_values = tomllib.load(fh)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(file_values) - set(fields))
    if unknown:
        raise ConfigError(f"{toml_path.name}: unknown setting {unknown[0]!r}")
    known_env = {_env_name(n) for n in fields} | COMMAND_ENV_VARS
    stray = sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known_env)
    if stray:
        raise ConfigError(f"{stray[0]}: unknown setting; see the configuration table in README.md")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in overrides:
            values[name] = overrides[name]
            continue
        env_name = _env_name(name)
        if env_name in environ:
            values[name] = _coerce(field, environ[env_name], env_name)
        elif name in file_values:
            values[name] = _coerce(field, file_values[name], f"{toml_path.name}:{name}")
    settings = Settings(**values)
    _validate(settings)
    return settings
