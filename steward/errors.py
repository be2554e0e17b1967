"""Domain errors raised by services; the API maps each to a 4xx that names the field and the problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "BackendUnavailable",
    "Conflict",
    "DomainError",
    "FieldProblem",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "ProblemCollector",
    "ValidationFailed",
]


T = TypeVar("T")


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field; ``field`` is a dotted path such as ``datasets[3].fields[0].name``."""

    field: str | None
    message: str
    code: str = "invalid"


class DomainError(Exception):
    """Base class for errors a user can act on."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the error body (``Retry-After`` for ``Overloaded``)."""
        return {}


class ValidationFailed(DomainError):
    """Input is invalid; ``problems`` names each bad field."""

    status = 400
    code = "validation_error"

    @classmethod
    def one(cls, field: str | None, message: str, code: str = "invalid") -> ValidationFailed:
        return cls(message if field is None else f"{field}: {message}", problems=[FieldProblem(field, message, code)])


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class Overloaded(DomainError):
    """Steward cannot take this work now, and stored none of it; the same request may be sent again after
    ``retry_after`` seconds (a 503 with ``Retry-After``, which HTTP clients that retry, such as the OpenLineage
    clients, honour)."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message, problems=problems)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class BackendUnavailable(Exception):
    """A projection engine (search, graph, cluster) cannot be reached; tasks retry on this."""


class ProblemCollector:
    """Collects problems up to a limit; ``raise_if_any`` raises one ``ValidationFailed`` naming them."""

    def __init__(self, limit: int = 100) -> None:
        self.problems: list[FieldProblem] = []
        self.limit = limit

    def add(self, path: str | None, message: str, code: str = "invalid") -> None:
        if len(self.problems) < self.limit:
            self.problems.append(FieldProblem(path, message, code))

    def raise_if_any(self) -> None:
        if self.problems:
            first = self.problems[0]
            more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
            raise ValidationFailed(f"{first.field}: {first.message}{more}", problems=self.problems)

    def checked(self, value: T | None) -> T:
        """``value`` once no problem was collected (parsers return ``None`` only after adding a problem)."""
        self.raise_if_any()
        if value is None:
            raise ValidationFailed("The input could not be parsed.")
        return value
