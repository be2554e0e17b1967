"""Errors the client raises: each carries the HTTP status and the server's code, message and per-field problems.

The API answers every error in one format (docs/api.md, ``steward/api/exceptions.py``)::

    {"status": 400, "code": "validation_error", "detail": "duration: Not an ISO 8601 duration.",
     "errors": [{"field": "duration", "code": "invalid", "message": "Not an ISO 8601 duration."}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "FieldError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServerError",
    "StewardConnectionError",
    "StewardError",
    "ValidationError",
    "error_from_response",
]


@dataclass(frozen=True)
class FieldError:
    """One problem with one input: ``field`` is a dotted path (``datasets[0].name``, ``cursor``) or ``None``."""

    field: str | None
    message: str
    code: str = "invalid"


class StewardError(Exception):
    """An answer of the API that is an error (or no answer at all: ``status`` is ``None``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        errors: list[FieldError] | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.errors = errors or []
        self.method = method
        self.url = url

    @property
    def field(self) -> str | None:
        """The first field the server named, if any."""
        for error in self.errors:
            if error.field:
                return error.field
        return None

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}" if self.status else "no answer"
        return f"{prefix} ({self.code}): {self.message}"


class ValidationError(StewardError):
    """400: bad input; ``errors`` names each bad field."""


class AuthenticationError(StewardError):
    """401: no token, or an invalid, expired or revoked one."""


class PermissionDeniedError(StewardError):
    """403: the token's user (or the token's scopes) may not do this."""


class NotFoundError(StewardError):
    """404: no such object, or one you may not see."""


class ConflictError(StewardError):
    """409: the object's state does not allow this (a withdrawn request, a stopped workspace...)."""


class ServerError(StewardError):
    """5xx: the server failed or a backend is unavailable; retrying later may succeed."""


class StewardConnectionError(StewardError):
    """The server could not be reached (connection refused, DNS, timeout)."""


_BY_STATUS: dict[int, type[StewardError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
}


def error_from_response(status: int, body: Any, *, method: str = "", url: str = "", text: str = "") -> StewardError:
    """The exception for an error answer; ``body`` is its decoded JSON (or ``None`` when it was not JSON)."""
    if isinstance(body, dict):
        message = str(body.get("detail") or body.get("title") or text or f"HTTP {status}")
        code = str(body.get("code") or "error")
        errors = [
            FieldError(field=item.get("field"), message=str(item.get("message", "")), code=str(item.get("code", "")))
            for item in body.get("errors") or []
            if isinstance(item, dict)
        ]
    else:
        message = (text.strip()[:300] or f"HTTP {status}") if text else f"HTTP {status}"
        code = "error"
        errors = []
    if status >= 500:
        cls: type[StewardError] = ServerError
    else:
        cls = _BY_STATUS.get(status, StewardError)
    return cls(message, status=status, code=code, errors=errors, method=method, url=url)
