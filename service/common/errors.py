"""One error hierarchy for the domain; the HTTP layer maps each family to a status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose.

    ``code`` is a stable machine-readable string (``case_not_found``); ``detail`` is a
    sentence for people; ``extra`` is added to the problem document as-is.
    """

    title = "Request failed"

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class ValidationFailedError(DomainError):
    """Input is well-formed but not acceptable; ``errors`` maps field -> messages."""

    title = "Validation failed"

    def __init__(self, code: str, detail: str, errors: dict[str, Any] | None = None, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.errors = errors or {}


class BadRequestError(DomainError):
    title = "Bad request"


class NotFoundError(DomainError):
    title = "Not found"


class ConflictError(DomainError):
    title = "Conflict"


class InvalidStateError(ConflictError):
    """An action that the object's current state does not allow."""

    title = "Action not allowed in the current state"


class PermissionDeniedError(DomainError):
    title = "Forbidden"


class AuthenticationError(DomainError):
    """The caller is not (or no longer) authenticated.

    ``scheme`` is the authentication scheme to challenge with (``WWW-Authenticate``): Bearer
    by default, Basic when the client authenticated with HTTP Basic (RFC 6749 section 5.2).
    """

    title = "Unauthorized"

    def __init__(self, code: str, detail: str, *, scheme: str = "Bearer", **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.scheme = scheme


class RateLimitedError(DomainError):
    title = "Too many requests"

    def __init__(self, code: str, detail: str, retry_after: int, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after = max(1, int(retry_after))


class UnavailableError(DomainError):
    """A backing store or upstream service cannot be reached right now."""

    title = "Service unavailable"

    def __init__(self, code: str, detail: str, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after = max(1, int(retry_after))


class UpstreamError(DomainError):
    """A third party (WeChat, SMS) answered with an error we cannot hide."""

    title = "Upstream service error"


class PayloadTooLargeError(DomainError):
    title = "Payload too large"


class UnsupportedMediaTypeError(DomainError):
    title = "Unsupported media type"


class RequestTimeoutError(DomainError):
    """The caller started a request but did not finish sending it in time."""

    title = "Request timeout"
