"""Driver errors that mean "the store is down", turned into the domain's UnavailableError."""

from __future__ import annotations

import redis.exceptions
from pymongo import errors as mongo_errors

from service.common.errors import DomainError, UnavailableError

_MONGO_DOWN = (mongo_errors.ConnectionFailure, mongo_errors.ServerSelectionTimeoutError, mongo_errors.NetworkTimeout)
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def translate_error(exc: BaseException) -> DomainError | None:
    """The domain error for a driver exception that escaped a repository, if it is one."""
    if isinstance(exc, _MONGO_DOWN):
        return UnavailableError("database_unavailable", "The database cannot be reached; please retry shortly.")
    if isinstance(exc, mongo_errors.ExecutionTimeout):
        # an operation or a conflicting transaction ran past its time limit: busy, not broken
        return UnavailableError("database_busy", "The database is busy; please retry shortly.", retry_after=2)
    if isinstance(exc, _REDIS_DOWN):
        return UnavailableError("cache_unavailable", "The cache server cannot be reached; please retry shortly.")
    return None


def is_redis_down(exc: BaseException) -> bool:
    """True for the errors a Redis outage raises (callers that fail safe use this)."""
    return isinstance(exc, _REDIS_DOWN)
