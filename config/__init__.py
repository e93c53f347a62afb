"""Configuration: default.toml overlaid by HUIMIN_* environment variables."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
