"""Settings for a throw-away database and Redis prefix, and their clean-up."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import redis as sync_redis
from pymongo import MongoClient

from config import Settings, load_settings


@contextlib.contextmanager
def isolated_settings(
    mongo_uri: str, redis_url: str, data_dir: Any, *, prefix: str = "t", **overrides: Any
) -> Iterator[Settings]:
    """Settings with their own database name and Redis key prefix; both are removed afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {"env": "test", "background_tasks": False, "log_level": "WARNING", **overrides}
    settings = load_settings(
        {},
        mongodb_uri=mongo_uri,
        mongodb_db=name,
        redis_url=redis_url,
        redis_prefix=f"{name}:",
        data_dir=str(data_dir),
        **values,
    )
    try:
        yield settings
    finally:
        with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as mongo:
            mongo.drop_database(name)
        with sync_redis.Redis.from_url(redis_url) as r:
            keys = list(r.scan_iter(match=f"{name}:*", count=1000))
            if keys:
                r.delete(*keys)
