"""Domain errors.

Domain code raises these; only the HTTP layer (``danlu.api.errors``) turns them
into status codes and the API's error shape. Each class also subclasses the
closest standard exception so callers outside danlu can catch it naturally.
Messages say what went wrong *and* how to fix it.
"""

from __future__ import annotations


class DanluError(Exception):
    """Base of every error danlu raises on purpose."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        # Protocol-specific fields a client expects beside the message (e.g. a repo's url).
        self.extra: dict[str, object] = {}


class ConfigError(DanluError, ValueError):
    """A setting or configuration file is malformed."""


class InvalidRequest(DanluError, ValueError):
    """The request is malformed or names something impossible."""


class AuthenticationFailed(DanluError, PermissionError):
    """No credentials, or credentials that are wrong, revoked or expired."""


class PermissionDenied(DanluError, PermissionError):
    """Valid credentials that lack the scope or role for this action."""


class NotFound(DanluError, LookupError):
    """The thing does not exist, or the caller may not know that it does."""


class ModelNotFound(NotFound):
    """No served model has this name."""


class Conflict(DanluError):
    """The action clashes with the current state (a name already taken, ...)."""


class PreconditionFailed(Conflict):
    """The caller's expectation of the current state (a parent commit, an ETag) is stale."""


class PayloadTooLarge(DanluError):
    """A request body or file exceeds a configured limit."""


class RangeNotSatisfiable(DanluError):
    """A requested byte range lies outside the file."""


class Unsupported(DanluError):
    """Well-formed, but the target cannot do it (e.g. tools on a model without them)."""


class ContextLengthExceeded(InvalidRequest):
    """The prompt plus the requested completion do not fit the model's context."""


class RateLimited(DanluError):
    """Too many requests right now; retry after ``retry_after`` seconds.

    When a configured limit refused the request, ``scope`` names whose limit it was (e.g.
    ``"key:k1"``) and ``limit`` which one (``"rpm"``, ``"tpm"`` or ``"concurrency"``).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        code: str | None = None,
        scope: str | None = None,
        limit: str | None = None,
    ):
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.scope = scope
        self.limit = limit


class InsufficientBalance(DanluError):
    """The workspace cannot cover a call's worst-case cost (HTTP 402 Payment Required).

    ``needed`` and ``available`` are micro-yuan; the message says how to add funds.
    """

    status = 402

    def __init__(
        self,
        message: str,
        *,
        needed: int = 0,
        available: int = 0,
        code: str | None = "insufficient_balance",
    ):
        super().__init__(message, code=code)
        self.needed = needed
        self.available = available


class LimitsUnavailable(DanluError, ConnectionError):
    """Rate limits cannot be checked (their store, Redis, is unreachable): HTTP 503.

    The gateway fails closed: it refuses requests rather than admit them unchecked.
    """

    status = 503

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        code: str | None = "limits_unavailable",
    ):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ModelUnavailable(DanluError, RuntimeError):
    """The model exists but cannot serve now (failed to load, shutting down)."""


class UpstreamError(DanluError, ConnectionError):
    """An upstream provider failed or answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message, param=param, code=code)
        self.status = status


class UpstreamTimeout(UpstreamError, TimeoutError):
    """An upstream provider did not answer in time."""
